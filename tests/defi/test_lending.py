"""Aave v3 maths against aave_v3_reference.json and the derived walk-through / GBM numbers."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import shared_file

from defai.defi.lending import (
    RAY,
    UINT256_MAX,
    WAD,
    GbmLogReturns,
    InterestRateModel,
    ReserveParams,
    account_data,
    base_value,
    borrow_rate,
    close_factor_v3_2,
    compounded_interest,
    compounded_interest_ray,
    health_factor,
    health_factor_wad,
    leaves_no_dust,
    linear_interest,
    linear_interest_ray,
    liquidate,
    liquidate_exact,
    liquidation_drop,
    liquidation_price,
    liquidation_probability_gbm,
    liquidation_probability_mc,
    max_liquidatable_debt_v3_2,
    max_liquidatable_debt_v3_3,
    normalized_debt_ray,
    normalized_income_ray,
    percent_mul,
    ray_mul,
    supply_rate,
    terminal_liquidation_probability_gbm,
    utilization,
)
from defai.errors import ProtocolMathError

Case = Any  # one JSON record, shaped as the reference file says


def _cases(file: str, *keys: str, name: Callable[[Case], Any] = lambda c: c.get("id")) -> list[Any]:
    """One param per record at data[keys...], named after it; a skipped param without ../shared."""
    try:
        path = shared_file("reference", "defi", file)
    except pytest.skip.Exception as absent:
        return [pytest.param(None, marks=pytest.mark.skip(reason=str(absent)))]
    records = json.loads(path.read_text())
    for key in keys:
        records = records[key]
    return [pytest.param(r, id=f"{i}-{name(r)}") for i, r in enumerate(records)]


def _aave(*keys: str, name: Callable[[Case], Any] = lambda c: c.get("id")) -> list[Any]:
    return _cases("aave_v3_reference.json", *keys, name=name)


def _derived(*keys: str, name: Callable[[Case], Any] = lambda c: c.get("id")) -> list[Any]:
    return _cases("derived_examples_computed.json", *keys, name=name)


def assert_printed(value: float, printed: str | float) -> None:
    """`value` rounds to `printed` ('3.086836e-04', '0.000712'): within half its last digit."""
    text = str(printed)  # JSON numbers keep their printed digits through repr
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    half_unit = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
    assert abs(value - float(text)) <= half_unit * (1 + 1e-9), (value, text)


# --- health factor examples ------------------------------------------------------------------


def _hf_docs_gho(case: Case) -> None:
    inputs = case["inputs"]
    hf = health_factor(
        [inputs["collateral_value_usd"]],
        [inputs["liquidation_threshold"]],
        inputs["debt_value_usd"],
    )
    fraction = re.search(r"=(\d+)/(\d+)", case["expected"]["health_factor"])
    assert fraction is not None
    assert hf == pytest.approx(int(fraction[1]) / int(fraction[2]), rel=1e-15)


def _hf_utils(case: Case) -> None:
    inputs = case["inputs"]
    collateral = int(inputs["collateralBalanceMarketReferenceCurrency"])
    debt = int(inputs["borrowBalanceMarketReferenceCurrency"])
    threshold_bps = inputs["currentLiquidationThreshold_bps"]
    expected = Decimal(case["expected"]["health_factor"])
    hf = health_factor([collateral], [threshold_bps / 10_000], debt)
    assert hf == pytest.approx(float(expected), rel=1e-15)
    wad = (expected * WAD).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert health_factor_wad([collateral], [threshold_bps], debt) == int(wad)


def _hf_no_debt(case: Case) -> None:
    """aave-utilities returns the sentinel -1; we return infinity, the chain uint256 max."""
    inputs = case["inputs"]
    collateral = int(inputs["collateralBalanceMarketReferenceCurrency"])
    assert case["expected"]["health_factor"].startswith("-1")
    assert health_factor([collateral], [0.5], 0) == math.inf
    assert health_factor_wad([collateral], [5000], 0) == UINT256_MAX


def _summary(case: Case, collateral: list[float], debt: float, ltv: float, lt: float) -> None:
    expected = case["expected"]
    data = account_data(collateral, [ltv] * len(collateral), [lt] * len(collateral), debt)
    usd_per_reference = 10  # "market_reference_price_usd": 10, "price 10 units (=100 USD)"
    checks = {
        "totalCollateralMarketReferenceCurrency": data.total_collateral,
        "totalCollateralUSD": data.total_collateral * usd_per_reference,
        "totalBorrowsMarketReferenceCurrency": data.total_debt,
        "totalBorrowsUSD": data.total_debt * usd_per_reference,
        "availableBorrowsMarketReferenceCurrency": data.available_borrows,
        "availableBorrowsUSD": data.available_borrows * usd_per_reference,
        "currentLoanToValue": data.ltv,
        "currentLiquidationThreshold": data.liquidation_threshold,
        "currentLoanToValue_bps": data.ltv * 10_000,
        "currentLiquidationThreshold_bps": data.liquidation_threshold * 10_000,
        "healthFactor": data.health_factor,
    }
    for key, value in expected.items():
        assert checks[key] == pytest.approx(float(value), rel=1e-12, abs=1e-9), key


def _hf_user_summary_single(case: Case) -> None:
    inputs = case["inputs"]
    value = inputs["supplied"] * inputs["price_in_market_reference_currency"]
    debt = inputs["variable_borrowed"] * inputs["price_in_market_reference_currency"]
    _summary(
        case, [value], debt, inputs["ltv_bps"] / 1e4, inputs["liquidation_threshold_bps"] / 1e4
    )


def _hf_two_reserves(case: Case) -> None:
    inputs = case["inputs"]  # each reserve: supplied 200, borrowed 100, price 10
    _summary(
        case, [2000, 2000], 2000, inputs["ltv_bps"] / 1e4, inputs["liquidation_threshold_bps"] / 1e4
    )


def _hf_emode(case: Case) -> None:
    inputs = case["inputs"]  # same positions, eMode parameters replace the reserves'
    _summary(
        case,
        [2000, 2000],
        2000,
        inputs["emode_ltv_bps"] / 1e4,
        inputs["emode_liquidation_threshold_bps"] / 1e4,
    )


# liquidation-edge.spec.ts comment: 0.9 WETH at 1 ETH, LT 0.85; 1000 USDC + 100 + 100 DAI at 0.0005
_EDGE_COLLATERAL, _EDGE_LT = 0.9 * 1.0, 0.85


def _hf_edge_before(case: Case) -> None:
    debt = 1000 * 0.0005 + 100 * 0.0005 + 100 * 0.0005
    hf = health_factor([_EDGE_COLLATERAL], [_EDGE_LT], debt)
    assert hf == pytest.approx(float(case["expected"]["health_factor"]), rel=1e-12)


def _hf_edge_after(case: Case) -> None:
    debt = 1000 * 0.005 + 100 * 0.0005 + 100 * 0.0005  # USDC price x10
    hf = health_factor([_EDGE_COLLATERAL], [_EDGE_LT], debt)
    assert hf == pytest.approx(float(case["expected"]["health_factor"]), rel=1e-12)
    assert case["expected"]["close_factor"].startswith("1 (100%)")
    assert close_factor_v3_2(hf) == 1.0


_HF_CHECKS: dict[str, Callable[[Case], None]] = {
    "docs_gho": _hf_docs_gho,
    "utils_hf_1": _hf_utils,
    "utils_hf_2": _hf_utils,
    "utils_hf_no_debt": _hf_no_debt,
    "utils_user_summary_single": _hf_user_summary_single,
    "utils_raw_summary_two_reserves": _hf_two_reserves,
    "utils_raw_summary_emode": _hf_emode,
    "core_edge_comment_before": _hf_edge_before,
    "core_edge_comment_after": _hf_edge_after,
}


@pytest.mark.parametrize("case", _aave("health_factor_examples"))
def test_health_factor_examples(case: Case) -> None:
    assert case["id"] in _HF_CHECKS, f"new example {case['id']} has no check"
    _HF_CHECKS[case["id"]](case)


# --- close factor ----------------------------------------------------------------------------


def _usd(text: str) -> float:
    """'1.5k USD ...' -> 1500."""
    amount = re.match(r"([\d.]+)k USD", text)
    assert amount is not None, text
    return float(amount[1]) * 1000


def _share(text: str) -> float:
    """'up to 50% of debt B' -> 0.5."""
    percent = re.search(r"(\d+)%", text)
    assert percent is not None, text
    return int(percent[1]) / 100


def _close_per_position(case: Case) -> None:
    # 3k GHO + 3k USDC + 3k DAI debt, 9k ETH collateral, 0.95 < HF < 1
    hf, reserve_debt, total_debt, collateral = 0.97, 3000.0, 9000.0, 9000.0
    expected = case["expected"]
    assert max_liquidatable_debt_v3_2(hf, reserve_debt) == _usd(
        expected["v3_2_max_repay_per_liquidation"]
    )
    assert max_liquidatable_debt_v3_3(hf, reserve_debt, collateral, total_debt) == _usd(
        expected["v3_3_max_repay_per_liquidation"]
    )


def _close_small_position(case: Case) -> None:
    # threshold assumed 1000 in the example; collateral A 1200, debt B 900, HF 0.96
    hf, debt, collateral, threshold = 0.96, 900.0, 1200.0, 1000.0
    expected = case["expected"]
    assert max_liquidatable_debt_v3_2(hf, debt) == _share(expected["v3_2"]) * debt
    v3_3 = max_liquidatable_debt_v3_3(
        hf, debt, collateral, debt, min_base_for_close_factor=threshold
    )
    assert v3_3 == _share(expected["v3_3"]) * debt
    # the deployed 2000 USD threshold gives the same here; at 2000+ both sides the 50% rule returns
    assert max_liquidatable_debt_v3_3(hf, debt, collateral, debt) == debt
    assert max_liquidatable_debt_v3_3(hf, 2000.0, 2000.0, 2000.0) == 1000.0


def _close_dust_rule(case: Case) -> None:
    """MIN_LEFTOVER_BASE 500 in the example; collateral A 400, B 1000; debt A 900, B 400."""
    leftover = 500.0
    allowed = case["expected"]["allowed"]
    assert allowed == [
        "liquidate 100% of debt B",
        "liquidate 100% of collateral A",
        "liquidate up to 400e8 of debt A, or 100% of debt A",
        "liquidate up to 500e8 of collateral B, or 100% of collateral B",
    ]

    def ok(debt: float, repaid: float, collateral: float, removed: float) -> bool:
        return leaves_no_dust(debt, repaid, collateral, removed, min_leftover=leftover)

    # a side that is cleared fully, or stays well above the leftover, does not decide
    assert ok(400, 400, 1000, 420)  # 100% of debt B
    assert ok(900, 380, 400, 400)  # 100% of collateral A
    assert ok(900, 400, 1000, 420) and not ok(900, 401, 1000, 420) and ok(900, 900, 1000, 945)
    assert ok(900, 400, 1000, 500) and not ok(900, 400, 1000, 501) and ok(900, 400, 1000, 1000)


_CLOSE_CHECKS: dict[str, Callable[[Case], None]] = {
    "per_position_close_factor": _close_per_position,
    "small_position_full_close": _close_small_position,
    "dust_rule": _close_dust_rule,
}


@pytest.mark.parametrize("case", _aave("close_factor_examples_v3_3"))
def test_close_factor_examples(case: Case) -> None:
    assert case["id"] in _CLOSE_CHECKS, f"new example {case['id']} has no check"
    _CLOSE_CHECKS[case["id"]](case)


@pytest.mark.parametrize(
    ("hf", "v3_2", "v3_3"),
    [(1.0, 0.0, 0.0), (0.99, 2500.0, 5000.0), (0.95, 5000.0, 5000.0), (0.5, 5000.0, 5000.0)],
)
def test_close_factor_boundaries(hf: float, v3_2: float, v3_3: float) -> None:
    """Not liquidatable at HF 1; at exactly 0.95 the contracts already allow 100%."""
    assert max_liquidatable_debt_v3_2(hf, 5000.0) == v3_2
    # one big reserve: 50% of the total debt (10k) is 5k, which is the whole reserve debt
    assert max_liquidatable_debt_v3_3(hf, 5000.0, 20_000.0, 10_000.0) == v3_3


# --- interest --------------------------------------------------------------------------------


def _seconds(inputs: dict[str, Any]) -> int:
    return int(inputs["currentTimestamp"]) - int(inputs["lastUpdateTimestamp"])


def _interest_value(case: Case) -> int:
    inputs, function = case["inputs"], case["function"]
    seconds = _seconds(inputs)
    if function.startswith("calculateLinearInterest"):
        return linear_interest_ray(int(inputs["rate_ray"]), seconds)
    if function.startswith("calculateCompoundedInterest"):
        rate = int(inputs["rate_ray"])
        # the note: the Pool itself returns the linear value at this tiny rate
        assert compounded_interest_ray(rate, seconds) == linear_interest_ray(rate, seconds)
        return compounded_interest_ray(rate, seconds, per_second_first=True)
    if function.startswith("getCompoundedBalance"):
        index = normalized_debt_ray(
            int(inputs["reserveIndex_ray"]),
            int(inputs["reserveRate_ray"]),
            seconds,
            per_second_first=True,
        )
        return ray_mul(int(inputs["principalBalance"]), index)
    if function.startswith("getReserveNormalizedIncome"):
        return normalized_income_ray(int(inputs["index_ray"]), int(inputs["rate_ray"]), seconds)
    if function.startswith("getLinearBalance"):
        income = normalized_income_ray(
            int(inputs["liquidityIndex_ray"]), int(inputs["currentLiquidityRate_ray"]), seconds
        )
        return ray_mul(int(inputs["scaledATokenBalance"]), income)
    raise AssertionError(f"new interest vector {function!r} has no check")


@pytest.mark.parametrize(
    "case", _aave("interest_vectors", name=lambda c: c["function"].split(" ")[0])
)
def test_interest_vectors(case: Case) -> None:
    assert _interest_value(case) == int(case["expected"])


@given(
    rate=st.floats(min_value=0.0, max_value=3.0),
    seconds=st.integers(min_value=0, max_value=5 * 31_536_000),
)
def test_float_accrual_matches_ray_maths(rate: float, seconds: int) -> None:
    rate_ray = int(Decimal(rate) * RAY)
    assert linear_interest(rate, seconds) == pytest.approx(
        linear_interest_ray(rate_ray, seconds) / RAY, rel=1e-14
    )
    # the Pool floors (rate/year)^2 and ^3 to whole RAY units; the binomial multiplies those
    # floors by seconds^2/2 and seconds^3/6
    floors = 2 * (seconds**3 / 6 + seconds**2 / 2 + 2) / RAY
    assert compounded_interest(rate, seconds) == pytest.approx(
        compounded_interest_ray(rate_ray, seconds) / RAY, rel=1e-14, abs=floors
    )
    assert compounded_interest(rate, seconds) >= linear_interest(rate, seconds)


def test_compounding_tracks_continuous_compounding() -> None:
    """The 3-term binomial undershoots exp(rt) only by the 4th-order term."""
    year = 31_536_000
    assert compounded_interest(0.10, year) == pytest.approx(math.exp(0.10), rel=1e-5)
    assert linear_interest(0.10, year) == pytest.approx(1.10, rel=1e-15)


_MODEL = InterestRateModel(optimal_utilization=0.8, base_rate=0.0, slope1=0.04, slope2=0.75)


@pytest.mark.parametrize(
    ("u", "rate"), [(0.0, 0.0), (0.4, 0.02), (0.8, 0.04), (0.9, 0.04 + 0.375), (1.0, 0.79)]
)
def test_variable_rate_curve(u: float, rate: float) -> None:
    assert borrow_rate(_MODEL, u) == pytest.approx(rate, rel=1e-12, abs=1e-15)
    assert supply_rate(_MODEL, u, 0.1) == pytest.approx(rate * u * 0.9, rel=1e-12, abs=1e-15)


def test_utilization() -> None:
    assert utilization(75.0, 25.0) == 0.75
    assert utilization(0.0, 0.0) == 0.0


@given(st.floats(0, 1), st.floats(0, 1))
def test_rates_rise_with_utilization(u1: float, u2: float) -> None:
    low, high = sorted((u1, u2))
    assert borrow_rate(_MODEL, low) <= borrow_rate(_MODEL, high)
    assert supply_rate(_MODEL, low, 0.1) <= supply_rate(_MODEL, high, 0.1)
    assert supply_rate(_MODEL, high, 0.1) <= borrow_rate(_MODEL, high)


# --- reserves and liquidation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "row", _aave("reserve_parameter_templates", "rows", name=lambda r: r["asset"])
)
def test_reserve_templates_are_valid_parameters(row: Case) -> None:
    params = ReserveParams.from_bps(
        row["ltv_bps"],
        row["liquidation_threshold_bps"],
        row["liquidation_bonus_bps"],
        row["liquidation_protocol_fee_bps"],
        row["reserve_factor_bps"],
        row["decimals"],
    )
    assert params.ltv * 10_000 == pytest.approx(row["ltv_bps"])
    assert params.liquidation_bonus * 10_000 == pytest.approx(row["liquidation_bonus_bps"])


def _amount(text: str) -> int:
    """'10 WETH (18 dec)' -> 10 * 10**18."""
    match = re.match(r"(\d+) \w+ \((\d+) dec\)", text)
    assert match is not None, text
    return int(match[1]) * int(10 ** int(match[2]))


def _price(text: str) -> int:
    """'2000e8' -> 200000000000."""
    mantissa, exponent = text.split("e")
    return int(mantissa) * int(10 ** int(exponent))


@pytest.mark.parametrize("case", _derived("aave_liquidation"))
def test_liquidation_walk_through(case: Case) -> None:
    inputs, expected = case["inputs"], case["expected"]
    collateral, debt = _amount(inputs["collateral"]), _amount(inputs["debt"])
    prices = {k: _price(v) for k, v in inputs["prices_base_8dec"].items()}
    lt, bonus, fee = (
        inputs["liquidation_threshold_bps"],
        inputs["liquidation_bonus_bps"],
        inputs["liquidation_protocol_fee_bps"],
    )
    debt_base = base_value(debt, prices["USDC"], 6)
    hf_before = health_factor_wad(
        [base_value(collateral, prices["WETH_before"], 18)], [lt], debt_base
    )
    hf_after = health_factor_wad(
        [base_value(collateral, prices["WETH_after"], 18)], [lt], debt_base
    )
    assert hf_before == int(expected["hf_before_wad"])
    assert hf_after == int(expected["hf_after_wad"])

    close_factor_bps = round(close_factor_v3_2(hf_after / WAD) * 10_000)
    assert close_factor_bps == expected["close_factor_bps"]
    actual_debt = min(debt, percent_mul(debt, close_factor_bps))  # debtToCover = uint256 max
    assert actual_debt == int(expected["actual_debt_to_liquidate"])

    exact = liquidate_exact(
        actual_debt, collateral, prices["USDC"], prices["WETH_after"], 6, 18, bonus, fee
    )
    assert exact.debt_repaid == actual_debt
    assert exact.collateral_seized == int(expected["collateral_seized_total"])
    assert exact.protocol_fee == int(expected["liquidation_protocol_fee_collateral"])
    assert exact.liquidator_collateral == int(expected["collateral_to_liquidator"])

    real = liquidate(actual_debt / 1e6, collateral / 1e18, 1.0, 1700.0, bonus / 1e4, fee / 1e4)
    assert real.collateral_seized == pytest.approx(exact.collateral_seized / 1e18, rel=1e-12)
    assert real.protocol_fee == pytest.approx(exact.protocol_fee / 1e18, rel=1e-12)

    before_value = collateral / 1e18 * prices["WETH_before"] / 1e8
    drop = liquidation_drop([before_value], [lt / 1e4], debt / 1e6, [True])
    assert drop == pytest.approx(
        float(Fraction(expected["liquidation_price_drop_fraction_from_2000"]))
    )
    price = liquidation_price(
        prices["WETH_before"] / 1e8, [before_value], [lt / 1e4], debt / 1e6, 0
    )
    assert price == pytest.approx(float(Fraction(expected["liquidation_price_WETH"])), rel=1e-12)


def test_liquidation_with_too_little_collateral_repays_less() -> None:
    """1 WETH cannot cover 15000 USDC + 5%: all of it is seized and the debt repaid shrinks."""
    exact = liquidate_exact(15_000 * 10**6, 10**18, 10**8, 1700 * 10**8, 6, 18, 10_500, 1000)
    real = liquidate(15_000.0, 1.0, 1.0, 1700.0, 1.05, 0.1)
    assert exact.collateral_seized == 10**18 and real.collateral_seized == 1.0
    assert real.debt_repaid == pytest.approx(1700 / 1.05, rel=1e-15)
    assert exact.debt_repaid / 1e6 == pytest.approx(real.debt_repaid, rel=1e-9)
    assert real.protocol_fee == pytest.approx((1 - 1 / 1.05) * 0.1, rel=1e-12)


def test_liquidation_price_with_stable_collateral_and_no_risk() -> None:
    # ETH 10k (LT .8) + USDC 5k (LT .85) against 9k debt: ETH must fall (9000-4250)/8000
    drop = liquidation_drop([10_000, 5000], [0.8, 0.85], 9000, [True, False])
    assert drop == pytest.approx(1 - 4750 / 8000)
    assert liquidation_price(2000.0, [10_000, 5000], [0.8, 0.85], 9000, 0) == pytest.approx(
        2000 * 4750 / 8000
    )
    # the stable collateral alone covers the debt: ETH can go to zero
    assert liquidation_price(2000.0, [10_000, 5000], [0.8, 0.85], 4000, 0) == 0.0


@given(
    quantities=st.lists(st.floats(0, 1e6), min_size=1, max_size=5),
    data=st.data(),
    debt=st.floats(1e-3, 1e9),
)
def test_health_factor_is_monotone_in_collateral_price(
    quantities: list[float], data: st.DataObject, debt: float
) -> None:
    n = len(quantities)
    prices = np.array(data.draw(st.lists(st.floats(1e-6, 1e6), min_size=n, max_size=n)))
    thresholds = data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    asset = data.draw(st.integers(0, n - 1))
    rise = data.draw(st.floats(1, 100))
    higher = prices.copy()
    higher[asset] *= rise
    q = np.array(quantities)
    assert health_factor(q * higher, thresholds, debt) >= health_factor(
        q * prices, thresholds, debt
    )


# --- probability of liquidation --------------------------------------------------------------


def _gbm_name(case: Case) -> str:
    return f"hf{case['health_factor']}-vol{case['sigma_annual']}-{case['horizon_days']}d"


@pytest.mark.parametrize("case", _derived("liquidation_probability_gbm", name=_gbm_name))
def test_gbm_liquidation_probabilities(case: Case) -> None:
    hf, vol, mu = case["health_factor"], case["sigma_annual"], case["drift_mu_annual"]
    years = case["horizon_days"] / 365
    assert_printed(1 / hf, case["barrier_over_spot"])
    assert_printed(
        liquidation_probability_gbm(hf, vol, years, mu), case["expected_p_first_passage"]
    )
    assert_printed(
        terminal_liquidation_probability_gbm(hf, vol, years, mu), case["expected_p_terminal_below"]
    )
    zero_log_drift = vol**2 / 2  # nu = mu - sigma^2/2 = 0
    assert_printed(
        liquidation_probability_gbm(hf, vol, years, zero_log_drift),
        case["p_first_passage_zero_log_drift"],
    )


def _mc_agrees(hf: float, vol: float, days: float, mu: float, seed: int) -> None:
    """MC on the sampler's grid vs the closed form with the same monitoring interval."""
    years, steps, paths = days / 365, 250, 20_000
    sampler = GbmLogReturns(mu, vol, years, steps)
    mc = liquidation_probability_mc(hf, sampler, paths, np.random.default_rng(seed))
    closed = liquidation_probability_gbm(
        hf, vol, years, mu, monitoring_interval_years=years / steps
    )
    error = math.sqrt(closed * (1 - closed) / paths)
    assert abs(mc.probability - closed) <= 4 * error + 1e-4, (mc, closed, error)


@pytest.mark.parametrize("case", _derived("liquidation_probability_gbm", name=_gbm_name))
def test_monte_carlo_agrees_with_closed_form_on_reference_cases(case: Case) -> None:
    _mc_agrees(
        case["health_factor"],
        case["sigma_annual"],
        case["horizon_days"],
        case["drift_mu_annual"],
        7,
    )


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    hf=st.floats(1.02, 2.0),
    vol=st.floats(0.2, 1.5),
    days=st.floats(1, 90),
    mu=st.floats(-1.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_monte_carlo_agrees_with_closed_form(
    hf: float, vol: float, days: float, mu: float, seed: int
) -> None:
    _mc_agrees(hf, vol, days, mu, seed)


def test_continuous_barrier_is_the_fine_grid_limit() -> None:
    """Without the discreteness shift the closed form is the continuous limit, above any grid."""
    continuous = liquidation_probability_gbm(1.2, 0.8, 7 / 365, 0.0)
    hourly = liquidation_probability_gbm(1.2, 0.8, 7 / 365, 0.0, monitoring_interval_years=1 / 8760)
    terminal = terminal_liquidation_probability_gbm(1.2, 0.8, 7 / 365)
    assert continuous > hourly > terminal


def test_probability_edges() -> None:
    assert liquidation_probability_gbm(0.99, 0.5, 0.1) == 1.0
    assert liquidation_probability_gbm(math.inf, 0.5, 0.1) == 0.0
    assert liquidation_probability_gbm(1.5, 0.5, 0.0) == 0.0
    rng = np.random.default_rng(0)
    assert (
        liquidation_probability_mc(math.inf, GbmLogReturns(0, 0.5, 0.1, 10), 100, rng).probability
        == 0
    )


# --- bad input -------------------------------------------------------------------------------

nan = float("nan")


_BAD_INPUTS: dict[str, tuple[Callable[[], object], str]] = {
    "NaN collateral": (lambda: health_factor([nan], [0.8], 1.0), "finite"),
    "threshold in bps": (lambda: health_factor([1.0], [80], 1.0), "fractions"),
    "threshold count": (lambda: health_factor([1.0, 2.0], [0.8], 1.0), "one per asset"),
    "negative debt": (lambda: health_factor([1.0], [0.8], -1.0), "total_debt"),
    "negative collateral": (lambda: health_factor([-1.0], [0.8], 1.0), ">= 0"),
    "account ltv = threshold": (
        lambda: account_data([1.0], [0.8], [0.8], 1.0),
        "below the liquidation threshold",
    ),
    "reserve ltv above threshold": (
        lambda: ReserveParams(0.85, 0.8, 1.05, 0.1, 0.1, 18),
        "below the liquidation threshold",
    ),
    "reserve ltv 100%": (lambda: ReserveParams(1.0, 1.0, 1.0, 0.1, 0.1, 18), "ltv"),
    "bonus times threshold above 1": (lambda: ReserveParams(0.8, 0.95, 1.1, 0.1, 0.1, 18), "bonus"),
    "no threshold weight shocked": (
        lambda: liquidation_drop([1.0], [0.0], 1.0, [True]),
        "no liquidation-threshold weight",
    ),
    "zero price": (lambda: liquidation_price(0.0, [1.0], [0.8], 1.0, 0), "price"),
    "NaN health factor close factor": (lambda: close_factor_v3_2(nan), "health_factor"),
    "reserve debt above total": (
        lambda: max_liquidatable_debt_v3_3(0.9, 10.0, 1.0, 5.0),
        "total_debt",
    ),
    "repaid above debt": (lambda: leaves_no_dust(10.0, 11.0, 10.0, 1.0), "between 0"),
    "NaN collateral price": (lambda: liquidate(1.0, 1.0, 1.0, nan, 1.05, 0.1), "collateral_price"),
    "bonus below 1": (lambda: liquidate(1.0, 1.0, 1.0, 1.0, 0.95, 0.1), "bonus"),
    "optimal utilization 1": (
        lambda: InterestRateModel(1.0, 0.0, 0.04, 0.6),
        "optimal_utilization",
    ),
    "utilization above 1": (lambda: borrow_rate(_MODEL, 1.2), "utilization"),
    "NaN rate": (lambda: linear_interest(nan, 1.0), "rate"),
    "negative ray rate": (lambda: compounded_interest_ray(-1, 1), "rate"),
    "NaN health factor probability": (
        lambda: liquidation_probability_gbm(nan, 0.5, 0.1),
        "health_factor",
    ),
    "zero volatility": (lambda: liquidation_probability_gbm(1.5, 0.0, 0.1), "volatility"),
    "NaN horizon": (lambda: liquidation_probability_gbm(1.5, 0.5, nan), "horizon_years"),
    "zero steps": (lambda: GbmLogReturns(0.0, 0.5, 0.1, 0), "steps"),
    "sampler NaN": (
        lambda: liquidation_probability_mc(
            1.5, lambda rng, n: np.full((n, 3), nan), 10, np.random.default_rng(0)
        ),
        "NaN",
    ),
    "sampler shape": (
        lambda: liquidation_probability_mc(
            1.5, lambda rng, n: np.zeros(n), 10, np.random.default_rng(0)
        ),
        "shape",
    ),
}


@pytest.mark.parametrize("case", list(_BAD_INPUTS))
def test_out_of_domain_inputs_raise(case: str) -> None:
    call, message = _BAD_INPUTS[case]
    with pytest.raises(ProtocolMathError, match=message):
        call()
