"""LiveExchange: a CcxtBroker that answers what the agent asks of its exchange venue.

The agent treats its exchange as a venue that catches up with the clock (`advance` returns the
trades made since the last tick, which it journals), knows its own value (`equity`, for the
drawdown breaker and for sizing) and lists positions without being told symbols. A plain ccxt
exchange answers none of those the way the agent needs, so this subclass does, for the symbols
of one run, with everything else (journaled, retried, reconciled orders) left to CcxtBroker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import ccxt

from defai.errors import DataError
from defai.execution.broker import Position, Trade
from defai.execution.ccxt_broker import CcxtBroker
from defai.market.view import MarketView


class LiveExchange(CcxtBroker):
    """CcxtBroker for an agent trading `symbols`, valued at `market`'s last closed candles.

    `trades_since` (epoch ms): trades before it belong to no tick of this run (a new run starts
    at "now"; a resumed one at its last journaled tick, so fills made while down are caught up).
    """

    def __init__(
        self,
        exchange: ccxt.Exchange | str,
        *,
        symbols: Sequence[str],
        market: MarketView,
        trades_since: int,
        quote: str = "USDT",
        **kwargs: Any,
    ) -> None:
        super().__init__(exchange, **kwargs)
        self.symbols = tuple(symbols)
        self.market = market
        self.quote = quote
        self._since = trades_since

    def advance(self, now_ms: int) -> list[Trade]:
        """The run's trades since the previous call (ccxt's shape), oldest first."""
        trades = self.fetch_my_trades()
        if trades:
            self._since = max(self._since, *(int(t["timestamp"]) + 1 for t in trades))
        return trades

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Trade]:
        """As CcxtBroker's; without a symbol, those of every symbol of the run (most exchanges
        refuse an account-wide query), since the last trade seen unless `since` is given."""
        if symbol is not None:
            return super().fetch_my_trades(symbol, since, limit, params)
        start = self._since if since is None else since
        trades: list[Trade] = []
        for each in self.symbols:  # a loop: zero-argument super() fails in a comprehension
            trades += super().fetch_my_trades(each, start, limit, params)
        return sorted(trades, key=lambda t: (t["timestamp"], str(t["id"])))

    def fetch_positions(
        self, symbols: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> list[Position]:
        """Positions in the derivatives the run names or has traded; none for a spot-only run,
        which may hold a key the exchange's derivatives API refuses."""
        named = symbols or [*self.symbols, *(o.symbol for o in self.journal.orders())]
        derivatives = sorted({s for s in named if ":" in s})
        return super().fetch_positions(derivatives, params) if derivatives else []

    def equity(self) -> float:
        """The quote plus the run's base assets at their last closed candle (NaN without one);
        other holdings of the account are not the agent's to count."""
        total = self.fetch_balance().get("total") or {}
        value = float(total.get(self.quote) or 0.0)
        for base in {s.split("/")[0] for s in self.symbols if ":" not in s}:
            held = float(total.get(base) or 0.0)
            if held:
                value += held * self._price(f"{base}/{self.quote}")
        return value

    def _price(self, symbol: str) -> float:
        try:
            return self.market.last_price(symbol)
        except DataError:
            return math.nan
