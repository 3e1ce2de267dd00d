"""The Feed protocol and the in-memory point-in-time store every feed is built on.

A read "as of" t returns only candles whose close time (open + period) is <= t. Every feed
answers through `SeriesStore.window`, so look-ahead is impossible by construction, whatever
loaded the data. Coarser timeframes are aggregated from complete base candles only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from defai.errors import FeedError
from defai.types import Candles, FloatArray, IntArray, timeframe_ms


@runtime_checkable
class Feed(Protocol):
    """Point-in-time market data."""

    def symbols(self) -> list[str]: ...

    def timeframes(self, symbol: str) -> list[str]: ...

    def candles(
        self,
        symbol: str,
        timeframe: str,
        as_of: int,
        limit: int | None = None,
        since: int | None = None,
    ) -> Candles:
        """Candles of `symbol` closed at or before `as_of` (epoch ms), oldest first.

        `since` keeps candles opening at or after it; `limit` keeps the most recent `limit`.
        """
        ...

    def span(self, symbol: str, timeframe: str) -> tuple[int, int]:
        """(first open time, last close time) in epoch ms of everything the feed holds."""
        ...


@dataclass(frozen=True, slots=True)
class Series:
    """Full history of one symbol at one timeframe; arrays are read-only."""

    symbol: str
    timeframe: str
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    @classmethod
    def from_arrays(
        cls,
        symbol: str,
        timeframe: str,
        ts: IntArray,
        open_: FloatArray,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        volume: FloatArray,
    ) -> Series:
        times = np.ascontiguousarray(ts, dtype=np.int64)
        times.setflags(write=False)
        values = [
            np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close, volume)
        ]
        for a in values:
            a.setflags(write=False)
        return cls(symbol, timeframe, times, *values)

    @property
    def close_ts(self) -> IntArray:
        return self.ts + timeframe_ms(self.timeframe)

    def as_candles(self, start: int, stop: int) -> Candles:
        return Candles(
            self.symbol,
            self.timeframe,
            self.ts[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
        )


def resample(series: Series, timeframe: str) -> Series:
    """Aggregate to a coarser timeframe aligned on epoch multiples; incomplete buckets dropped.

    A bucket with a missing base candle (an exchange outage) is dropped too rather than
    fabricated from a partial set.
    """
    base_ms = timeframe_ms(series.timeframe)
    target_ms = timeframe_ms(timeframe)
    if target_ms % base_ms:
        raise FeedError(
            f"cannot build {timeframe} candles from {series.timeframe} candles of "
            f"{series.symbol}: {timeframe} is not a multiple of {series.timeframe}"
        )
    per_bucket = target_ms // base_ms
    bucket = series.ts // target_ms
    if len(bucket) == 0:
        empty = np.empty(0)
        return Series.from_arrays(
            series.symbol, timeframe, series.ts, empty, empty, empty, empty, empty
        )
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    counts = np.diff(np.r_[starts, len(bucket)])
    ends = starts + counts - 1
    complete = counts == per_bucket
    starts, ends = starts[complete], ends[complete]
    idx = np.repeat(np.arange(len(starts)), per_bucket)
    members = (starts[:, None] + np.arange(per_bucket)[None, :]).ravel()
    high = np.full(len(starts), -np.inf)
    low = np.full(len(starts), np.inf)
    np.maximum.at(high, idx, series.high[members])
    np.minimum.at(low, idx, series.low[members])
    volume = np.bincount(idx, weights=series.volume[members], minlength=len(starts)).astype(
        np.float64
    )
    return Series.from_arrays(
        series.symbol,
        timeframe,
        (bucket[starts] * target_ms).astype(np.int64),
        series.open[starts],
        high,
        low,
        series.close[ends],
        volume,
    )


class SeriesStore:
    """Holds base series per symbol and answers point-in-time windows at any coarser timeframe."""

    def __init__(self, series: list[Series]) -> None:
        self._base: dict[str, Series] = {}
        self._derived: dict[tuple[str, str], Series] = {}
        for s in series:
            if s.symbol in self._base:
                raise FeedError(f"symbol {s.symbol} loaded twice")
            self._base[s.symbol] = s

    def symbols(self) -> list[str]:
        return sorted(self._base)

    def base_timeframe(self, symbol: str) -> str:
        return self._series(symbol, None).timeframe

    def series(self, symbol: str, timeframe: str) -> Series:
        return self._series(symbol, timeframe)

    def _series(self, symbol: str, timeframe: str | None) -> Series:
        base = self._base.get(symbol)
        if base is None:
            raise FeedError(f"unknown symbol {symbol!r}; this feed has {self.symbols()}")
        if timeframe is None or timeframe == base.timeframe:
            return base
        key = (symbol, timeframe)
        derived = self._derived.get(key)
        if derived is None:
            if timeframe_ms(timeframe) < timeframe_ms(base.timeframe):
                raise FeedError(
                    f"{symbol} is held at {base.timeframe}; {timeframe} candles are finer "
                    "than that and cannot be made up"
                )
            derived = self._derived[key] = resample(base, timeframe)
        return derived

    def window(
        self,
        symbol: str,
        timeframe: str,
        as_of: int,
        limit: int | None = None,
        since: int | None = None,
    ) -> Candles:
        s = self._series(symbol, timeframe)
        period = timeframe_ms(s.timeframe)
        # closed at or before as_of  <=>  ts + period <= as_of  <=>  ts <= as_of - period
        stop = int(np.searchsorted(s.ts, as_of - period, side="right"))
        start = 0 if since is None else int(np.searchsorted(s.ts, since, side="left"))
        if limit is not None:
            if limit < 0:
                raise FeedError(f"limit must be >= 0, got {limit}")
            start = max(start, stop - limit)
        return s.as_candles(start, max(start, stop))

    def span(self, symbol: str, timeframe: str) -> tuple[int, int]:
        s = self._series(symbol, timeframe)
        if len(s.ts) == 0:
            raise FeedError(f"no {timeframe} candles for {symbol}")
        return int(s.ts[0]), int(s.close_ts[-1])


class StoreFeed:
    """A Feed over a SeriesStore; CsvFeed, SyntheticFeed and CcxtFeed are all one of these."""

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    def symbols(self) -> list[str]:
        return self.store.symbols()

    def timeframes(self, symbol: str) -> list[str]:
        base = self.store.base_timeframe(symbol)
        base_ms = timeframe_ms(base)
        coarser = [tf for tf in ("1h", "4h", "1d") if timeframe_ms(tf) > base_ms]
        return [base, *(tf for tf in coarser if timeframe_ms(tf) % base_ms == 0)]

    def candles(
        self,
        symbol: str,
        timeframe: str,
        as_of: int,
        limit: int | None = None,
        since: int | None = None,
    ) -> Candles:
        return self.store.window(symbol, timeframe, as_of, limit, since)

    def span(self, symbol: str, timeframe: str) -> tuple[int, int]:
        return self.store.span(symbol, timeframe)
