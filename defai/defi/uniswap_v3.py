"""Uniswap v3 maths exactly as the contracts compute it, on Python ints.

A simulated fill or LP position only lines up with the chain if every division rounds the way
the contracts round it, so this module mirrors TickMath, FullMath, SqrtPriceMath, SwapMath,
LiquidityAmounts, Tick.getFeeGrowthInside and OracleLibrary.getQuoteAtTick bit for bit (the
uint256 overflow branches included), plus the v3-sdk helpers the periphery tests use. Floats
appear only in the human-price helpers. Formulas: ../shared/reference/defi/FORMULAS.md part A.
The multi-tick pool simulator is in `uniswap_v3_pool`, the human-unit LP maths in
`uniswap_v3_lp`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Final, NamedTuple

from defai.errors import ProtocolMathError

MIN_TICK: Final = -887272
MAX_TICK: Final = 887272
MIN_SQRT_RATIO: Final = 4295128739
MAX_SQRT_RATIO: Final = 1461446703485210103287273052203988822378723970342
Q96: Final = 1 << 96
Q128: Final = 1 << 128
FEE_PIPS_DENOMINATOR: Final = 1_000_000
FEE_TIER_TICK_SPACING: Final[Mapping[int, int]] = MappingProxyType(
    {100: 1, 500: 10, 3000: 60, 10000: 200}
)
"""Tick spacing the v3 factory enables for each fee tier (fee in pips, millionths)."""

_MAX_UINT128: Final = (1 << 128) - 1
_MAX_UINT160: Final = (1 << 160) - 1
_MAX_UINT256: Final = (1 << 256) - 1

# TickMath: 2^128 / sqrt(1.0001)^(2^i) in Q128.128 for bit i of |tick| (bit 0 is the start value).
_TICK_BIT0_RATIO: Final = 0xFFFCB933BD6FAD37AA2D162D1A594001
_TICK_BIT_RATIOS: Final = (
    (0x2, 0xFFF97272373D413259A46990580E213A),
    (0x4, 0xFFF2E50F5F656932EF12357CF3C7FDCC),
    (0x8, 0xFFE5CACA7E10E4E61C3624EAA0941CD0),
    (0x10, 0xFFCB9843D60F6159C9DB58835C926644),
    (0x20, 0xFF973B41FA98C081472E6896DFB254C0),
    (0x40, 0xFF2EA16466C96A3843EC78B326B52861),
    (0x80, 0xFE5DEE046A99A2A811C461F1969C3053),
    (0x100, 0xFCBE86C7900A88AEDCFFC83B479AA3A4),
    (0x200, 0xF987A7253AC413176F2B074CF7815E54),
    (0x400, 0xF3392B0822B70005940C7A398E4B70F3),
    (0x800, 0xE7159475A2C29B7443B29C7FA6E889D9),
    (0x1000, 0xD097F3BDFD2022B8845AD8F792AA5825),
    (0x2000, 0xA9F746462D870FDF8A65DC1F90E061E5),
    (0x4000, 0x70D869A156D2A1B890BB3DF62BAF32F7),
    (0x8000, 0x31BE135F97D08FD981231505542FCFA6),
    (0x10000, 0x9AA508B5B7A84E1C677DE54F3E99BC9),
    (0x20000, 0x5D6AF8DEDB81196699C329225EE604),
    (0x40000, 0x2216E584F5FA1EA926041BEDFE98),
    (0x80000, 0x48A170391F7DC42444E8FA2),
)
_LOG2_TO_LOG_SQRT10001: Final = 255738958999603826347141
_TICK_LOW_ERROR: Final = 3402992956809132418596140100660247210
_TICK_HIGH_ERROR: Final = 291339464771989622907027621153398088495


class UniswapV3Revert(ProtocolMathError):
    """The contract would revert here; `reason` is its revert string ('SPL', 'T', 'R', 'LO', ...).

    Callers (tests, a paper venue) match on the reason the way they would on a chain receipt.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{message} (contract reverts with {reason!r})")
        self.reason = reason


def _require_uint(name: str, value: int, bits: int) -> None:
    """Reject what the contract's ABI would never accept, so garbage fails loudly here."""
    if not 0 <= value < 1 << bits:
        raise ProtocolMathError(f"{name} must be a uint{bits}, got {value}")


def _require_sqrt_price(name: str, sqrt_price_x96: int) -> None:
    if not 0 < sqrt_price_x96 <= _MAX_UINT160:
        raise ProtocolMathError(
            f"{name} must be a positive uint160 sqrt price, got {sqrt_price_x96}"
        )


def _to_uint128(value: int) -> int:
    if value > _MAX_UINT128:
        raise ProtocolMathError(f"liquidity {value} overflows uint128")
    return value


def _to_uint160(value: int) -> int:
    if value > _MAX_UINT160:
        raise ProtocolMathError(f"sqrt price {value} overflows uint160")
    return value


# --- FullMath / UnsafeMath -----------------------------------------------------------------------


def mul_div(a: int, b: int, denominator: int) -> int:
    """floor(a*b/denominator) on the full 512-bit product; reverts past uint256, like FullMath."""
    if denominator <= 0:
        raise ProtocolMathError("mulDiv denominator must be positive")
    result = a * b // denominator
    if result > _MAX_UINT256:
        raise ProtocolMathError("mulDiv result overflows uint256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """ceil(a*b/denominator) (FullMath.mulDivRoundingUp): wherever the pool must not lose dust."""
    if denominator <= 0:
        raise ProtocolMathError("mulDivRoundingUp denominator must be positive")
    result = -(-a * b // denominator)
    if result > _MAX_UINT256:
        raise ProtocolMathError("mulDivRoundingUp result overflows uint256")
    return result


def div_rounding_up(x: int, y: int) -> int:
    """UnsafeMath.divRoundingUp: ceil(x/y) for y > 0."""
    return -(-x // y)


# --- TickMath ------------------------------------------------------------------------------------


def get_sqrt_ratio_at_tick(tick: int) -> int:
    """sqrt(1.0001^tick) * 2^96 as TickMath computes it: Q128.128 products, rounded up to Q64.96."""
    abs_tick = abs(tick)
    if abs_tick > MAX_TICK:
        raise UniswapV3Revert("T", f"tick {tick} is outside [{MIN_TICK}, {MAX_TICK}]")
    ratio = _TICK_BIT0_RATIO if abs_tick & 0x1 else 1 << 128
    for bit, factor in _TICK_BIT_RATIOS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = _MAX_UINT256 // ratio
    return (ratio >> 32) + (1 if ratio & 0xFFFFFFFF else 0)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """Greatest tick whose sqrt ratio is <= sqrt_price_x96, by the contract's 14-bit log2 search."""
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise UniswapV3Revert(
            "R", f"sqrt price {sqrt_price_x96} is outside [MIN_SQRT_RATIO, MAX_SQRT_RATIO)"
        )
    ratio = sqrt_price_x96 << 32
    msb = ratio.bit_length() - 1
    r = ratio >> (msb - 127) if msb >= 128 else ratio << (127 - msb)
    log_2 = (msb - 128) << 64
    for shift in range(63, 49, -1):
        r = (r * r) >> 127
        f = r >> 128
        log_2 |= f << shift
        r >>= f
    log_sqrt10001 = log_2 * _LOG2_TO_LOG_SQRT10001
    tick_low = (log_sqrt10001 - _TICK_LOW_ERROR) >> 128
    tick_high = (log_sqrt10001 + _TICK_HIGH_ERROR) >> 128
    if tick_low == tick_high or get_sqrt_ratio_at_tick(tick_high) > sqrt_price_x96:
        return tick_low
    return tick_high


def full_range_ticks(tick_spacing: int) -> tuple[int, int]:
    """The widest usable (lower, upper) ticks for a spacing: the full-range position's bounds."""
    if tick_spacing <= 0:
        raise ProtocolMathError(f"tick spacing must be positive, got {tick_spacing}")
    widest = MAX_TICK // tick_spacing * tick_spacing
    return -widest, widest


def nearest_usable_tick(tick: int, tick_spacing: int) -> int:
    """SDK nearestUsableTick: round to the spacing (halves up, as JS Math.round), stay in range."""
    if tick_spacing <= 0:
        raise ProtocolMathError(f"tick spacing must be positive, got {tick_spacing}")
    if not MIN_TICK <= tick <= MAX_TICK:
        raise ProtocolMathError(f"tick {tick} is outside [{MIN_TICK}, {MAX_TICK}]")
    rounded = (2 * tick + tick_spacing) // (2 * tick_spacing) * tick_spacing
    if rounded < MIN_TICK:
        return rounded + tick_spacing
    if rounded > MAX_TICK:
        return rounded - tick_spacing
    return rounded


# --- Prices: sqrtPriceX96, ticks and human units -------------------------------------------------


def encode_sqrt_ratio_x96(amount1: int, amount0: int) -> int:
    """SDK encodeSqrtRatioX96: floor(sqrt(amount1/amount0) * 2^96), exact for any raw ratio."""
    if amount0 <= 0 or amount1 < 0:
        raise ProtocolMathError(f"need amount0 > 0 and amount1 >= 0, got {amount0}, {amount1}")
    return math.isqrt((amount1 << 192) // amount0)


def _raw_price(price: float | Fraction, decimals0: int, decimals1: int) -> Fraction:
    """Human price (token1 per token0, whole tokens) as the exact raw-unit ratio the pool stores."""
    if decimals0 < 0 or decimals1 < 0:
        raise ProtocolMathError(f"decimals must be >= 0, got {decimals0}, {decimals1}")
    if not (math.isfinite(price) and price > 0):
        raise ProtocolMathError(f"price must be positive and finite, got {price}")
    return Fraction(price) * Fraction(10) ** (decimals1 - decimals0)


def price_to_sqrt_price_x96(price: float | Fraction, decimals0: int = 0, decimals1: int = 0) -> int:
    """sqrtPriceX96 of a human price (token1 per token0): the exact ratio, floored like the SDK."""
    raw = _raw_price(price, decimals0, decimals1)
    sqrt_price_x96 = encode_sqrt_ratio_x96(raw.numerator, raw.denominator)
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise ProtocolMathError(f"price {price} is outside what a v3 pool can represent")
    return sqrt_price_x96


def sqrt_price_x96_to_price(sqrt_price_x96: int, decimals0: int = 0, decimals1: int = 0) -> float:
    """Human price (token1 per token0, whole tokens) of a Q64.96 sqrt price; 1/x is the inverse."""
    _require_sqrt_price("sqrt_price_x96", sqrt_price_x96)
    return (sqrt_price_x96 / Q96) ** 2 * 10.0 ** (decimals0 - decimals1)


def tick_to_price(tick: int, decimals0: int = 0, decimals1: int = 0) -> float:
    """Human price at a tick, from the contract's own sqrt ratio (not a float 1.0001**tick)."""
    return sqrt_price_x96_to_price(get_sqrt_ratio_at_tick(tick), decimals0, decimals1)


def price_to_tick(price: float | Fraction, decimals0: int = 0, decimals1: int = 0) -> int:
    """Greatest tick whose exact price is <= price (the SDK's priceToClosestTick)."""
    return get_tick_at_sqrt_ratio(price_to_sqrt_price_x96(price, decimals0, decimals1))


def price_range_to_ticks(
    price_lower: float | Fraction,
    price_upper: float | Fraction,
    tick_spacing: int,
    decimals0: int = 0,
    decimals1: int = 0,
) -> tuple[int, int]:
    """Smallest usable tick range containing [price_lower, price_upper] (rounded outward).

    Prices are token1 per token0; for an inverted quote (e.g. USD per ETH with USDC as token0)
    pass the inverses, swapped: the low human price becomes the upper bound.
    """
    if not price_lower < price_upper:
        raise ProtocolMathError(f"need price_lower < price_upper, got {price_lower}, {price_upper}")
    lowest, highest = full_range_ticks(tick_spacing)
    lower = price_to_tick(price_lower, decimals0, decimals1) // tick_spacing * tick_spacing
    upper = price_to_tick(price_upper, decimals0, decimals1)
    raw_upper = _raw_price(price_upper, decimals0, decimals1)
    if get_sqrt_ratio_at_tick(upper) ** 2 * raw_upper.denominator < raw_upper.numerator << 192:
        upper += 1  # the tick's price is below price_upper: the first tick at or above it is next
    upper = -(-upper // tick_spacing) * tick_spacing
    return max(lower, lowest), min(upper, highest)


def get_quote_at_tick(tick: int, base_amount: int, base_is_token0: bool) -> int:
    """OracleLibrary.getQuoteAtTick: base_amount of one token valued in the other at a tick."""
    _require_uint("base_amount", base_amount, 128)
    sqrt_ratio_x96 = get_sqrt_ratio_at_tick(tick)
    if sqrt_ratio_x96 <= _MAX_UINT128:
        ratio, one = sqrt_ratio_x96 * sqrt_ratio_x96, 1 << 192
    else:
        ratio, one = mul_div(sqrt_ratio_x96, sqrt_ratio_x96, 1 << 64), 1 << 128
    if base_is_token0:
        return mul_div(ratio, base_amount, one)
    return mul_div(one, base_amount, ratio)


# --- SqrtPriceMath -------------------------------------------------------------------------------


def _next_sqrt_price_from_amount0_rounding_up(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Rounds up so the price never moves past what the token0 actually paid or left allows."""
    if amount == 0:
        return sqrt_price_x96
    numerator1 = liquidity << 96
    product = amount * sqrt_price_x96
    if add:
        if product <= _MAX_UINT256 and numerator1 + product <= _MAX_UINT256:
            return mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 + product)
        # The contract's fallback when amount * sqrtP overflows 256 bits: a less precise formula.
        denominator = numerator1 // sqrt_price_x96 + amount
        if denominator > _MAX_UINT256:
            raise ProtocolMathError("token0 amount overflows uint256 in the price update")
        return div_rounding_up(numerator1, denominator)
    if product > _MAX_UINT256 or numerator1 <= product:
        raise ProtocolMathError("token0 output reaches the virtual reserve: no price can pay it")
    return _to_uint160(mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 - product))


def _next_sqrt_price_from_amount1_rounding_down(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Rounds down so the price never moves past what the token1 actually paid or left allows."""
    if add:
        return _to_uint160(sqrt_price_x96 + mul_div(amount, Q96, liquidity))
    quotient = mul_div_rounding_up(amount, Q96, liquidity)
    if sqrt_price_x96 <= quotient:
        raise ProtocolMathError("token1 output reaches the virtual reserve: no price can pay it")
    return sqrt_price_x96 - quotient


def _require_price_and_liquidity(sqrt_price_x96: int, liquidity: int, amount: int) -> None:
    _require_sqrt_price("sqrt_price_x96", sqrt_price_x96)
    _require_uint("liquidity", liquidity, 128)
    _require_uint("amount", amount, 256)
    if liquidity == 0:
        raise ProtocolMathError("liquidity must be positive to move the price")


def get_next_sqrt_price_from_input(
    sqrt_price_x96: int, liquidity: int, amount_in: int, zero_for_one: bool
) -> int:
    """Price after amount_in of the input token enters one liquidity range (token0 in lowers it)."""
    _require_price_and_liquidity(sqrt_price_x96, liquidity, amount_in)
    if zero_for_one:
        return _next_sqrt_price_from_amount0_rounding_up(sqrt_price_x96, liquidity, amount_in, True)
    return _next_sqrt_price_from_amount1_rounding_down(sqrt_price_x96, liquidity, amount_in, True)


def get_next_sqrt_price_from_output(
    sqrt_price_x96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    """Price after amount_out of the output token leaves one liquidity range."""
    _require_price_and_liquidity(sqrt_price_x96, liquidity, amount_out)
    if zero_for_one:
        return _next_sqrt_price_from_amount1_rounding_down(
            sqrt_price_x96, liquidity, amount_out, False
        )
    return _next_sqrt_price_from_amount0_rounding_up(sqrt_price_x96, liquidity, amount_out, False)


def _sorted_sqrt_prices(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int) -> tuple[int, int]:
    _require_sqrt_price("sqrt_ratio_a_x96", sqrt_ratio_a_x96)
    _require_sqrt_price("sqrt_ratio_b_x96", sqrt_ratio_b_x96)
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        return sqrt_ratio_b_x96, sqrt_ratio_a_x96
    return sqrt_ratio_a_x96, sqrt_ratio_b_x96


def get_amount0_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """Token0 between two sqrt prices: L*2^96*(b-a)/b/a; round up what the pool receives."""
    _require_uint("liquidity", liquidity, 128)
    lower, upper = _sorted_sqrt_prices(sqrt_ratio_a_x96, sqrt_ratio_b_x96)
    numerator1, numerator2 = liquidity << 96, upper - lower
    if round_up:
        return div_rounding_up(mul_div_rounding_up(numerator1, numerator2, upper), lower)
    return mul_div(numerator1, numerator2, upper) // lower


def get_amount1_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """Token1 between two sqrt prices: L*(b-a)/2^96; round up what the pool receives."""
    _require_uint("liquidity", liquidity, 128)
    lower, upper = _sorted_sqrt_prices(sqrt_ratio_a_x96, sqrt_ratio_b_x96)
    if round_up:
        return mul_div_rounding_up(liquidity, upper - lower, Q96)
    return mul_div(liquidity, upper - lower, Q96)


def _signed_delta(
    delta: Callable[[int, int, int, bool], int], sqrt_a: int, sqrt_b: int, liquidity_delta: int
) -> int:
    if liquidity_delta < 0:
        return -delta(sqrt_a, sqrt_b, -liquidity_delta, False)
    return delta(sqrt_a, sqrt_b, liquidity_delta, True)


def get_amount0_delta_signed(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity_delta: int
) -> int:
    """Signed token0 for a liquidity change: adding rounds up (paid in), removing rounds down."""
    return _signed_delta(get_amount0_delta, sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity_delta)


def get_amount1_delta_signed(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity_delta: int
) -> int:
    """Signed token1 for a liquidity change: adding rounds up (paid in), removing rounds down."""
    return _signed_delta(get_amount1_delta, sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity_delta)


# --- SwapMath ------------------------------------------------------------------------------------


class SwapStep(NamedTuple):
    """One SwapMath.computeSwapStep: where the price stops, what moved, and the fee apart."""

    sqrt_price_next_x96: int
    amount_in: int
    amount_out: int
    fee_amount: int


def compute_swap_step(
    sqrt_ratio_current_x96: int,
    sqrt_ratio_target_x96: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> SwapStep:
    """Swap within one liquidity range towards a target price; amount_remaining > 0 is exact input,
    < 0 exact output. Direction is implied: target <= current means token0 in (zeroForOne)."""
    if not 0 <= fee_pips < FEE_PIPS_DENOMINATOR:
        raise ProtocolMathError(f"fee must be in [0, 1e6) pips, got {fee_pips}")
    if not -(1 << 255) <= amount_remaining < 1 << 255:
        raise ProtocolMathError(f"amount_remaining must be an int256, got {amount_remaining}")
    zero_for_one = sqrt_ratio_current_x96 >= sqrt_ratio_target_x96
    exact_in = amount_remaining >= 0
    current, target = sqrt_ratio_current_x96, sqrt_ratio_target_x96
    amount_in = amount_out = 0
    if exact_in:
        remaining_less_fee = mul_div(
            amount_remaining, FEE_PIPS_DENOMINATOR - fee_pips, FEE_PIPS_DENOMINATOR
        )
        if zero_for_one:
            amount_in = get_amount0_delta(target, current, liquidity, True)
        else:
            amount_in = get_amount1_delta(current, target, liquidity, True)
        if remaining_less_fee >= amount_in:
            sqrt_next = target
        else:
            sqrt_next = get_next_sqrt_price_from_input(
                current, liquidity, remaining_less_fee, zero_for_one
            )
    else:
        if zero_for_one:
            amount_out = get_amount1_delta(target, current, liquidity, False)
        else:
            amount_out = get_amount0_delta(current, target, liquidity, False)
        if -amount_remaining >= amount_out:
            sqrt_next = target
        else:
            sqrt_next = get_next_sqrt_price_from_output(
                current, liquidity, -amount_remaining, zero_for_one
            )
    reached = sqrt_next == target
    if zero_for_one:
        if not (reached and exact_in):
            amount_in = get_amount0_delta(sqrt_next, current, liquidity, True)
        if not (reached and not exact_in):
            amount_out = get_amount1_delta(sqrt_next, current, liquidity, False)
    else:
        if not (reached and exact_in):
            amount_in = get_amount1_delta(current, sqrt_next, liquidity, True)
        if not (reached and not exact_in):
            amount_out = get_amount0_delta(current, sqrt_next, liquidity, False)
    if not exact_in:
        amount_out = min(amount_out, -amount_remaining)
    if exact_in and not reached:
        fee_amount = amount_remaining - amount_in  # the input that could not move the price is fee
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, FEE_PIPS_DENOMINATOR - fee_pips)
    return SwapStep(sqrt_next, amount_in, amount_out, fee_amount)


# --- LiquidityAmounts (periphery) and maxLiquidityForAmounts (SDK) -------------------------------


def _liquidity0_imprecise(sqrt_a: int, sqrt_b: int, amount0: int) -> int:
    """Periphery formula: floors sqrtA*sqrtB/2^96 first, which is what the chain mints."""
    return amount0 * mul_div(sqrt_a, sqrt_b, Q96) // (sqrt_b - sqrt_a)


def _liquidity0_precise(sqrt_a: int, sqrt_b: int, amount0: int) -> int:
    return amount0 * sqrt_a * sqrt_b // (Q96 * (sqrt_b - sqrt_a))


def _liquidity1(sqrt_a: int, sqrt_b: int, amount1: int) -> int:
    return amount1 * Q96 // (sqrt_b - sqrt_a)


def _liquidity_for_amounts(
    sqrt_ratio_x96: int,
    sqrt_ratio_a_x96: int,
    sqrt_ratio_b_x96: int,
    amount0: int,
    amount1: int,
    liquidity0: Callable[[int, int, int], int],
    liquidity1: Callable[[int, int, int], int],
) -> int:
    """Largest liquidity both amounts can fund: only token0 below the range, only token1 above."""
    _require_sqrt_price("sqrt_ratio_x96", sqrt_ratio_x96)
    if amount0 < 0 or amount1 < 0:
        raise ProtocolMathError(f"amounts must be >= 0, got {amount0}, {amount1}")
    sqrt_a, sqrt_b = _sorted_sqrt_prices(sqrt_ratio_a_x96, sqrt_ratio_b_x96)
    if sqrt_a == sqrt_b:
        raise ProtocolMathError("the range is empty: both bounds have the same sqrt price")
    if sqrt_ratio_x96 <= sqrt_a:
        return liquidity0(sqrt_a, sqrt_b, amount0)
    if sqrt_ratio_x96 < sqrt_b:
        return min(
            liquidity0(sqrt_ratio_x96, sqrt_b, amount0),
            liquidity1(sqrt_a, sqrt_ratio_x96, amount1),
        )
    return liquidity1(sqrt_a, sqrt_b, amount1)


def get_liquidity_for_amounts(
    sqrt_ratio_x96: int, sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, amount0: int, amount1: int
) -> int:
    """LiquidityAmounts.getLiquidityForAmounts: what a mint through the periphery would get.

    Each side must fit uint128, as on chain (the SDK variant below has no such limit).
    """
    return _liquidity_for_amounts(
        sqrt_ratio_x96,
        sqrt_ratio_a_x96,
        sqrt_ratio_b_x96,
        amount0,
        amount1,
        lambda a, b, x: _to_uint128(_liquidity0_imprecise(a, b, x)),
        lambda a, b, y: _to_uint128(_liquidity1(a, b, y)),
    )


def max_liquidity_for_amounts(
    sqrt_ratio_current_x96: int,
    sqrt_ratio_a_x96: int,
    sqrt_ratio_b_x96: int,
    amount0: int,
    amount1: int,
    *,
    use_full_precision: bool,
) -> int:
    """SDK maxLiquidityForAmounts (unbounded ints); imprecise = the on-chain periphery result."""
    return _liquidity_for_amounts(
        sqrt_ratio_current_x96,
        sqrt_ratio_a_x96,
        sqrt_ratio_b_x96,
        amount0,
        amount1,
        _liquidity0_precise if use_full_precision else _liquidity0_imprecise,
        _liquidity1,
    )


def get_amounts_for_liquidity(
    sqrt_ratio_x96: int,
    sqrt_ratio_a_x96: int,
    sqrt_ratio_b_x96: int,
    liquidity: int,
    round_up: bool = False,
) -> tuple[int, int]:
    """Token amounts of `liquidity` in a range at a price: rounded down for what a position holds
    (periphery getAmountsForLiquidity), up for what a mint pays (SDK mintAmounts, pool.mint)."""
    _require_sqrt_price("sqrt_ratio_x96", sqrt_ratio_x96)
    sqrt_a, sqrt_b = _sorted_sqrt_prices(sqrt_ratio_a_x96, sqrt_ratio_b_x96)
    if sqrt_ratio_x96 <= sqrt_a:
        return get_amount0_delta(sqrt_a, sqrt_b, liquidity, round_up), 0
    if sqrt_ratio_x96 < sqrt_b:
        return (
            get_amount0_delta(sqrt_ratio_x96, sqrt_b, liquidity, round_up),
            get_amount1_delta(sqrt_a, sqrt_ratio_x96, liquidity, round_up),
        )
    return 0, get_amount1_delta(sqrt_a, sqrt_b, liquidity, round_up)


# --- Fees ----------------------------------------------------------------------------------------


def get_fee_growth_inside(
    tick_lower: int,
    tick_upper: int,
    tick_current: int,
    fee_growth_global_x128: int,
    fee_growth_outside_lower_x128: int,
    fee_growth_outside_upper_x128: int,
) -> int:
    """Tick.getFeeGrowthInside for one token: fees per unit of liquidity earned inside the range.

    The accumulators wrap mod 2^256 by design; only differences of them are meaningful.
    """
    if not tick_lower < tick_upper:
        raise ProtocolMathError(f"need tick_lower < tick_upper, got {tick_lower}, {tick_upper}")
    below = fee_growth_outside_lower_x128
    if tick_current < tick_lower:
        below = fee_growth_global_x128 - fee_growth_outside_lower_x128
    above = fee_growth_outside_upper_x128
    if tick_current >= tick_upper:
        above = fee_growth_global_x128 - fee_growth_outside_upper_x128
    return (fee_growth_global_x128 - below - above) & _MAX_UINT256


def fees_owed(liquidity: int, fee_growth_inside_x128: int, fee_growth_inside_last_x128: int) -> int:
    """Fees a position earned since its last checkpoint: L * (inside - last mod 2^256) / 2^128."""
    _require_uint("liquidity", liquidity, 128)
    growth = (fee_growth_inside_x128 - fee_growth_inside_last_x128) & _MAX_UINT256
    return mul_div(growth, liquidity, Q128)
