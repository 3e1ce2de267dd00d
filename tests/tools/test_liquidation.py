"""liquidation_risk against the health-factor and first-passage formulas written out here."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from scipy.stats import norm

from defai.market.view import MarketView, SimClock
from tools.liquidation import LiquidationRiskResult

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]
VOL_24H = 0.035  # the served ETH/USDT volatility 24h (conftest)
POSITION = {
    "symbol": "ETH/USDT",
    "collateral_amount": 10.0,
    "liquidation_threshold": 0.825,
    "target_health_factor": 1.6,
}


def risk(tools: dict[str, BaseTool], call: Call, **args: Any) -> LiquidationRiskResult:
    message = call(tools["liquidation_risk"], {**POSITION, **args})
    assert message.status == "success", message.content
    assert isinstance(message.artifact, LiquidationRiskResult)
    return message.artifact


def test_health_factor_liquidation_price_and_probability(
    tools: dict[str, BaseTool], call: Call, market: MarketView
) -> None:
    price = market.last_price("ETH/USDT")
    debt = 0.5 * 10 * price
    result = risk(tools, call, debt=debt, ltv=0.8)
    hf = 10 * price * 0.825 / debt
    assert result.health_factor == pytest.approx(hf)
    assert result.liquidation_price == pytest.approx(price / hf)
    assert result.drop_to_liquidation_pct == pytest.approx(100 * (1 - 1 / hf))
    assert result.current_ltv == pytest.approx(0.5)
    assert result.available_borrows == pytest.approx(10 * price * 0.8 - debt)
    # Driftless first passage (reflection principle): 2 N(ln(1/HF) / sigma_horizon).
    assert result.liquidation_probability == pytest.approx(
        2 * norm.cdf(math.log(1 / hf) / VOL_24H), rel=1e-9
    )
    assert result.annualised_volatility == pytest.approx(VOL_24H * math.sqrt(365))
    assert result.repay_to_target == 0 and result.sell_to_target == 0
    assert not result.liquidatable


def test_repay_or_sell_collateral_reaches_the_target_health_factor(
    tools: dict[str, BaseTool], call: Call, market: MarketView
) -> None:
    result = risk(tools, call, debt=0.75 * 10 * market.last_price("ETH/USDT"))
    value, debt, lt = result.collateral_value, result.debt, 0.825
    assert 1 < result.health_factor < 1.6
    assert value * lt / (debt - result.repay_to_target) == pytest.approx(1.6)
    sold = result.sell_to_target_value
    assert sold is not None and result.sell_to_target == pytest.approx(sold / result.price)
    assert (value - sold) * lt / (debt - sold) == pytest.approx(1.6)
    assert sold > result.repay_to_target  # selling collateral also removes its weight
    assert 0.001 < result.liquidation_probability < 0.05  # HF 1.1: 2.7 sigmas away


def test_underwater_collateral_cannot_be_sold_to_safety(
    tools: dict[str, BaseTool], call: Call, market: MarketView
) -> None:
    debt = 1.2 * 10 * market.last_price("ETH/USDT")
    result = risk(tools, call, debt=debt)
    assert result.liquidatable and result.liquidation_probability == 1.0
    assert result.drop_to_liquidation_pct < 0
    assert result.sell_to_target is None and result.sell_to_target_value is None
    assert result.repay_to_target == pytest.approx(debt - result.collateral_value * 0.825 / 1.6)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"debt": 0}, "debt: Input should be greater than 0"),
        ({"debt": 1000, "liquidation_threshold": 82.5}, "liquidation_threshold: Input should"),
        ({"debt": 1000, "ltv": 0.9}, "ltv 0.9 must be below the liquidation threshold 0.825"),
        ({"debt": 1000, "target_health_factor": 0.9}, "target_health_factor: Input should"),
    ],
)
def test_bad_arguments_are_explained(
    tools: dict[str, BaseTool], call: Call, args: dict[str, Any], expected: str
) -> None:
    message = call(tools["liquidation_risk"], {**POSITION, **args})
    assert message.status == "error" and expected in message.content


def test_zero_or_stale_volatility_is_refused(
    tools: dict[str, BaseTool], call: Call, network: Any, make_inference: Any, clock: SimClock
) -> None:
    network.serve(make_inference("ETH/USDT volatility 24h", 0.0, 0.0))
    zero = call(tools["liquidation_risk"], {**POSITION, "debt": 1000})
    assert zero.status == "error" and "forecasts zero volatility" in zero.content
    clock.set(clock.now_ms() + 86_400_000)
    stale = call(tools["liquidation_risk"], {**POSITION, "debt": 1000})
    assert stale.status == "error" and "stale" in stale.content
