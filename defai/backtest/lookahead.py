"""Look-ahead check: decisions made on the full history must equal those made on a history that
ends at the decision's time.

A strategy or tool that reads a candle from its future (an indicator shifted the wrong way, a
feed read past the clock) decides differently once that candle does not exist. So the backtest
is run again on feeds cut at a few checkpoints, and every tick's proposals up to each cut are
compared with the full run's. The network is recorded again on each cut feed, so a worker that
peeked would show up too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from defai.backtest.engine import Backtest
from defai.backtest.result import BacktestResult
from defai.errors import ConfigError
from defai.market.feed import Feed
from defai.types import Candles, epoch_ms


class TruncatedFeed:
    """A feed that ends at `until_ms`: nothing closing later exists."""

    def __init__(self, feed: Feed, until_ms: int) -> None:
        self.feed, self.until_ms = feed, until_ms

    def symbols(self) -> list[str]:
        return self.feed.symbols()

    def timeframes(self, symbol: str) -> list[str]:
        return self.feed.timeframes(symbol)

    def candles(
        self,
        symbol: str,
        timeframe: str,
        as_of: int,
        limit: int | None = None,
        since: int | None = None,
    ) -> Candles:
        return self.feed.candles(symbol, timeframe, min(as_of, self.until_ms), limit, since)

    def span(self, symbol: str, timeframe: str) -> tuple[int, int]:
        first, last = self.feed.span(symbol, timeframe)
        return first, min(last, self.until_ms)


@dataclass(frozen=True, slots=True)
class Difference:
    """A tick whose proposals changed when the history ended at `cut_ms`."""

    time_ms: int
    cut_ms: int
    full: str
    truncated: str


@dataclass(frozen=True)
class LookaheadReport:
    cuts_ms: tuple[int, ...]
    ticks_compared: int
    differences: tuple[Difference, ...]

    @property
    def clean(self) -> bool:
        return not self.differences


def check_lookahead(
    backtest: Backtest,
    checkpoints: int = 5,
    full: BacktestResult | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LookaheadReport:
    """Re-run `backtest` on feeds cut at `checkpoints` ticks spread over its span (the last
    tick included) and list every tick whose proposals differ from the full run's."""
    if checkpoints < 1:
        raise ConfigError(f"the look-ahead check needs at least one checkpoint, not {checkpoints}")
    full = full if full is not None else backtest.run()
    times = epoch_ms(full.equity.index)
    picks = np.unique(np.linspace(0, len(times) - 1, checkpoints + 1)[1:].round().astype(int))
    differences: list[Difference] = []
    compared = 0
    for done, pick in enumerate(picks, start=1):
        cut = int(times[pick])
        rerun = replace(backtest, feed=TruncatedFeed(backtest.feed, cut), end=cut).run()
        for tick, (before, after) in enumerate(
            zip(full.decisions[: pick + 1], rerun.decisions, strict=True)
        ):
            compared += 1
            if before != after:
                differences.append(Difference(int(times[tick]), cut, before, after))
        if progress is not None:
            progress(done, len(picks))
    return LookaheadReport(tuple(int(times[p]) for p in picks), compared, tuple(differences))
