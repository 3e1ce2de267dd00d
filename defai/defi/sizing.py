"""Leverage sizing: supply/borrow loops, health-factor targets, carry, and Kelly from a forecast.

Leverage L means collateral L*E and debt (L-1)*E for equity E, collateral and debt in the same
price unit (FORMULAS.md E). Rates are yearly fractions. Kelly needs a forecast of the levered
asset's log-return; the inference network gives one as a mean and a confidence interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from defai.errors import ProtocolMathError


def _check_ltv(ltv: float) -> None:
    if not 0 <= ltv < 1:
        raise ProtocolMathError(f"ltv must be in [0, 1), got {ltv}")


def _check_threshold(liquidation_threshold: float) -> None:
    if not 0 < liquidation_threshold <= 1:
        raise ProtocolMathError(
            f"liquidation_threshold must be in (0, 1], got {liquidation_threshold}"
        )


def _check_finite(**values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise ProtocolMathError(f"{name} must be finite, got {value}")


def loop_leverage(ltv: float, loops: int) -> float:
    """Leverage after `loops` borrow-and-resupply rounds: sum of LTV^k for k = 0..loops."""
    _check_ltv(ltv)
    if loops < 0:
        raise ProtocolMathError(f"loops must be >= 0, got {loops}")
    return (1.0 - ltv ** (loops + 1)) / (1.0 - ltv)


def max_loop_leverage(ltv: float) -> float:
    """The limit of endless loops, 1/(1 - LTV): no loop count gets past it."""
    _check_ltv(ltv)
    return 1.0 / (1.0 - ltv)


def health_factor_at_leverage(leverage: float, liquidation_threshold: float) -> float:
    """HF = LT * L / (L - 1); infinite without debt (L = 1)."""
    _check_threshold(liquidation_threshold)
    if not (leverage >= 1 and math.isfinite(leverage)):
        raise ProtocolMathError(f"leverage must be finite and >= 1, got {leverage}")
    return math.inf if leverage == 1 else liquidation_threshold * leverage / (leverage - 1.0)


def leverage_for_health_factor(target_health_factor: float, liquidation_threshold: float) -> float:
    """Leverage that lands exactly on a target HF: L = HF / (HF - LT).

    HF can never fall to LT however high the leverage, so a target at or below LT is refused.
    """
    _check_threshold(liquidation_threshold)
    if not (target_health_factor > liquidation_threshold and math.isfinite(target_health_factor)):
        raise ProtocolMathError(
            f"target health factor {target_health_factor} must be finite and above the "
            f"liquidation threshold {liquidation_threshold}"
        )
    return target_health_factor / (target_health_factor - liquidation_threshold)


def carry_return(
    leverage: float, supply_rate: float, borrow_rate: float, staking_rate: float = 0.0
) -> float:
    """Yearly return on equity from rates alone: L*(supply + staking) - (L-1)*borrow.

    No compounding, no price move, no rebalancing costs.
    """
    _check_finite(supply_rate=supply_rate, borrow_rate=borrow_rate, staking_rate=staking_rate)
    if not (leverage >= 1 and math.isfinite(leverage)):
        raise ProtocolMathError(f"leverage must be finite and >= 1, got {leverage}")
    return leverage * (supply_rate + staking_rate) - (leverage - 1.0) * borrow_rate


def _check_volatility(volatility: float) -> None:
    if not (volatility > 0 and math.isfinite(volatility)):
        raise ProtocolMathError(f"volatility must be finite and > 0, got {volatility}")


def kelly_leverage(expected_return: float, volatility: float, borrow_rate: float) -> float:
    """Log-optimal (Merton/Kelly) leverage under GBM: (mu - r) / sigma^2.

    `expected_return` is the annual arithmetic drift mu, yield included; negative means short.
    """
    _check_finite(expected_return=expected_return, borrow_rate=borrow_rate)
    _check_volatility(volatility)
    return (expected_return - borrow_rate) / volatility**2


def log_growth_rate(
    leverage: float, expected_return: float, volatility: float, borrow_rate: float
) -> float:
    """Expected log growth of equity, r + L(mu - r) - (L sigma)^2 / 2: peaks at Kelly."""
    _check_finite(leverage=leverage, expected_return=expected_return, borrow_rate=borrow_rate)
    _check_volatility(volatility)
    return (
        borrow_rate + leverage * (expected_return - borrow_rate) - (leverage * volatility) ** 2 / 2
    )


def kelly_fraction(win_probability: float, net_odds: float) -> float:
    """Kelly stake of a discrete bet that wins `net_odds` per unit or loses the stake: p - q/b."""
    if not 0 <= win_probability <= 1:
        raise ProtocolMathError(f"win_probability must be in [0, 1], got {win_probability}")
    if not (net_odds > 0 and math.isfinite(net_odds)):
        raise ProtocolMathError(f"net_odds must be finite and > 0, got {net_odds}")
    return win_probability - (1.0 - win_probability) / net_odds


@dataclass(frozen=True, slots=True)
class LogReturnForecast:
    """A normal forecast of the log-return over `horizon_years` (mean and standard deviation)."""

    mean: float
    std: float
    horizon_years: float

    def __post_init__(self) -> None:
        _check_finite(mean=self.mean)
        if not (self.std > 0 and math.isfinite(self.std)):
            raise ProtocolMathError(f"std must be finite and > 0, got {self.std}")
        if not (self.horizon_years > 0 and math.isfinite(self.horizon_years)):
            raise ProtocolMathError(
                f"horizon_years must be finite and > 0, got {self.horizon_years}"
            )

    @classmethod
    def from_quantiles(
        cls, probabilities: Sequence[float], values: Sequence[float], horizon_years: float
    ) -> LogReturnForecast:
        """Fit a normal to forecast quantiles (e.g. a network's confidence interval).

        Least squares of value = mean + std * z(p) over all given quantiles, so an asymmetric or
        over-determined interval still gives the closest normal.
        """
        p = np.asarray(probabilities, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        if p.ndim != 1 or p.shape != v.shape or np.unique(p).size < 2:
            raise ProtocolMathError(
                "need matching 1-D probabilities and values with at least two distinct quantiles"
            )
        if not (np.all((p > 0) & (p < 1)) and np.all(np.isfinite(v))):
            raise ProtocolMathError(
                f"probabilities must lie in (0, 1) and values be finite, got {p}, {v}"
            )
        z = ndtri(p)
        z_centred = z - z.mean()
        std = float(z_centred @ (v - v.mean()) / (z_centred @ z_centred))
        if not std > 0:
            raise ProtocolMathError(f"quantile values must rise with the probabilities, got {v}")
        return cls(float(v.mean() - std * z.mean()), std, horizon_years)

    @property
    def volatility(self) -> float:
        """Annualised sigma."""
        return self.std / math.sqrt(self.horizon_years)

    @property
    def expected_return(self) -> float:
        """Annual arithmetic drift mu: the log-return's mean plus sigma^2/2 (Ito), per year."""
        return (self.mean + self.std**2 / 2) / self.horizon_years


def kelly_from_forecast(forecast: LogReturnForecast, borrow_rate: float) -> float:
    """Kelly leverage implied by a log-return forecast, financed at `borrow_rate`."""
    return kelly_leverage(forecast.expected_return, forecast.volatility, borrow_rate)


def fractional_kelly(kelly: float, fraction: float = 0.5, max_leverage: float = math.inf) -> float:
    """A fraction of Kelly (half by default: most of the growth, far less drawdown), capped.

    Pass `max_leverage = leverage_for_health_factor(min_hf, lt)` to respect a health-factor floor;
    the cap applies to shorts (negative Kelly) too.
    """
    _check_finite(kelly=kelly)
    if not 0 < fraction <= 1:
        raise ProtocolMathError(f"fraction must be in (0, 1], got {fraction}")
    if not max_leverage > 0:
        raise ProtocolMathError(f"max_leverage must be > 0, got {max_leverage}")
    return max(-max_leverage, min(fraction * kelly, max_leverage))
