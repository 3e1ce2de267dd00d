"""What "now" means to a tool or a strategy: a feed read through a clock.

The clock is simulated in a backtest and the wall clock live; tools never call `time` themselves,
so the same tool gives the same answer in a replay.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from defai.errors import DataError
from defai.market.feed import Feed
from defai.types import Candles, to_ms


class Clock(Protocol):
    def now_ms(self) -> int: ...


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SimClock:
    """A clock the engine moves: backtests and accelerated paper replays."""

    def __init__(self, start: int | str) -> None:
        self._now = to_ms(start)

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise DataError(f"a simulated clock cannot go back (from {self._now} to {now_ms})")
        self._now = now_ms


class MarketView:
    """Point-in-time reads of a feed at the clock's current time."""

    def __init__(self, feed: Feed, clock: Clock, timeframe: str = "1h") -> None:
        self.feed = feed
        self.clock = clock
        self.timeframe = timeframe

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def candles(
        self, symbol: str, timeframe: str | None = None, limit: int | None = None
    ) -> Candles:
        return self.feed.candles(symbol, timeframe or self.timeframe, self.now_ms(), limit=limit)

    def last_price(self, symbol: str) -> float:
        """The last closed candle's close; an error rather than a guess when there is none."""
        window = self.candles(symbol, limit=1)
        if len(window) == 0:
            raise DataError(f"no closed {self.timeframe} candle of {symbol} yet at {self.now_ms()}")
        price = float(window.close[-1])
        if not (math.isfinite(price) and price > 0):
            raise DataError(f"{symbol}: last close {price!r} is not a usable price")
        return price

    def symbols(self) -> list[str]:
        return self.feed.symbols()
