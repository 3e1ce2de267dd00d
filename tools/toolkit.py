"""DeFAIToolkit: every built-in tool bound to one network and one market."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import ConfigDict, Field

from defai.market.view import MarketView
from defai.network.base import InferenceSource
from tools._base import DefaiTool
from tools._topics import TopicKey
from tools.forecast import PriceForecastTool, VolatilityForecastTool
from tools.leverage import LeverageAdvisorTool
from tools.liquidation import LiquidationRiskTool
from tools.lp_range import LpRangeTool
from tools.mev import MevCheckTool

TOOL_CLASSES: tuple[Callable[..., DefaiTool[Any, Any]], ...] = (
    PriceForecastTool,
    VolatilityForecastTool,
    LpRangeTool,
    LiquidationRiskTool,
    MevCheckTool,
    LeverageAdvisorTool,
)


class DeFAIToolkit(BaseToolkit):
    """The built-in tools for an agent: forecasts, LP ranges, liquidation, MEV, leverage.

    `topics` maps (symbol, target, horizon) to the network's topic name where it differs from
    the embedded convention "ETH/USDT volatility 24h" (the live Allora API's names do);
    `max_age_ms` overrides every tool's staleness limit.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    network: InferenceSource
    market: MarketView
    topics: Mapping[TopicKey, str] | None = None
    max_age_ms: int | None = Field(default=None, gt=0)

    def get_tools(self) -> list[BaseTool]:
        return [
            cls(
                network=self.network,
                market=self.market,
                topics=self.topics or {},
                max_age_ms=self.max_age_ms,
            )
            for cls in TOOL_CLASSES
        ]
