"""The Broker protocol: ccxt's unified trading methods, so a strategy moves from paper to live.

Every venue that trades spot or perpetuals — PaperExchange (paper.py) and CcxtBroker
(ccxt_broker.py) — answers these calls with ccxt's return shapes (order, trade, balance,
position and ticker dicts as ccxt documents them) and raises ccxt's exception classes
(`ccxt.InsufficientFunds`, `ccxt.InvalidOrder`, `ccxt.OrderNotFound`, `ccxt.BadSymbol`, ...),
so code written against a real ccxt exchange runs unchanged on either.

Order types and parameters both venues understand (ccxt's unified params):
- type "market" or "limit" (`price` required for limit);
- `params={"triggerPrice": p}`: a stop order — a stop-market when type is "market", a
  stop-limit when "limit"; it triggers when the price trades through p;
- `params={"stopLossPrice": p}` / `{"takeProfitPrice": p}`: a reduce-only exit of an open
  position, triggered at p;
- `params={"reduceOnly": True}`: may only reduce a position;
- `params={"clientOrderId": "..."}`: idempotency key; a repeated id returns the existing order.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

Order = dict[str, Any]
Trade = dict[str, Any]
Balance = dict[str, Any]
Position = dict[str, Any]
Ticker = dict[str, Any]
Market = dict[str, Any]


@runtime_checkable
class Broker(Protocol):
    """ccxt's unified trading API, the subset defai relies on."""

    id: str

    def load_markets(self, reload: bool = False) -> dict[str, Market]: ...

    def fetch_balance(self, params: dict[str, Any] | None = None) -> Balance: ...

    def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> Ticker: ...

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Order: ...

    def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Order: ...

    def fetch_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Order: ...

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Order]: ...

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Trade]: ...

    def fetch_positions(
        self, symbols: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> list[Position]: ...
