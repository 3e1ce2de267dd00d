"""A loopback server shaped like Binance's REST API, and ccxt's real binance client pointed at it.

Only the host is ours: ccxt builds the real requests, signs them (HMAC-SHA256, checked here with
the test secret), parses the real response shapes, maps the real HTTP errors to its exception
classes and paces requests with its own rate limiter.

The private spot endpoints a broker needs are served with the shapes of Binance's REST docs
(POST/GET/DELETE /api/v3/order, GET /api/v3/openOrders, /allOrders, /myTrades, /account) and its
error codes (-2010 rejected, e.g. "Duplicate order sent.", -2011 cancel rejected, -2013 no such
order, -1013 filter failures, -1022 bad signature, -2015 bad key). `BinanceLike.faults` injects
failures: answer 429 or 500, or accept an order and then stall past the client's timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import numpy as np
import pytest

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
N_CANDLES = 350
NOW = T0 + N_CANDLES * HOUR  # the clock of the private endpoints (and of brokers in tests)

API_KEY = "loopbackKey0123456789abcdefABCDEF"
SECRET = "loopbackSecret9876543210zyxwvuZYXWVU"
FEE_RATE = 0.001
OPEN = ("NEW", "PARTIALLY_FILLED")

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


@dataclass
class Fault:
    """A failure injected into the next `times` requests to `method path`.

    `accept`: the request is served first (an order is really placed), then the fault applies;
    `status`/`body`: the answer sent instead of the real one; `stall_s`: wait before answering,
    so a client with a shorter timeout gives up while the server has already acted.
    """

    method: str
    path: str
    times: int = 1
    status: int | None = None
    body: Any = None
    accept: bool = False
    stall_s: float = 0.0


def _fmt(x: float) -> str:
    return f"{x:.8f}"


def _error(code: int, msg: str, status: int = 400) -> tuple[int, Any]:
    return status, {"code": code, "msg": msg}


def _multiple_of(value: str, step: str) -> bool:
    return Decimal(value) % Decimal(step) == 0


class BinanceLike:
    """State of the fake exchange: candles, a spot account with orders, a request log, faults."""

    def __init__(self) -> None:
        self.klines = _klines()
        self.kline_requests: list[dict[str, str]] = []
        self.fail_next_with_429 = 0
        self.rate_limit_status = 429
        self.rate_limit_body: Any = {"code": -1003, "msg": "Too many requests."}
        self.last_price = float(self.klines[-1][4])
        self.now = NOW
        self.balances = {"ETH": [10.0, 0.0], "USDT": [100_000.0, 0.0]}  # asset: [free, locked]
        self.orders: dict[int, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.private_requests: list[tuple[str, str, dict[str, str]]] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(1000)
        self.lock = threading.Lock()
        self.routes: dict[tuple[str, str], Callable[[dict[str, str]], tuple[int, Any]]] = {
            ("POST", "/api/v3/order"): self._new_order,
            ("GET", "/api/v3/order"): self._query_order,
            ("DELETE", "/api/v3/order"): self._cancel_order,
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/allOrders"): self._all_orders,
            ("GET", "/api/v3/myTrades"): self._my_trades,
            ("GET", "/api/v3/account"): self._account,
            # ccxt loads currencies from the wallet and margin APIs whenever credentials are set
            ("GET", "/sapi/v1/capital/config/getall"): self._coins,
            ("GET", "/sapi/v1/margin/allPairs"): lambda q: (200, []),
            ("GET", "/sapi/v1/margin/isolated/allPairs"): lambda q: (200, []),
        }

    # -- public -----------------------------------------------------------------------------

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

    # -- private ----------------------------------------------------------------------------

    def serve(
        self, method: str, path: str, raw: str, api_key: str | None
    ) -> tuple[int, Any, float]:
        """Answer one request: (status, payload, seconds to stall before answering)."""
        params = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        route = self.routes.get((method, path))
        if route is None:
            return (*self.handle(path, params), 0.0)
        payload, _, signature = raw.rpartition("&signature=")
        expected = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        with self.lock:
            self.private_requests.append((method, path, params))
            fault = self._take_fault(method, path)
            if fault is not None and not fault.accept:
                return fault.status or 500, fault.body, fault.stall_s
            if api_key != API_KEY:
                status, answer = _error(
                    -2015, "Invalid API-key, IP, or permissions for action.", 401
                )
            elif not hmac.compare_digest(signature, expected):
                status, answer = _error(-1022, "Signature for this request is not valid.")
            elif params.get("symbol", "ETHUSDT") != "ETHUSDT":
                status, answer = _error(-1121, "Invalid symbol.")
            else:
                status, answer = route(params)
        if fault is None:
            return status, answer, 0.0
        if fault.status is not None:
            status, answer = fault.status, fault.body
        return status, answer, fault.stall_s

    def _take_fault(self, method: str, path: str) -> Fault | None:
        fault = next((f for f in self.faults if (f.method, f.path) == (method, path)), None)
        if fault is not None:
            fault.times -= 1
            if fault.times == 0:
                self.faults.remove(fault)
        return fault

    def _tick(self) -> int:
        self.now += 1
        return self.now

    def _new_order(self, q: dict[str, str]) -> tuple[int, Any]:
        side, kind, qty_text = q["side"], q["type"], q.get("quantity", "0")
        client_id = q.get("newClientOrderId") or f"loopback{next(self._ids)}"
        if kind not in ("LIMIT", "MARKET"):
            return _error(-1116, "Invalid orderType.")
        if any(
            o["clientOrderId"] == client_id and o["status"] in OPEN for o in self.orders.values()
        ):
            return _error(-2010, "Duplicate order sent.")
        if Decimal(qty_text) < Decimal("0.0001") or not _multiple_of(qty_text, "0.0001"):
            return _error(-1013, "Filter failure: LOT_SIZE")
        if kind == "LIMIT" and not _multiple_of(q["price"], "0.01"):
            return _error(-1013, "Filter failure: PRICE_FILTER")
        qty = float(qty_text)
        price = float(q["price"]) if kind == "LIMIT" else self.last_price
        if qty * price < 5:
            return _error(-1013, "Filter failure: NOTIONAL")
        asset, reserve = ("USDT", qty * price) if side == "BUY" else ("ETH", qty)
        if self.balances[asset][0] < reserve:
            return _error(-2010, "Account has insufficient balance for requested action.")
        self.balances[asset][0] -= reserve
        self.balances[asset][1] += reserve
        t = self._tick()
        order = {
            "orderId": next(self._ids),
            "clientOrderId": client_id,
            "side": side,
            "type": kind,
            "price": price if kind == "LIMIT" else 0.0,
            "qty": qty,
            "executed": 0.0,
            "quote": 0.0,
            "status": "NEW",
            "time": t,
            "updateTime": t,
        }
        self.orders[order["orderId"]] = order
        marketable = price >= self.last_price if side == "BUY" else price <= self.last_price
        fills = [self.fill(order["orderId"])] if kind == "MARKET" or marketable else []
        response = _order_json(order) | {"transactTime": t, "fills": fills}
        for key in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking"):
            response.pop(key)
        return 200, response

    def fill(self, order_id: int, qty: float | None = None) -> dict[str, Any]:
        """Trade `qty` (default: all that remains) of an order at its price; return the fill."""
        order = self.orders[order_id]
        qty = order["qty"] - order["executed"] if qty is None else qty
        price = order["price"] or self.last_price
        base, quote = self.balances["ETH"], self.balances["USDT"]
        if order["side"] == "BUY":
            fee, fee_asset = qty * FEE_RATE, "ETH"
            quote[1] -= qty * price
            base[0] += qty - fee
        else:
            fee, fee_asset = qty * price * FEE_RATE, "USDT"
            base[1] -= qty
            quote[0] += qty * price - fee
        order["executed"] += qty
        order["quote"] += qty * price
        order["status"] = (
            "FILLED" if order["executed"] >= order["qty"] - 1e-12 else "PARTIALLY_FILLED"
        )
        order["updateTime"] = self._tick()
        trade = {
            "symbol": "ETHUSDT",
            "id": next(self._ids),
            "orderId": order_id,
            "orderListId": -1,
            "price": _fmt(price),
            "qty": _fmt(qty),
            "quoteQty": _fmt(qty * price),
            "commission": _fmt(fee),
            "commissionAsset": fee_asset,
            "time": order["updateTime"],
            "isBuyer": order["side"] == "BUY",
            "isMaker": order["type"] == "LIMIT",
            "isBestMatch": True,
        }
        self.trades.append(trade)
        return {k: trade[k] for k in ("price", "qty", "commission", "commissionAsset")} | {
            "tradeId": trade["id"]
        }

    def forget(self, order_id: int) -> None:
        """The exchange loses all record of an order (archived, or a venue reset)."""
        del self.orders[order_id]

    def _find(self, q: dict[str, str]) -> dict[str, Any] | None:
        if "orderId" in q:
            order = self.orders.get(int(q["orderId"]))
            wanted = q.get("origClientOrderId")
            return order if order and wanted in (None, order["clientOrderId"]) else None
        matches = [
            o for o in self.orders.values() if o["clientOrderId"] == q.get("origClientOrderId")
        ]
        return matches[-1] if matches else None

    def _query_order(self, q: dict[str, str]) -> tuple[int, Any]:
        order = self._find(q)
        return (200, _order_json(order)) if order else _error(-2013, "Order does not exist.")

    def _cancel_order(self, q: dict[str, str]) -> tuple[int, Any]:
        order = self._find(q)
        if order is None or order["status"] not in OPEN:
            return _error(-2011, "Unknown order sent.")
        remaining = order["qty"] - order["executed"]
        asset, reserve = (
            ("USDT", remaining * order["price"]) if order["side"] == "BUY" else ("ETH", remaining)
        )
        self.balances[asset][0] += reserve
        self.balances[asset][1] -= reserve
        order["status"] = "CANCELED"
        order["updateTime"] = self._tick()
        response = _order_json(order) | {
            "origClientOrderId": order["clientOrderId"],
            "clientOrderId": q.get("newClientOrderId") or f"cancel{next(self._ids)}",
            "transactTime": order["updateTime"],
        }
        for key in ("stopPrice", "icebergQty", "time", "updateTime", "isWorking", "workingTime"):
            response.pop(key)
        return 200, response

    def _open_orders(self, q: dict[str, str]) -> tuple[int, Any]:
        return 200, [_order_json(o) for o in self.orders.values() if o["status"] in OPEN]

    def _all_orders(self, q: dict[str, str]) -> tuple[int, Any]:
        start, end = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
        chosen = [o for o in self.orders.values() if start <= o["time"] <= end]
        return 200, [_order_json(o) for o in chosen][: min(int(q.get("limit", 500)), 1000)]

    def _my_trades(self, q: dict[str, str]) -> tuple[int, Any]:
        start, end = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
        chosen = [
            t
            for t in self.trades
            if start <= t["time"] <= end
            and int(q.get("fromId", 0)) <= t["id"]
            and q.get("orderId") in (None, str(t["orderId"]))
        ]
        return 200, chosen[: min(int(q.get("limit", 500)), 1000)]

    def _account(self, q: dict[str, str]) -> tuple[int, Any]:
        return 200, {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.now,
            "accountType": "SPOT",
            "balances": [
                {"asset": a, "free": _fmt(free), "locked": _fmt(locked)}
                for a, (free, locked) in self.balances.items()
            ],
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _coins(self, q: dict[str, str]) -> tuple[int, Any]:
        return 200, [
            {
                "coin": asset,
                "name": asset,
                "depositAllEnable": True,
                "withdrawAllEnable": True,
                "free": _fmt(free),
                "locked": _fmt(locked),
                "isLegalMoney": False,
                "trading": True,
                "networkList": [
                    {
                        "network": "ETH",
                        "coin": asset,
                        "withdrawIntegerMultiple": "0.00000001",
                        "isDefault": True,
                        "depositEnable": True,
                        "withdrawEnable": True,
                        "name": "Ethereum (ERC20)",
                        "withdrawFee": "0.001",
                        "withdrawMin": "0.01",
                        "withdrawMax": "10000000000",
                        "minConfirm": "12",
                        "busy": False,
                    }
                ],
            }
            for asset, (free, locked) in self.balances.items()
        ]


def _order_json(order: dict[str, Any]) -> dict[str, Any]:
    """An order as GET /api/v3/order returns it."""
    return {
        "symbol": "ETHUSDT",
        "orderId": order["orderId"],
        "orderListId": -1,
        "clientOrderId": order["clientOrderId"],
        "price": _fmt(order["price"]),
        "origQty": _fmt(order["qty"]),
        "executedQty": _fmt(order["executed"]),
        "cummulativeQuoteQty": _fmt(order["quote"]),
        "status": order["status"],
        "timeInForce": "GTC",
        "type": order["type"],
        "side": order["side"],
        "stopPrice": _fmt(0),
        "icebergQty": _fmt(0),
        "time": order["time"],
        "updateTime": order["updateTime"],
        "isWorking": True,
        "workingTime": order["time"],
        "origQuoteOrderQty": _fmt(0),
        "selfTradePreventionMode": "NONE",
    }


@pytest.fixture
def binance() -> Iterator[tuple[BinanceLike, str]]:
    """The fake exchange's state and its base URL."""
    state = BinanceLike()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urlparse(self.path)
            raw = url.query
            if self.command == "POST":
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            status, payload, stall_s = state.serve(
                self.command, url.path, raw, self.headers.get("X-MBX-APIKEY")
            )
            time.sleep(stall_s)
            text = isinstance(payload, str)  # e.g. a gateway's "Service Unavailable"
            body = (payload if text else json.dumps(payload)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: what a stalled exchange looks like to it

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
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
    # Every API host, not only the spot ones, so that no request can leave the machine (with
    # credentials set, ccxt would otherwise fetch currencies from the wallet API on load).
    for key, url in exchange.urls["api"].items():
        if isinstance(url, str):
            exchange.urls["api"][key] = base_url + "/" + url.split("/", 3)[3]
    return exchange


@pytest.fixture
def make_binance() -> Callable[[str, int], ccxt.binance]:
    return loopback_binance
