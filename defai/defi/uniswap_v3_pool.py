"""A Uniswap v3 pool as immutable state: initialise, mint, burn, collect, swap across ticks.

The paper AMM venue and price-impact / sandwich models need what UniswapV3Pool does, not an
approximation of it: the swap loop stops at every initialised tick and at every 256-tick bitmap
word (each stop rounds on its own), crosses ticks by flipping their fee-growth-outside values,
and reverts with the contract's reason strings. Each call returns a new `PoolState`; the oracle
and the protocol fee (zero on the pools modelled here) are left out.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import NamedTuple

from defai.defi.uniswap_v3 import (
    FEE_PIPS_DENOMINATOR,
    FEE_TIER_TICK_SPACING,
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q128,
    UniswapV3Revert,
    compute_swap_step,
    fees_owed,
    full_range_ticks,
    get_amounts_for_liquidity,
    get_fee_growth_inside,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    mul_div,
    sqrt_price_x96_to_price,
)
from defai.errors import ProtocolMathError

_MAX_UINT128 = (1 << 128) - 1
_MAX_UINT256 = (1 << 256) - 1
_MAX_TICK_SPACING = 16384  # the factory's bound, which keeps the bitmap walk from looping forever


@dataclass(frozen=True, slots=True)
class TickInfo:
    """An initialised tick: liquidity using it, net liquidity crossing it, fee growth beyond it."""

    liquidity_gross: int
    liquidity_net: int
    fee_growth_outside0_x128: int = 0
    fee_growth_outside1_x128: int = 0


@dataclass(frozen=True, slots=True)
class PoolState:
    """slot0 price and tick, active liquidity, fee accumulators and the initialised ticks.

    `ticks` is a read-only view; every operation returns a state with a new one.
    """

    fee_pips: int
    tick_spacing: int
    sqrt_price_x96: int
    tick: int
    liquidity: int = 0
    fee_growth_global0_x128: int = 0
    fee_growth_global1_x128: int = 0
    ticks: Mapping[int, TickInfo] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True, slots=True)
class Position:
    """One LP position (owner left to the caller) with its fee checkpoint and uncollected tokens."""

    tick_lower: int
    tick_upper: int
    liquidity: int = 0
    fee_growth_inside0_last_x128: int = 0
    fee_growth_inside1_last_x128: int = 0
    tokens_owed0: int = 0
    tokens_owed1: int = 0


class PositionChange(NamedTuple):
    """A mint or burn: the new pool and position, and the token amounts (>= 0) moved."""

    pool: PoolState
    position: Position
    amount0: int
    amount1: int


class SwapResult(NamedTuple):
    """The pool after a swap and its balance changes: > 0 paid in by the swapper, < 0 paid out."""

    pool: PoolState
    amount0: int
    amount1: int


def max_liquidity_per_tick(tick_spacing: int) -> int:
    """Tick.tickSpacingToMaxLiquidityPerTick: the cap that keeps liquidityNet inside int128."""
    lowest, highest = full_range_ticks(tick_spacing)
    return _MAX_UINT128 // ((highest - lowest) // tick_spacing + 1)


def initialize_pool(
    sqrt_price_x96: int, fee_pips: int, tick_spacing: int | None = None
) -> PoolState:
    """A fresh pool at a price; the tick spacing defaults to the factory's one for the fee tier."""
    if tick_spacing is None:
        if fee_pips not in FEE_TIER_TICK_SPACING:
            raise ProtocolMathError(f"fee {fee_pips} is not a standard tier: give the tick spacing")
        tick_spacing = FEE_TIER_TICK_SPACING[fee_pips]
    if not 0 < tick_spacing < _MAX_TICK_SPACING:
        raise ProtocolMathError(
            f"tick spacing must be in (0, {_MAX_TICK_SPACING}), got {tick_spacing}"
        )
    if not 0 <= fee_pips < FEE_PIPS_DENOMINATOR:
        raise ProtocolMathError(f"fee must be in [0, 1e6) pips, got {fee_pips}")
    return PoolState(fee_pips, tick_spacing, sqrt_price_x96, get_tick_at_sqrt_ratio(sqrt_price_x96))


def _add_delta(liquidity: int, delta: int) -> int:
    """LiquidityMath.addDelta: uint128 liquidity that can neither go negative nor overflow."""
    result = liquidity + delta
    if result < 0:
        raise UniswapV3Revert("LS", f"liquidity {liquidity} cannot lose {-delta}")
    if result > _MAX_UINT128:
        raise UniswapV3Revert("LA", f"liquidity {liquidity} + {delta} overflows uint128")
    return result


def pool_fee_growth_inside(pool: PoolState, tick_lower: int, tick_upper: int) -> tuple[int, int]:
    """Fee growth per unit of liquidity inside a range, both tokens (uninitialised ticks read 0)."""
    lower = pool.ticks.get(tick_lower, TickInfo(0, 0))
    upper = pool.ticks.get(tick_upper, TickInfo(0, 0))
    return (
        get_fee_growth_inside(
            tick_lower,
            tick_upper,
            pool.tick,
            pool.fee_growth_global0_x128,
            lower.fee_growth_outside0_x128,
            upper.fee_growth_outside0_x128,
        ),
        get_fee_growth_inside(
            tick_lower,
            tick_upper,
            pool.tick,
            pool.fee_growth_global1_x128,
            lower.fee_growth_outside1_x128,
            upper.fee_growth_outside1_x128,
        ),
    )


def _updated_tick(pool: PoolState, tick: int, liquidity_delta: int, upper: bool) -> TickInfo:
    """Tick.update: a newly used tick at or below the price starts with all growth 'outside'."""
    info = pool.ticks.get(tick)
    if info is None:
        below = tick <= pool.tick
        info = TickInfo(
            0,
            0,
            pool.fee_growth_global0_x128 if below else 0,
            pool.fee_growth_global1_x128 if below else 0,
        )
    gross = _add_delta(info.liquidity_gross, liquidity_delta)
    if gross > max_liquidity_per_tick(pool.tick_spacing):
        raise UniswapV3Revert("LO", f"tick {tick} would hold more than the per-tick maximum")
    net = info.liquidity_net - liquidity_delta if upper else info.liquidity_net + liquidity_delta
    return replace(info, liquidity_gross=gross, liquidity_net=net)


def _modify_position(pool: PoolState, position: Position, liquidity_delta: int) -> PositionChange:
    """UniswapV3Pool._modifyPosition: ticks, fee checkpoint, active liquidity, token amounts."""
    lower, upper = position.tick_lower, position.tick_upper
    if lower >= upper:
        raise UniswapV3Revert("TLU", f"tick_lower {lower} must be below tick_upper {upper}")
    if lower < MIN_TICK:
        raise UniswapV3Revert("TLM", f"tick_lower {lower} is below MIN_TICK")
    if upper > MAX_TICK:
        raise UniswapV3Revert("TUM", f"tick_upper {upper} is above MAX_TICK")
    if lower % pool.tick_spacing or upper % pool.tick_spacing:
        raise ProtocolMathError(f"ticks {lower}, {upper} are not multiples of {pool.tick_spacing}")
    if liquidity_delta == 0 and position.liquidity == 0:
        raise UniswapV3Revert("NP", "cannot poke a position without liquidity")
    ticks = dict(pool.ticks)
    if liquidity_delta != 0:
        ticks[lower] = _updated_tick(pool, lower, liquidity_delta, upper=False)
        ticks[upper] = _updated_tick(pool, upper, liquidity_delta, upper=True)
    inside0, inside1 = pool_fee_growth_inside(replace(pool, ticks=ticks), lower, upper)
    position = Position(
        lower,
        upper,
        _add_delta(position.liquidity, liquidity_delta),
        inside0,
        inside1,
        position.tokens_owed0
        + fees_owed(position.liquidity, inside0, position.fee_growth_inside0_last_x128),
        position.tokens_owed1
        + fees_owed(position.liquidity, inside1, position.fee_growth_inside1_last_x128),
    )
    if liquidity_delta < 0:
        for tick in (lower, upper):
            if ticks[tick].liquidity_gross == 0:
                del ticks[tick]
    liquidity = pool.liquidity
    if lower <= pool.tick < upper:
        liquidity = _add_delta(liquidity, liquidity_delta)
    amount0, amount1 = get_amounts_for_liquidity(
        pool.sqrt_price_x96,
        get_sqrt_ratio_at_tick(lower),
        get_sqrt_ratio_at_tick(upper),
        abs(liquidity_delta),
        round_up=liquidity_delta > 0,
    )
    new_pool = replace(pool, liquidity=liquidity, ticks=MappingProxyType(ticks))
    return PositionChange(new_pool, position, amount0, amount1)


def mint(pool: PoolState, position: Position, liquidity: int) -> PositionChange:
    """Add liquidity to a position; the amounts are what the minter pays in (rounded up)."""
    if liquidity <= 0:
        raise ProtocolMathError(f"mint needs positive liquidity, got {liquidity}")
    return _modify_position(pool, position, liquidity)


def burn(pool: PoolState, position: Position, liquidity: int) -> PositionChange:
    """Remove liquidity (0 only settles fees): principal and fees become tokens owed."""
    if liquidity < 0:
        raise ProtocolMathError(f"burn needs liquidity >= 0, got {liquidity}")
    pool, position, amount0, amount1 = _modify_position(pool, position, -liquidity)
    position = replace(
        position,
        tokens_owed0=position.tokens_owed0 + amount0,
        tokens_owed1=position.tokens_owed1 + amount1,
    )
    return PositionChange(pool, position, amount0, amount1)


def collect(
    position: Position, amount0_requested: int, amount1_requested: int
) -> tuple[Position, int, int]:
    """Withdraw up to the requested tokens owed: the position and the amounts actually paid."""
    amount0 = min(amount0_requested, position.tokens_owed0)
    amount1 = min(amount1_requested, position.tokens_owed1)
    if amount0 < 0 or amount1 < 0:
        raise ProtocolMathError("collect amounts must be >= 0")
    return (
        replace(
            position,
            tokens_owed0=position.tokens_owed0 - amount0,
            tokens_owed1=position.tokens_owed1 - amount1,
        ),
        amount0,
        amount1,
    )


def position_principal(pool: PoolState, position: Position) -> tuple[int, int]:
    """PositionValue.principal: the tokens the liquidity holds at the pool price (rounded down)."""
    return get_amounts_for_liquidity(
        pool.sqrt_price_x96,
        get_sqrt_ratio_at_tick(position.tick_lower),
        get_sqrt_ratio_at_tick(position.tick_upper),
        position.liquidity,
    )


def position_fees(pool: PoolState, position: Position) -> tuple[int, int]:
    """PositionValue.fees: tokens owed plus fees earned since the position's last checkpoint."""
    inside0, inside1 = pool_fee_growth_inside(pool, position.tick_lower, position.tick_upper)
    return (
        position.tokens_owed0
        + fees_owed(position.liquidity, inside0, position.fee_growth_inside0_last_x128),
        position.tokens_owed1
        + fees_owed(position.liquidity, inside1, position.fee_growth_inside1_last_x128),
    )


def position_value(pool: PoolState, position: Position) -> tuple[int, int]:
    """PositionValue.total: principal plus fees, per token, in raw units."""
    principal0, principal1 = position_principal(pool, position)
    fees0, fees1 = position_fees(pool, position)
    return principal0 + fees0, principal1 + fees1


def position_value_in_quote(
    pool: PoolState,
    position: Position,
    decimals0: int,
    decimals1: int,
    *,
    quote_is_token0: bool = False,
) -> float:
    """Principal plus fees in whole quote tokens at the pool price, as a backtest marks it."""
    amount0, amount1 = position_value(pool, position)
    price = sqrt_price_x96_to_price(pool.sqrt_price_x96, decimals0, decimals1)
    in_token1: float = amount0 / 10**decimals0 * price + amount1 / 10**decimals1
    return in_token1 / price if quote_is_token0 else in_token1


def _next_initialized_tick_within_one_word(
    initialized: list[int], tick: int, tick_spacing: int, lte: bool
) -> tuple[int, bool]:
    """TickBitmap.nextInitializedTickWithinOneWord over a sorted list of initialised ticks.

    The search never leaves the current 256-tick bitmap word, so a swap through empty ticks still
    stops at word boundaries: the contract rounds each such step, and so must we.
    """
    compressed = tick // tick_spacing
    if lte:
        word_start = (compressed >> 8) << 8
        index = bisect_right(initialized, compressed * tick_spacing) - 1
        if index >= 0 and initialized[index] >= word_start * tick_spacing:
            return initialized[index], True
        return word_start * tick_spacing, False
    word_end = (((compressed + 1) >> 8) << 8) + 255
    index = bisect_left(initialized, (compressed + 1) * tick_spacing)
    if index < len(initialized) and initialized[index] <= word_end * tick_spacing:
        return initialized[index], True
    return word_end * tick_spacing, False


def swap(
    pool: PoolState,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_price_limit_x96: int | None = None,
) -> SwapResult:
    """UniswapV3Pool.swap: amount_specified > 0 is exact input, < 0 exact output (of the other
    token). Without a limit the price may run to the end of the tick range, as in the v3 tests."""
    if amount_specified == 0:
        raise UniswapV3Revert("AS", "amount_specified must not be zero")
    if sqrt_price_limit_x96 is None:
        sqrt_price_limit_x96 = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    if (
        not pool.sqrt_price_x96 > sqrt_price_limit_x96 > MIN_SQRT_RATIO
        if zero_for_one
        else not pool.sqrt_price_x96 < sqrt_price_limit_x96 < MAX_SQRT_RATIO
    ):
        raise UniswapV3Revert(
            "SPL", f"price limit {sqrt_price_limit_x96} is on the wrong side of the pool price"
        )
    exact_input = amount_specified > 0
    remaining, calculated = amount_specified, 0
    sqrt_price, tick, liquidity = pool.sqrt_price_x96, pool.tick, pool.liquidity
    fee_growth0, fee_growth1 = pool.fee_growth_global0_x128, pool.fee_growth_global1_x128
    ticks = dict(pool.ticks)
    initialized = sorted(ticks)
    while remaining != 0 and sqrt_price != sqrt_price_limit_x96:
        step_start = sqrt_price
        tick_next, is_initialized = _next_initialized_tick_within_one_word(
            initialized, tick, pool.tick_spacing, zero_for_one
        )
        tick_next = min(max(tick_next, MIN_TICK), MAX_TICK)
        sqrt_price_next = get_sqrt_ratio_at_tick(tick_next)
        beyond_limit = (
            sqrt_price_next < sqrt_price_limit_x96
            if zero_for_one
            else sqrt_price_next > sqrt_price_limit_x96
        )
        sqrt_price, amount_in, amount_out, fee_amount = compute_swap_step(
            sqrt_price,
            sqrt_price_limit_x96 if beyond_limit else sqrt_price_next,
            liquidity,
            remaining,
            pool.fee_pips,
        )
        if exact_input:
            remaining -= amount_in + fee_amount
            calculated -= amount_out
        else:
            remaining += amount_out
            calculated += amount_in + fee_amount
        if liquidity > 0:
            growth = mul_div(fee_amount, Q128, liquidity)
            if zero_for_one:
                fee_growth0 = (fee_growth0 + growth) & _MAX_UINT256
            else:
                fee_growth1 = (fee_growth1 + growth) & _MAX_UINT256
        if sqrt_price == sqrt_price_next:
            if is_initialized:
                info = ticks[tick_next]
                ticks[tick_next] = replace(
                    info,
                    fee_growth_outside0_x128=(fee_growth0 - info.fee_growth_outside0_x128)
                    & _MAX_UINT256,
                    fee_growth_outside1_x128=(fee_growth1 - info.fee_growth_outside1_x128)
                    & _MAX_UINT256,
                )
                liquidity = _add_delta(
                    liquidity, -info.liquidity_net if zero_for_one else info.liquidity_net
                )
            tick = tick_next - 1 if zero_for_one else tick_next
        elif sqrt_price != step_start:
            tick = get_tick_at_sqrt_ratio(sqrt_price)
    specified_moved = amount_specified - remaining
    amount0, amount1 = (
        (specified_moved, calculated)
        if zero_for_one == exact_input
        else (calculated, specified_moved)
    )
    new_pool = replace(
        pool,
        sqrt_price_x96=sqrt_price,
        tick=tick,
        liquidity=liquidity,
        fee_growth_global0_x128=fee_growth0,
        fee_growth_global1_x128=fee_growth1,
        ticks=MappingProxyType(ticks),
    )
    return SwapResult(new_pool, amount0, amount1)
