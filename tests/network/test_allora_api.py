"""AlloraNetwork against a real HTTP server on loopback, scripted with documented payloads.

Payload shapes follow Allora's docs ("Consume an Inference in 2 Minutes", the on-chain walkthrough)
and the official SDKs' API clients: values are strings, the timestamp is in seconds.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from defai.errors import NetworkError, PayloadError, StaleInferenceError
from defai.network.allora import (
    AlloraNetwork,
    TopicInfo,
    parse_inference,
    parse_topic_page,
    retry_after_s,
    timestamp_ms,
)

KEY = "UP-test-secret-5f1c9a2b7d"
TS_S = 1_719_866_777
NOW_MS = TS_S * 1000 + 30_000
TOPICS = "/allora/allora-testnet-1/topics"
CONSUMER = "/allora/consumer/ethereum-11155111"


# --- a scriptable server ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-encoded, unless bytes
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class FakeAllora:
    """A queue of replies per path; every request is recorded. Unscripted requests get a 418."""

    def __init__(self) -> None:
        self.replies: dict[str, deque[Reply]] = defaultdict(deque)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.base_url = ""

    def script(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.replies[path].extend(replies)

    def take(self, raw_path: str, headers: dict[str, str]) -> Reply:
        url = urlsplit(raw_path.removeprefix("/v2"))  # the documented base URL ends in /v2
        with self.lock:
            self.seen.append(Seen(url.path, parse_qs(url.query), headers))
            queue = self.replies[url.path]
            return queue.popleft() if queue else Reply(418, {"unscripted": url.path})

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def _handler(fake: FakeAllora) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reply = fake.take(self.path, {k.lower(): v for k, v in self.headers.items()})
            time.sleep(reply.delay_s)
            body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                for name, value in {"content-type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[FakeAllora]:
    fake = FakeAllora()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    httpd.block_on_close = False
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v2"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One injected client for the module: building one loads TLS roots (~30 ms each)."""
    with httpx.Client() as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(
    server: FakeAllora, sleeps: list[float], http: httpx.Client
) -> Iterator[Callable[..., AlloraNetwork]]:
    """An AlloraNetwork on the fake server; sleeps are recorded, not slept."""
    made: list[AlloraNetwork] = []

    def build(**kwargs: Any) -> AlloraNetwork:
        options: dict[str, Any] = {
            "api_key": KEY,
            "base_url": server.base_url,
            "chain": "testnet",
            "timeout_s": 2.0,
            "max_retries": 2,
            "backoff_s": 0.01,
            "clock": lambda: NOW_MS,
            "sleep": sleeps.append,
            "http_client": http,
        }
        options.update(kwargs)
        net = AlloraNetwork(**options)
        made.append(net)
        return net

    yield build
    for net in made:
        net.close()


# --- documented payloads ----------------------------------------------------------------------


def topic(topic_id: int, name: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "topic_id": topic_id,
        "topic_name": name,
        "description": f"{name} predicted by the network",
        "epoch_length": 720,
        "ground_truth_lag": 17280,
        "loss_method": "mse",
        "worker_submission_window": 10,
        "worker_count": 31,
        "reputer_count": 6,
        "total_staked_allo": 1520.25,
        "total_emissions_allo": 88.5,
        "is_active": True,
        "updated_at": "2025-05-01T12:00:00.000Z",
    }
    return row | overrides


def envelope(data: Any, **overrides: Any) -> dict[str, Any]:
    return {"request_id": "11bfa420-0a3d-49e2", "status": True, "data": data} | overrides


def topics_page(rows: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    return envelope({"topics": rows, "continuation_token": token})


def inference(topic_id: int = 69, *, normalized: bool = True, **overrides: Any) -> dict[str, Any]:
    """As the quickstart shows: 18 decimals, uint256 strings, a timestamp in seconds."""
    data: dict[str, Any] = {
        "network_inference": "64609501828101036794984",
        "confidence_interval_percentiles": [
            "2280000000000000000",
            "15870000000000000000",
            "50000000000000000000",
            "84130000000000000000",
            "97720000000000000000",
        ],
        "confidence_interval_values": [
            "61200000000000000000000",
            "63000500000000000000000",
            "64609501828101036794984",
            "66100000000000000000000",
            "68000250000000000000000",
        ],
        "topic_id": str(topic_id),
        "timestamp": TS_S,
        "extra_data": "0x",
    }
    if normalized:
        data |= {
            "network_inference_normalized": "64609.501828101036794984",
            "confidence_interval_percentiles_normalized": ["2.28", "15.87", "50", "84.13", "97.72"],
            "confidence_interval_values_normalized": [
                "61200",
                "63000.5",
                "64609.501828101036794984",
                "66100",
                "68000.25",
            ],
        }
    return envelope(
        {"signature": "0x656ac017", "token_decimals": 18, "inference_data": data | overrides}
    )


CI_PERCENTILES = (2.28, 15.87, 50.0, 84.13, 97.72)
CI_VALUES = (61200.0, 63000.5, 64609.501828101036794984, 66100.0, 68000.25)


# --- success ----------------------------------------------------------------------------------


def test_topics_follow_continuation_token_to_the_last_page(server: FakeAllora, make: Any) -> None:
    server.script(
        TOPICS, Reply(body=topics_page([topic(69, "BTC/USD 1d"), topic(14, "ETH 5m")], "p2"))
    )
    server.script(TOPICS, Reply(body=topics_page([topic(3, "SOL 8h", is_active=None)], "p3")))
    server.script(TOPICS, Reply(body=topics_page([topic(7, "ETH 24h vol")], None)))

    topics = make().topics()

    assert [t.topic_id for t in topics] == [69, 14, 3, 7]
    assert topics[0] == TopicInfo(**topic(69, "BTC/USD 1d"))
    assert topics[2].is_active is None and topics[0].total_staked_allo == 1520.25
    tokens = [s.query.get("continuation_token") for s in server.requests_to(TOPICS)]
    assert tokens == [None, ["p2"], ["p3"]]
    assert all(s.headers["x-api-key"] == KEY for s in server.seen)


def test_mainnet_lists_its_own_chain(server: FakeAllora, make: Any) -> None:
    path = "/allora/allora-mainnet-1/topics"
    server.script(path, Reply(body=topics_page([topic(1, "ETH 1h")], "")))
    assert [t.topic_name for t in make(chain="mainnet").topics()] == ["ETH 1h"]


def test_latest_by_name_reads_the_normalized_values(server: FakeAllora, make: Any) -> None:
    server.script(
        TOPICS, Reply(body=topics_page([topic(69, "BTC/USD 1d"), topic(14, "ETH")], None))
    )
    server.script(CONSUMER, Reply(body=inference(69)))

    got = make().latest("btc/usd 1D")

    assert got.topic == "btc/usd 1D" and got.source == "allora" and dict(got.weights) == {}
    assert got.value == 64609.501828101036794984
    assert got.timestamp_ms == TS_S * 1000
    assert got.ci_percentiles == CI_PERCENTILES and got.ci_values == CI_VALUES
    assert got.extra == {
        "request_id": "11bfa420-0a3d-49e2",
        "signature": "0x656ac017",
        "topic_id": 69,
        "token_decimals": 18,
        "network_inference": "64609501828101036794984",
        "extra_data": "0x",
    }
    (request,) = server.requests_to(CONSUMER)
    assert request.query == {"allora_topic_id": ["69"], "inference_value_type": ["uint256"]}
    assert request.headers["x-api-key"] == KEY


def test_latest_by_id_falls_back_to_uint256_over_token_decimals(
    server: FakeAllora, make: Any
) -> None:
    server.script(CONSUMER, Reply(body=inference(69, normalized=False)))

    got = make().latest(69)

    assert got.topic == "69" and not server.requests_to(TOPICS)
    assert got.value == float(Decimal("64609.501828101036794984"))
    assert got.ci_percentiles == CI_PERCENTILES and got.ci_values == CI_VALUES


def test_topic_names_are_looked_up_once_per_ttl(server: FakeAllora, make: Any) -> None:
    server.script(TOPICS, Reply(body=topics_page([topic(14, "ETH 5m")], None)))
    net = make()
    assert net.topic_id("ETH 5M") == 14
    assert net.topic_id("eth 5m") == 14
    assert len(server.requests_to(TOPICS)) == 1


def test_absent_topic_name_lists_near_names(server: FakeAllora, make: Any) -> None:
    rows = [topic(14, "ETH/USD 5min Price Prediction"), topic(7, "ETH/USD 24h Volatility")]
    server.script(TOPICS, Reply(body=topics_page(rows, None)))
    with pytest.raises(NetworkError, match="no topic named 'ETH/USD'") as err:
        make().topic_id("ETH/USD")
    assert "'ETH/USD 5min Price Prediction'" in str(err.value)
    assert "'ETH/USD 24h Volatility'" in str(err.value)


def test_ambiguous_topic_name_lists_the_ids(server: FakeAllora, make: Any) -> None:
    rows = [topic(14, "ETH 5m"), topic(41, "eth 5m", is_active=False)]
    server.script(TOPICS, Reply(body=topics_page(rows, None)))
    with pytest.raises(NetworkError, match=r"ambiguous.*14 \(active=True\), 41 \(active=False\)"):
        make().topic_id("Eth 5m")


# --- retries ----------------------------------------------------------------------------------


def test_429_is_retried_honouring_retry_after(
    server: FakeAllora, make: Any, sleeps: list[float]
) -> None:
    server.script(
        CONSUMER,
        Reply(429, {"status": False, "apiResponseMessage": "rate limited"}, {"Retry-After": "2"}),
        Reply(429, {"status": False}),
        Reply(body=inference(69)),
    )
    got = make().latest(69)
    assert got.value == pytest.approx(64609.5018281)
    assert len(server.requests_to(CONSUMER)) == 3
    assert sleeps[0] == 2.0  # the server's Retry-After, not the 0.01 s backoff
    assert 0.01 <= sleeps[1] <= 0.02  # no header: the second backoff step, jittered


def test_5xx_until_retries_run_out(server: FakeAllora, make: Any, sleeps: list[float]) -> None:
    server.script(CONSUMER, *(Reply(500, {"error": "boom"}) for _ in range(4)))
    with pytest.raises(NetworkError, match="gave up after 4 attempts; last: HTTP 500") as err:
        make(max_retries=3, backoff_s=0.1).latest(69)
    assert not isinstance(err.value, PayloadError)
    assert len(server.requests_to(CONSUMER)) == 4
    bounds = [(0.05, 0.1), (0.1, 0.2), (0.2, 0.4)]  # backoff_s * 2**n, jittered in its top half
    assert all(lo <= s <= hi for s, (lo, hi) in zip(sleeps, bounds, strict=True))


def test_backoff_jitter_is_seeded(server: FakeAllora, make: Any, sleeps: list[float]) -> None:
    for _ in range(2):
        server.script(CONSUMER, Reply(503), Reply(503), Reply(body=inference(69)))
        make(seed=7).latest(69)
    assert sleeps[:2] == sleeps[2:] and sleeps[0] != sleeps[1]


def test_a_timeout_is_retried_then_reported(server: FakeAllora, make: Any) -> None:
    server.script(
        CONSUMER, Reply(body=inference(69), delay_s=0.3), Reply(body=inference(69), delay_s=0.3)
    )
    with pytest.raises(NetworkError, match="gave up after 2 attempts; last: ReadTimeout"):
        make(timeout_s=0.05, max_retries=1).latest(69)
    assert len(server.requests_to(CONSUMER)) == 2


def test_a_refused_connection_is_retried_then_reported(sleeps: list[float]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    net = AlloraNetwork(
        KEY, f"http://127.0.0.1:{port}/v2", max_retries=1, backoff_s=0.01, sleep=sleeps.append
    )
    with net, pytest.raises(NetworkError, match="gave up after 2 attempts; last: ConnectError"):
        net.latest(69)
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("3", 3.0),
        ("0.25", 0.25),
        ("-1", 0.0),
        ("9999", 60.0),
        ("soon", None),
        ("Mon, 01 Jul 2024 20:46:17 GMT", 30.0),
    ],
)
def test_retry_after_header(header: str | None, expected: float | None) -> None:
    assert retry_after_s(header, now_ms=(TS_S - 30) * 1000) == expected


# --- refusals ---------------------------------------------------------------------------------


def test_401_says_check_your_api_key_at_once(server: FakeAllora, make: Any) -> None:
    server.script(CONSUMER, Reply(401, {"status": False, "apiResponseMessage": "Unauthorized"}))
    with pytest.raises(NetworkError, match=r"HTTP 401: check your API key.*Unauthorized") as err:
        make().latest(69)
    assert KEY not in str(err.value)
    assert len(server.requests_to(CONSUMER)) == 1


def test_without_a_key_no_header_is_sent_and_403_says_so(server: FakeAllora, make: Any) -> None:
    server.script(CONSUMER, Reply(403, b"Forbidden", {"content-type": "text/plain"}))
    with pytest.raises(NetworkError, match="HTTP 403: check your API key \\(none was given\\)"):
        make(api_key=None).latest(69)
    assert "x-api-key" not in server.seen[0].headers


def test_other_4xx_fail_at_once(server: FakeAllora, make: Any) -> None:
    server.script(CONSUMER, Reply(404, {"status": False, "apiResponseMessage": "topic not found"}))
    with pytest.raises(NetworkError, match="HTTP 404: topic not found"):
        make().latest(999)
    assert len(server.requests_to(CONSUMER)) == 1


# --- malformed payloads -----------------------------------------------------------------------


def _inf(**fields: Any) -> dict[str, Any]:
    return inference(69, normalized=False, **fields)


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    """A deep copy of payload with the key at path removed."""
    copy: dict[str, Any] = json.loads(json.dumps(payload))
    node = copy
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return copy


MALFORMED: list[tuple[str, Any, str]] = [
    ("not json", b"<html>502 Bad Gateway</html>", "the body is not JSON"),
    ("json list", [1, 2], "the body is JSON list, not an object"),
    (
        "status false",
        envelope(None, status=False, apiResponseMessage="Topic 69 is inactive"),
        "status is False: Topic 69 is inactive",
    ),
    ("status missing", _without(inference(), "status"), "status is missing"),
    ("data missing", _without(inference(), "data"), "data is missing"),
    (
        "inference_data missing",
        _without(inference(), "data", "inference_data"),
        "data.inference_data is missing",
    ),
    (
        "value missing",
        _without(_inf(), "data", "inference_data", "network_inference"),
        r"network_inference\(_normalized\) is missing",
    ),
    (
        "value not numeric",
        inference(network_inference_normalized="abc"),
        "network_inference_normalized is not a number: 'abc'",
    ),
    (
        "value NaN",
        inference(network_inference_normalized="NaN"),
        "network_inference_normalized is not finite",
    ),
    (
        "value JSON NaN",
        json.dumps(inference(network_inference_normalized=float("nan"))).encode(),
        "network_inference_normalized is not finite",
    ),
    ("value inf", inference(network_inference_normalized="-Infinity"), "is not finite"),
    ("value a list", inference(network_inference_normalized=[1]), "is list, not a number"),
    (
        "uint256 not integer",
        _inf(network_inference="12.5"),
        "network_inference is not an integer string: '12.5'",
    ),
    (
        "no token_decimals",
        _without(_inf(), "data", "token_decimals"),
        "data.token_decimals is missing",
    ),
    (
        "bad token_decimals",
        envelope({"token_decimals": "18", "inference_data": {}}),
        "data.token_decimals is not an integer",
    ),
    (
        "CI lengths differ",
        inference(confidence_interval_values_normalized=["1", "2"]),
        "differ in length: 5 percentiles, 2 values",
    ),
    (
        "CI element bad",
        inference(confidence_interval_percentiles_normalized=["2.28", None, "50", "84", "97"]),
        r"confidence_interval_percentiles_normalized\[1\] is NoneType, not a number",
    ),
    (
        "CI not a list",
        inference(confidence_interval_values_normalized="1,2"),
        "confidence_interval_values_normalized is str, not a list",
    ),
    (
        "timestamp missing",
        _without(inference(), "data", "inference_data", "timestamp"),
        "data.inference_data.timestamp is missing",
    ),
    ("timestamp garbage", inference(timestamp="yesterday"), "timestamp is not a number"),
    ("timestamp nanoseconds", inference(timestamp=TS_S * 10**9), "not an epoch time"),
    ("another topic", inference(70), "data.inference_data.topic_id is 70, not 69"),
]


@pytest.mark.parametrize(
    ("body", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_inference_is_a_specific_payload_error(
    server: FakeAllora, make: Any, body: Any, message: str
) -> None:
    server.script(CONSUMER, Reply(body=body))
    with pytest.raises(PayloadError, match=message) as err:
        make().latest(69)
    assert "GET /allora/consumer/ethereum-11155111?allora_topic_id=69" in str(err.value)
    assert len(server.requests_to(CONSUMER)) == 1  # a bad payload is not retried


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (envelope({"continuation_token": None}), "data.topics is missing"),
        (envelope({"topics": {"a": 1}}), "data.topics is dict, not a list"),
        (
            topics_page([topic(1, "A"), _without(topic(2, "B"), "epoch_length")], None),
            r"data.topics\[1\].epoch_length is wrong: Field required",
        ),
        (
            topics_page([topic(1, "A", worker_count="many")], None),
            r"data.topics\[0\].worker_count is wrong",
        ),
        (
            topics_page([topic(1, "A", total_staked_allo="NaN")], None),
            r"data.topics\[0\].total_staked_allo is wrong",
        ),
        (envelope({"topics": ["A"], "continuation_token": None}), r"data.topics\[0\] is wrong"),
        (
            envelope({"topics": [], "continuation_token": 42}),
            "data.continuation_token is int, not a string",
        ),
    ],
)
def test_malformed_topic_page_is_a_specific_payload_error(page: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=f"Allora topics API: {message}"):
        parse_topic_page(page)


def test_a_looping_continuation_token_is_refused(server: FakeAllora, make: Any) -> None:
    server.script(TOPICS, *(Reply(body=topics_page([topic(1, "A")], "same")) for _ in range(2)))
    with pytest.raises(PayloadError, match="continuation_token repeats"):
        make().topics()


# --- time and staleness -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (TS_S, TS_S * 1000),  # the SDKs' number, in seconds
        (str(TS_S), TS_S * 1000),  # the docs' string, in seconds
        (TS_S * 1000 + 123, TS_S * 1000 + 123),  # already ms
        (f"{TS_S}.5", TS_S * 1000 + 500),
    ],
)
def test_timestamps_in_seconds_or_ms_become_ms(raw: Any, expected: int) -> None:
    assert timestamp_ms(raw) == expected


def test_a_stale_inference_is_refused_with_its_age(server: FakeAllora, make: Any) -> None:
    server.script(CONSUMER, Reply(body=inference(69)), Reply(body=inference(69)))

    def clock() -> int:
        return TS_S * 1000 + 7_200_000

    with pytest.raises(StaleInferenceError, match=r"7200\.0s old.*max_age_s=3600"):
        make(max_age_s=3600, clock=clock).latest(69)
    unchecked = make(clock=clock).latest(69)
    assert unchecked.is_stale(clock(), max_age_ms=3_600_000)


def test_a_fresh_inference_passes_max_age(server: FakeAllora, make: Any) -> None:
    server.script(CONSUMER, Reply(body=inference(69)))
    assert make(max_age_s=60).latest(69).age_ms(NOW_MS) == 30_000


def test_parse_inference_is_pure() -> None:
    got = parse_inference(inference(69), "BTC 1d", topic_id=69)
    assert got.value == 64609.501828101036794984 and got.ci_percentiles == CI_PERCENTILES


# --- the key never leaks ----------------------------------------------------------------------


def test_the_api_key_is_sent_but_never_shown(
    server: FakeAllora, make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(TOPICS, Reply(body=topics_page([topic(69, "BTC 1d")], None)))
    server.script(
        CONSUMER,
        Reply(429, headers={"Retry-After": "0"}),
        Reply(body=inference(69)),
        Reply(body=b"not json " + KEY.encode()),
        Reply(400, {"status": False, "apiResponseMessage": f"bad key {KEY}"}),  # echoes the key
        Reply(401, f"invalid key {KEY}".encode(), {"content-type": "text/plain"}),
    )
    net = make()
    inference_ = net.latest("BTC 1d")
    errors = []
    for _ in range(3):
        with pytest.raises(NetworkError) as err:
            net.latest(69)
        errors.append(err.value)

    assert all(s.headers["x-api-key"] == KEY for s in server.seen)
    assert len(server.seen) == 6
    shown = [repr(net), str(net.__dict__), repr(inference_)]
    shown += [f"{e} {e!r} {e.args}" for e in errors]
    shown += [r.getMessage() for r in caplog.records]
    assert caplog.records and all(KEY not in text for text in shown)
    assert "**********" in str(errors[0]) and "**********" in str(errors[1])
