"""DeFAIToolkit and the entry points: every built-in tool found, built and answering."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel

from defai.market.view import MarketView
from defai.plugins import TOOLS_GROUP, discover, resolve
from tools._base import DefaiTool
from tools.liquidation import LiquidationRiskArgs, LiquidationRiskTool
from tools.toolkit import DeFAIToolkit

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]
VALID_ARGS: dict[str, dict[str, Any]] = {
    "price_forecast": {"symbol": "ETH/USDT"},
    "volatility_forecast": {"symbol": "ETH/USDT"},
    "lp_range": {"symbol": "ETH/USDT", "fee_tier": 500, "capital": 5000, "fee_apr": 0.2},
    "liquidation_risk": {
        "symbol": "ETH/USDT",
        "collateral_amount": 3,
        "debt": 4000,
        "liquidation_threshold": 0.8,
    },
    "mev_check": {
        "pool": {"kind": "constant_product", "reserve_in": 1e6, "reserve_out": 500},
        "amount_in": 5000,
        "slippage": 0.005,
        "gas_cost": 8,
    },
    "leverage_advisor": {
        "symbol": "ETH/USDT",
        "liquidation_threshold": 0.8,
        "supply_rate": 0.02,
        "borrow_rate": 0.04,
    },
}


def test_toolkit_binds_every_tool_to_the_network_and_market(
    network: Any, market: MarketView
) -> None:
    topics = {("ETH/USDT", "volatility", "24h"): "eth-vol-daily"}
    tools = DeFAIToolkit(
        network=network, market=market, topics=topics, max_age_ms=120_000
    ).get_tools()
    assert [tool.name for tool in tools] == list(VALID_ARGS)
    for tool in tools:
        assert isinstance(tool, DefaiTool)
        assert tool.network is network and tool.market is market
        assert tool.topics == topics and tool.max_age_ms == 120_000


@pytest.mark.parametrize("name", list(VALID_ARGS))
def test_the_model_reads_compact_json_of_the_artifact(
    tools: dict[str, BaseTool], call: Call, name: str
) -> None:
    message = call(tools[name], VALID_ARGS[name])
    assert message.status == "success", message.content
    assert isinstance(message.artifact, BaseModel)
    assert message.content == message.artifact.model_dump_json()
    assert json.loads(message.text) == message.artifact.model_dump(mode="json")


@pytest.mark.parametrize("name", list(VALID_ARGS))
def test_every_argument_is_described_for_the_model(tools: dict[str, BaseTool], name: str) -> None:
    schema = tools[name].tool_call_schema
    assert isinstance(schema, type) and issubclass(schema, BaseModel)
    properties = schema.model_json_schema()["properties"]
    assert [field for field, spec in properties.items() if "description" not in spec] == []


def test_entry_points_register_every_built_in_and_the_convention_builds_them(
    network: Any, market: MarketView, call: Call
) -> None:
    found = discover(TOOLS_GROUP)
    assert set(VALID_ARGS) <= set(found)
    assert resolve(TOOLS_GROUP, "lp_range") is found["lp_range"]
    for name in VALID_ARGS:
        plugin = found[name]
        # The plugin convention: a ready BaseTool, or a class/factory called with network, market.
        tool = plugin if isinstance(plugin, BaseTool) else plugin(network=network, market=market)
        assert tool.name == name
        assert call(tool, VALID_ARGS[name]).status == "success"


def test_code_gets_the_typed_result_or_a_tool_exception(tools: dict[str, BaseTool]) -> None:
    tool = tools["liquidation_risk"]
    assert isinstance(tool, LiquidationRiskTool)
    args = LiquidationRiskArgs(
        symbol="ETH/USDT", collateral_amount=3, debt=4000, liquidation_threshold=0.8
    )
    assert tool.answer(args).debt == 4000
    with pytest.raises(ToolException, match="unknown symbol 'SOL/USDC'"):
        tool.answer(args.model_copy(update={"symbol": "SOL/USDC"}))
