"""AlloraNetwork: the embedded network's consumer interface over the real Allora HTTP API.

A thin shell (HTTP, retries, clock) around small pure functions that read the documented payloads
(`parse_topic_page`, `parse_inference`, `timestamp_ms`), so every shape is testable without a
server. Shapes follow Allora's docs ("Consume Inference", "Consume an Inference in 2 Minutes") and
the official SDKs' API clients; the optional `allora-sdk` extra is deliberately not imported.
"""

from __future__ import annotations

import difflib
import email.utils
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from decimal import Decimal, InvalidOperation, localcontext
from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from defai.config import AlloraSettings
from defai.errors import ConfigError, NetworkError, PayloadError, StaleInferenceError
from defai.types import NetworkInference

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.allora.network/v2"
CHAIN_IDS: Mapping[str, str] = {"mainnet": "allora-mainnet-1", "testnet": "allora-testnet-1"}
# The consumer path segment names the EVM format the answer is signed for, not the Allora chain;
# Sepolia's is the only one Allora documents.
DEFAULT_CONSUMER_SLUG = "ethereum-11155111"

_SECONDS_BELOW = 10**11  # 1e11 s is the year 5138 but 1e11 ms is March 1973: below it, seconds
_MS_BELOW = 10**14  # 1e14 ms is the year 5138: larger timestamps are not ms either
_MAX_DECIMALS = 77  # a uint256 has at most 78 digits
_MAX_DELAY_S = 60.0  # no Retry-After or backoff may park a trading loop for longer
_CLIP = 200
_INTEGER = re.compile(r"-?[0-9]+")


class TopicInfo(BaseModel):
    """One topic as the Allora API lists it. Ids differ between chains and change: use names."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    topic_id: int
    topic_name: str
    description: str | None = None
    epoch_length: int
    ground_truth_lag: int
    loss_method: str
    worker_count: int
    reputer_count: int
    total_staked_allo: float
    is_active: bool | None = None
    updated_at: str


# --- pure parsing ---------------------------------------------------------------------------


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[:_CLIP] + "..."


def _bad(endpoint: str, path: str, problem: str) -> PayloadError:
    return PayloadError(f"Allora {endpoint}: {path} {problem}")


def _unwrap(payload: Any, endpoint: str) -> Mapping[str, Any]:
    """The `data` of the documented envelope `{request_id, status, apiResponseMessage, data}`."""
    if not isinstance(payload, Mapping):
        raise _bad(endpoint, "the body", f"is JSON {type(payload).__name__}, not an object")
    if "status" not in payload:
        raise _bad(endpoint, "status", "is missing")
    if payload["status"] is not True:
        message = payload.get("apiResponseMessage") or "no apiResponseMessage"
        raise _bad(endpoint, "status", f"is {payload['status']!r}: {_clip(str(message))}")
    return _object(payload, "data", "data", endpoint)


def _object(parent: Mapping[str, Any], key: str, path: str, endpoint: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        raise _bad(endpoint, path, "is missing")
    if not isinstance(value, Mapping):
        raise _bad(endpoint, path, f"is {type(value).__name__}, not an object")
    return value


def _decimal(raw: Any, path: str, endpoint: str) -> Decimal:
    """A finite Decimal from a JSON number or a numeric string (the API sends strings)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _bad(endpoint, path, f"is {type(raw).__name__}, not a number")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise _bad(endpoint, path, f"is not a number: {_clip(repr(raw))}") from None
    if not number.is_finite():
        raise _bad(endpoint, path, f"is not finite: {_clip(repr(raw))}")
    return number


def _finite(raw: Any, path: str, endpoint: str) -> float:
    value = float(_decimal(raw, path, endpoint))
    if not math.isfinite(value):
        raise _bad(endpoint, path, f"overflows a float: {_clip(repr(raw))}")
    return value


def _scaled_uint(raw: Any, decimals: int, path: str, endpoint: str) -> float:
    """An integer string / 10**decimals, exact in Decimal until the final rounding to float."""
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
    if text is None or not _INTEGER.fullmatch(text):
        raise _bad(endpoint, path, f"is not an integer string: {_clip(repr(raw))}")
    with localcontext() as ctx:
        ctx.prec = len(text) + 1  # scaleb only moves the exponent: exact at this precision
        return float(Decimal(text).scaleb(-decimals))


def _token_decimals(data: Mapping[str, Any], endpoint: str) -> int | None:
    raw = data.get("token_decimals")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= _MAX_DECIMALS:
        raise _bad(
            endpoint,
            "data.token_decimals",
            f"is not an integer in 0..{_MAX_DECIMALS}: {_clip(repr(raw))}",
        )
    return raw


Reader = tuple[str, Any, Callable[[Any, str], float]]


def _reader(inf: Mapping[str, Any], key: str, decimals: int | None, endpoint: str) -> Reader | None:
    """Where `key` is read from: its `_normalized` twin when present (the documented advice),
    else the uint256 field scaled by token_decimals. None when neither is there."""
    path = f"data.inference_data.{key}"
    if inf.get(f"{key}_normalized") is not None:
        return f"{path}_normalized", inf[f"{key}_normalized"], lambda x, p: _finite(x, p, endpoint)
    if inf.get(key) is None:
        return None
    if decimals is None:
        raise _bad(endpoint, "data.token_decimals", f"is missing, and {path} needs it to scale")
    return path, inf[key], lambda x, p: _scaled_uint(x, decimals, p, endpoint)


def _ci_list(
    inf: Mapping[str, Any], key: str, decimals: int | None, endpoint: str
) -> tuple[float, ...]:
    found = _reader(inf, key, decimals, endpoint)
    if found is None:
        return ()
    path, raw, read = found
    if not isinstance(raw, list):
        raise _bad(endpoint, path, f"is {type(raw).__name__}, not a list")
    return tuple(read(item, f"{path}[{i}]") for i, item in enumerate(raw))


def timestamp_ms(
    raw: Any, endpoint: str = "consumer API", path: str = "data.inference_data.timestamp"
) -> int:
    """Epoch ms from the API's timestamp, which the docs show in seconds, as number or string.

    Below 1e11 it is read as seconds (1e11 s is the year 5138, 1e11 ms is 1973), else as ms;
    from 1e14 up it is neither and is refused rather than guessed.
    """
    if raw is None:
        raise _bad(endpoint, path, "is missing")
    number = _decimal(raw, path, endpoint)
    if number <= 0 or number >= _MS_BELOW:
        raise _bad(endpoint, path, f"is not an epoch time in seconds or ms: {_clip(repr(raw))}")
    return int((number * 1000 if number < _SECONDS_BELOW else number).to_integral_value())


def parse_topic_page(
    payload: Any, endpoint: str = "topics API"
) -> tuple[list[TopicInfo], str | None]:
    """One page of `/allora/{chain_id}/topics`: its topics and the next continuation_token."""
    data = _unwrap(payload, endpoint)
    rows = data.get("topics")
    if not isinstance(rows, list):
        problem = "is missing" if rows is None else f"is {type(rows).__name__}, not a list"
        raise _bad(endpoint, "data.topics", problem)
    topics = []
    for i, row in enumerate(rows):
        try:
            topics.append(TopicInfo.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f".{part}" for part in first["loc"])
            raise _bad(endpoint, f"data.topics[{i}]{where}", f"is wrong: {first['msg']}") from None
    token = data.get("continuation_token")
    if token is not None and not isinstance(token, str):
        raise _bad(endpoint, "data.continuation_token", f"is {type(token).__name__}, not a string")
    return topics, token or None


def parse_inference(
    payload: Any, topic: str, *, topic_id: int | None = None, endpoint: str = "consumer API"
) -> NetworkInference:
    """The consumer endpoint's answer as a NetworkInference (`weights` are never revealed).

    `topic_id`, when given, must match the payload's: an answer about another topic is refused.
    """
    data = _unwrap(payload, endpoint)
    inf = _object(data, "inference_data", "data.inference_data", endpoint)
    decimals = _token_decimals(data, endpoint)
    found = _reader(inf, "network_inference", decimals, endpoint)
    if found is None:
        raise _bad(endpoint, "data.inference_data.network_inference(_normalized)", "is missing")
    path, raw, read = found
    value = read(raw, path)
    percentiles = _ci_list(inf, "confidence_interval_percentiles", decimals, endpoint)
    ci_values = _ci_list(inf, "confidence_interval_values", decimals, endpoint)
    if len(percentiles) != len(ci_values):
        raise _bad(
            endpoint,
            "data.inference_data.confidence_interval_*",
            f"differ in length: {len(percentiles)} percentiles, {len(ci_values)} values",
        )
    answered_id = _answered_topic_id(inf.get("topic_id"), endpoint)
    if topic_id is not None and answered_id is not None and answered_id != topic_id:
        raise _bad(endpoint, "data.inference_data.topic_id", f"is {answered_id}, not {topic_id}")
    return NetworkInference(
        topic=topic,
        value=value,
        timestamp_ms=timestamp_ms(inf.get("timestamp"), endpoint),
        ci_percentiles=percentiles,
        ci_values=ci_values,
        weights={},
        source="allora",
        extra={
            "request_id": payload.get("request_id"),
            "signature": data.get("signature"),
            "topic_id": topic_id if answered_id is None else answered_id,
            "token_decimals": decimals,
            "network_inference": inf.get("network_inference"),
            "extra_data": inf.get("extra_data"),
        },
    )


def _answered_topic_id(raw: Any, endpoint: str) -> int | None:
    """The payload's topic id, which the docs show as a string ("9")."""
    if raw is None:
        return None
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not text.isascii() or not text.isdigit():
        raise _bad(endpoint, "data.inference_data.topic_id", f"is not an id: {_clip(repr(raw))}")
    return int(text)


def retry_after_s(header: str | None, now_ms: int) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date), capped at 60 s."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now_ms / 1000
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_DELAY_S)


# --- imperative shell -------------------------------------------------------------------------


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AlloraNetwork:
    """The consumer side of the live Allora network: `topics()` and `latest(topic)`.

    429, 5xx, timeouts and lost connections are retried with seeded exponential backoff (or the
    server's Retry-After); other 4xx fail at once. The API key is a SecretStr, sent only in the
    `x-api-key` header and redacted from every message. Redirects are never followed, so the key
    cannot be forwarded to another host.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None,
        base_url: str = DEFAULT_BASE_URL,
        chain: Literal["mainnet", "testnet"] = "testnet",
        *,
        consumer_slug: str = DEFAULT_CONSUMER_SLUG,
        timeout_s: float = 10.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_age_s: float | None = None,
        topics_ttl_s: float = 600.0,
        seed: int = 0,
        http_client: httpx.Client | None = None,
        clock: Callable[[], int] = _wall_clock_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if chain not in CHAIN_IDS:
            raise ConfigError(f"unknown Allora chain {chain!r}: use 'mainnet' or 'testnet'")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"Allora base_url must start with http:// or https://: {base_url!r}")
        if timeout_s <= 0 or backoff_s < 0 or max_retries < 0 or topics_ttl_s < 0:
            raise ConfigError(
                "Allora client: timeout_s must be > 0; backoff_s, max_retries, topics_ttl_s >= 0"
            )
        if max_age_s is not None and max_age_s <= 0:
            raise ConfigError(f"Allora max_age_s must be > 0 or None, not {max_age_s}")
        secret = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key or "")
        self._api_key = secret if secret.get_secret_value() else None
        self._base_url = base_url.rstrip("/")
        self.chain = chain
        self.chain_id = CHAIN_IDS[chain]
        self._consumer_slug = consumer_slug
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self.max_age_s = max_age_s
        self._topics_ttl_ms = round(topics_ttl_s * 1000)
        self._rng = random.Random(seed)
        self._owns_client = http_client is None
        self._http = http_client if http_client is not None else httpx.Client()
        self._clock = clock
        self._sleep = sleep
        self._topic_cache: tuple[int, tuple[TopicInfo, ...]] | None = None

    def __repr__(self) -> str:
        key = "None" if self._api_key is None else repr(self._api_key)
        return f"AlloraNetwork(chain={self.chain!r}, base_url={self._base_url!r}, api_key={key})"

    def close(self) -> None:
        """Close the HTTP client if this network created it (an injected one is the caller's)."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> AlloraNetwork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # consumer interface

    @classmethod
    def from_settings(cls, settings: AlloraSettings) -> AlloraNetwork:
        """The `[allora]` section of defai.toml (key usually from DEFAI_ALLORA__API_KEY)."""
        return cls(
            settings.api_key,
            settings.base_url,
            settings.chain,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
            max_age_s=settings.max_age_s,
        )

    def topics(self) -> list[TopicInfo]:
        """Every topic of the chain, following continuation_token to the last page."""
        path = f"/allora/{self.chain_id}/topics"
        topics: list[TopicInfo] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            payload, endpoint = self._get_json(path, {"continuation_token": token} if token else {})
            page, token = parse_topic_page(payload, endpoint)
            topics.extend(page)
            if token is None:
                break
            if token in seen:
                raise _bad(endpoint, "data.continuation_token", f"repeats ({token!r}): pages loop")
            seen.add(token)
        self._topic_cache = (self._clock(), tuple(topics))
        return topics

    def topic_id(self, name: str) -> int:
        """The id of the topic called `name` (exact, case-insensitive), from a cached listing."""
        topics = self._cached_topics()
        wanted = name.casefold()
        matches = [t for t in topics if t.topic_name.casefold() == wanted]
        if len(matches) == 1:
            return matches[0].topic_id
        if matches:
            ids = ", ".join(f"{t.topic_id} (active={t.is_active})" for t in matches)
            raise NetworkError(
                f"Allora topic name {name!r} is ambiguous on {self.chain_id}: ids {ids}; "
                "pass the id instead"
            )
        by_folded = {t.topic_name.casefold(): t.topic_name for t in topics}
        near = [n for f, n in by_folded.items() if wanted and wanted in f]
        near += [
            by_folded[f] for f in difflib.get_close_matches(wanted, by_folded, n=5, cutoff=0.5)
        ]
        hint = (
            "near names: " + ", ".join(repr(n) for n in list(dict.fromkeys(near))[:5])
            if near
            else f"none of its {len(topics)} topics is close; call topics() to list them"
        )
        raise NetworkError(f"Allora has no topic named {name!r} on {self.chain_id}: {hint}")

    def latest(self, topic: str | int) -> NetworkInference:
        """The latest combined inference of a topic (by name or id), refused when stale."""
        if isinstance(topic, bool) or not isinstance(topic, int | str):
            raise NetworkError(f"an Allora topic is a name or an id, not {topic!r}")
        topic_id = self.topic_id(topic) if isinstance(topic, str) else topic
        if topic_id < 0:
            raise NetworkError(f"Allora topic ids are >= 0, not {topic_id}")
        path = f"/allora/consumer/{self._consumer_slug}"
        params = {"allora_topic_id": str(topic_id), "inference_value_type": "uint256"}
        payload, endpoint = self._get_json(path, params)
        inference = parse_inference(payload, str(topic), topic_id=topic_id, endpoint=endpoint)
        now_ms = self._clock()
        if self.max_age_s is not None and inference.is_stale(now_ms, round(self.max_age_s * 1000)):
            raise StaleInferenceError(
                f"Allora topic {inference.topic!r}: the latest inference is "
                f"{inference.age_ms(now_ms) / 1000:.1f}s old (timestamp {inference.timestamp_ms} "
                f"ms), older than max_age_s={self.max_age_s:g}"
            )
        return inference

    # HTTP

    def _cached_topics(self) -> tuple[TopicInfo, ...]:
        """Topic listings span several pages: name lookups reuse one for topics_ttl_s."""
        cache = self._topic_cache
        if cache is not None and self._clock() - cache[0] <= self._topics_ttl_ms:
            return cache[1]
        return tuple(self.topics())

    def _redact(self, text: str) -> str:
        """Defence in depth: a server or a library might echo the key back into a message."""
        key = self._api_key.get_secret_value() if self._api_key is not None else ""
        return text.replace(key, "**********") if key else text

    def _get_json(self, path: str, params: Mapping[str, str]) -> tuple[Any, str]:
        """GET base_url + path as JSON, retrying what waiting can fix; returns (body, endpoint)."""
        endpoint = f"GET {path}" + (f"?{httpx.QueryParams(params)}" if params else "")
        headers = {"accept": "application/json"}
        if self._api_key is not None:
            headers["x-api-key"] = self._api_key.get_secret_value()
        attempts = self._max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            log.debug("Allora %s (attempt %d of %d)", endpoint, attempt, attempts)
            retry_after: float | None = None
            try:
                response = self._http.get(
                    self._base_url + path,
                    params=params,
                    headers=headers,
                    timeout=self._timeout_s,
                    follow_redirects=False,
                )
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections
                reason = self._redact(f"{type(exc).__name__}: {exc}")
            except httpx.HTTPError as exc:
                raise NetworkError(
                    self._redact(f"Allora {endpoint}: request failed: {exc}")
                ) from None
            else:
                status = response.status_code
                if response.is_success:
                    return self._json(response, endpoint), endpoint
                if status != 429 and status < 500:
                    raise self._refused(response, endpoint)
                reason = f"HTTP {status}"
                retry_after = retry_after_s(response.headers.get("retry-after"), self._clock())
            if attempt >= attempts:
                raise NetworkError(
                    f"Allora {endpoint}: gave up after {attempts} attempts; last: {reason}"
                )
            delay = self._backoff(attempt) if retry_after is None else retry_after
            log.warning(
                "Allora %s: %s (attempt %d of %d); retrying in %.3fs",
                endpoint,
                reason,
                attempt,
                attempts,
                delay,
            )
            self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        """backoff_s * 2**(attempt-1), jittered into its upper half by the seeded RNG."""
        base = min(self._backoff_s * 2.0 ** (attempt - 1), _MAX_DELAY_S)
        return base * (0.5 + 0.5 * self._rng.random())

    def _json(self, response: httpx.Response, endpoint: str) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content-type")
            body = self._redact(_clip(response.text))
            raise _bad(endpoint, "the body", f"is not JSON ({kind}): {body!r}") from None

    def _refused(self, response: httpx.Response, endpoint: str) -> NetworkError:
        """A 4xx that retrying cannot fix, with the API's own message when it sent one."""
        try:
            body = response.json()
            detail = body.get("apiResponseMessage") if isinstance(body, dict) else None
        except ValueError:
            detail = None
        detail = _clip(detail if isinstance(detail, str) and detail else response.text)
        status = response.status_code
        if status in (401, 403):
            given = "none was given" if self._api_key is None else "it was refused"
            prefix = f"HTTP {status}: check your API key ({given})"
        else:
            prefix = f"HTTP {status}"
        return NetworkError(self._redact(f"Allora {endpoint}: {prefix}: {detail}"))
