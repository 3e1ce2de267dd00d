"""Uniswap v2 constant product against the v2-core / v2-periphery test vectors, exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import shared_file

from defai.defi.constant_product import (
    amount_out,
    get_amount_in,
    get_amount_out,
    quote,
    satisfies_k,
    swap_to_price,
)
from defai.errors import ProtocolMathError

Case = Any  # one JSON record, shaped as the reference file says


def _cases(section: str) -> list[Any]:
    """One param per record of a section, named after it; a skipped param without ../shared."""
    try:
        path = shared_file("reference", "defi", "uniswap_v2_constant_product_vectors.json")
    except pytest.skip.Exception as absent:
        return [pytest.param(None, marks=pytest.mark.skip(reason=str(absent)))]
    records = json.loads(path.read_text())[section]
    return [
        pytest.param(r, id=f"{i}-{r.get('source', {}).get('test', r.get('function'))}")
        for i, r in enumerate(records)
    ]


@pytest.mark.parametrize("case", _cases("pair_swap_getInputPrice"))
def test_pair_input_price(case: Case) -> None:
    amount_in, reserve_in, reserve_out = (
        int(case[k]) for k in ("amountIn", "reserveIn", "reserveOut")
    )
    expected = int(case["expected_maxAmountOut"])
    assert get_amount_out(amount_in, reserve_in, reserve_out) == expected
    # the pair itself accepts exactly that output and reverts with 'UniswapV2: K' one wei above
    reserves = (reserve_in, reserve_out)
    assert satisfies_k(reserves, (amount_in, 0), (0, expected))
    assert not satisfies_k(reserves, (amount_in, 0), (0, expected + 1))


@pytest.mark.parametrize("case", _cases("pair_swap_optimistic"))
def test_pair_optimistic_flash_swap(case: Case) -> None:
    reserves = (int(case["reserve0"]), int(case["reserve1"]))
    taken, paid = int(case["amountOut_same_token"]), int(case["amountIn_same_token"])
    assert satisfies_k(reserves, (paid, 0), (taken, 0))
    assert not satisfies_k(reserves, (paid, 0), (taken + 1, 0))
    assert not satisfies_k(reserves, (paid - 1, 0), (taken, 0))


@pytest.mark.parametrize("case", _cases("router_library"))
def test_router_library(case: Case) -> None:
    function: dict[str, Callable[[int, int, int], int]] = {
        "quote": quote,
        "getAmountOut": get_amount_out,
        "getAmountIn": get_amount_in,
    }
    args = case["args"]
    amount, reserve_a, reserve_b = (
        int(args[k]) for k in ("amount", "reserveA_or_In", "reserveB_or_Out")
    )
    assert function[case["function"]](amount, reserve_a, reserve_b) == int(case["expected"])


@pytest.mark.parametrize("case", _cases("example_swapToPrice"))
def test_swap_to_true_price(case: Case) -> None:
    trade = swap_to_price(
        int(case["pool"]["reserve0"]),
        int(case["pool"]["reserve1"]),
        int(case["truePriceTokenA"]),
        int(case["truePriceTokenB"]),
    )
    assert trade.a_to_b == (case["tokenIn"] == "token0")
    assert trade.amount_in == int(case["expected_amountIn"])
    assert trade.amount_out == int(case["expected_amountOut"])


def test_swap_to_price_inside_the_fee_band_is_no_trade() -> None:
    trade = swap_to_price(10**19, 10**21, 1000, 100_001)  # 0.001% off: fees eat any profit
    assert (trade.amount_in, trade.amount_out) == (0, 0)


reserve = st.integers(min_value=1_000, max_value=10**30)


@given(amount=st.integers(min_value=1, max_value=10**27), reserve_in=reserve, reserve_out=reserve)
def test_router_amounts_are_the_pairs_bounds(
    amount: int, reserve_in: int, reserve_out: int
) -> None:
    """getAmountOut is the largest output the pair accepts; getAmountIn the smallest input."""
    out = get_amount_out(amount, reserve_in, reserve_out)
    reserves = (reserve_in, reserve_out)
    assert not satisfies_k(reserves, (amount, 0), (0, out + 1))
    if out > 0:
        assert satisfies_k(reserves, (amount, 0), (0, out))
        needed = get_amount_in(out, reserve_in, reserve_out)
        assert needed <= amount
        assert satisfies_k(reserves, (needed, 0), (0, out))


@given(
    amount=st.integers(min_value=10**6, max_value=10**24), reserve_in=reserve, reserve_out=reserve
)
def test_real_valued_form_tracks_the_integer_router(
    amount: int, reserve_in: int, reserve_out: int
) -> None:
    exact = get_amount_out(amount, reserve_in, reserve_out)
    real = amount_out(float(amount), float(reserve_in), float(reserve_out))
    assert exact <= real + 1e-9 * real
    assert real - exact < 1 + 1e-9 * real


def test_real_valued_form_is_vectorised() -> None:
    outs = amount_out(np.array([0.0, 1.0, 10.0]), 100.0, 100.0)
    assert outs.shape == (3,)
    assert outs[0] == 0 and np.all(np.diff(outs) > 0)


_BAD_INPUTS: dict[str, tuple[Callable[[], object], str]] = {
    "zero amount_in": (lambda: get_amount_out(0, 10, 10), "amount_in"),
    "zero reserve": (lambda: get_amount_out(1, 0, 10), "reserves"),
    "output drains the pool": (lambda: get_amount_in(10, 10, 10), "below the output reserve"),
    "fee 100%": (lambda: get_amount_out(1, 10, 10, fee_bps=10_000), "fee_bps"),
    "negative reserve in quote": (lambda: quote(1, 10, -1), "reserves"),
    "zero true price": (lambda: swap_to_price(10, 10, 0, 1), "true prices"),
    "negative amount in K check": (lambda: satisfies_k((10, 10), (-1, 0), (0, 1)), "amounts"),
    "NaN amount": (lambda: amount_out(float("nan"), 10.0, 10.0), "NaN"),
    "NaN reserve": (lambda: amount_out(1.0, float("nan"), 10.0), "reserves"),
    "fee 1.0 in real form": (lambda: amount_out(1.0, 10.0, 10.0, fee=1.0), "fee"),
}


@pytest.mark.parametrize("case", list(_BAD_INPUTS))
def test_out_of_domain_inputs_raise(case: str) -> None:
    call, message = _BAD_INPUTS[case]
    with pytest.raises(ProtocolMathError, match=message):
        call()
