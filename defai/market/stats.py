"""Summary statistics of a candle window: what `defai data show` prints for any feed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from defai.types import Candles, timeframe_ms

_YEAR_MS = 365.25 * 86_400_000


@dataclass(frozen=True, slots=True)
class ReturnStats:
    rows: int
    first_open_ms: int
    last_close_ms: int
    first_close: float
    last_close: float
    mean_log_return: float
    std_log_return: float
    annualised_vol: float
    skew: float
    excess_kurtosis: float
    min_log_return: float
    max_log_return: float
    max_drawdown: float


def return_stats(candles: Candles) -> ReturnStats:
    """Log-return moments per candle, annualised volatility and the worst peak-to-trough fall."""
    if len(candles) < 3:
        raise ValueError(f"{candles.symbol}: need at least 3 candles for statistics")
    r = np.diff(np.log(candles.close))
    mean, std = float(r.mean()), float(r.std(ddof=1))
    z = (r - mean) / std if std > 0 else np.zeros_like(r)
    peak = np.maximum.accumulate(candles.close)
    periods_per_year = _YEAR_MS / timeframe_ms(candles.timeframe)
    return ReturnStats(
        rows=len(candles),
        first_open_ms=int(candles.ts[0]),
        last_close_ms=int(candles.close_ts[-1]),
        first_close=float(candles.close[0]),
        last_close=float(candles.close[-1]),
        mean_log_return=mean,
        std_log_return=std,
        annualised_vol=std * math.sqrt(periods_per_year),
        skew=float((z**3).mean()),
        excess_kurtosis=float((z**4).mean() - 3.0),
        min_log_return=float(r.min()),
        max_log_return=float(r.max()),
        max_drawdown=float((candles.close / peak - 1.0).min()),
    )
