"""Value types shared by every layer: time, candle windows, network inferences.

Time is UTC epoch milliseconds (as ccxt) inside the engine; `to_ms` accepts what users type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from defai.errors import DataError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TIMEFRAME_UNITS_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def timeframe_ms(timeframe: str) -> int:
    """'1h' -> 3_600_000. Months are not supported: they have no fixed length."""
    unit = timeframe[-1:]
    amount = timeframe[:-1]
    if unit not in _TIMEFRAME_UNITS_MS or not amount.isdigit() or int(amount) <= 0:
        raise DataError(
            f"unknown timeframe {timeframe!r}: use a positive number and one of m, h, d, w "
            "(e.g. '15m', '1h', '4h', '1d')"
        )
    return int(amount) * _TIMEFRAME_UNITS_MS[unit]


def to_ms(when: int | float | str | pd.Timestamp | np.datetime64) -> int:
    """Epoch milliseconds from an int (already ms), an ISO string or a timestamp (naive = UTC)."""
    if isinstance(when, bool):
        raise DataError(f"not a time: {when!r}")
    if isinstance(when, int | np.integer):
        return int(when)
    if isinstance(when, float):
        if not math.isfinite(when):
            raise DataError(f"not a time: {when!r}")
        return int(when)
    try:
        ts = pd.Timestamp(when)
    except (ValueError, TypeError) as exc:
        raise DataError(f"not a time: {when!r} ({exc})") from None
    if pd.isna(ts):
        raise DataError(f"not a time: {when!r}")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def to_timestamp(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def epoch_ms(times: pd.Index | pd.Series) -> IntArray:
    """UTC datetimes (an index or a column) as epoch milliseconds, whatever their unit."""
    if not len(times):
        return np.empty(0, np.int64)
    return np.asarray(pd.DatetimeIndex(times).as_unit("ms").asi8, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Candles:
    """A window of OHLCV candles of one symbol and timeframe, oldest first.

    `ts` is each candle's OPEN time in epoch ms; a candle is closed at `ts + period_ms`.
    Arrays are read-only views: a strategy cannot alter the feed's history.
    """

    symbol: str
    timeframe: str
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    @property
    def period_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def close_ts(self) -> IntArray:
        return self.ts + self.period_ms

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def tail(self, n: int) -> Candles:
        """The last n candles (fewer if the window is shorter)."""
        start = max(len(self) - n, 0)
        return self.slice(start, len(self))

    def slice(self, start: int, stop: int) -> Candles:
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

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame indexed by the candle's open time (UTC), columns open..volume."""
        index = pd.DatetimeIndex(pd.to_datetime(self.ts, unit="ms", utc=True), name="time")
        return pd.DataFrame(
            {
                "open": self.open,
                "high": self.high,
                "low": self.low,
                "close": self.close,
                "volume": self.volume,
            },
            index=index,
        )

    def to_ohlcv(self) -> list[list[float]]:
        """ccxt's OHLCV rows: [timestamp, open, high, low, close, volume]."""
        return [
            [int(t), float(o), float(h), float(lo), float(c), float(v)]
            for t, o, h, lo, c, v in zip(
                self.ts, self.open, self.high, self.low, self.close, self.volume, strict=True
            )
        ]


@dataclass(frozen=True, slots=True)
class NetworkInference:
    """One combined inference of a topic, as the agent consumes it (embedded or remote network).

    `ci_values[i]` is the forecast's `ci_percentiles[i]`-th percentile. `weights` maps each
    worker to its normalised weight when the network reveals it (empty for the remote API).
    """

    topic: str
    value: float
    timestamp_ms: int
    ci_percentiles: tuple[float, ...] = ()
    ci_values: tuple[float, ...] = ()
    weights: Mapping[str, float] = field(default_factory=dict)
    epoch: int | None = None
    source: str = "local"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def age_ms(self, now_ms: int) -> int:
        return now_ms - self.timestamp_ms

    def is_stale(self, now_ms: int, max_age_ms: int) -> bool:
        return self.age_ms(now_ms) > max_age_ms

    def weight_concentration(self) -> float:
        """Herfindahl index of the weights: 1/n when even, 1 when one worker holds them all."""
        if not self.weights:
            return float("nan")
        w = np.fromiter(self.weights.values(), dtype=np.float64)
        total = w.sum()
        return float(((w / total) ** 2).sum()) if total > 0 else float("nan")
