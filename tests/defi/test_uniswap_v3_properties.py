"""Properties the Uniswap v3 maths must keep for any input, not just the reference vectors."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from defai.defi.uniswap_v3 import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_amounts_for_liquidity,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    max_liquidity_for_amounts,
    price_to_tick,
    tick_to_price,
)
from defai.defi.uniswap_v3_lp import impermanent_loss_full_range, impermanent_loss_range
from defai.defi.uniswap_v3_pool import (
    PoolState,
    Position,
    initialize_pool,
    mint,
    position_value,
    swap,
)

_MAX_UINT128 = (1 << 128) - 1
ticks = st.integers(MIN_TICK, MAX_TICK)


@given(st.integers(MIN_TICK, MAX_TICK - 1))
def test_tick_round_trips_through_its_sqrt_price(tick: int) -> None:
    assert get_tick_at_sqrt_ratio(get_sqrt_ratio_at_tick(tick)) == tick


@given(st.integers(MIN_TICK, MAX_TICK - 1))
def test_sqrt_price_is_strictly_increasing_in_tick(tick: int) -> None:
    assert get_sqrt_ratio_at_tick(tick) < get_sqrt_ratio_at_tick(tick + 1)


@given(st.integers(MIN_TICK, MAX_TICK - 1), st.floats(0, 1, exclude_max=True))
def test_tick_at_sqrt_price_is_the_greatest_tick_at_or_below_it(tick: int, fraction: float) -> None:
    low, high = get_sqrt_ratio_at_tick(tick), get_sqrt_ratio_at_tick(tick + 1)
    sqrt_price = low + int((high - low) * fraction)
    assume(MIN_SQRT_RATIO <= sqrt_price < MAX_SQRT_RATIO)
    assert get_tick_at_sqrt_ratio(sqrt_price) == tick


@given(st.integers(MIN_TICK + 1, MAX_TICK - 1), st.integers(0, 24), st.integers(0, 24))
def test_human_price_maps_back_to_its_tick(tick: int, decimals0: int, decimals1: int) -> None:
    # A hair above the tick's price, so float rounding cannot drop it into the tick below.
    price = tick_to_price(tick, decimals0, decimals1) * (1 + 1e-9)
    assert price_to_tick(price, decimals0, decimals1) == tick


@st.composite
def _range_and_price(draw: st.DrawFn) -> tuple[int, int, int]:
    """(sqrt price, lower sqrt, upper sqrt): ticks anywhere, the price below, inside or above."""
    lower, upper = sorted(draw(st.lists(ticks, min_size=2, max_size=2, unique=True)))
    price_tick = draw(st.integers(max(MIN_TICK, lower - 1000), min(MAX_TICK - 1, upper + 1000)))
    sqrt_price = get_sqrt_ratio_at_tick(price_tick) + draw(st.integers(0, 10**6))
    return sqrt_price, get_sqrt_ratio_at_tick(lower), get_sqrt_ratio_at_tick(upper)


@given(
    _range_and_price(),
    st.integers(0, 1 << 128),
    st.integers(0, 1 << 128),
    st.booleans(),
)
def test_amounts_to_liquidity_and_back_never_create_value(
    prices: tuple[int, int, int], amount0: int, amount1: int, precise: bool
) -> None:
    liquidity = max_liquidity_for_amounts(*prices, amount0, amount1, use_full_precision=precise)
    assume(liquidity <= _MAX_UINT128)
    held0, held1 = get_amounts_for_liquidity(*prices, liquidity)
    paid0, paid1 = get_amounts_for_liquidity(*prices, liquidity, round_up=True)
    assert held0 <= paid0 <= amount0
    assert held1 <= paid1 <= amount1


@given(st.floats(1e-6, 1e6))
def test_full_range_impermanent_loss_is_a_loss_and_symmetric(price_ratio: float) -> None:
    loss = impermanent_loss_full_range(price_ratio)
    assert -1 < loss <= 0
    assert impermanent_loss_full_range(1 / price_ratio) == pytest.approx(loss, abs=1e-12)


@given(st.floats(1.0, 1e4), st.floats(1.001, 100), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_concentrated_range_loses_at_least_as_much_as_full_range(
    price_lower: float, width: float, start: float, end: float
) -> None:
    """Inside the range a concentrated position is a levered full-range one: IL is amplified."""
    price_upper = price_lower * width
    price0 = price_lower + (price_upper - price_lower) * start
    price1 = price_lower + (price_upper - price_lower) * end
    concentrated = impermanent_loss_range(price0, price1, price_lower, price_upper)
    assert concentrated <= impermanent_loss_full_range(price1 / price0) + 1e-12
    assert concentrated <= 1e-12


_SPACING = 60


@st.composite
def _minted_pool(draw: st.DrawFn) -> tuple[PoolState, list[Position], int, int]:
    """A 0.3% pool near 1:1 with a few random positions, and the balances their mints paid in."""
    pool = initialize_pool(get_sqrt_ratio_at_tick(draw(st.integers(-3000, 3000))), 3000)
    positions, balance0, balance1 = [], 0, 0
    for _ in range(draw(st.integers(1, 4))):
        lower = draw(st.integers(-100, 99)) * _SPACING
        upper = draw(st.integers(lower // _SPACING + 1, 100)) * _SPACING
        pool, position, amount0, amount1 = mint(
            pool, Position(lower, upper), draw(st.integers(1, 10**24))
        )
        positions.append(position)
        balance0, balance1 = balance0 + amount0, balance1 + amount1
    return pool, positions, balance0, balance1


@given(_minted_pool(), st.booleans(), st.integers(1, 10**24), st.booleans())
def test_swap_keeps_the_pool_solvent_and_consistent(
    minted: tuple[PoolState, list[Position], int, int],
    zero_for_one: bool,
    amount: int,
    exact_input: bool,
) -> None:
    pool, positions, balance0, balance1 = minted
    after, amount0, amount1 = swap(pool, zero_for_one, amount if exact_input else -amount)
    paid_in, paid_out = (amount0, amount1) if zero_for_one else (amount1, amount0)
    assert paid_in >= 0 >= paid_out
    if exact_input:
        assert paid_in <= amount
    else:
        assert -paid_out <= amount
    if zero_for_one:
        assert after.sqrt_price_x96 <= pool.sqrt_price_x96
    else:
        assert after.sqrt_price_x96 >= pool.sqrt_price_x96
    # Crossing ticks left exactly the positions around the new tick active.
    assert after.liquidity == sum(
        p.liquidity for p in positions if p.tick_lower <= after.tick < p.tick_upper
    )
    # Every LP can take out principal plus fees and the pool still holds enough.
    values = [position_value(after, p) for p in positions]
    assert sum(v[0] for v in values) <= balance0 + amount0
    assert sum(v[1] for v in values) <= balance1 + amount1
