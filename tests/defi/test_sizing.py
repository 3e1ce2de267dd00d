"""Leverage loops, HF targets, carry and Kelly against the derived values and their identities."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import ndtri
from support import shared_file

from defai.defi.lending import health_factor
from defai.defi.sizing import (
    LogReturnForecast,
    carry_return,
    fractional_kelly,
    health_factor_at_leverage,
    kelly_fraction,
    kelly_from_forecast,
    kelly_leverage,
    leverage_for_health_factor,
    log_growth_rate,
    loop_leverage,
    max_loop_leverage,
)
from defai.errors import ProtocolMathError

Case = Any  # one JSON record, shaped as the reference file says


def _cases() -> list[Any]:
    """One param per leverage/Kelly record, named after it; a skipped param without ../shared."""
    try:
        path = shared_file("reference", "defi", "derived_examples_computed.json")
    except pytest.skip.Exception as absent:
        return [pytest.param(None, marks=pytest.mark.skip(reason=str(absent)))]
    records = json.loads(path.read_text())["leverage_and_kelly"]
    return [pytest.param(r, id=f"{i}-{r['kind']}") for i, r in enumerate(records)]


def assert_printed(value: float, printed: str | float) -> None:
    """`value` rounds to `printed` ('2.9520000000', 0.194444): within half its last digit."""
    text = str(printed)
    mantissa, _, exponent = text.lower().partition("e")
    half_unit = 0.5 * 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))
    assert abs(value - float(text)) <= half_unit * (1 + 1e-9), (value, text)


def _number(text: str) -> float:
    """'4/5', '3' or '0.05' as a float."""
    return float(Fraction(text))


def _max_loop(case: Case) -> None:
    expected = _number(case["expected_max_leverage"])
    assert max_loop_leverage(_number(case["ltv"])) == pytest.approx(expected, rel=1e-14)


def _loops(case: Case) -> None:
    assert_printed(loop_leverage(_number(case["ltv"]), case["n_loops"]), case["expected_leverage"])


def _target_hf(case: Case) -> None:
    lt, target = _number(case["liquidation_threshold"]), _number(case["target_hf"])
    leverage = leverage_for_health_factor(target, lt)
    assert_printed(leverage, case["expected_leverage"])
    expected_hf = _number(case["expected_hf_check"])
    assert health_factor_at_leverage(leverage, lt) == pytest.approx(expected_hf, rel=1e-12)
    # the same position through the lending maths: collateral L, debt L - 1 per unit of equity
    assert health_factor([leverage], [lt], leverage - 1) == pytest.approx(expected_hf, rel=1e-12)


def _carry(case: Case) -> None:
    value = carry_return(
        _number(case["leverage"]), _number(case["supply_apy"]), _number(case["borrow_apy"])
    )
    assert_printed(value, case["expected_net_apy_on_equity"])


def _kelly_continuous(case: Case) -> None:
    kelly = kelly_leverage(
        case["expected_return_annual"], case["volatility_annual"], case["borrow_rate_annual"]
    )
    assert_printed(kelly, case["expected_kelly_leverage"])
    assert_printed(fractional_kelly(kelly, 0.5), case["half_kelly"])


def _kelly_discrete(case: Case) -> None:
    fraction = kelly_fraction(case["win_prob"], case["payoff_odds_b"])
    assert fraction == pytest.approx(case["expected_fraction"], rel=1e-12)


_CHECKS: dict[str, Callable[[Case], None]] = {
    "max_loop_leverage": _max_loop,
    "leverage_after_n_borrow_loops": _loops,
    "leverage_for_target_hf": _target_hf,
    "net_yield_simple": _carry,
    "kelly_continuous": _kelly_continuous,
    "kelly_discrete": _kelly_discrete,
}


@pytest.mark.parametrize("case", _cases())
def test_leverage_and_kelly_reference(case: Case) -> None:
    assert case["kind"] in _CHECKS, f"new kind {case['kind']} has no check"
    _CHECKS[case["kind"]](case)


ltvs = st.floats(0.0, 0.97)


@given(ltv=ltvs, loops=st.integers(0, 200))
def test_loops_approach_but_never_pass_the_cap(ltv: float, loops: int) -> None:
    assert 1 <= loop_leverage(ltv, loops) <= loop_leverage(ltv, loops + 1) <= max_loop_leverage(ltv)


@given(lt=st.floats(0.05, 1.0), margin=st.floats(1e-3, 10.0))
def test_target_leverage_inverts_the_health_factor(lt: float, margin: float) -> None:
    target = lt + margin
    leverage = leverage_for_health_factor(target, lt)
    assert health_factor_at_leverage(leverage, lt) == pytest.approx(target, rel=1e-9)


@given(
    mu=st.floats(-0.5, 1.0),
    vol=st.floats(0.05, 2.0),
    rate=st.floats(0.0, 0.2),
    step=st.floats(1e-3, 1.0),
)
def test_kelly_maximises_log_growth(mu: float, vol: float, rate: float, step: float) -> None:
    kelly = kelly_leverage(mu, vol, rate)
    best = log_growth_rate(kelly, mu, vol, rate)
    assert best >= log_growth_rate(kelly + step, mu, vol, rate)
    assert best >= log_growth_rate(kelly - step, mu, vol, rate)


@given(
    mean=st.floats(-0.3, 0.3),
    std=st.floats(0.01, 1.0),
    days=st.floats(1.0, 365.0),
)
def test_forecast_from_quantiles_recovers_the_normal(mean: float, std: float, days: float) -> None:
    """A network's CI (2.28 ... 97.72 percentiles) of an exact normal gives back mean and std."""
    probabilities = [0.0228, 0.1587, 0.5, 0.8413, 0.9772]
    values = [mean + std * float(ndtri(p)) for p in probabilities]
    forecast = LogReturnForecast.from_quantiles(probabilities, values, days / 365)
    assert forecast.mean == pytest.approx(mean, abs=1e-12)
    assert forecast.std == pytest.approx(std, rel=1e-12)


def test_forecast_kelly_is_merton_kelly_for_gbm() -> None:
    """A GBM with mu, sigma forecasts log-returns N((mu - sigma^2/2) T, sigma^2 T)."""
    mu, vol, years, rate = 0.12, 0.6, 30 / 365, 0.03
    forecast = LogReturnForecast((mu - vol**2 / 2) * years, vol * math.sqrt(years), years)
    assert forecast.expected_return == pytest.approx(mu, rel=1e-12)
    assert forecast.volatility == pytest.approx(vol, rel=1e-12)
    assert kelly_from_forecast(forecast, rate) == pytest.approx((mu - rate) / vol**2, rel=1e-12)


def test_fractional_kelly_respects_a_health_factor_floor() -> None:
    cap = leverage_for_health_factor(1.5, 0.825)
    assert fractional_kelly(10.0, 0.5, max_leverage=cap) == cap
    assert fractional_kelly(-10.0, 0.5, max_leverage=cap) == -cap
    assert fractional_kelly(1.0, 0.5, max_leverage=cap) == 0.5


def test_no_debt_means_infinite_health_factor() -> None:
    assert health_factor_at_leverage(1.0, 0.8) == math.inf
    assert loop_leverage(0.8, 0) == 1.0


nan = float("nan")

_BAD_INPUTS: dict[str, tuple[Callable[[], object], str]] = {
    "ltv 100%": (lambda: max_loop_leverage(1.0), "ltv"),
    "NaN ltv": (lambda: loop_leverage(nan, 3), "ltv"),
    "negative loops": (lambda: loop_leverage(0.5, -1), "loops"),
    "target HF at LT": (lambda: leverage_for_health_factor(0.8, 0.8), "above the liquidation"),
    "NaN target HF": (lambda: leverage_for_health_factor(nan, 0.8), "above the liquidation"),
    "threshold in bps": (lambda: leverage_for_health_factor(1.5, 8250), "liquidation_threshold"),
    "leverage below 1": (lambda: health_factor_at_leverage(0.5, 0.8), "leverage"),
    "NaN carry rate": (lambda: carry_return(2.0, nan, 0.02), "supply_rate"),
    "zero volatility": (lambda: kelly_leverage(0.1, 0.0, 0.03), "volatility"),
    "NaN expected return": (lambda: kelly_leverage(nan, 0.5, 0.03), "expected_return"),
    "probability above 1": (lambda: kelly_fraction(1.5, 1.0), "win_probability"),
    "zero odds": (lambda: kelly_fraction(0.5, 0.0), "net_odds"),
    "zero std": (lambda: LogReturnForecast(0.0, 0.0, 1.0), "std"),
    "one quantile": (lambda: LogReturnForecast.from_quantiles([0.5], [0.0], 1.0), "two distinct"),
    "quantile 1.0": (
        lambda: LogReturnForecast.from_quantiles([0.5, 1.0], [0.0, 1.0], 1.0),
        "probabilities",
    ),
    "falling quantiles": (
        lambda: LogReturnForecast.from_quantiles([0.1, 0.9], [1.0, -1.0], 1.0),
        "rise",
    ),
    "NaN quantile value": (
        lambda: LogReturnForecast.from_quantiles([0.1, 0.9], [nan, 1.0], 1.0),
        "finite",
    ),
    "fraction above 1": (lambda: fractional_kelly(1.0, 1.5), "fraction"),
    "NaN kelly": (lambda: fractional_kelly(nan), "kelly"),
}


@pytest.mark.parametrize("case", list(_BAD_INPUTS))
def test_out_of_domain_inputs_raise(case: str) -> None:
    call, message = _BAD_INPUTS[case]
    with pytest.raises(ProtocolMathError, match=message):
        call()
