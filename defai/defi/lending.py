"""Aave v3 lending maths: health factor, liquidation, interest, and the odds of being liquidated.

Two layers. Float functions (base-currency values, fractions, years) are what tools, the paper
lending venue and the backtest call every bar. Integer functions (`*_exact`, `*_wad`, `*_ray`)
replay the contracts' fixed-point rounding (WAD 1e18, RAY 1e27, basis points), so they agree
with the chain to the last unit; they follow v3.0-v3.2 (aave-v3-core) unless a name says v3_3.
Formulas: ../shared/reference/defi/FORMULAS.md, section C.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.special import log_ndtr, ndtr

from defai.errors import ProtocolMathError
from defai.types import FloatArray

HEALTH_FACTOR_LIQUIDATION_THRESHOLD = 1.0
CLOSE_FACTOR_HF_THRESHOLD = 0.95
DEFAULT_CLOSE_FACTOR = 0.5
MAX_CLOSE_FACTOR = 1.0
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000.0  # v3.3+, base currency (USD)
MIN_LEFTOVER_BASE = 1000.0  # v3.3+, base currency (USD)
SECONDS_PER_YEAR = 31_536_000
PERCENTAGE_FACTOR = 10_000
WAD = 10**18
RAY = 10**27
UINT256_MAX = 2**256 - 1  # the contracts' health factor when there is no debt

# Broadie-Glasserman-Kou: a barrier watched every dt behaves like a continuous one moved away by
# beta * sigma * sqrt(dt), beta = -zeta(1/2) / sqrt(2 pi).
_BGK_BETA = 0.5825971579390106

N = TypeVar("N", int, float)


def _non_negative(name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ProtocolMathError(f"{name} must be finite and >= 0, got {value}")


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ProtocolMathError(f"{name} must be finite and > 0, got {value}")


def _vector(name: str, values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ProtocolMathError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ProtocolMathError(f"{name} must be finite (no NaN), got {array}")
    if not np.all(array >= 0):
        raise ProtocolMathError(f"{name} must be >= 0, got {array}")
    return array


def _fractions(name: str, values: npt.ArrayLike, size: int) -> FloatArray:
    array = _vector(name, values)
    if array.shape != (size,):
        raise ProtocolMathError(f"{name} needs {size} entries (one per asset), got {array}")
    if not np.all(array <= 1):
        raise ProtocolMathError(f"{name} are fractions (0.825, not 8250), got {array}")
    return array


def _check_ltv_below_threshold(ltv: FloatArray, threshold: FloatArray) -> None:
    """Borrowing up to the LTV must leave a margin before liquidation; 0/0 marks non-collateral."""
    ok = (ltv < threshold) | ((ltv == 0) & (threshold == 0))
    if not np.all(ok):
        raise ProtocolMathError(
            f"ltv {ltv} must be below the liquidation threshold {threshold} (or both 0)"
        )


# --- reserves --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReserveParams:
    """Risk parameters of one reserve as fractions; the bonus includes the 100% (1.05 = +5%)."""

    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float
    liquidation_protocol_fee: float
    reserve_factor: float
    decimals: int

    def __post_init__(self) -> None:
        if not 0 <= self.ltv < 1:
            raise ProtocolMathError(f"ltv must be in [0, 1), got {self.ltv}")
        if not 0 <= self.liquidation_threshold <= 1:
            raise ProtocolMathError(
                f"liquidation_threshold must be in [0, 1], got {self.liquidation_threshold}"
            )
        _check_ltv_below_threshold(np.array([self.ltv]), np.array([self.liquidation_threshold]))
        if not (
            self.liquidation_bonus >= 1 and self.liquidation_threshold * self.liquidation_bonus <= 1
        ):
            raise ProtocolMathError(
                "liquidation_bonus must be >= 1 and threshold * bonus <= 1 (Aave's configurator "
                f"rule), got {self.liquidation_bonus}"
            )
        if not 0 <= self.liquidation_protocol_fee <= 1:
            raise ProtocolMathError(
                f"liquidation_protocol_fee must be in [0, 1], got {self.liquidation_protocol_fee}"
            )
        if not 0 <= self.reserve_factor < 1:
            raise ProtocolMathError(f"reserve_factor must be in [0, 1), got {self.reserve_factor}")
        _unit(self.decimals)  # validates

    @classmethod
    def from_bps(
        cls,
        ltv_bps: int,
        liquidation_threshold_bps: int,
        liquidation_bonus_bps: int,
        liquidation_protocol_fee_bps: int,
        reserve_factor_bps: int,
        decimals: int,
    ) -> ReserveParams:
        """From the on-chain configuration (basis points, 10000 = 100%)."""
        return cls(
            ltv_bps / PERCENTAGE_FACTOR,
            liquidation_threshold_bps / PERCENTAGE_FACTOR,
            liquidation_bonus_bps / PERCENTAGE_FACTOR,
            liquidation_protocol_fee_bps / PERCENTAGE_FACTOR,
            reserve_factor_bps / PERCENTAGE_FACTOR,
            decimals,
        )


# --- health factor and borrowing power (floats) ----------------------------------------------


def health_factor(
    collateral_values: npt.ArrayLike, liquidation_thresholds: npt.ArrayLike, total_debt: float
) -> float:
    """sum(collateral_i * LT_i) / debt, all in one base currency; infinite without debt.

    Pass eMode thresholds for assets in the user's eMode category.
    """
    collateral = _vector("collateral_values", collateral_values)
    thresholds = _fractions("liquidation_thresholds", liquidation_thresholds, collateral.size)
    _non_negative("total_debt", total_debt)
    weighted = float(collateral @ thresholds)
    return math.inf if total_debt == 0 else weighted / total_debt


def borrowing_power(
    collateral_values: npt.ArrayLike, ltvs: npt.ArrayLike, total_debt: float
) -> float:
    """What can still be borrowed: max(0, sum(collateral_i * LTV_i) - debt)."""
    collateral = _vector("collateral_values", collateral_values)
    ltv = _fractions("ltvs", ltvs, collateral.size)
    _non_negative("total_debt", total_debt)
    return max(0.0, float(collateral @ ltv) - total_debt)


@dataclass(frozen=True, slots=True)
class AccountData:
    """Pool.getUserAccountData in floats (base currency, fractions)."""

    total_collateral: float
    total_debt: float
    ltv: float  # collateral-weighted average
    liquidation_threshold: float  # collateral-weighted average
    available_borrows: float
    health_factor: float


def account_data(
    collateral_values: npt.ArrayLike,
    ltvs: npt.ArrayLike,
    liquidation_thresholds: npt.ArrayLike,
    total_debt: float,
) -> AccountData:
    """The whole account summary, checking every asset's LTV sits below its threshold."""
    collateral = _vector("collateral_values", collateral_values)
    ltv = _fractions("ltvs", ltvs, collateral.size)
    thresholds = _fractions("liquidation_thresholds", liquidation_thresholds, collateral.size)
    _check_ltv_below_threshold(ltv, thresholds)
    total = float(collateral.sum())
    return AccountData(
        total_collateral=total,
        total_debt=total_debt,
        ltv=float(collateral @ ltv) / total if total else 0.0,
        liquidation_threshold=float(collateral @ thresholds) / total if total else 0.0,
        available_borrows=borrowing_power(collateral, ltv, total_debt),
        health_factor=health_factor(collateral, thresholds, total_debt),
    )


def liquidation_drop(
    collateral_values: npt.ArrayLike,
    liquidation_thresholds: npt.ArrayLike,
    total_debt: float,
    shocked: npt.ArrayLike,
) -> float:
    """Common fractional price fall of the `shocked` collateral (boolean mask) taking HF to 1.

    Debt and unshocked collateral keep their value (FORMULAS.md C3); with one volatile asset this
    is 1 - 1/HF. 1.0 means those assets alone can never cause liquidation; a negative value means
    the account is already liquidatable (the price would have to rise by that much).
    """
    collateral = _vector("collateral_values", collateral_values)
    thresholds = _fractions("liquidation_thresholds", liquidation_thresholds, collateral.size)
    _non_negative("total_debt", total_debt)
    mask = np.asarray(shocked, dtype=bool)
    if mask.shape != collateral.shape:
        raise ProtocolMathError(f"shocked needs one flag per asset, got {mask}")
    weighted = collateral * thresholds
    shocked_weight = float(weighted[mask].sum())
    unshocked_weight = float(weighted[~mask].sum())
    if not shocked_weight > 0:
        raise ProtocolMathError("the shocked assets carry no liquidation-threshold weight")
    return 1.0 - max(total_debt - unshocked_weight, 0.0) / shocked_weight


def liquidation_price(
    price: float,
    collateral_values: npt.ArrayLike,
    liquidation_thresholds: npt.ArrayLike,
    total_debt: float,
    asset: int,
) -> float:
    """Price of collateral `asset` at which HF reaches 1, everything else unchanged (0 = never)."""
    _positive("price", price)
    collateral = _vector("collateral_values", collateral_values)
    if not 0 <= asset < collateral.size:
        raise ProtocolMathError(f"asset index {asset} out of range")
    mask = np.zeros(collateral.size, dtype=bool)
    mask[asset] = True
    return price * (1.0 - liquidation_drop(collateral, liquidation_thresholds, total_debt, mask))


# --- close factor and liquidation (floats) ---------------------------------------------------


def close_factor_v3_2(health_factor: float) -> float:
    """Share of one reserve's debt a single liquidation may repay (v3.0-v3.2).

    The contract keeps 50% while HF > 0.95, so HF exactly 0.95 already allows 100%.
    """
    if not health_factor >= 0:
        raise ProtocolMathError(f"health_factor must be >= 0, got {health_factor}")
    return DEFAULT_CLOSE_FACTOR if health_factor > CLOSE_FACTOR_HF_THRESHOLD else MAX_CLOSE_FACTOR


def max_liquidatable_debt_v3_2(health_factor: float, reserve_debt: float) -> float:
    """Most of `reserve_debt` one liquidationCall may repay under v3.0-v3.2 (0 if HF >= 1)."""
    _non_negative("reserve_debt", reserve_debt)
    if health_factor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return 0.0
    return reserve_debt * close_factor_v3_2(health_factor)


def max_liquidatable_debt_v3_3(
    health_factor: float,
    reserve_debt: float,
    reserve_collateral: float,
    total_debt: float,
    min_base_for_close_factor: float = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD,
) -> float:
    """Most of one reserve's debt a liquidation may repay under v3.3+ (base currency; 0 if HF >= 1).

    The whole reserve debt, except that a large position (collateral and debt in the reserves
    both >= 2000 USD) with HF > 0.95 is limited to 50% of the user's TOTAL debt.
    """
    for name, value in (
        ("reserve_debt", reserve_debt),
        ("reserve_collateral", reserve_collateral),
        ("total_debt", total_debt),
    ):
        _non_negative(name, value)
    if not reserve_debt <= total_debt:
        raise ProtocolMathError("reserve_debt cannot exceed total_debt")
    if not health_factor >= 0:
        raise ProtocolMathError(f"health_factor must be >= 0, got {health_factor}")
    if health_factor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return 0.0
    if (
        reserve_collateral >= min_base_for_close_factor
        and reserve_debt >= min_base_for_close_factor
        and health_factor > CLOSE_FACTOR_HF_THRESHOLD
    ):
        return min(reserve_debt, DEFAULT_CLOSE_FACTOR * total_debt)
    return reserve_debt


def leaves_no_dust(
    reserve_debt: float,
    debt_repaid: float,
    reserve_collateral: float,
    collateral_removed: float,
    min_leftover: float = MIN_LEFTOVER_BASE,
) -> bool:
    """v3.3+ dust rule: clear the debt or the collateral, or leave >= 1000 USD of both.

    `collateral_removed` includes the protocol fee; all values in base currency.
    """
    if not (0 <= debt_repaid <= reserve_debt and 0 <= collateral_removed <= reserve_collateral):
        raise ProtocolMathError(
            "repaid/removed amounts must lie between 0 and the reserve's balance"
        )
    if debt_repaid == reserve_debt or collateral_removed == reserve_collateral:
        return True
    return (
        reserve_debt - debt_repaid >= min_leftover
        and reserve_collateral - collateral_removed >= min_leftover
    )


@dataclass(frozen=True, slots=True)
class Liquidation(Generic[N]):
    """Outcome of one liquidationCall, in token units of the debt and collateral assets."""

    debt_repaid: N
    collateral_seized: N  # leaves the borrower, protocol fee included
    protocol_fee: N  # collateral sent to the treasury

    @property
    def liquidator_collateral(self) -> N:
        return self.collateral_seized - self.protocol_fee


def liquidate(
    debt_to_cover: float,
    collateral_balance: float,
    debt_price: float,
    collateral_price: float,
    liquidation_bonus: float,
    protocol_fee: float,
) -> Liquidation[float]:
    """Collateral seized for repaying `debt_to_cover` (already capped by the close factor).

    Seizes debt value * bonus; if the borrower has less, takes it all and repays less. The
    protocol keeps `protocol_fee` of the bonus part. Prices are base currency per token.
    """
    _non_negative("debt_to_cover", debt_to_cover)
    _non_negative("collateral_balance", collateral_balance)
    _positive("debt_price", debt_price)
    _positive("collateral_price", collateral_price)
    if not liquidation_bonus >= 1:
        raise ProtocolMathError(f"liquidation_bonus must be >= 1, got {liquidation_bonus}")
    if not 0 <= protocol_fee <= 1:
        raise ProtocolMathError(f"protocol_fee must be in [0, 1], got {protocol_fee}")
    seized = debt_to_cover * debt_price / collateral_price * liquidation_bonus
    debt_repaid = debt_to_cover
    if seized > collateral_balance:
        seized = collateral_balance
        debt_repaid = collateral_balance * collateral_price / debt_price / liquidation_bonus
    fee = (seized - seized / liquidation_bonus) * protocol_fee
    return Liquidation(debt_repaid, seized, fee)


# --- fixed-point maths (integers, half-up as WadRayMath / PercentageMath) --------------------


def percent_mul(value: int, percentage_bps: int) -> int:
    return (value * percentage_bps + PERCENTAGE_FACTOR // 2) // PERCENTAGE_FACTOR


def percent_div(value: int, percentage_bps: int) -> int:
    return (value * PERCENTAGE_FACTOR + percentage_bps // 2) // percentage_bps


def wad_div(a: int, b: int) -> int:
    return (a * WAD + b // 2) // b


def ray_mul(a: int, b: int) -> int:
    """Also turns a scaled (aToken / debt token) balance into a balance: ray_mul(scaled, index)."""
    return (a * b + RAY // 2) // RAY


def _unit(decimals: int) -> int:
    if not 0 <= decimals <= 77:
        raise ProtocolMathError(f"decimals must be in [0, 77], got {decimals}")
    return int(10**decimals)


def base_value(amount: int, price: int, decimals: int) -> int:
    """Token amount -> oracle base currency (8 decimals on v3 markets), rounded down."""
    if not (amount >= 0 and price > 0):
        raise ProtocolMathError(f"need amount >= 0 and price > 0, got {amount}, {price}")
    return amount * price // _unit(decimals)


def health_factor_wad(
    collateral_base: Sequence[int], liquidation_thresholds_bps: Sequence[int], total_debt_base: int
) -> int:
    """GenericLogic's HF as a WAD: floored average threshold, percentMul, wadDiv by the debt."""
    if len(collateral_base) != len(liquidation_thresholds_bps):
        raise ProtocolMathError("need one liquidation threshold per collateral value")
    if not (min(collateral_base, default=0) >= 0 and total_debt_base >= 0):
        raise ProtocolMathError("collateral and debt must be >= 0")
    if total_debt_base == 0:
        return UINT256_MAX
    total = sum(collateral_base)
    if total == 0:
        return 0
    weighted = sum(
        c * lt for c, lt in zip(collateral_base, liquidation_thresholds_bps, strict=True)
    )
    return wad_div(percent_mul(total, weighted // total), total_debt_base)


def liquidate_exact(
    debt_to_cover: int,
    collateral_balance: int,
    debt_price: int,
    collateral_price: int,
    debt_decimals: int,
    collateral_decimals: int,
    liquidation_bonus_bps: int,
    protocol_fee_bps: int,
) -> Liquidation[int]:
    """`liquidate` with LiquidationLogic's integer rounding (v3.0-v3.2); raw token units."""
    if not (min(debt_to_cover, collateral_balance) >= 0 and min(debt_price, collateral_price) > 0):
        raise ProtocolMathError("amounts must be >= 0 and prices > 0")
    if liquidation_bonus_bps < PERCENTAGE_FACTOR:
        raise ProtocolMathError("liquidation bonus must be >= 10000 bps")
    debt_unit, collateral_unit = _unit(debt_decimals), _unit(collateral_decimals)
    base_collateral = (debt_price * debt_to_cover * collateral_unit) // (
        collateral_price * debt_unit
    )
    seized = percent_mul(base_collateral, liquidation_bonus_bps)
    debt_repaid = debt_to_cover
    if seized > collateral_balance:
        seized = collateral_balance
        debt_repaid = percent_div(
            (collateral_price * collateral_balance * debt_unit) // (debt_price * collateral_unit),
            liquidation_bonus_bps,
        )
    bonus_part = seized - percent_div(seized, liquidation_bonus_bps)
    return Liquidation(debt_repaid, seized, percent_mul(bonus_part, protocol_fee_bps))


# --- interest rates and accrual --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InterestRateModel:
    """Aave's variable-rate curve (yearly fractions): gentle up to optimal use, steep after."""

    optimal_utilization: float
    base_rate: float
    slope1: float
    slope2: float

    def __post_init__(self) -> None:
        if not 0 < self.optimal_utilization < 1:
            raise ProtocolMathError(
                f"optimal_utilization must be in (0, 1), got {self.optimal_utilization}"
            )
        for name in ("base_rate", "slope1", "slope2"):
            _non_negative(name, getattr(self, name))


def utilization(total_debt: float, available_liquidity: float) -> float:
    """Borrowed share of the reserve: debt / (available liquidity + debt); 0 when empty."""
    _non_negative("total_debt", total_debt)
    _non_negative("available_liquidity", available_liquidity)
    total = total_debt + available_liquidity
    return total_debt / total if total else 0.0


def borrow_rate(model: InterestRateModel, utilization: float) -> float:
    """Variable borrow rate: base + slope1 * U/U* below the kink, + slope2 beyond it."""
    if not 0 <= utilization <= 1:
        raise ProtocolMathError(f"utilization must be in [0, 1], got {utilization}")
    optimal = model.optimal_utilization
    if utilization <= optimal:
        return model.base_rate + model.slope1 * utilization / optimal
    excess = (utilization - optimal) / (1.0 - optimal)
    return model.base_rate + model.slope1 + model.slope2 * excess


def supply_rate(model: InterestRateModel, utilization: float, reserve_factor: float) -> float:
    """Suppliers earn the borrowers' interest, spread over all supply, minus the reserve factor."""
    if not 0 <= reserve_factor < 1:
        raise ProtocolMathError(f"reserve_factor must be in [0, 1), got {reserve_factor}")
    return borrow_rate(model, utilization) * utilization * (1.0 - reserve_factor)


def linear_interest(rate: float, seconds: float) -> float:
    """Supply-side growth factor over `seconds`: Aave accrues the liquidity index linearly."""
    _non_negative("rate", rate)
    _non_negative("seconds", seconds)
    return 1.0 + rate * seconds / SECONDS_PER_YEAR


def compounded_interest(rate: float, seconds: float) -> float:
    """Borrow-side growth factor: the Pool's 3-term binomial for (1 + rate/year)^seconds."""
    _non_negative("rate", rate)
    _non_negative("seconds", seconds)
    per_second = rate / SECONDS_PER_YEAR
    n = seconds
    return (
        1.0
        + n * per_second
        + n * max(n - 1, 0) / 2 * per_second**2
        + n * max(n - 1, 0) * max(n - 2, 0) / 6 * per_second**3
    )


def _check_ray_inputs(rate_ray: int, seconds: int) -> None:
    if not (rate_ray >= 0 and seconds >= 0):
        raise ProtocolMathError(f"need rate >= 0, seconds >= 0: {rate_ray}, {seconds}")


def linear_interest_ray(rate_ray: int, seconds: int) -> int:
    """MathUtils.calculateLinearInterest: RAY + rate * seconds / year, rounded down."""
    _check_ray_inputs(rate_ray, seconds)
    return RAY + rate_ray * seconds // SECONDS_PER_YEAR


def compounded_interest_ray(rate_ray: int, seconds: int, *, per_second_first: bool = False) -> int:
    """MathUtils.calculateCompoundedInterest, the 3-term binomial, in RAY.

    The Pool (v3.0) divides by the year after multiplying. `per_second_first=True` gives
    aave-utilities' off-chain result (what Aave's UI shows): it floors rate/year first, so the
    two differ in the last digits.
    """
    _check_ray_inputs(rate_ray, seconds)
    if seconds == 0:
        return RAY
    pairs = seconds * (seconds - 1)
    triples = pairs * max(seconds - 2, 0)
    if per_second_first:
        per_second = rate_ray // SECONDS_PER_YEAR
        squared = ray_mul(per_second, per_second)
        return (
            RAY
            + per_second * seconds
            + pairs * squared // 2
            + triples * ray_mul(squared, per_second) // 6
        )
    squared = ray_mul(rate_ray, rate_ray) // SECONDS_PER_YEAR**2
    cubed = ray_mul(squared, rate_ray) // SECONDS_PER_YEAR
    return (
        RAY + rate_ray * seconds // SECONDS_PER_YEAR + pairs * squared // 2 + triples * cubed // 6
    )


def normalized_income_ray(liquidity_index_ray: int, liquidity_rate_ray: int, seconds: int) -> int:
    """ReserveLogic.getNormalizedIncome: the liquidity index now; aToken balance = scaled x this."""
    return ray_mul(linear_interest_ray(liquidity_rate_ray, seconds), liquidity_index_ray)


def normalized_debt_ray(
    borrow_index_ray: int, borrow_rate_ray: int, seconds: int, *, per_second_first: bool = False
) -> int:
    """ReserveLogic.getNormalizedDebt: borrow index now (see compounded_interest_ray)."""
    compounded = compounded_interest_ray(
        borrow_rate_ray, seconds, per_second_first=per_second_first
    )
    return ray_mul(compounded, borrow_index_ray)


# --- probability of liquidation --------------------------------------------------------------


def _barrier(health_factor: float) -> float:
    """Log-price move taking HF to 1 (one volatile collateral vs stable debt).

    >= 0: already liquidatable; -inf: no debt, never.
    """
    if not health_factor >= 0:
        raise ProtocolMathError(f"health_factor must be >= 0 and not NaN, got {health_factor}")
    return -math.log(health_factor) if health_factor > 0 else math.inf


def _check_gbm(volatility: float, horizon_years: float, drift: float) -> None:
    _positive("volatility", volatility)
    _non_negative("horizon_years", horizon_years)
    if not math.isfinite(drift):
        raise ProtocolMathError(f"drift must be finite, got {drift}")


def liquidation_probability_gbm(
    health_factor: float,
    volatility: float,
    horizon_years: float,
    drift: float = 0.0,
    monitoring_interval_years: float = 0.0,
) -> float:
    """P(HF touches 1 within the horizon): first passage of GBM through S0/HF (FORMULAS.md C3).

    `drift` and `volatility` are the collateral's annual GBM mu and sigma against the debt.
    With `monitoring_interval_years` > 0 the price is only checked that often (oracle updates,
    a backtest's bars) and the Broadie-Glasserman-Kou shift makes the barrier discrete. For
    several assets pass HF = 1 / (1 - liquidation_drop(...)).
    """
    _check_gbm(volatility, horizon_years, drift)
    _non_negative("monitoring_interval_years", monitoring_interval_years)
    barrier = _barrier(health_factor)
    if barrier >= 0:
        return 1.0
    if math.isinf(barrier) or horizon_years == 0:
        return 0.0
    barrier -= _BGK_BETA * volatility * math.sqrt(monitoring_interval_years)
    nu = drift - volatility**2 / 2
    spread = volatility * math.sqrt(horizon_years)
    direct = float(ndtr((barrier - nu * horizon_years) / spread))
    log_reflected = 2 * nu * barrier / volatility**2 + float(
        log_ndtr((barrier + nu * horizon_years) / spread)
    )
    return min(1.0, direct + math.exp(log_reflected))


def terminal_liquidation_probability_gbm(
    health_factor: float, volatility: float, horizon_years: float, drift: float = 0.0
) -> float:
    """P(HF < 1 at the horizon) under GBM; a lower bound of the first-passage probability."""
    _check_gbm(volatility, horizon_years, drift)
    barrier = _barrier(health_factor)
    if barrier >= 0:
        return 1.0
    if math.isinf(barrier) or horizon_years == 0:
        return 0.0
    nu = drift - volatility**2 / 2
    return float(ndtr((barrier - nu * horizon_years) / (volatility * math.sqrt(horizon_years))))


ReturnSampler = Callable[[np.random.Generator, int], FloatArray]
"""Draws log-return paths: (rng, paths) -> array of shape (paths, steps) of per-step log-returns
of the collateral price against the debt."""


@dataclass(frozen=True, slots=True)
class GbmLogReturns:
    """A ReturnSampler for GBM with annual `drift` and `volatility` over `steps` equal steps."""

    drift: float
    volatility: float
    horizon_years: float
    steps: int

    def __post_init__(self) -> None:
        _check_gbm(self.volatility, self.horizon_years, self.drift)
        if self.steps < 1:
            raise ProtocolMathError(f"steps must be >= 1, got {self.steps}")

    def __call__(self, rng: np.random.Generator, paths: int) -> FloatArray:
        dt = self.horizon_years / self.steps
        mean = (self.drift - self.volatility**2 / 2) * dt
        return rng.normal(mean, self.volatility * math.sqrt(dt), size=(paths, self.steps))


@dataclass(frozen=True, slots=True)
class ProbabilityEstimate:
    """A Monte Carlo probability with its binomial standard error."""

    probability: float
    standard_error: float
    paths: int


def liquidation_probability_mc(
    health_factor: float,
    sample_log_returns: ReturnSampler,
    paths: int,
    rng: np.random.Generator,
) -> ProbabilityEstimate:
    """P(HF < 1 at any sampled step) by Monte Carlo over any return model, vectorised over paths.

    The barrier is checked at the sampler's steps only, as an oracle or a backtest would.
    """
    barrier = _barrier(health_factor)
    if paths < 1:
        raise ProtocolMathError(f"paths must be >= 1, got {paths}")
    returns = np.asarray(sample_log_returns(rng, paths), dtype=np.float64)
    if not (returns.ndim == 2 and returns.shape[0] == paths):
        raise ProtocolMathError(
            f"the sampler must return shape (paths, steps), got {returns.shape}"
        )
    if not np.all(np.isfinite(returns)):
        raise ProtocolMathError("the sampler returned NaN or infinite returns")
    lowest = np.minimum(np.cumsum(returns, axis=1).min(axis=1), 0.0)
    probability = float(np.mean(lowest < barrier))
    return ProbabilityEstimate(
        probability, math.sqrt(probability * (1 - probability) / paths), paths
    )
