"""Sandwich attacks on constant-product curves (Zhou et al. 2021; Heimbach & Wattenhofer 2022).

The victim sells `v` of token X for token Y with slippage tolerance `s`; the attacker sells `a` of X
first, lets the victim trade at the worse price, then sells back everything it bought. All
amounts are floats in the pool's units; profit and gas are in X, the victim's loss in Y.

Uniswap v3 is covered through its virtual reserves `x = L/sqrt(P)`, `y = L*sqrt(P)`: within one
initialised tick range the pool IS this curve, except that the fee leaves the curve (it goes to
fee growth) instead of staying in the reserves. The model is only valid while all three legs
stay inside the active range; every function that picks a sandwich raises when they would not.

Assumption behind the optimum: the attacker's gross profit is unimodal in the front-run size
(rises, then falls once its own fees outweigh the victim's price impact). The tests check it
against brute-force searches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, NamedTuple

import numpy as np
from scipy.optimize import brentq

from defai.defi.constant_product import FloatOrArray, amount_out, get_amount_out
from defai.errors import ProtocolMathError

_MAX_DOUBLINGS = 200  # reserve * 2**200: far beyond any real pool


@dataclass(frozen=True, slots=True)
class CurvePool:
    """A constant-product curve oriented for a victim who sells the `reserve_in` token.

    `fee_joins_reserves` is True for Uniswap v2 (the fee stays in the pool) and False for a v3
    range (the fee is paid out to LPs). `reserve_in_min/max` bound the input reserve to the
    active tick range of a v3 pool; they are 0 and infinity for a v2 pair.
    """

    reserve_in: float
    reserve_out: float
    fee: float = 0.003
    fee_joins_reserves: bool = True
    reserve_in_min: float = 0.0
    reserve_in_max: float = math.inf

    def __post_init__(self) -> None:
        if not (self.reserve_in > 0 and self.reserve_out > 0):
            raise ProtocolMathError(
                f"reserves must be > 0, got {self.reserve_in}, {self.reserve_out}"
            )
        if not math.isfinite(self.reserve_in * self.reserve_out):
            raise ProtocolMathError("reserves must be finite")
        if not 0 <= self.fee < 1:
            raise ProtocolMathError(f"fee must be a fraction in [0, 1), got {self.fee}")
        if not self.reserve_in_min <= self.reserve_in <= self.reserve_in_max:
            raise ProtocolMathError(
                f"reserve_in {self.reserve_in} is outside its range "
                f"[{self.reserve_in_min}, {self.reserve_in_max}]"
            )

    @property
    def gamma(self) -> float:
        return 1.0 - self.fee

    @property
    def curve_share(self) -> float:
        """Share of an input that joins the curve's reserves."""
        return 1.0 if self.fee_joins_reserves else self.gamma


def concentrated_pool(
    liquidity: float,
    sqrt_price: float,
    sqrt_price_lower: float,
    sqrt_price_upper: float,
    *,
    zero_for_one: bool,
    fee: float,
) -> CurvePool:
    """The active range of a v3 pool as a curve over virtual reserves.

    `sqrt_price` is sqrt(token1 per token0) in raw units (sqrtPriceX96 / 2**96); `fee` is a
    fraction (feePips / 1e6). `zero_for_one` is the victim's direction (selling token0).
    """
    if not liquidity > 0:
        raise ProtocolMathError(f"liquidity must be > 0, got {liquidity}")
    if not 0 < sqrt_price_lower <= sqrt_price <= sqrt_price_upper:
        raise ProtocolMathError(
            "need 0 < sqrt_price_lower <= sqrt_price <= sqrt_price_upper, got "
            f"{sqrt_price_lower}, {sqrt_price}, {sqrt_price_upper}"
        )
    reserve0, reserve1 = liquidity / sqrt_price, liquidity * sqrt_price
    if zero_for_one:  # selling token0 pushes the price down to the lower bound
        return CurvePool(
            reserve0,
            reserve1,
            fee,
            False,
            liquidity / sqrt_price_upper,
            liquidity / sqrt_price_lower,
        )
    return CurvePool(
        reserve1, reserve0, fee, False, liquidity * sqrt_price_lower, liquidity * sqrt_price_upper
    )


class _Legs(NamedTuple, Generic[FloatOrArray]):
    front_run_out: FloatOrArray
    victim_out: FloatOrArray
    back_run_out: FloatOrArray
    reserve_in_peak: FloatOrArray  # after the victim: the furthest the price moves
    reserve_in_final: FloatOrArray


def _legs(pool: CurvePool, victim_in: float, front_run: FloatOrArray) -> _Legs[FloatOrArray]:
    """The three swaps for a front-run `a` (vectorised over `a`)."""
    x, y, g, d = pool.reserve_in, pool.reserve_out, pool.gamma, pool.curve_share
    front_out = g * front_run * y / (x + g * front_run)
    x1, y1 = x + d * front_run, x * y / (x + g * front_run)
    victim_out = g * victim_in * y1 / (x1 + g * victim_in)
    x2, y2 = x1 + d * victim_in, y1 - victim_out
    back_out = g * front_out * x2 / (y2 + g * front_out)
    return _Legs(front_out, victim_out, back_out, x2, x2 - back_out)


def sandwich_profit(pool: CurvePool, victim_in: float, front_run: FloatOrArray) -> FloatOrArray:
    """Attacker's gross profit in X for front-run size(s) `front_run`.

    Ignores the victim's min-out; vectorised, for brute-force searches and plots.
    """
    _check_victim(victim_in)
    if not np.all(np.asarray(front_run) >= 0):
        raise ProtocolMathError("front_run must be >= 0 and not NaN")
    legs = _legs(pool, victim_in, front_run)
    profit: FloatOrArray = legs.back_run_out - front_run
    return profit


def _profit_slope(pool: CurvePool, victim_in: float, a: float) -> float:
    """d(gross profit)/d(front-run) at `a`, by the chain rule through the three swaps."""
    x, y, g, d, v = pool.reserve_in, pool.reserve_out, pool.gamma, pool.curve_share, victim_in
    u = x + g * a
    front_out, d_front_out = g * a * y / u, g * x * y / u**2
    y1, d_y1 = x * y / u, -d_front_out
    w = x + d * a + g * v
    victim_out = g * v * y1 / w
    d_victim_out = g * v * (d_y1 * w - y1 * d) / w**2
    x2, y2 = w - g * v + d * v, y1 - victim_out
    z = y2 + g * front_out
    d_z = d_y1 - d_victim_out + g * d_front_out
    d_back_out = g * ((d_front_out * x2 + front_out * d) * z - front_out * x2 * d_z) / z**2
    return d_back_out - 1.0


def max_front_run(pool: CurvePool, victim_in: float, min_out: float) -> float:
    """Largest front-run that still lets the victim receive `min_out` (closed form).

    Solves `victim_out(a) = min_out`, a quadratic `A a^2 + B a + C = 0` (FORMULAS.md D with the
    fee's share of the input `d` joining the reserves); the root is taken in the cancellation-free
    form `-2C / (B + sqrt(B^2 - 4AC))`. Infinite when the victim accepts any output.
    """
    _check_victim(victim_in)
    if not min_out >= 0:
        raise ProtocolMathError(f"min_out must be >= 0, got {min_out}")
    if min_out == 0:
        return math.inf
    x, y, g, d, v = pool.reserve_in, pool.reserve_out, pool.gamma, pool.curve_share, victim_in
    quad_a = g * d
    quad_b = g * (x + g * v) + d * x
    quad_c = x * (x + g * v) - g * v * x * y / min_out
    if quad_c >= 0:
        return 0.0
    return -2.0 * quad_c / (quad_b + math.sqrt(quad_b * quad_b - 4.0 * quad_a * quad_c))


def _check_victim(victim_in: float) -> None:
    if not (victim_in > 0 and math.isfinite(victim_in)):
        raise ProtocolMathError(f"victim_in must be finite and > 0, got {victim_in}")


def _check_costs(gas_cost: float, budget: float) -> None:
    if not (gas_cost >= 0 and math.isfinite(gas_cost)):
        raise ProtocolMathError(f"gas_cost must be finite and >= 0, got {gas_cost}")
    if not budget >= 0:
        raise ProtocolMathError(f"budget must be >= 0, got {budget}")


def _check_slippage(slippage: float) -> None:
    if not 0 <= slippage < 1:
        raise ProtocolMathError(f"slippage must be a fraction in [0, 1), got {slippage}")


def _peak_front_run(pool: CurvePool, victim_in: float, cap: float) -> float:
    """Profit-maximising front-run in [0, cap] (cap may be infinite); relies on unimodality."""
    if _profit_slope(pool, victim_in, 0.0) <= 0:
        return 0.0  # the victim's impact does not even cover the attacker's fees
    high = cap if math.isfinite(cap) else pool.reserve_in
    for _ in range(_MAX_DOUBLINGS):
        if _profit_slope(pool, victim_in, high) < 0:
            break
        if math.isfinite(cap):
            return cap  # still rising at the cap: the cap binds
        high *= 2.0
    else:
        raise ProtocolMathError(
            "the sandwich profit keeps rising with the front-run size (is the fee zero?)"
        )
    root: float = brentq(lambda a: _profit_slope(pool, victim_in, a), 0.0, high, xtol=high * 1e-15)
    return root


def _check_in_range(pool: CurvePool, legs: _Legs[float]) -> None:
    if legs.reserve_in_peak > pool.reserve_in_max or legs.reserve_in_final < pool.reserve_in_min:
        raise ProtocolMathError(
            "the sandwich would leave the active tick range; the single-range (virtual "
            "reserves) model does not apply - simulate it tick by tick"
        )


@dataclass(frozen=True, slots=True)
class SandwichResult:
    """The attacker's best sandwich of one victim swap (X = token the victim sells, Y = bought)."""

    front_run: float  # X the attacker sells first
    front_run_out: float  # Y it receives
    victim_quote: float  # Y the victim expected with no attack
    victim_min_out: float  # Y the victim accepts at worst
    victim_out: float  # Y the victim gets
    back_run_out: float  # X the attacker gets back
    gas_cost: float  # X, both legs
    slippage_binds: bool  # the victim's tolerance, not profit or budget, limits the front-run

    @property
    def gross_profit(self) -> float:
        return self.back_run_out - self.front_run

    @property
    def net_profit(self) -> float:
        return self.gross_profit - self.gas_cost

    @property
    def profitable(self) -> bool:
        return self.net_profit > 0

    @property
    def victim_loss(self) -> float:
        """Y the victim loses to the attack (at most slippage * quote)."""
        return self.victim_quote - self.victim_out


def optimal_sandwich(
    pool: CurvePool,
    victim_in: float,
    slippage: float,
    gas_cost: float = 0.0,
    budget: float = math.inf,
) -> SandwichResult:
    """The attacker's profit-maximising sandwich of a swap with the given slippage tolerance.

    Zhou et al.: the profit rises with the front-run up to the victim's limit, so the closed-form
    `max_front_run` is usually the answer; when the attacker's own fees make profit peak earlier
    (very loose tolerances) the peak is found numerically. `budget` caps the attacker's capital.
    """
    _check_victim(victim_in)
    _check_slippage(slippage)
    _check_costs(gas_cost, budget)
    quote = amount_out(victim_in, pool.reserve_in, pool.reserve_out, pool.fee)
    min_out = (1.0 - slippage) * quote
    limit = max_front_run(pool, victim_in, min_out)
    front_run = _peak_front_run(pool, victim_in, min(limit, budget))
    legs = _legs(pool, victim_in, front_run)
    _check_in_range(pool, legs)
    return SandwichResult(
        front_run=front_run,
        front_run_out=legs.front_run_out,
        victim_quote=quote,
        victim_min_out=min_out,
        victim_out=legs.victim_out,
        back_run_out=legs.back_run_out,
        gas_cost=gas_cost,
        slippage_binds=front_run == limit < budget,
    )


def max_safe_slippage(
    pool: CurvePool, victim_in: float, gas_cost: float, budget: float = math.inf
) -> float:
    """Largest slippage tolerance at which no sandwich covers its gas (Heimbach & Wattenhofer).

    Profit rises with the front-run up to its peak, so the answer is the slippage consumed by
    the front-run whose gross profit equals the gas cost. Returns 1.0 when no tolerance at all
    makes a sandwich pay. Below it a swap may still fail from ordinary price moves.
    """
    _check_victim(victim_in)
    _check_costs(gas_cost, budget)
    peak = _peak_front_run(pool, victim_in, budget)
    if sandwich_profit(pool, victim_in, peak) <= gas_cost:
        return 1.0
    safe_front_run: float = brentq(
        lambda a: sandwich_profit(pool, victim_in, a) - gas_cost, 0.0, peak, xtol=peak * 1e-15
    )
    legs = _legs(pool, victim_in, safe_front_run)
    _check_in_range(pool, legs)
    quote = amount_out(victim_in, pool.reserve_in, pool.reserve_out, pool.fee)
    return max(0.0, 1.0 - legs.victim_out / quote)


def chunked_attack_profit(
    pool: CurvePool,
    victim_in: float,
    slippage: float,
    gas_cost: float,
    chunks: int,
    budget: float = math.inf,
) -> float:
    """Attacker's total net profit when the swap is split into `chunks` equal swaps.

    Assumes each chunk lands in its own block on the original reserves (arbitrage restores
    the price in between) with the same tolerance, and that only profitable chunks are attacked.
    """
    if chunks < 1:
        raise ProtocolMathError(f"chunks must be >= 1, got {chunks}")
    per_chunk = optimal_sandwich(pool, victim_in / chunks, slippage, gas_cost, budget)
    return chunks * max(per_chunk.net_profit, 0.0)


def chunks_to_deter(
    pool: CurvePool,
    victim_in: float,
    slippage: float,
    gas_cost: float,
    budget: float = math.inf,
    max_chunks: int = 1_000_000,
) -> int:
    """Fewest equal chunks (see `chunked_attack_profit`) for which no chunk is worth sandwiching.

    The best sandwich of a chunk grows with the chunk, so an exponential then binary search on the
    count is exact. The victim's own extra gas per chunk is left to the caller.
    """

    def deterred(chunks: int) -> bool:
        return chunked_attack_profit(pool, victim_in, slippage, gas_cost, chunks, budget) <= 0

    low, high = 0, 1
    while not deterred(high):
        if high >= max_chunks:
            raise ProtocolMathError(
                f"no split into at most {max_chunks} chunks deters the sandwich"
            )
        low, high = high, min(2 * high, max_chunks)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if deterred(middle) else (middle, high)
    return high


@dataclass(frozen=True, slots=True)
class ExactSandwich:
    """One sandwich replayed with the v2 router's integer maths (raw token units)."""

    front_run: int
    front_run_out: int
    victim_out: int
    back_run_out: int

    @property
    def gross_profit(self) -> int:
        return self.back_run_out - self.front_run


def sandwich_exact(
    reserve_in: int, reserve_out: int, victim_in: int, front_run: int
) -> ExactSandwich:
    """Replays front-run, victim swap and back-run on a v2 pair exactly as the chain would."""
    front_out = get_amount_out(front_run, reserve_in, reserve_out) if front_run else 0
    reserve_in, reserve_out = reserve_in + front_run, reserve_out - front_out
    victim_out = get_amount_out(victim_in, reserve_in, reserve_out)
    reserve_in, reserve_out = reserve_in + victim_in, reserve_out - victim_out
    back_out = get_amount_out(front_out, reserve_out, reserve_in) if front_out else 0
    return ExactSandwich(front_run, front_out, victim_out, back_out)


def max_front_run_exact(reserve_in: int, reserve_out: int, victim_in: int, min_out: int) -> int:
    """Largest integer front-run after which the victim's swap still passes `min_out` on chain.

    The victim's output only falls as the front-run grows, so a binary search is exact.
    """
    if min_out <= 0:
        raise ProtocolMathError(f"min_out must be > 0 (else any front-run passes), got {min_out}")
    if sandwich_exact(reserve_in, reserve_out, victim_in, 0).victim_out < min_out:
        raise ProtocolMathError("the victim's min_out fails even without a front-run")
    low, high = 0, reserve_in
    while sandwich_exact(reserve_in, reserve_out, victim_in, high).victim_out >= min_out:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        passes = sandwich_exact(reserve_in, reserve_out, victim_in, middle).victim_out >= min_out
        low, high = (middle, high) if passes else (low, middle)
    return low
