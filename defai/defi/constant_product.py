"""Uniswap v2 constant-product maths (x*y = k, fee on the input).

The integer functions reproduce the v2 router and pair bit for bit (raw token units, floor
division), so a quote against real raw reserves is exactly what the chain will pay. The
real-valued `amount_out` is the same curve in floats, for the MEV model and backtests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from defai.errors import ProtocolMathError
from defai.types import FloatArray

BPS = 10_000
V2_FEE_BPS = 30  # 0.30%: the router's 997/1000

FloatOrArray = TypeVar("FloatOrArray", float, FloatArray)


def _check_reserves(reserve_in: int, reserve_out: int) -> None:
    if reserve_in <= 0 or reserve_out <= 0:
        raise ProtocolMathError(
            f"reserves must be > 0 (got {reserve_in}, {reserve_out}): the pair has no liquidity"
        )


def _check_fee_bps(fee_bps: int) -> None:
    if not 0 <= fee_bps < BPS:
        raise ProtocolMathError(f"fee_bps must be in [0, {BPS}), got {fee_bps}")


def get_amount_out(
    amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int = V2_FEE_BPS
) -> int:
    """UniswapV2Library.getAmountOut: the most the pair pays for `amount_in` (rounded down)."""
    if amount_in <= 0:
        raise ProtocolMathError(f"amount_in must be > 0, got {amount_in}")
    _check_reserves(reserve_in, reserve_out)
    _check_fee_bps(fee_bps)
    in_with_fee = amount_in * (BPS - fee_bps)
    return in_with_fee * reserve_out // (reserve_in * BPS + in_with_fee)


def get_amount_in(
    amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = V2_FEE_BPS
) -> int:
    """UniswapV2Library.getAmountIn: least input buying `amount_out` (floor + 1, as the router)."""
    if amount_out <= 0:
        raise ProtocolMathError(f"amount_out must be > 0, got {amount_out}")
    _check_reserves(reserve_in, reserve_out)
    _check_fee_bps(fee_bps)
    if amount_out >= reserve_out:
        raise ProtocolMathError(
            f"amount_out {amount_out} must be below the output reserve {reserve_out}"
        )
    return reserve_in * amount_out * BPS // ((reserve_out - amount_out) * (BPS - fee_bps)) + 1


def quote(amount_a: int, reserve_a: int, reserve_b: int) -> int:
    """UniswapV2Library.quote: amount of B worth `amount_a` at the pool's mid price, no fee."""
    if amount_a <= 0:
        raise ProtocolMathError(f"amount_a must be > 0, got {amount_a}")
    _check_reserves(reserve_a, reserve_b)
    return amount_a * reserve_b // reserve_a


def satisfies_k(
    reserves: tuple[int, int],
    amounts_in: tuple[int, int],
    amounts_out: tuple[int, int],
    fee_bps: int = V2_FEE_BPS,
) -> bool:
    """The pair's `UniswapV2: K` check: does this swap (flash swaps included) keep x*y after fees?

    The pair never computes an output itself; it only accepts or reverts, so this is the
    authority on what any swap, including a same-token flash repayment, may take.
    """
    _check_reserves(*reserves)
    _check_fee_bps(fee_bps)
    if min(*amounts_in, *amounts_out) < 0:
        raise ProtocolMathError(f"amounts must be >= 0, got in={amounts_in} out={amounts_out}")
    if amounts_out[0] >= reserves[0] or amounts_out[1] >= reserves[1]:
        return False  # UniswapV2: INSUFFICIENT_LIQUIDITY
    adjusted = [
        (reserve + paid - taken) * BPS - paid * fee_bps
        for reserve, paid, taken in zip(reserves, amounts_in, amounts_out, strict=True)
    ]
    return adjusted[0] * adjusted[1] >= reserves[0] * reserves[1] * BPS**2


@dataclass(frozen=True, slots=True)
class ArbitrageTrade:
    """A swap that moves a pool to an external price; `a_to_b` sells token A."""

    a_to_b: bool
    amount_in: int
    amount_out: int


def swap_to_price(
    reserve_a: int,
    reserve_b: int,
    true_price_a: int,
    true_price_b: int,
    fee_bps: int = V2_FEE_BPS,
) -> ArbitrageTrade:
    """Profit-maximising arbitrage toward the true price A:B (v2-periphery ExampleSwapToPrice).

    Returns a zero trade when the fee band already covers the gap, i.e. arbitrage cannot pay.
    """
    _check_reserves(reserve_a, reserve_b)
    _check_fee_bps(fee_bps)
    if true_price_a <= 0 or true_price_b <= 0:
        raise ProtocolMathError(f"true prices must be > 0, got {true_price_a}:{true_price_b}")
    a_to_b = reserve_a * true_price_b // reserve_b < true_price_a
    price_in, price_out = (true_price_a, true_price_b) if a_to_b else (true_price_b, true_price_a)
    reserve_in, reserve_out = (reserve_a, reserve_b) if a_to_b else (reserve_b, reserve_a)
    gamma = BPS - fee_bps
    left = math.isqrt(reserve_a * reserve_b * BPS * price_in // (price_out * gamma))
    right = reserve_in * BPS // gamma
    if left <= right:
        return ArbitrageTrade(a_to_b, 0, 0)
    amount_in = left - right
    return ArbitrageTrade(
        a_to_b, amount_in, get_amount_out(amount_in, reserve_in, reserve_out, fee_bps)
    )


def amount_out(
    amount_in: FloatOrArray, reserve_in: float, reserve_out: float, fee: float = 0.003
) -> FloatOrArray:
    """Real-valued getAmountOut, `gamma*a*y / (x + gamma*a)`; vectorised over `amount_in`."""
    if not (reserve_in > 0 and reserve_out > 0 and math.isfinite(reserve_in * reserve_out)):
        raise ProtocolMathError(f"reserves must be finite and > 0, got {reserve_in}, {reserve_out}")
    if not 0 <= fee < 1:
        raise ProtocolMathError(f"fee must be a fraction in [0, 1), got {fee}")
    if not np.all(np.asarray(amount_in) >= 0):
        raise ProtocolMathError("amount_in must be >= 0 and not NaN")
    gamma = 1.0 - fee
    return gamma * amount_in * reserve_out / (reserve_in + gamma * amount_in)
