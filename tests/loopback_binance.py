"""A loopback server shaped like Binance's REST API, and ccxt's real binance client pointed at it.

Only the host is ours: ccxt builds the real requests, parses the real response shapes, maps the
real HTTP errors to its exception classes and paces requests with its own rate limiter.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import numpy as np
import pytest

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
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
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
    """The fake exchange's state and its base URL."""
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


def loopback_binance(base_url: str, now: int) -> ccxt.binance:
    """ccxt's binance class with its REST hosts pointed at the loopback server, clock at `now`."""

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


@pytest.fixture
def make_binance() -> Callable[[str, int], ccxt.binance]:
    return loopback_binance
