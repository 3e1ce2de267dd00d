"""Hand-made candles for PaperExchange tests: each bar says exactly what the test needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from defai.execution.paper import MarketRules, PaperExchange
from defai.market.feed import Series, SeriesStore, StoreFeed

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
RULES = {"ETH/USDT": MarketRules(price_tick=0.01, amount_step=0.001, min_cost=1.0)}
EXACT = {"spread_bps": 0.0, "impact": 0.0, "max_volume_share": 1.0}  # no slippage, no volume cap

Ohlcv = tuple[float, float, float, float, float]


def candle_feed(bars: Sequence[Ohlcv], symbol: str = "ETH/USDT") -> StoreFeed:
    """1h candles from T0, one per (open, high, low, close, volume) row."""
    rows = np.asarray(bars, dtype=np.float64)
    ts = T0 + np.arange(len(rows), dtype=np.int64) * HOUR
    series = Series.from_arrays(symbol, "1h", ts, *(rows[:, i] for i in range(5)))
    return StoreFeed(SeriesStore([series]))


def paper(bars: Sequence[Ohlcv], **settings: Any) -> PaperExchange:
    """A PaperExchange whose clock stands at the close of bar 0: orders meet bar 1 first."""
    options: dict[str, Any] = {"markets": RULES, "balances": {"USDT": 10_000.0}}
    options.update(settings)
    return PaperExchange(candle_feed(bars), **options)


def close_of(bar: int) -> int:
    """Clock time at which bar `bar` (0-based) has closed."""
    return T0 + (bar + 1) * HOUR
