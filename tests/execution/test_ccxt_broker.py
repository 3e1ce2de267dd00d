"""CcxtBroker through ccxt's real binance client (requests, HMAC signing, parsing, error mapping)
against the loopback server of tests/loopback_binance.py, with injected faults."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest
from loopback_binance import API_KEY, NOW, SECRET, BinanceLike, Fault
from pydantic import SecretStr

from defai.config import REDACTED
from defai.errors import ConfigError
from defai.execution.broker import Broker
from defai.execution.ccxt_broker import CcxtBroker

SYMBOL = "ETH/USDT"
BACKOFF = 0.01
BELOW_MARKET = 2000.0  # the loopback's last price is about 2523: a limit buy here rests


@pytest.fixture
def venue(binance, make_binance) -> Iterator[tuple[BinanceLike, Callable[..., CcxtBroker], list]]:
    """Fake exchange, a broker factory on it (short timeout, recorded sleeps), the sleeps."""
    state, url = binance
    slept: list[float] = []
    built: list[CcxtBroker] = []

    def build(**kwargs: Any) -> CcxtBroker:
        exchange = make_binance(url, NOW)
        exchange.timeout = 250  # ms: the server's stalls (0.6 s) outlast it
        options: dict[str, Any] = {
            "api_key": SecretStr(API_KEY),
            "secret": SecretStr(SECRET),
            "backoff_s": BACKOFF,
            "sleep": slept.append,
        }
        built.append(CcxtBroker(exchange, **(options | kwargs)))
        return built[-1]

    yield state, build, slept
    for broker in built:
        broker.close()


def requests_to(state: BinanceLike, method: str, path: str) -> list[dict[str, str]]:
    return [params for m, p, params in state.private_requests if (m, p) == (method, path)]


def test_orders_round_trip_through_signed_requests_and_the_journal(venue) -> None:
    state, build, _ = venue
    broker = build()
    assert isinstance(broker, Broker)
    assert broker.id == "binance"

    order = broker.create_order(SYMBOL, "limit", "buy", 0.5, BELOW_MARKET)
    assert order["status"] == "open"
    [sent] = requests_to(state, "POST", "/api/v3/order")
    assert sent["newClientOrderId"] == order["clientOrderId"]
    entry = broker.journal.get(order["clientOrderId"])
    assert (entry.status, entry.exchange_id, entry.amount, entry.price) == (
        "open",
        order["id"],
        0.5,
        BELOW_MARKET,
    )
    assert broker.fetch_balance()["USDT"]["used"] == pytest.approx(0.5 * BELOW_MARKET)
    assert [o["id"] for o in broker.fetch_open_orders(SYMBOL)] == [order["id"]]

    assert broker.cancel_order(order["id"], SYMBOL)["status"] == "canceled"
    assert broker.journal.get(order["clientOrderId"]).status == "canceled"
    assert broker.fetch_balance()["USDT"]["free"] == pytest.approx(100_000)


def test_market_order_fills_are_journaled(venue) -> None:
    state, build, _ = venue
    broker = build()
    order = broker.create_order(SYMBOL, "market", "buy", 0.2)
    assert (order["status"], order["filled"]) == ("closed", 0.2)
    [trade] = broker.journal.trades(order["clientOrderId"])
    assert trade["trade_id"] == str(state.trades[0]["id"])
    assert (trade["exchange_order_id"], trade["side"], trade["amount"]) == (order["id"], "buy", 0.2)
    assert trade["price"] == pytest.approx(state.last_price)


# Ways a create can be accepted by the exchange while the client never learns it.
LOST_RESPONSES = [
    pytest.param(Fault("POST", "/api/v3/order", accept=True, stall_s=0.6), id="timeout"),
    pytest.param(
        Fault("POST", "/api/v3/order", accept=True, status=503, body="Service Unavailable"),
        id="503",
    ),
    pytest.param(
        Fault(
            "POST",
            "/api/v3/order",
            accept=True,
            status=500,
            body={"code": -1001, "msg": "Internal error; unable to process your request."},
        ),
        id="500-internal-error",
    ),
]


@pytest.mark.parametrize("fault", LOST_RESPONSES)
@pytest.mark.parametrize(("kind", "price"), [("limit", BELOW_MARKET), ("market", None)])
def test_lost_response_after_acceptance_does_not_create_a_second_order(
    venue, fault, kind, price
) -> None:
    state, build, slept = venue
    broker = build()
    state.faults.append(fault)
    order = broker.create_order(SYMBOL, kind, "buy", 0.1, price)
    assert len(state.orders) == 1
    assert len(requests_to(state, "POST", "/api/v3/order")) == 1
    [placed] = state.orders.values()
    assert (order["id"], order["clientOrderId"]) == (
        str(placed["orderId"]),
        placed["clientOrderId"],
    )
    assert [q["origClientOrderId"] for q in requests_to(state, "GET", "/api/v3/order")] == [
        order["clientOrderId"]
    ]
    assert slept == [BACKOFF]
    assert broker.journal.get(order["clientOrderId"]).exchange_id == order["id"]


@pytest.mark.parametrize("kind", ["limit", "market"])
def test_lookup_scans_orders_where_the_exchange_cannot_search_by_client_id(venue, kind) -> None:
    state, build, _ = venue
    broker = build()
    real_fetch_order = broker.exchange.fetch_order

    def fetch_order_by_id_only(id, symbol=None, params={}):  # noqa: B006 (ccxt's signature)
        if "clientOrderId" in params:
            raise ccxt.NotSupported("binance fetchOrder() by clientOrderId is not supported")
        return real_fetch_order(id, symbol, params)

    broker.exchange.fetch_order = fetch_order_by_id_only
    state.faults.append(Fault("POST", "/api/v3/order", accept=True, stall_s=0.6))
    order = broker.create_order(SYMBOL, kind, "buy", 0.1, BELOW_MARKET if kind == "limit" else None)
    assert len(state.orders) == 1
    assert order["clientOrderId"] == next(iter(state.orders.values()))["clientOrderId"]
    scanned = "/api/v3/openOrders" if kind == "limit" else "/api/v3/allOrders"
    assert requests_to(state, "GET", scanned)


def test_order_of_unknown_fate_is_journaled_and_resolved_on_restart(venue, tmp_path) -> None:
    state, build, _ = venue
    db = tmp_path / "orders.sqlite"
    broker = build(db=db, max_retries=0)
    state.faults.append(Fault("POST", "/api/v3/order", accept=True, stall_s=0.6))
    with pytest.raises(ccxt.RequestTimeout):
        broker.create_order(SYMBOL, "limit", "buy", 0.1, BELOW_MARKET)
    [entry] = broker.journal.orders()
    assert (entry.status, entry.exchange_id) == ("unknown", None)
    broker.close()

    restarted = build(db=db)
    assert restarted.startup_report.reconciled == [entry.client_order_id]
    [placed] = state.orders.values()
    resolved = restarted.journal.get(entry.client_order_id)
    assert (resolved.status, resolved.exchange_id) == ("open", str(placed["orderId"]))
    assert len(requests_to(state, "POST", "/api/v3/order")) == 1


def test_order_the_exchange_refuses_is_journaled_as_rejected(venue) -> None:
    state, build, _ = venue
    broker = build()
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        broker.create_order(SYMBOL, "market", "sell", 100)
    [entry] = broker.journal.orders()
    assert (entry.status, entry.exchange_id) == ("rejected", None)
    assert state.orders == {}


def test_rate_limited_create_backs_off_then_places_one_order(venue, caplog) -> None:
    state, build, slept = venue
    broker = build()
    state.faults.append(Fault("POST", "/api/v3/order", times=2, status=429, body="Too Many"))
    order = broker.create_order(SYMBOL, "market", "sell", 0.3)
    assert order["status"] == "closed"
    assert slept == [BACKOFF, 2 * BACKOFF]
    assert len(state.orders) == 1
    assert len(requests_to(state, "POST", "/api/v3/order")) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("DDoSProtection, retry" in w for w in warnings)


def test_rate_limited_reads_back_off_then_give_up(venue) -> None:
    state, build, slept = venue
    broker = build(max_retries=2)
    weight = {"code": -1003, "msg": "Too much request weight used; current limit is 6000."}
    state.faults.append(Fault("GET", "/api/v3/account", times=2, status=400, body=weight))
    assert broker.fetch_balance()["ETH"]["free"] == 10
    assert slept == [BACKOFF, 2 * BACKOFF]

    state.faults.append(Fault("GET", "/api/v3/account", times=5, status=429, body="Too Many"))
    with pytest.raises(ccxt.DDoSProtection):
        broker.fetch_balance()
    assert slept[2:] == [BACKOFF, 2 * BACKOFF]


def test_repeated_client_order_id_returns_the_recorded_order(venue) -> None:
    state, build, _ = venue
    broker = build()
    params = {"clientOrderId": "agent7-entry-1"}
    first = broker.create_order(SYMBOL, "limit", "buy", 0.1, BELOW_MARKET, params)
    again = broker.create_order(SYMBOL, "limit", "buy", 0.1, BELOW_MARKET, params)
    assert again["id"] == first["id"]
    assert len(requests_to(state, "POST", "/api/v3/order")) == 1
    with pytest.raises(ccxt.InvalidOrder, match=r"already used for limit buy 0\.1 ETH/USDT"):
        broker.create_order(SYMBOL, "limit", "buy", 0.2, BELOW_MARKET, params)


def test_reconcile_rebuilds_fills_made_while_the_agent_was_down(venue, tmp_path) -> None:
    state, build, _ = venue
    db = tmp_path / "orders.sqlite"
    broker = build(db=db)
    order = broker.create_order(SYMBOL, "limit", "buy", 0.5, BELOW_MARKET)
    broker.close()

    state.fill(int(order["id"]), 0.2)  # filled in two trades while nobody watched
    state.fill(int(order["id"]))
    restarted = build(db=db)
    report = restarted.startup_report
    assert report.filled_while_down == [order["clientOrderId"]]
    assert report.new_trades == 2
    entry = restarted.journal.get(order["clientOrderId"])
    assert (entry.status, entry.filled) == ("closed", pytest.approx(0.5))
    trades = restarted.journal.trades(order["clientOrderId"])
    assert [t["amount"] for t in trades] == pytest.approx([0.2, 0.3])
    assert {t["price"] for t in trades} == {BELOW_MARKET}
    [since] = {q["startTime"] for q in requests_to(state, "GET", "/api/v3/myTrades")}
    assert int(since) == entry.created_ms

    # the next id continues the journal's sequence: no clientOrderId is ever reused
    later = restarted.create_order(SYMBOL, "market", "buy", 0.01)
    prefix, _, n = order["clientOrderId"].rpartition("-")
    assert later["clientOrderId"] == f"{prefix}-{int(n) + 1}"


def test_order_the_exchange_no_longer_knows_is_marked_lost_after_n_checks(venue, tmp_path) -> None:
    state, build, _ = venue
    db = tmp_path / "orders.sqlite"
    broker = build(db=db)
    order = broker.create_order(SYMBOL, "limit", "buy", 0.1, BELOW_MARKET)
    kept = broker.create_order(SYMBOL, "limit", "buy", 0.2, BELOW_MARKET)
    broker.close()
    state.forget(int(order["id"]))

    restarted = build(db=db, lost_after=3)
    cid = order["clientOrderId"]
    assert restarted.startup_report.missing == [cid]
    assert restarted.startup_report.reconciled == [kept["clientOrderId"]]
    assert restarted.reconcile().missing == [cid]
    assert restarted.journal.get(cid).status == "open"
    assert restarted.reconcile().lost == [cid]
    assert restarted.journal.get(cid).status == "lost"
    assert restarted.reconcile().lost == []  # a lost order is not asked about again


def test_cancel_whose_response_was_lost_returns_the_canceled_order(venue) -> None:
    state, build, _ = venue
    broker = build()
    order = broker.create_order(SYMBOL, "limit", "buy", 0.1, BELOW_MARKET)
    state.faults.append(Fault("DELETE", "/api/v3/order", accept=True, stall_s=0.6))
    assert broker.cancel_order(order["id"], SYMBOL)["status"] == "canceled"
    assert len(requests_to(state, "DELETE", "/api/v3/order")) == 1
    assert broker.journal.get(order["clientOrderId"]).status == "canceled"


def test_credentials_never_appear_in_logs_reprs_errors_or_the_journal(
    venue, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    state, build, _ = venue
    db = tmp_path / "orders.sqlite"
    broker = build(db=db, max_retries=1)
    broker.create_order(SYMBOL, "market", "buy", 0.1)
    echoed = {"code": -2015, "msg": f"Invalid API-key {API_KEY}, IP, or permissions for action."}
    state.faults.append(Fault("GET", "/api/v3/account", times=2, status=401, body=echoed))
    with pytest.raises(ccxt.BaseError) as raised:
        broker.fetch_balance()
    assert "Invalid API-key" in str(raised.value)
    assert "X-MBX-APIKEY" in caplog.text  # ccxt did log its request headers at DEBUG...
    assert REDACTED in caplog.text  # ...with the key redacted
    broker.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (API_KEY, SECRET):
        assert secret not in caplog.text
        assert secret not in str(raised.value)
        assert secret not in repr(broker) + str(broker)
        assert secret.encode() not in stored


def test_amounts_and_prices_are_sent_at_market_precision(venue) -> None:
    state, build, _ = venue
    broker = build()
    order = broker.create_order(SYMBOL, "limit", "buy", 0.123456789, 2000.123456)
    [sent] = requests_to(state, "POST", "/api/v3/order")
    assert (sent["quantity"], sent["price"]) == ("0.1234", "2000.12")
    assert (order["amount"], order["price"]) == (0.1234, 2000.12)


@pytest.mark.parametrize(
    ("amount", "price", "message"),
    [
        (0.00001, None, "amount 1e-05 rounds to 0 at the market's step 0.0001"),
        (0.001, 2000.0, r"order value 2 \(0.001 at 2000.0\) is below the market's minimum 5"),
    ],
)
def test_too_small_an_order_is_refused_before_sending(venue, amount, price, message) -> None:
    state, build, _ = venue
    broker = build()
    kind = "market" if price is None else "limit"
    with pytest.raises(ccxt.InvalidOrder, match=message):
        broker.create_order(SYMBOL, kind, "buy", amount, price)
    assert requests_to(state, "POST", "/api/v3/order") == []
    assert broker.journal.orders() == []


def test_sandbox_mode_switches_ccxt_to_the_testnet_urls(monkeypatch, tmp_path: Path) -> None:
    live = CcxtBroker("binance")
    assert live.exchange.urls["api"]["private"] == "https://api.binance.com/api/v3"
    monkeypatch.chdir(tmp_path)  # no defai.toml here: settings come from the environment
    environ = {
        "DEFAI_EXCHANGE__NAME": "binance",
        "DEFAI_EXCHANGE__API_KEY": API_KEY,
        "DEFAI_EXCHANGE__SECRET": SECRET,
        "DEFAI_EXCHANGE__SANDBOX": "true",
    }
    sandbox = CcxtBroker.from_config(environ=environ)
    assert sandbox.exchange.urls["api"]["private"] == "https://testnet.binance.vision/api/v3"
    assert sandbox.exchange.urls["api"]["public"] == "https://testnet.binance.vision/api/v3"
    assert (sandbox.exchange.apiKey, sandbox.sandbox) == (API_KEY, True)
    assert repr(sandbox) == "CcxtBroker('binance', sandbox=True, journal=':memory:')"
    live.close()
    sandbox.close()


def test_ccxt_verbose_output_is_turned_off_because_it_prints_keys() -> None:
    with CcxtBroker(ccxt.binance({"verbose": True}), api_key=SecretStr(API_KEY)) as broker:
        assert broker.exchange.verbose is False


def test_a_journal_belongs_to_one_venue(venue, tmp_path) -> None:
    _, build, _ = venue
    db = tmp_path / "orders.sqlite"
    build(db=db).close()
    with pytest.raises(ConfigError, match=r"records orders on binance \(live\)"):
        CcxtBroker("binance", sandbox=True, db=db)


def test_restart_that_cannot_confirm_the_journal_refuses_to_start(venue, tmp_path) -> None:
    state, build, _ = venue
    db = tmp_path / "orders.sqlite"
    build(db=db).create_order(SYMBOL, "limit", "buy", 0.1, BELOW_MARKET)
    ccxt_logger = logging.getLogger("ccxt.base.exchange")
    filters_before = list(ccxt_logger.filters)
    state.faults.append(Fault("GET", "/api/v3/order", times=3, status=502, body="Bad Gateway"))
    with pytest.raises(ccxt.ExchangeNotAvailable):
        build(db=db, max_retries=2)
    assert ccxt_logger.filters == filters_before
