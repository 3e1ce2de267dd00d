"""leverage_advisor against Merton/Kelly, the health-factor cap and the carry, written out here."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from scipy.stats import norm

from tools.leverage import LeverageAdvisorResult

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]
MEAN, SIGMA, YEARS = 0.003, math.hypot(0.035, 0.006), 1 / 365  # the served 24h topics
LOOP = {
    "symbol": "ETH/USDT",
    "liquidation_threshold": 0.825,
    "supply_rate": 0.02,
    "borrow_rate": 0.05,
    "staking_rate": 0.03,
}


def advise(tools: dict[str, BaseTool], call: Call, **args: Any) -> LeverageAdvisorResult:
    message = call(tools["leverage_advisor"], {**LOOP, **args})
    assert message.status == "success", message.content
    assert isinstance(message.artifact, LeverageAdvisorResult)
    return message.artifact


def full_kelly(mean: float = MEAN) -> float:
    drift = (mean + SIGMA**2 / 2) / YEARS + 0.02 + 0.03  # Ito drift plus supply and staking
    return (drift - 0.05) / (SIGMA**2 / YEARS)


def test_half_kelly_below_the_caps_sets_the_leverage(
    tools: dict[str, BaseTool], call: Call
) -> None:
    result = advise(tools, call)
    leverage = 0.5 * full_kelly()
    assert result.kelly_leverage == pytest.approx(full_kelly(), rel=1e-9)
    assert result.binding == "kelly" and result.target_leverage == pytest.approx(leverage)
    assert result.volatility == pytest.approx(SIGMA / math.sqrt(YEARS))
    hf = 0.825 * leverage / (leverage - 1)
    assert result.health_factor == pytest.approx(hf)
    assert result.drop_to_liquidation_pct == pytest.approx(100 * (1 - 1 / hf))
    assert result.liquidation_probability == pytest.approx(
        2 * norm.cdf(-math.log(hf) / SIGMA), rel=1e-9
    )
    assert result.carry_return == pytest.approx(leverage * 0.05 - (leverage - 1) * 0.05)
    mu, var = result.expected_return, result.volatility**2
    growth = 0.05 + leverage * (mu - 0.05) - leverage**2 * var / 2
    assert result.expected_log_growth == pytest.approx(growth)


def test_the_tighter_of_the_health_factor_floor_and_the_loop_limit_binds(
    tools: dict[str, BaseTool], call: Call
) -> None:
    assert full_kelly() > 1.5 / (1.5 - 0.825)
    floor = advise(tools, call, kelly_fraction=1.0)
    assert floor.binding == "health_factor"
    assert floor.target_leverage == pytest.approx(1.5 / (1.5 - 0.825))
    assert floor.health_factor == pytest.approx(1.5)

    loop = advise(tools, call, kelly_fraction=1.0, ltv=0.5)
    assert loop.binding == "ltv" and loop.ltv_cap == 2.0 and loop.target_leverage == 2.0


def test_a_bearish_forecast_advises_no_borrowing(
    tools: dict[str, BaseTool], call: Call, network: Any, make_inference: Any
) -> None:
    network.serve(make_inference("ETH/USDT log_return 24h", -0.01, 0.006))
    result = advise(tools, call)
    assert result.kelly_leverage == pytest.approx(full_kelly(-0.01), rel=1e-9) and (
        result.kelly_leverage < 0
    )
    assert result.binding == "no_leverage" and result.target_leverage == 1.0
    assert result.health_factor is None and result.liquidation_probability == 0.0
    assert result.carry_return == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"min_health_factor": 0.8}, "min_health_factor: Input should be greater than 1"),
        ({"liquidation_threshold": 1.2}, "liquidation_threshold: Input should be less than"),
        ({"ltv": 0.9}, "ltv must be below the liquidation threshold"),
        ({"kelly_fraction": 0}, "kelly_fraction: Input should be greater than 0"),
        ({"borrow_rate": None}, "borrow_rate: Input should be a valid number"),
    ],
)
def test_bad_arguments_are_explained(
    tools: dict[str, BaseTool], call: Call, args: dict[str, Any], expected: str
) -> None:
    message = call(tools["leverage_advisor"], {**LOOP, **args})
    assert message.status == "error" and expected in message.content
