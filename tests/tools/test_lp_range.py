"""lp_range against the range, probabilities, IL and fees computed independently here."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from scipy import integrate
from scipy.stats import norm

from defai.market.view import MarketView, SimClock
from tools.lp_range import LpRangeResult

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]
MEAN, CI_STD, VOL = 0.003, 0.006, 0.035  # the served 24h topics (conftest)
SIGMA = math.hypot(VOL, CI_STD)
ETH_USDT = {"symbol": "ETH/USDT", "fee_tier": 3000, "capital": 10_000.0, "fee_apr": 0.3}


def tick_price(tick: int, decimals0: int, decimals1: int) -> float:
    return 1.0001**tick * 10.0 ** (decimals0 - decimals1)


def impermanent_loss(p0: float, p1: float, low: float, high: float) -> float:
    """Whitepaper 6.29-6.30 per unit of liquidity: LP value over the value of holding."""

    def amounts(p: float) -> tuple[float, float]:
        s = min(max(math.sqrt(p), math.sqrt(low)), math.sqrt(high))
        return 1 / s - 1 / math.sqrt(high), s - math.sqrt(low)

    x0, y0 = amounts(p0)
    x1, y1 = amounts(p1)
    return (x1 * p1 + y1) / (x0 * p1 + y0) - 1


def time_inside(a: float, b: float) -> float:
    def inside(u: float) -> float:
        spread = SIGMA * math.sqrt(u)
        return float(norm.cdf((b - MEAN * u) / spread) - norm.cdf((a - MEAN * u) / spread))

    return float(integrate.quad(inside, 0, 1, epsabs=1e-12, limit=200)[0])


def lp(tools: dict[str, BaseTool], call: Call, **args: Any) -> LpRangeResult:
    message = call(tools["lp_range"], {**ETH_USDT, **args})
    assert message.status == "success", message.content
    assert isinstance(message.artifact, LpRangeResult)
    return message.artifact


def test_range_is_the_forecast_interval_rounded_outward_to_the_tick_spacing(
    tools: dict[str, BaseTool], call: Call, market: MarketView
) -> None:
    result = lp(tools, call)
    price = market.last_price("ETH/USDT")
    z = norm.ppf(0.9)
    wanted = price * math.exp(MEAN - z * SIGMA), price * math.exp(MEAN + z * SIGMA)
    assert result.price == price
    assert math.isclose(result.sigma_log_return, SIGMA, rel_tol=1e-9)
    assert math.isclose(result.model_disagreement, CI_STD, rel_tol=1e-9)
    assert result.tick_spacing == 60
    assert result.tick_lower % 60 == 0 and result.tick_upper % 60 == 0
    assert math.isclose(result.price_lower, tick_price(result.tick_lower, 18, 6), rel_tol=1e-9)
    assert math.isclose(result.price_upper, tick_price(result.tick_upper, 18, 6), rel_tol=1e-9)
    assert result.price_lower <= wanted[0] < tick_price(result.tick_lower + 60, 18, 6)
    assert tick_price(result.tick_upper - 60, 18, 6) < wanted[1] <= result.price_upper
    assert result.price_in_range

    a, b = math.log(result.price_lower / price), math.log(result.price_upper / price)
    achieved = norm.cdf((b - MEAN) / SIGMA) - norm.cdf((a - MEAN) / SIGMA)
    assert math.isclose(result.in_range_probability, achieved, rel_tol=1e-9)
    assert 0.8 <= result.in_range_probability < 0.9


def test_expected_il_fees_and_token_split(
    tools: dict[str, BaseTool], call: Call, market: MarketView
) -> None:
    result = lp(tools, call)
    price, low, high = result.price, result.price_lower, result.price_upper
    a, b = math.log(low / price), math.log(high / price)

    expected_il = integrate.quad(
        lambda r: (
            impermanent_loss(price, price * math.exp(r), low, high) * norm.pdf(r, MEAN, SIGMA)
        ),
        MEAN - 12 * SIGMA,
        MEAN + 12 * SIGMA,
        points=(a, b),
        epsabs=1e-12,
        limit=200,
    )[0]
    assert result.expected_impermanent_loss == pytest.approx(expected_il, rel=1e-6)
    assert result.expected_impermanent_loss < 0
    assert result.expected_il_quote == pytest.approx(10_000 * expected_il, rel=1e-6)

    time = time_inside(a, b)
    assert result.expected_time_in_range == pytest.approx(time, abs=1e-6)
    assert result.expected_fee_return == pytest.approx(0.3 / 365 * time, rel=1e-6)
    assert result.expected_fee_income == pytest.approx(10_000 * 0.3 / 365 * time, rel=1e-6)
    assert result.expected_net_return == pytest.approx(
        result.expected_fee_return + expected_il, rel=1e-6
    )

    assert (result.token0, result.token1) == ("ETH", "USDT")
    assert result.amount0 * price + result.amount1 == pytest.approx(10_000, rel=1e-12)
    ratio = (math.sqrt(price) - math.sqrt(low)) / (1 / math.sqrt(price) - 1 / math.sqrt(high))
    assert result.amount1 / result.amount0 == pytest.approx(ratio, rel=1e-9)
    human_liquidity = result.amount1 / (math.sqrt(price) - math.sqrt(low))
    assert result.liquidity == pytest.approx(human_liquidity * 1e12, rel=1e-9)


def test_fees_from_volume_take_the_positions_share_of_active_liquidity(
    tools: dict[str, BaseTool], call: Call
) -> None:
    by_apr = lp(tools, call)
    pool_liquidity = 3 * by_apr.liquidity
    result = lp(tools, call, fee_apr=None, daily_volume=2_000_000.0, pool_liquidity=pool_liquidity)
    share = 1 / 4
    fees = 0.003 * 2_000_000.0 * share * result.expected_time_in_range
    assert result.expected_fee_income == pytest.approx(fees, rel=1e-9)
    assert result.expected_fee_return == pytest.approx(fees / 10_000, rel=1e-9)
    assert "daily_volume 2e+06" in result.fee_assumption


def test_inverted_pool_puts_the_low_pair_price_on_the_upper_tick(
    tools: dict[str, BaseTool], call: Call
) -> None:
    direct = lp(tools, call, fee_tier=500)
    inverted = lp(tools, call, fee_tier=500, inverted=True, token0_decimals=6, token1_decimals=18)
    assert inverted.tick_lower > 0 > direct.tick_upper
    assert inverted.price_lower == pytest.approx(1 / tick_price(inverted.tick_upper, 6, 18))
    assert inverted.price_upper == pytest.approx(1 / tick_price(inverted.tick_lower, 6, 18))
    # Both contain the same wanted interval, each rounded outward on its own tick grid.
    assert inverted.price_lower == pytest.approx(direct.price_lower, rel=2e-3)
    assert inverted.price_upper == pytest.approx(direct.price_upper, rel=2e-3)
    assert (inverted.token0, inverted.token1) == ("USDT", "ETH")
    assert inverted.amount1 * inverted.price + inverted.amount0 == pytest.approx(10_000)


def test_a_higher_target_probability_gives_a_wider_range(
    tools: dict[str, BaseTool], call: Call
) -> None:
    narrow, wide = lp(tools, call, target_probability=0.5), lp(tools, call, target_probability=0.95)
    assert wide.tick_lower < narrow.tick_lower and wide.tick_upper > narrow.tick_upper
    assert wide.in_range_probability >= 0.95 and wide.expected_impermanent_loss > (
        narrow.expected_impermanent_loss
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"fee_tier": 250}, "fee_tier: Input should be 100, 500, 3000 or 10000 (got 250)"),
        ({"target_probability": 1.0}, "target_probability: Input should be less than 1"),
        ({"capital": 0}, "capital: Input should be greater than 0"),
        ({"daily_volume": 1e6}, "give exactly one fee assumption"),
        ({"fee_apr": None, "daily_volume": 1e6}, "give exactly one fee assumption"),
        ({"horizon": "tomorrow"}, "horizon: String should match pattern"),
    ],
)
def test_bad_arguments_are_explained(
    tools: dict[str, BaseTool], call: Call, args: dict[str, Any], expected: str
) -> None:
    message = call(tools["lp_range"], {**ETH_USDT, **args})
    assert message.status == "error" and expected in message.content


def test_stale_or_missing_or_flat_forecasts_are_refused(
    tools: dict[str, BaseTool], call: Call, network: Any, make_inference: Any, clock: SimClock
) -> None:
    missing = call(tools["lp_range"], {**ETH_USDT, "horizon": "1d"})
    assert "no topic named 'ETH/USDT log_return 1d'" in missing.content

    network.serve(make_inference("ETH/USDT log_return 24h", 0.0, 0.0))
    network.serve(make_inference("ETH/USDT volatility 24h", 0.0, 0.0))
    flat = call(tools["lp_range"], ETH_USDT)
    assert flat.status == "error" and "forecast no dispersion" in flat.content

    clock.set(clock.now_ms() + 24 * 3_600_000)
    stale = call(tools["lp_range"], ETH_USDT)
    assert stale.status == "error"
    assert "'ETH/USDT log_return 24h': the latest inference is 87000s old" in stale.content
    assert "stale" in stale.content


def test_a_forecast_beyond_what_the_maths_can_hold_is_an_error_not_a_crash(
    tools: dict[str, BaseTool], call: Call, network: Any, make_inference: Any
) -> None:
    network.serve(make_inference("ETH/USDT volatility 24h", 1000.0, 0.0))
    message = call(tools["lp_range"], ETH_USDT)
    assert message.status == "error" and "out of range for this calculation" in message.content
