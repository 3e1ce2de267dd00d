"""Sandwich model against the derived scenarios, brute-force searches and the v3 swap snapshot."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support import shared_file

from defai.defi.constant_product import amount_out, get_amount_out
from defai.defi.mev import (
    CurvePool,
    chunked_attack_profit,
    chunks_to_deter,
    concentrated_pool,
    max_front_run,
    max_front_run_exact,
    max_safe_slippage,
    optimal_sandwich,
    sandwich_exact,
    sandwich_profit,
)
from defai.errors import ProtocolMathError

Case = Any  # one JSON record, shaped as the reference file says
Q96 = 2**96


def _cases(file: str, *keys: str, name: Callable[[Case], Any]) -> list[Any]:
    """One param per record at data[keys...], named after it; a skipped param without ../shared."""
    try:
        path = shared_file("reference", "defi", file)
    except pytest.skip.Exception as absent:
        return [pytest.param(None, marks=pytest.mark.skip(reason=str(absent)))]
    records = json.loads(path.read_text())
    for key in keys:
        records = records[key]
    return [pytest.param(r, id=f"{i}-{name(r)}") for i, r in enumerate(records)]


def assert_printed(value: float, printed: str | float) -> None:
    """`value` rounds to `printed` ('5.036165e+17', 0.000712): within half its last digit."""
    text = str(printed)
    mantissa, _, exponent = text.lower().partition("e")
    half_unit = 0.5 * 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))
    assert abs(value - float(text)) <= half_unit * (1 + 1e-9), (value, text)


def _scenario_name(case: Case) -> str:
    victim = case["victim"]
    return f"{int(victim['amountIn_wei']) // 10**18}weth-{victim['slippage_tolerance_bps']}bps"


_SCENARIOS = _cases(
    "derived_examples_computed.json",
    "mev_sandwich_constant_product",
    "scenarios",
    name=_scenario_name,
)


@pytest.mark.parametrize("case", _SCENARIOS)
def test_sandwich_scenarios_exactly(case: Case) -> None:
    """Integer replay on the v2 router maths reproduces every wei of the derived scenario."""
    x, y = int(case["pool"]["reserveIn_WETH_wei"]), int(case["pool"]["reserveOut_USDC_raw"])
    victim = case["victim"]
    v, bps = int(victim["amountIn_wei"]), victim["slippage_tolerance_bps"]
    quoted = get_amount_out(v, x, y)
    min_out = quoted * (10_000 - bps) // 10_000
    assert (quoted, min_out) == (int(victim["quoted_out"]), int(victim["amountOutMin"]))

    front_run = max_front_run_exact(x, y, v, min_out)
    assert front_run == int(case["attacker_max_frontrun_wei"])
    legs = sandwich_exact(x, y, v, front_run)
    at_max = case["at_max_frontrun"]
    assert legs.front_run_out == int(at_max["frontrun_out"])
    assert legs.victim_out == int(at_max["victim_out"])
    assert legs.back_run_out == int(at_max["backrun_out_wei"])
    assert legs.gross_profit == int(at_max["gross_profit_wei"])
    assert sandwich_exact(x, y, v, front_run + 1).victim_out < min_out


@pytest.mark.parametrize("case", _SCENARIOS)
def test_sandwich_scenarios_closed_form(case: Case) -> None:
    """The float model: closed form to its printed digits, optimum to the integer-rounding noise."""
    pool = CurvePool(
        float(case["pool"]["reserveIn_WETH_wei"]), float(case["pool"]["reserveOut_USDC_raw"])
    )
    victim = case["victim"]
    v = float(victim["amountIn_wei"])
    assert_printed(
        max_front_run(pool, v, float(victim["amountOutMin"])),
        case["closed_form_frontrun_wei_float"],
    )
    best = optimal_sandwich(pool, v, victim["slippage_tolerance_bps"] / 10_000)
    assert best.slippage_binds == case["constraint_binds"]
    # the float model skips the router's floors on the quote and min-out; at 10 bps of slippage
    # they move the optimum by ~6e-8 relative
    assert best.front_run == pytest.approx(int(case["profit_maximising_frontrun_wei"]), rel=1e-7)
    assert best.gross_profit == pytest.approx(int(case["gross_profit_at_optimum_wei"]), rel=1e-6)
    assert best.victim_quote == pytest.approx(int(victim["quoted_out"]), rel=1e-9)
    assert best.victim_loss == pytest.approx(
        best.victim_quote * victim["slippage_tolerance_bps"] / 10_000, rel=1e-6
    )


@pytest.mark.parametrize(
    "case",
    _cases(
        "derived_examples_computed.json",
        "mev_sandwich_constant_product",
        "max_safe_slippage",
        name=lambda c: f"{c['victim_amountIn_WETH']}weth-gas{c['attacker_gas_cost_WETH']}",
    ),
)
def test_max_safe_slippage_reference(case: Case) -> None:
    pool = CurvePool(1000e18, 2e12)  # "same pool as above": 1000 WETH / 2M USDC, raw units
    gas = float(case["attacker_gas_cost_WETH"]) * 1e18
    safe = max_safe_slippage(pool, case["victim_amountIn_WETH"] * 1e18, gas)
    assert_printed(safe, case["max_safe_slippage_fraction"])


# --- properties against brute force ----------------------------------------------------------


@st.composite
def pools(draw: st.DrawFn) -> CurvePool:
    reserve_in = draw(st.floats(1.0, 1e6))
    price = draw(st.floats(1e-3, 1e3))
    fee = draw(st.sampled_from([0.0001, 0.0005, 0.003, 0.01]))
    return CurvePool(reserve_in, reserve_in * price, fee, draw(st.booleans()))


def _brute_force_best(pool: CurvePool, victim_in: float, slippage: float) -> float:
    """Best gross profit over a dense grid of feasible front-runs."""
    quote = amount_out(victim_in, pool.reserve_in, pool.reserve_out, pool.fee)
    limit = max_front_run(pool, victim_in, (1 - slippage) * quote)
    grid = np.linspace(0.0, limit, 20_001)
    return float(np.max(sandwich_profit(pool, victim_in, grid)))


def _tolerance(pool: CurvePool, victim_in: float) -> float:
    return 1e-12 * (pool.reserve_in + victim_in)


@settings(max_examples=200, deadline=None)
@given(pool=pools(), share=st.floats(1e-4, 0.5), slippage=st.floats(0.0, 0.9))
def test_optimum_beats_brute_force(pool: CurvePool, share: float, slippage: float) -> None:
    victim_in = share * pool.reserve_in
    best = optimal_sandwich(pool, victim_in, slippage)
    assert best.victim_out >= best.victim_min_out * (1 - 1e-12)
    assert best.gross_profit >= _brute_force_best(pool, victim_in, slippage) - _tolerance(
        pool, victim_in
    )


@settings(max_examples=100, deadline=None)
@given(
    pool=pools(),
    share=st.floats(1e-4, 0.5),
    gas_share=st.floats(1e-7, 1e-2),
    below=st.floats(0.0, 1.0),
)
def test_no_profitable_sandwich_at_or_below_max_safe_slippage(
    pool: CurvePool, share: float, gas_share: float, below: float
) -> None:
    victim_in = share * pool.reserve_in
    gas = gas_share * victim_in
    safe = max_safe_slippage(pool, victim_in, gas)
    assume(safe < 1.0)
    for slippage in (safe, safe * below):
        best = _brute_force_best(pool, victim_in, slippage)
        assert best - gas <= _tolerance(pool, victim_in), slippage
    # and it is the largest: a little more tolerance pays for the gas
    assert optimal_sandwich(pool, victim_in, min(safe * 1.01 + 1e-9, 0.99), gas).profitable


@settings(max_examples=60, deadline=None)
@given(
    pool=pools(),
    share=st.floats(1e-3, 0.5),
    slippage=st.floats(1e-4, 0.2),
    gas_share=st.floats(0.0, 1e-3),
    chunks=st.integers(1, 200),
)
def test_more_chunks_never_pay_the_attacker_more(
    pool: CurvePool, share: float, slippage: float, gas_share: float, chunks: int
) -> None:
    victim_in = share * pool.reserve_in
    gas = gas_share * victim_in
    fewer = chunked_attack_profit(pool, victim_in, slippage, gas, chunks)
    more = chunked_attack_profit(pool, victim_in, slippage, gas, chunks + 1)
    assert more <= fewer + _tolerance(pool, victim_in)


def test_chunks_to_deter_is_the_first_unprofitable_split() -> None:
    pool = CurvePool(1000e18, 2e12)
    victim_in, slippage, gas = 50e18, 0.01, 0.005e18
    chunks = chunks_to_deter(pool, victim_in, slippage, gas)
    assert chunked_attack_profit(pool, victim_in, slippage, gas, chunks) == 0
    assert chunked_attack_profit(pool, victim_in, slippage, gas, chunks - 1) > 0
    assert chunks_to_deter(pool, 1e15, slippage, gas) == 1  # too small to attack at all


def test_loose_tolerance_is_limited_by_the_attackers_fees_not_the_victim() -> None:
    """A v3 range (fees leave the curve) at 99% tolerance: profit peaks before the limit."""
    pool = CurvePool(1000.0, 2e6, 0.003, fee_joins_reserves=False)
    best = optimal_sandwich(pool, 100.0, 0.99)
    assert not best.slippage_binds
    assert best.front_run < max_front_run(pool, 100.0, 0.01 * best.victim_quote)
    assert best.gross_profit >= _brute_force_best(pool, 100.0, 0.99) - _tolerance(pool, 100.0)


def test_budget_caps_the_front_run() -> None:
    pool = CurvePool(1000.0, 2e6)
    best = optimal_sandwich(pool, 10.0, 0.01, budget=1.0)
    assert best.front_run == 1.0 and not best.slippage_binds
    assert best.gross_profit < optimal_sandwich(pool, 10.0, 0.01).gross_profit


def test_tiny_trades_cannot_be_sandwiched_even_without_gas() -> None:
    """The victim's own price impact must beat the attacker's two fees."""
    best = optimal_sandwich(CurvePool(1000.0, 1000.0, 0.003), 1e-3, 0.5)
    assert best.front_run == 0.0 and best.gross_profit == 0.0
    assert max_safe_slippage(CurvePool(1000.0, 1000.0, 0.003), 1e-3, 0.0) == 1.0


# --- concentrated liquidity ------------------------------------------------------------------


def _v3_name(case: Case) -> str:
    return f"{case['pool']}: {case['description']}"


def _v3_swaps() -> list[Any]:
    """Exact-input swaps on one-position pools at ordinary prices that stay inside the position."""
    params = _cases("uniswap_v3_pool_swap_vectors.json", "swap_cases", name=_v3_name)
    if len(params) == 1 and params[0].values == (None,):
        return params
    pools = {
        p["description"]: p
        for p in json.loads(
            shared_file("reference", "defi", "uniswap_v3_pool_swap_vectors.json").read_text()
        )["pools"]
    }
    kept = []
    for param in params:
        case = param.values[0]
        pool, result = pools[case["pool"]], case["result"]
        if case["type"] != "exactInput" or "swapError" in result or len(pool["positions"]) != 1:
            continue
        position = pool["positions"][0]
        paid = result["amount0Delta" if case["zeroForOne"] else "amount1Delta"]
        sqrt_price = int(pool["startingSqrtPriceX96"]) / Q96
        if (
            paid == case["amountSpecified"]
            and position["tickLower"] <= result["tickAfter"] <= position["tickUpper"]
            and 1e-3 < sqrt_price < 1e3
        ):
            kept.append(pytest.param({**case, "pool": pool}, id=param.id))
    return kept


@pytest.mark.parametrize("case", _v3_swaps())
def test_virtual_reserves_reproduce_v3_swaps_in_range(case: Case) -> None:
    pool, result = case["pool"], case["result"]
    position = pool["positions"][0]
    liquidity, sqrt_price = int(position["liquidity"]), int(pool["startingSqrtPriceX96"]) / Q96
    curve = concentrated_pool(
        liquidity,
        sqrt_price,
        1.0001 ** (position["tickLower"] / 2),
        1.0001 ** (position["tickUpper"] / 2),
        zero_for_one=case["zeroForOne"],
        fee=pool["feePips"] / 1e6,
    )
    received = -int(result["amount1Delta" if case["zeroForOne"] else "amount0Delta"])
    out = amount_out(float(case["amountSpecified"]), curve.reserve_in, curve.reserve_out, curve.fee)
    # the contract's sqrt price lives on a Q64.96 grid: one step is L/2^96 of token1
    grid_step = liquidity / Q96 * max(1.0, 1.0 / sqrt_price**2)
    assert out == pytest.approx(received, rel=1e-12, abs=2 + grid_step)


def _sqrt_price_legs(
    liquidity: float, sqrt_price: float, fee: float, zero_for_one: bool, front: float, victim: float
) -> tuple[float, float, float]:
    """The three legs computed the whitepaper's way, moving sqrt(P) (FORMULAS.md A2)."""
    gamma = 1 - fee

    def sell0(s: float, amount: float) -> tuple[float, float]:  # token0 in, price down
        after = liquidity * s / (liquidity + gamma * amount * s)
        return after, liquidity * (s - after)

    def sell1(s: float, amount: float) -> tuple[float, float]:  # token1 in, price up
        after = s + gamma * amount / liquidity
        return after, liquidity * (1 / s - 1 / after)

    forward, backward = (sell0, sell1) if zero_for_one else (sell1, sell0)
    s1, front_out = forward(sqrt_price, front)
    s2, victim_out = forward(s1, victim)
    _, back_out = backward(s2, front_out)
    return front_out, victim_out, back_out


@pytest.mark.parametrize("zero_for_one", [True, False])
def test_concentrated_sandwich_matches_sqrt_price_maths(zero_for_one: bool) -> None:
    liquidity, sqrt_price = 3e6, math.sqrt(2000.0)  # ~ a WETH/USDC range in whole tokens
    curve = concentrated_pool(
        liquidity,
        sqrt_price,
        math.sqrt(1500),
        math.sqrt(2500),
        zero_for_one=zero_for_one,
        fee=0.003,
    )
    victim_in = 0.005 * curve.reserve_in
    best = optimal_sandwich(curve, victim_in, 0.01)
    expected = _sqrt_price_legs(
        liquidity, sqrt_price, 0.003, zero_for_one, best.front_run, victim_in
    )
    actual = (best.front_run_out, best.victim_out, best.back_run_out)
    assert actual == pytest.approx(expected, rel=1e-10)
    assert best.profitable and best.slippage_binds


def test_concentrated_sandwich_leaving_the_range_is_refused() -> None:
    curve = concentrated_pool(
        3e6, math.sqrt(2000.0), math.sqrt(1990), math.sqrt(2010), zero_for_one=True, fee=0.003
    )
    with pytest.raises(ProtocolMathError, match="active tick range"):
        optimal_sandwich(curve, 0.02 * curve.reserve_in, 0.05)


# --- bad input -------------------------------------------------------------------------------

nan = float("nan")
_POOL = CurvePool(1000.0, 2e6)


_BAD_INPUTS: dict[str, tuple[Callable[[], object], str]] = {
    "zero reserve": (lambda: CurvePool(0.0, 1.0), "reserves"),
    "NaN reserve": (lambda: CurvePool(nan, 1.0), "reserves"),
    "infinite reserve": (lambda: CurvePool(1.0, math.inf), "finite"),
    "fee 1.0": (lambda: CurvePool(1.0, 1.0, fee=1.0), "fee"),
    "price outside range": (
        lambda: concentrated_pool(1.0, 2.0, 1.0, 1.5, zero_for_one=True, fee=0.003),
        "sqrt_price",
    ),
    "zero liquidity": (
        lambda: concentrated_pool(0.0, 1.0, 0.5, 2.0, zero_for_one=True, fee=0.003),
        "liquidity",
    ),
    "negative victim trade": (lambda: optimal_sandwich(_POOL, -1.0, 0.01), "victim_in"),
    "NaN victim trade": (lambda: optimal_sandwich(_POOL, nan, 0.01), "victim_in"),
    "slippage 100%": (lambda: optimal_sandwich(_POOL, 1.0, 1.0), "slippage"),
    "NaN slippage": (lambda: optimal_sandwich(_POOL, 1.0, nan), "slippage"),
    "negative gas": (lambda: optimal_sandwich(_POOL, 1.0, 0.01, gas_cost=-1.0), "gas_cost"),
    "NaN budget": (lambda: optimal_sandwich(_POOL, 1.0, 0.01, budget=nan), "budget"),
    "NaN min_out": (lambda: max_front_run(_POOL, 1.0, nan), "min_out"),
    "NaN gas": (lambda: max_safe_slippage(_POOL, 1.0, nan), "gas_cost"),
    "zero chunks": (lambda: chunked_attack_profit(_POOL, 1.0, 0.01, 0.0, 0), "chunks"),
    "exact min_out 0": (lambda: max_front_run_exact(10**21, 2 * 10**12, 10**19, 0), "min_out"),
    "exact min_out unreachable": (
        lambda: max_front_run_exact(10**21, 2 * 10**12, 10**19, 10**12),
        "even without",
    ),
}


@pytest.mark.parametrize("case", list(_BAD_INPUTS))
def test_out_of_domain_inputs_raise(case: str) -> None:
    call, message = _BAD_INPUTS[case]
    with pytest.raises(ProtocolMathError, match=message):
        call()


def test_zero_fee_pool_without_any_tolerance_bound_is_refused() -> None:
    """Without fees the attacker's profit never peaks; only the victim's limit bounds it."""
    pool = CurvePool(1000.0, 1000.0, fee=0.0)
    assert optimal_sandwich(pool, 10.0, 0.05).slippage_binds
    with pytest.raises(ProtocolMathError, match="keeps rising"):
        max_safe_slippage(pool, 10.0, 1e9)
