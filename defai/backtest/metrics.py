"""Performance metrics of an equity curve and a fill list: pure numpy, no I/O.

Conventions (written down because every framework picks its own): returns are simple returns
per tick; Sharpe and Sortino use a zero risk-free rate and are annualised by the square root of
ticks per year on a 24/7 calendar (365.25 days); Sortino's downside deviation is the root mean
square of the negative returns over all ticks; drawdowns are fractions of the running peak; a
round trip runs from flat to flat (a fill that flips the position closes one and opens the next).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
YEAR_MS = 365.25 * 86_400_000


def simple_returns(equity: FloatArray) -> FloatArray:
    equity = np.asarray(equity, dtype=np.float64)
    return equity[1:] / equity[:-1] - 1.0 if equity.size > 1 else np.empty(0)


def total_return(equity: FloatArray) -> float:
    return float(equity[-1] / equity[0] - 1.0) if len(equity) else math.nan


def cagr(equity: FloatArray, years: float) -> float:
    if not len(equity) or years <= 0 or equity[-1] <= 0:
        return math.nan if not len(equity) or years <= 0 else -1.0
    return float((equity[-1] / equity[0]) ** (1.0 / years) - 1.0)


def sharpe(equity: FloatArray, periods_per_year: float) -> float:
    r = simple_returns(equity)
    if r.size < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    return float(np.mean(r)) / sd * math.sqrt(periods_per_year) if sd > 0 else math.nan


def sortino(equity: FloatArray, periods_per_year: float) -> float:
    r = simple_returns(equity)
    if r.size < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return float(np.mean(r)) / downside * math.sqrt(periods_per_year) if downside > 0 else math.nan


def drawdown(equity: FloatArray) -> FloatArray:
    """1 - equity / running peak, per tick (0 at a new high)."""
    equity = np.asarray(equity, dtype=np.float64)
    return 1.0 - equity / np.maximum.accumulate(equity) if equity.size else np.empty(0)


def max_drawdown(equity: FloatArray) -> float:
    return float(drawdown(equity).max()) if len(equity) else math.nan


def calmar(growth: float, worst_drawdown: float) -> float:
    return growth / worst_drawdown if worst_drawdown > 0 else math.nan


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A position from flat to flat on one symbol: when it opened and closed, and its PnL in the
    quote after fees (cash out minus cash in, for the part of each fill that belongs to it)."""

    symbol: str
    opened_ms: int
    closed_ms: int
    side: str  # "long" or "short"
    pnl: float


def round_trips(
    symbols: Sequence[str],
    times: Sequence[int],
    signed_amounts: Sequence[float],
    prices: Sequence[float],
    fees: Sequence[float],
) -> list[RoundTrip]:
    """Closed round trips from fills in time order (amount > 0 buys, < 0 sells; fees in quote)."""
    trips: list[RoundTrip] = []
    open_trips: dict[str, tuple[float, float, int, float]] = {}  # position, cash, opened, peak
    for symbol, time, amount, price, fee in zip(
        symbols, times, signed_amounts, prices, fees, strict=True
    ):
        position, cash, opened, peak = open_trips.get(symbol, (0.0, 0.0, int(time), 0.0))
        if position == 0.0:
            opened, cash, peak = int(time), 0.0, 0.0
        after = position + amount
        closing = position != 0.0 and (after == 0.0 or (after > 0) != (position > 0))
        if closing:
            share = -position / amount  # the part of this fill that closes the position
            cash += share * (-amount * price - fee)
            peak = max(peak, abs(position))
            trips.append(
                RoundTrip(symbol, opened, int(time), "long" if position > 0 else "short", cash)
            )
            position, cash, opened, peak = 0.0, 0.0, int(time), 0.0
            amount, fee = amount * (1 - share), fee * (1 - share)
            after = amount
        cash += -amount * price - fee
        peak = max(peak, abs(after))
        if abs(after) <= 1e-9 * peak:  # float dust left by a full exit: flat
            if position != 0.0:
                side = "long" if position > 0 else "short"
                trips.append(RoundTrip(symbol, opened, int(time), side, cash))
            after = 0.0
        open_trips[symbol] = (after, cash, opened, peak)
    return trips


def win_rate(pnls: Sequence[float]) -> float:
    return float(np.mean(np.asarray(pnls) > 0)) if len(pnls) else math.nan


def profit_factor(pnls: Sequence[float]) -> float:
    p = np.asarray(pnls, dtype=np.float64)
    gains, losses = float(p[p > 0].sum()), float(-p[p < 0].sum())
    if losses == 0:
        return math.inf if gains > 0 else math.nan
    return gains / losses
