"""The pool simulator's fee accounting and position life cycle, and the domain errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from defai.defi.uniswap_v3 import (
    FEE_TIER_TICK_SPACING,
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    UniswapV3Revert,
    compute_swap_step,
    fees_owed,
    full_range_ticks,
    get_fee_growth_inside,
    get_liquidity_for_amounts,
    get_next_sqrt_price_from_input,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    price_to_sqrt_price_x96,
    sqrt_price_x96_to_price,
)
from defai.defi.uniswap_v3_lp import range_liquidity, range_lower_price, range_upper_price
from defai.defi.uniswap_v3_pool import (
    PoolState,
    Position,
    burn,
    collect,
    initialize_pool,
    max_liquidity_per_tick,
    mint,
    position_fees,
    position_principal,
    position_value,
    position_value_in_quote,
    swap,
)
from defai.errors import ProtocolMathError

E18 = 10**18
FULL_RANGE = Position(*full_range_ticks(60))


def _pool_with(*positions: tuple[int, int, int]) -> tuple[PoolState, list[Position]]:
    """A 0.3% pool at 1:1 with (lower, upper, liquidity) positions minted in order."""
    pool, minted = initialize_pool(Q96, 3000), []
    for lower, upper, liquidity in positions:
        pool, position, _, _ = mint(pool, Position(lower, upper), liquidity)
        minted.append(position)
    return pool, minted


def test_fee_tiers_map_to_the_factory_tick_spacings() -> None:
    assert dict(FEE_TIER_TICK_SPACING) == {100: 1, 500: 10, 3000: 60, 10000: 200}
    assert initialize_pool(Q96, 500).tick_spacing == 10


def test_full_range_fees_match_the_reference_example() -> None:
    """README: 1e18 token0 in at 0.3% on 2e18 full-range liquidity pays the LP 0.3% minus 1 wei."""
    pool, (position,) = _pool_with((*full_range_ticks(60), 2 * E18))
    after, _, _ = swap(pool, True, E18)
    assert after.fee_growth_global0_x128 == 510423550381407695195061911147652317
    assert position_fees(after, position) == (2999999999999999, 0)
    principal = position_principal(after, position)
    assert position_value(after, position) == (principal[0] + 2999999999999999, principal[1])


def test_position_value_in_quote_marks_principal_at_the_pool_price() -> None:
    pool = initialize_pool(2 * Q96, 3000)  # price 4 token1 per token0
    pool, position, _, _ = mint(pool, FULL_RANGE, E18)  # holds ~0.5 token0 and ~2 token1
    assert position_value_in_quote(pool, position, 18, 18) == pytest.approx(4.0, rel=1e-9)
    in_token0 = position_value_in_quote(pool, position, 18, 18, quote_is_token0=True)
    assert in_token0 == pytest.approx(1.0, rel=1e-9)
    with pytest.raises(TypeError):  # the pool state cannot be edited behind the simulator's back
        pool.ticks[0] = pool.ticks[FULL_RANGE.tick_lower]  # type: ignore[index]


def test_burn_and_collect_pay_out_principal_and_fees() -> None:
    pool, (position,) = _pool_with((-600, 600, 10 * E18))
    pool, _, _ = swap(pool, False, E18 // 10)
    expected = position_value(pool, position)
    pool, burnt, amount0, amount1 = burn(pool, position, position.liquidity)
    assert (amount0, amount1) == position_principal(pool, position)
    assert (burnt.liquidity, burnt.tokens_owed0, burnt.tokens_owed1) == (0, *expected)
    assert pool.liquidity == 0 and pool.ticks == {}  # the ticks are cleared with their last user
    emptied, paid0, paid1 = collect(burnt, 2**128, 2**128)
    assert (paid0, paid1) == expected
    assert (emptied.tokens_owed0, emptied.tokens_owed1) == (0, 0)


def test_mint_then_burn_never_returns_more_than_was_paid() -> None:
    pool = initialize_pool(get_sqrt_ratio_at_tick(123), 500)
    pool, position, paid0, paid1 = mint(pool, Position(-1000, 1000), 12345678901234567)
    _, _, got0, got1 = burn(pool, position, position.liquidity)
    assert paid0 - 1 <= got0 <= paid0 and paid1 - 1 <= got1 <= paid1


def test_only_positions_the_price_crosses_earn_fees() -> None:
    pool, (wide, above, below) = _pool_with(
        (-6000, 6000, E18), (600, 1200, E18), (-1200, -600, E18)
    )
    after, _, _ = swap(pool, False, 10**17)  # price up through [600, 1200) only
    assert after.tick > 600
    assert position_fees(after, below) == (0, 0)
    assert position_fees(after, above)[1] > 0
    assert position_fees(after, wide)[1] > position_fees(after, above)[1]
    assert pool.ticks[600].fee_growth_outside1_x128 == 0  # the input state is never mutated


def test_fee_growth_inside_wraps_mod_2_256_like_the_contract() -> None:
    # The lower tick's snapshot was taken before the global accumulator wrapped past 2^256.
    inside = get_fee_growth_inside(-60, 60, 0, 50, 2**256 - 100, 0)
    assert inside == 150
    assert fees_owed(2**127, inside, 2**256 - 10) == 80  # 160 per unit, half a unit of L


def test_max_liquidity_per_tick_caps_mints() -> None:
    cap = max_liquidity_per_tick(60)
    pool, _ = _pool_with((*full_range_ticks(60), cap))
    with pytest.raises(UniswapV3Revert) as revert:
        mint(pool, FULL_RANGE, 1)
    assert revert.value.reason == "LO"


def _revert_reason(call: Callable[[], Any]) -> str:
    with pytest.raises(UniswapV3Revert) as revert:
        call()
    assert isinstance(revert.value, ProtocolMathError)
    return revert.value.reason


def test_contract_reverts_carry_the_contracts_reason() -> None:
    pool, (position,) = _pool_with((-60, 60, E18))
    assert _revert_reason(lambda: get_sqrt_ratio_at_tick(MAX_TICK + 1)) == "T"
    assert _revert_reason(lambda: get_tick_at_sqrt_ratio(MAX_SQRT_RATIO)) == "R"
    assert _revert_reason(lambda: get_tick_at_sqrt_ratio(MIN_SQRT_RATIO - 1)) == "R"
    assert _revert_reason(lambda: initialize_pool(0, 3000)) == "R"
    assert _revert_reason(lambda: swap(pool, True, 0)) == "AS"
    assert _revert_reason(lambda: swap(pool, True, E18, MIN_SQRT_RATIO)) == "SPL"
    assert _revert_reason(lambda: swap(pool, False, E18, pool.sqrt_price_x96)) == "SPL"
    assert _revert_reason(lambda: mint(pool, Position(60, 60), 1)) == "TLU"
    assert _revert_reason(lambda: mint(pool, Position(MIN_TICK - 8, 0), 1)) == "TLM"
    assert _revert_reason(lambda: mint(pool, Position(0, MAX_TICK + 8), 1)) == "TUM"
    assert _revert_reason(lambda: burn(pool, position, position.liquidity + 1)) == "LS"
    assert _revert_reason(lambda: burn(pool, Position(-120, 120), 0)) == "NP"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mint(initialize_pool(Q96, 3000), Position(-61, 60), 1), "multiples of 60"),
        (lambda: mint(initialize_pool(Q96, 3000), FULL_RANGE, 0), "positive liquidity"),
        (lambda: initialize_pool(Q96, 2500), "not a standard tier"),
        (lambda: get_next_sqrt_price_from_input(Q96, 0, 1, True), "liquidity must be positive"),
        (lambda: get_next_sqrt_price_from_input(0, 1, 1, True), "sqrt price"),
        (lambda: compute_swap_step(Q96, Q96 // 2, E18, E18, 10**6), "fee must be"),
        (lambda: get_liquidity_for_amounts(Q96, Q96, Q96, 1, 1), "range is empty"),
        (lambda: get_liquidity_for_amounts(Q96, Q96 // 2, Q96 * 2, -1, 1), "amounts must be"),
        (lambda: get_liquidity_for_amounts(Q96, Q96 - 1, Q96 + 1, 2**200, 2**200), "uint128"),
        (lambda: get_fee_growth_inside(60, 60, 0, 0, 0, 0), "tick_lower < tick_upper"),
        (lambda: price_to_sqrt_price_x96(-1.0), "positive and finite"),
        (lambda: price_to_sqrt_price_x96(float("inf")), "positive and finite"),
        (lambda: price_to_sqrt_price_x96(1e60), "pool can represent"),
        (lambda: sqrt_price_x96_to_price(0), "sqrt price"),
        (lambda: range_liquidity(1, 1, 2000, 2500, 1500), "price_lower < price_upper"),
        (lambda: range_lower_price(1, 1e9, 2000, 2001), "no lower bound"),
        (lambda: range_upper_price(1e9, 1, 2000, 1999), "no upper bound"),
    ],
)
def test_out_of_domain_input_raises_a_clear_error(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ProtocolMathError, match=message):
        call()
