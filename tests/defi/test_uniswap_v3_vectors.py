"""Uniswap v3 maths against every reference vector in ../shared/reference/defi.

Integers must match exactly (they are the contracts' and SDK's own test expectations); the
human-unit worked examples match to the precision they were printed with.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

import pytest
from support import shared_file

from defai.defi.uniswap_v3 import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    UniswapV3Revert,
    compute_swap_step,
    encode_sqrt_ratio_x96,
    full_range_ticks,
    get_amount0_delta,
    get_amount1_delta,
    get_amounts_for_liquidity,
    get_liquidity_for_amounts,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
    get_quote_at_tick,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    max_liquidity_for_amounts,
    nearest_usable_tick,
    price_range_to_ticks,
    price_to_tick,
    tick_to_price,
)
from defai.defi.uniswap_v3_lp import (
    impermanent_loss_full_range,
    impermanent_loss_range,
    range_amounts,
    range_liquidity,
    range_lower_price,
)
from defai.defi.uniswap_v3_pool import (
    PoolState,
    Position,
    initialize_pool,
    max_liquidity_per_tick,
    mint,
    position_principal,
    swap,
)
from defai.errors import ProtocolMathError

Case = Any  # one JSON/CSV record, shaped as the reference file says


def _cases(file: str, key: str | None, case_id: Callable[[Any], object]) -> list[Any]:
    """One pytest param per record, named after it; one skipped param when ../shared is absent."""
    try:
        path = shared_file("reference", "defi", file)
    except pytest.skip.Exception as absent:
        return [pytest.param(None, marks=pytest.mark.skip(reason=str(absent)))]
    if file.endswith(".csv"):
        with path.open(newline="") as handle:
            records: list[Any] = list(csv.DictReader(handle))
    else:
        data = json.loads(path.read_text())
        records = data[key] if key else [data]
    return [pytest.param(record, id=f"{i}-{case_id(record)}") for i, record in enumerate(records)]


def _math(section: str) -> list[Any]:
    return _cases(
        "uniswap_v3_math_vectors.json", section, lambda c: c.get("source", {}).get("test")
    )


# --- TickMath ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row",
    _cases("uniswap_v3_tickmath_vectors.csv", None, lambda r: f"{r['function']}({r['input']})"),
)
def test_tickmath_vector(row: Case) -> None:
    function = {
        "getSqrtRatioAtTick": get_sqrt_ratio_at_tick,
        "getTickAtSqrtRatio": get_tick_at_sqrt_ratio,
    }[row["function"]]
    assert function(int(row["input"])) == int(row["expected"])


# --- SqrtPriceMath and SwapMath ----------------------------------------------------------------


@pytest.mark.parametrize("case", _math("sqrtPriceMath"))
def test_sqrt_price_math_vector(case: Case) -> None:
    if case["expected"] == "REVERT":
        # "sqrtP=2^96*256, liquidity=1024: amountOut 4 or 5 of token0, 262144 or 262145 of token1"
        sqrt_price, liquidity = 20282409603651670423947251286016, 1024
        for amount_out, zero_for_one in ((4, False), (5, False), (262144, True), (262145, True)):
            with pytest.raises(ProtocolMathError, match="virtual reserve"):
                get_next_sqrt_price_from_output(sqrt_price, liquidity, amount_out, zero_for_one)
        return
    inputs = case["inputs"]
    flag = {"True": True, "False": False}
    if case["function"].startswith("getNextSqrtPrice"):
        function = {
            "getNextSqrtPriceFromInput": get_next_sqrt_price_from_input,
            "getNextSqrtPriceFromOutput": get_next_sqrt_price_from_output,
        }[case["function"]]
        amount = int(inputs.get("amountIn", inputs.get("amountOut")))
        got = function(
            int(inputs["sqrtPX96"]), int(inputs["liquidity"]), amount, flag[inputs["zeroForOne"]]
        )
    else:
        delta = {"getAmount0Delta": get_amount0_delta, "getAmount1Delta": get_amount1_delta}
        got = delta[case["function"]](
            int(inputs["sqrtRatioAX96"]),
            int(inputs["sqrtRatioBX96"]),
            int(inputs["liquidity"]),
            flag[inputs["roundUp"]],
        )
    assert got == int(case["expected"])


@pytest.mark.parametrize("case", _math("swapMath_computeSwapStep"))
def test_compute_swap_step_vector(case: Case) -> None:
    inputs = {name: int(value) for name, value in case["inputs"].items()}
    expected = {**case.get("expected_derived_not_in_test", {}), **case["expected"]}
    step = compute_swap_step(
        inputs["sqrtRatioCurrentX96"],
        inputs["sqrtRatioTargetX96"],
        inputs["liquidity"],
        inputs["amountRemaining"],
        inputs["feePips"],
    )
    got = {
        "amountIn": step.amount_in,
        "amountOut": step.amount_out,
        "feeAmount": step.fee_amount,
        "sqrtQ": step.sqrt_price_next_x96,
    }
    assert got == {name: int(expected[name]) for name in got}


# --- LiquidityAmounts, SDK helpers, positions ----------------------------------------------------


@pytest.mark.parametrize("case", _math("liquidityAmounts"))
def test_liquidity_amounts_vector(case: Case) -> None:
    inputs = {name: int(value) for name, value in case["inputs"].items()}
    prices = inputs["sqrtRatioX96"], inputs["sqrtRatioAX96"], inputs["sqrtRatioBX96"]
    if case["function"] == "getLiquidityForAmounts":
        got = get_liquidity_for_amounts(*prices, inputs["amount0"], inputs["amount1"])
        assert got == int(case["expected"])
    else:
        amounts = get_amounts_for_liquidity(*prices, inputs["liquidity"])
        assert amounts == (int(case["expected"]["amount0"]), int(case["expected"]["amount1"]))


@pytest.mark.parametrize("case", _math("sdk_maxLiquidityForAmounts"))
def test_max_liquidity_for_amounts_vector(case: Case) -> None:
    inputs = {name: int(value) for name, value in case["inputs"].items()}
    got = max_liquidity_for_amounts(
        inputs["sqrtRatioCurrentX96"],
        inputs["sqrtRatioAX96"],
        inputs["sqrtRatioBX96"],
        inputs["amount0"],
        inputs["amount1"],
        use_full_precision=case["useFullPrecision"],
    )
    assert got == int(case["expected"])


@pytest.mark.parametrize("case", _math("sdk_encodeSqrtRatioX96"))
def test_encode_sqrt_ratio_vector(case: Case) -> None:
    got = encode_sqrt_ratio_x96(int(case["amount1"]), int(case["amount0"]))
    assert got == int(case["expected"])


@pytest.mark.parametrize("case", _math("sdk_position_amounts_DAI_USDC"))
def test_sdk_position_amounts_vector(case: Case) -> None:
    pool = case["pool"]
    sqrt_price = int(pool["sqrtPriceX96"])
    assert sqrt_price == encode_sqrt_ratio_x96(100 * 10**6, 100 * 10**18)
    assert get_tick_at_sqrt_ratio(sqrt_price) == pool["tickCurrent"]
    amount0, amount1 = get_amounts_for_liquidity(
        sqrt_price,
        get_sqrt_ratio_at_tick(case["tickLower"]),
        get_sqrt_ratio_at_tick(case["tickUpper"]),
        int(case["liquidity"]),
        round_up=case["quantity"].startswith("mintAmounts"),
    )
    got = {"amount0": amount0, "amount1": amount1}
    assert {name: got[name] for name in case["expected"]} == {
        name: int(value) for name, value in case["expected"].items()
    }


@pytest.mark.parametrize("case", _math("periphery_positionValue_principal"))
def test_position_value_principal_vector(case: Case) -> None:
    pool = initialize_pool(Q96, 3000)
    lower, upper = case["tickLower"], case["tickUpper"]
    desired = 100_000 * 10**18
    liquidity = get_liquidity_for_amounts(
        pool.sqrt_price_x96,
        get_sqrt_ratio_at_tick(lower),
        get_sqrt_ratio_at_tick(upper),
        desired,
        desired,
    )
    pool, position, _, _ = mint(pool, Position(lower, upper), liquidity)
    expected = case["expected"]
    assert position_principal(pool, position) == (
        int(expected["amount0"]),
        int(expected["amount1"]),
    )


# Tokens of the SDK's price/tick tests: name -> (decimals, index in the pool they belong to).
_SDK_TOKENS = {"token0": (18, 0), "token1": (18, 1), "token2": (6, 1)}


def _sdk_decimals(*tokens: str) -> tuple[int, int]:
    """(decimals0, decimals1) of the pool made of these tokens."""
    by_index = {_SDK_TOKENS[token][1]: _SDK_TOKENS[token][0] for token in tokens}
    return by_index[0], by_index[1]


def _five_significant(value: Fraction) -> Decimal:
    """What the JS tests print with toSignificant(5)/toPrecision(5) (half up), as a number."""
    if value == 0:
        return Decimal(0)
    with localcontext() as context:
        context.prec = 80
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        context.prec, context.rounding = 5, ROUND_HALF_UP
        return +exact


@pytest.mark.parametrize("case", _math("sdk_tick_price_conversions"))
def test_tick_price_conversion_vector(case: Case) -> None:
    if case["function"] == "tickToPrice":
        base, quote = case["baseToken"].split()[0], case["quoteToken"].split()[0]
        decimals0, decimals1 = _sdk_decimals(base, quote)
        # tick_to_price is token1 per token0: the quote per base when the base is token0.
        price = tick_to_price(case["tick"], decimals0, decimals1)
        if _SDK_TOKENS[base][1] == 1:
            price = 1 / price
        expected = Decimal(case["expected_toSignificant5"])
        assert _five_significant(Fraction(price)) == expected
        return
    match = re.search(
        r"Price\((?:base=)?(token\d), (?:quote=)?(token\d), ([\d.e]+), ([\d.e]+)\)", case["price"]
    )
    assert match, case["price"]
    base, quote, base_amount, quote_amount = match.groups()
    raw = Fraction(int(float(quote_amount)), int(float(base_amount)))  # quote per base, raw units
    if _SDK_TOKENS[base][1] == 1:
        raw = 1 / raw
    decimals0, decimals1 = _sdk_decimals(base, quote)
    human = raw * Fraction(10) ** (decimals0 - decimals1)
    assert price_to_tick(human, decimals0, decimals1) == case["expected_tick"]


@pytest.mark.parametrize("case", _math("sdk_nearestUsableTick"))
def test_nearest_usable_tick_vector(case: Case) -> None:
    assert nearest_usable_tick(case["tick"], case["tickSpacing"]) == case["expected"]


@pytest.mark.parametrize("case", _math("periphery_getQuoteAtTick"))
def test_quote_at_tick_vector(case: Case) -> None:
    got = get_quote_at_tick(case["tick"], int(case["baseAmount"]), case["baseToken"] == "token0")
    assert got == int(case["expected_quoteAmount"])


# --- Full swaps across ticks (v3-core swap snapshot) ---------------------------------------------


@pytest.mark.parametrize(
    "data", _cases("uniswap_v3_pool_swap_vectors.json", None, lambda _: "conventions")
)
def test_pool_conventions(data: Case) -> None:
    conventions = data["conventions"]
    assert (
        conventions["MIN_TICK"],
        conventions["MAX_TICK"],
        int(conventions["MIN_SQRT_RATIO"]),
        int(conventions["MAX_SQRT_RATIO"]),
    ) == (MIN_TICK, MAX_TICK, MIN_SQRT_RATIO, MAX_SQRT_RATIO)
    assert max_liquidity_per_tick(60) == int(conventions["maxLiquidityPerTick_tickSpacing60"])
    for spacing in (1, 10, 60, 200):  # getMinTick / getMaxTick of the v3-core tests
        lowest = math.ceil(MIN_TICK / spacing) * spacing
        assert full_range_ticks(spacing) == (lowest, math.floor(MAX_TICK / spacing) * spacing)


def _pool_setups() -> dict[str, Case]:
    try:
        path = shared_file("reference", "defi", "uniswap_v3_pool_swap_vectors.json")
    except pytest.skip.Exception:
        return {}
    return {pool["description"]: pool for pool in json.loads(path.read_text())["pools"]}


_POOLS = _pool_setups()


def _minted_pool(setup: Case) -> tuple[PoolState, int, int]:
    """The test pool after its mints, with the token balances those mints paid in."""
    pool = initialize_pool(
        int(setup["startingSqrtPriceX96"]), setup["feePips"], setup["tickSpacing"]
    )
    balance0 = balance1 = 0
    for spec in setup["positions"]:
        position = Position(spec["tickLower"], spec["tickUpper"])
        pool, _, amount0, amount1 = mint(pool, position, int(spec["liquidity"]))
        balance0, balance1 = balance0 + amount0, balance1 + amount1
    return pool, balance0, balance1


def _pool_price(pool: PoolState) -> Decimal:
    return _five_significant(Fraction(pool.sqrt_price_x96**2, 1 << 192))


def _execution_price(amount0: int, amount1: int) -> Decimal | str:
    if amount0 == 0:
        return "NaN" if amount1 == 0 else ("-Infinity" if amount1 > 0 else "Infinity")
    return _five_significant(Fraction(-amount1, amount0))


def _expected_swap_result(result: dict[str, str]) -> dict[str, Any]:
    def parse(name: str, value: str) -> Any:
        if name == "swapError":
            return value.rsplit(" ", 1)[-1]  # "VM Exception ... revert SPL" -> "SPL"
        if name.startswith(("poolPrice", "executionPrice")):
            return value if value.endswith(("NaN", "Infinity")) else Decimal(value)
        return int(value)

    return {name: parse(name, value) for name, value in result.items()}


@pytest.mark.parametrize(
    "case",
    _cases(
        "uniswap_v3_pool_swap_vectors.json",
        "swap_cases",
        lambda c: f"{c['pool']}: {c['description']}",
    ),
)
def test_pool_swap_vector(case: Case) -> None:
    pool, balance0, balance1 = _minted_pool(_POOLS[case["pool"]])
    amount = int(case.get("amountSpecified", 0))
    amount_specified = {
        "exactInput": amount,
        "exactOutput": -amount,
        "swapToPriceLimit": (1 << 255) - 1,  # type(int256).max: only the price limit stops it
    }[case["type"]]
    limit = int(case["sqrtPriceLimitX96"]) if "sqrtPriceLimitX96" in case else None
    before = {"tickBefore": pool.tick, "poolPriceBefore": _pool_price(pool)}
    try:
        after, amount0, amount1 = swap(pool, case["zeroForOne"], amount_specified, limit)
    except UniswapV3Revert as revert:
        got = {
            **before,
            "poolBalance0": balance0,
            "poolBalance1": balance1,
            "swapError": revert.reason,
        }
    else:
        got = {
            **before,
            "amount0Before": balance0,
            "amount1Before": balance1,
            "amount0Delta": amount0,
            "amount1Delta": amount1,
            "feeGrowthGlobal0X128Delta": after.fee_growth_global0_x128,
            "feeGrowthGlobal1X128Delta": after.fee_growth_global1_x128,
            "tickAfter": after.tick,
            "poolPriceAfter": _pool_price(after),
            "executionPrice": _execution_price(amount0, amount1),
        }
    assert got == _expected_swap_result(case["result"])


# --- Human-unit worked examples (Elsts' note, a real USDC/WETH snapshot) ------------------------


def _worked_example(example: Case) -> dict[str, float]:
    """The quantities an example asks for, computed the way its 'method' describes."""
    i = example["inputs"]
    if example["id"] == "elsts_ex1":
        liquidity = range_liquidity(i["x"], math.inf, i["P"], i["p_a"], i["p_b"])
        return {"y": range_amounts(liquidity, i["P"], i["p_a"], i["p_b"])[1]}
    if example["id"] == "elsts_ex2":
        return {"p_a": range_lower_price(i["x"], i["y"], i["P"], i["p_b"])}
    if example["id"] == "elsts_ex3":
        liquidity = range_liquidity(i["x"], i["y"], i["P"], i["p_a"], i["p_b"])
        x_new, y_new = range_amounts(liquidity, i["P_new"], i["p_a"], i["p_b"])
        return {
            "x_new": x_new,
            "y_new": y_new,
            "delta_x": x_new - i["x"],
            "delta_y": y_new - i["y"],
        }
    # UI read-outs: the amounts the UI showed for the range must come back from their liquidity.
    x, y = example["expected"]["x"], example["expected"]["y"]
    liquidity = range_liquidity(x, y, i["P"], i["p_a"], i["p_b"])
    x_back, y_back = range_amounts(liquidity, i["P"], i["p_a"], i["p_b"])
    return {"x": x_back, "y": y_back}


@pytest.mark.parametrize(
    "example", _cases("uniswap_v3_lp_worked_examples.json", "examples", lambda e: e["id"])
)
def test_lp_worked_example(example: Case) -> None:
    approximate = "approximate" in example.get("note", "")
    rel, abs_ = (0.005, None) if approximate else (None, 0.01)
    got = _worked_example(example)
    assert got == {
        name: pytest.approx(value, rel=rel, abs=abs_) for name, value in example["expected"].items()
    }


_SNAPSHOT = _cases("uniswap_v3_lp_worked_examples.json", None, lambda _: "real_pool_snapshot")
_USDC, _WETH = 6, 18  # token0, token1 of the USDC/WETH pool


@pytest.mark.parametrize("data", _SNAPSHOT)
def test_real_pool_snapshot(data: Case) -> None:
    snapshot = data["real_pool_snapshot"]
    tick, expected = snapshot["tick"], snapshot["expected"]
    assert tick_to_price(tick, _USDC, _WETH) == pytest.approx(
        expected["price_WETH_per_USDC"], abs=1e-6
    )
    assert 1 / tick_to_price(tick, _USDC, _WETH) == pytest.approx(
        expected["price_USDC_per_WETH"], abs=1e-6
    )
    lower = tick // 60 * 60
    amount0, amount1 = get_amounts_for_liquidity(
        get_sqrt_ratio_at_tick(tick),
        get_sqrt_ratio_at_tick(lower),
        get_sqrt_ratio_at_tick(lower + 60),
        int(snapshot["liquidity"]),
    )
    held = expected["amounts_in_current_tick_range"]
    assert amount0 / 10**_USDC == pytest.approx(held["USDC"], abs=0.01)
    assert amount1 / 10**_WETH == pytest.approx(held["WETH"], abs=0.01)


@pytest.mark.parametrize("data", _SNAPSHOT)
def test_real_pool_tick_price_table(data: Case) -> None:
    table = data["real_pool_snapshot"]["tick_to_price_USDC_per_WETH"]
    got = {tick: 1 / tick_to_price(int(tick), _USDC, _WETH) for tick in table}
    assert got == {tick: pytest.approx(price, abs=1e-6) for tick, price in table.items()}


# --- Derived examples: impermanent loss, LP ranges mapped to ticks ------------------------------


def _derived(section: str, case_id: Callable[[Any], object]) -> list[Any]:
    return _cases("derived_examples_computed.json", section, case_id)


@pytest.mark.parametrize(
    "case",
    _derived(
        "impermanent_loss",
        lambda c: f"{c['kind']}-{c.get('price_ratio') or (c['P0'], c['P1'], c['p_a'], c['p_b'])}",
    ),
)
def test_impermanent_loss_derived(case: Case) -> None:
    if case["kind"] == "full_range_v2":
        got = impermanent_loss_full_range(float(Fraction(case["price_ratio"])))
    else:
        got = impermanent_loss_range(case["P0"], case["P1"], case["p_a"], case["p_b"])
    assert got == pytest.approx(float(case["expected_il"]), abs=1e-9)


@pytest.mark.parametrize(
    "case",
    _derived("lp_range_from_volatility", lambda c: f"{c['eth_price_usdc']}-{c['k_sigmas']}sigma"),
)
def test_lp_range_ticks_derived(case: Case) -> None:
    # USD per ETH is the inverse of the USDC/WETH pool price: the low USD bound is the upper tick.
    ticks = price_range_to_ticks(
        1 / case["expected_price_high"],
        1 / case["expected_price_low"],
        case["tick_spacing"],
        _USDC,
        _WETH,
    )
    assert ticks == (case["expected_tickLower"], case["expected_tickUpper"])
    assert price_to_tick(1 / case["eth_price_usdc"], _USDC, _WETH) == case["current_tick"]
