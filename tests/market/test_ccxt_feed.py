"""CcxtFeed through ccxt's real binance client, talking to a loopback server shaped like Binance.

Only the host is ours: ccxt builds the real requests, parses the real response shapes, maps the
real HTTP 429 to RateLimitExceeded and paces requests with its own rate limiter.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import numpy as np
import pytest

from defai.errors import FeedError
from defai.market.ccxt_feed import CcxtFeed, OhlcvDownloader, cache_path
from defai.market.csv import CsvFeed

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
N_CANDLES = 350

# One spot market as /api/v3/exchangeInfo describes it (fields ccxt's parser reads).
EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": T0,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "ETHUSDT",
            "status": "TRADING",
            "baseAsset": "ETH",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00010000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00010000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
    ],
}


def _klines() -> list[list[Any]]:
    """Kline rows as Binance sends them: strings for prices, ints for times."""
    rng = np.random.default_rng(3)
    close = 2300 * np.exp(np.cumsum(rng.normal(0, 0.01, N_CANDLES)))
    rows = []
    for i, c in enumerate(close):
        o = close[i - 1] if i else 2300.0
        t = T0 + i * HOUR
        rows.append(
            [
                t,
                f"{o:.2f}",
                f"{max(o, c) * 1.002:.2f}",
                f"{min(o, c) * 0.998:.2f}",
                f"{c:.2f}",
                f"{100 + i:.4f}",
                t + HOUR - 1,
                f"{(100 + i) * c:.4f}",
                1000 + i,
                "50.0000",
                f"{50 * c:.4f}",
                "0",
            ]
        )
    return rows


class BinanceLike:
    """State of the fake exchange: the candles, a log of requests, injected faults."""

    def __init__(self) -> None:
        self.klines = _klines()
        self.kline_requests: list[dict[str, str]] = []
        self.fail_next_with_429 = 0
        self.rate_limit_status = 429
        self.rate_limit_body: Any = {"code": -1003, "msg": "Too many requests."}

    def handle(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v3/exchangeInfo":
            return 200, EXCHANGE_INFO
        if path == "/api/v3/klines":
            self.kline_requests.append(query)
            if self.fail_next_with_429:
                self.fail_next_with_429 -= 1
                return self.rate_limit_status, self.rate_limit_body
            start = int(query.get("startTime", T0))
            end = int(query.get("endTime", 2**62))
            limit = min(int(query.get("limit", 500)), 1000)
            rows = [r for r in self.klines if start <= r[0] <= end][:limit]
            return 200, rows
        return 404, {"code": -1, "msg": f"unknown path {path}"}


@pytest.fixture
def binance() -> Iterator[tuple[BinanceLike, str]]:
    state = BinanceLike()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, payload = state.handle(url.path, query)
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _exchange(base_url: str, now: int) -> ccxt.binance:
    class LoopbackBinance(ccxt.binance):  # type: ignore[misc]
        def milliseconds(self) -> int:
            return now

    exchange = LoopbackBinance(
        {"enableRateLimit": True, "rateLimit": 1, "options": {"fetchMarkets": {"types": ["spot"]}}}
    )
    for key in ("public", "private", "v1"):
        exchange.urls["api"][key] = exchange.urls["api"][key].replace(
            "https://api.binance.com", base_url
        )
    return exchange


def test_paginates_across_pages_and_keeps_only_closed_candles(binance, tmp_path: Path) -> None:
    state, url = binance
    now = T0 + N_CANDLES * HOUR - HOUR // 2  # the last served candle is still forming
    exchange = _exchange(url, now)
    downloader = OhlcvDownloader(exchange, page_limit=100, sleep=lambda s: None)
    feed = CcxtFeed(exchange, ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path, downloader=downloader)
    window = feed.candles("ETH/USDT", "1h", as_of=now)
    assert len(window) == N_CANDLES - 1
    assert len(state.kline_requests) >= 4
    assert [int(q["startTime"]) for q in state.kline_requests[:4]] == [
        T0 + k * 100 * HOUR for k in range(4)
    ]
    assert np.all(np.diff(window.ts) == HOUR)
    assert window.close[0] == pytest.approx(float(state.klines[0][4]))
    assert window.volume[-1] == pytest.approx(float(state.klines[N_CANDLES - 2][5]))


# ccxt's binance maps any HTTP 429 to DDoSProtection, and the weight-limit code -1003 in an
# error body to RateLimitExceeded. Both are retried.
_TOO_MUCH_WEIGHT = {"code": -1003, "msg": "Too much request weight used; current limit is 6000."}
RATE_LIMIT_BODIES = [
    pytest.param(429, _TOO_MUCH_WEIGHT, "DDoSProtection", id="http-429"),
    pytest.param(400, _TOO_MUCH_WEIGHT, "RateLimitExceeded", id="code-1003"),
]


@pytest.mark.parametrize(("status", "body", "error"), RATE_LIMIT_BODIES)
def test_rate_limit_is_retried_with_backoff(binance, tmp_path, caplog, status, body, error) -> None:
    state, url = binance
    state.rate_limit_status, state.rate_limit_body = status, body
    state.fail_next_with_429 = 2
    slept: list[float] = []
    exchange = _exchange(url, T0 + 150 * HOUR)
    downloader = OhlcvDownloader(exchange, page_limit=100, backoff_s=0.5, sleep=slept.append)
    feed = CcxtFeed(exchange, ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path, downloader=downloader)
    assert len(feed.candles("ETH/USDT", "1h", as_of=T0 + 150 * HOUR)) == 150
    assert slept == [0.5, 1.0]
    assert len(state.kline_requests) == 4  # two refused, then two pages
    assert [r.message.split(",")[0] for r in caplog.records] == [f"binance ETH/USDT: {error}"] * 2


@pytest.mark.parametrize(("status", "body", "error"), RATE_LIMIT_BODIES)
def test_rate_limit_that_never_ends_is_a_clear_error(binance, tmp_path, status, body, error) -> None:
    state, url = binance
    state.rate_limit_status, state.rate_limit_body = status, body
    state.fail_next_with_429 = 100
    exchange = _exchange(url, T0 + 150 * HOUR)
    downloader = OhlcvDownloader(exchange, max_retries=2, sleep=lambda s: None)
    with pytest.raises(FeedError, match=rf"gave up after 3 attempts: {error}$"):
        CcxtFeed(exchange, ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path, downloader=downloader)


def test_second_run_hits_the_disk_cache(binance, tmp_path: Path) -> None:
    state, url = binance
    now = T0 + 300 * HOUR
    first = CcxtFeed(_exchange(url, now), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path)
    requests_after_first = len(state.kline_requests)
    assert requests_after_first > 0
    second = CcxtFeed(_exchange(url, now), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path)
    assert len(state.kline_requests) == requests_after_first
    a, b = first.candles("ETH/USDT", "1h", now), second.candles("ETH/USDT", "1h", now)
    assert np.array_equal(a.ts, b.ts) and np.array_equal(a.close, b.close)
    # the cache is a plain ccxt-order CSV that CsvFeed reads too
    path = cache_path(tmp_path, "binance", "ETH/USDT", "1h")
    assert len(CsvFeed({"ETH/USDT": path}).candles("ETH/USDT", "1h", now)) == 300


def test_cache_extends_with_only_the_missing_tail(binance, tmp_path: Path) -> None:
    state, url = binance
    CcxtFeed(_exchange(url, T0 + 100 * HOUR), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path)
    before = len(state.kline_requests)
    feed = CcxtFeed(_exchange(url, T0 + 250 * HOUR), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path)
    new_requests = state.kline_requests[before:]
    assert new_requests and int(new_requests[0]["startTime"]) == T0 + 100 * HOUR
    assert len(feed.candles("ETH/USDT", "1h", T0 + 250 * HOUR)) == 250


def test_unknown_symbol_is_a_clear_error(binance, tmp_path: Path) -> None:
    _, url = binance
    with pytest.raises(FeedError, match="binance has no market 'DOGE/EUR'"):
        CcxtFeed(_exchange(url, T0 + 10 * HOUR), ["DOGE/EUR"], "1h", since=T0, cache_dir=tmp_path)
