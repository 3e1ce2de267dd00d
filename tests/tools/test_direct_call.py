"""ToolBox's direct path answers exactly what LangChain's tool-call protocol answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from defai.agent.toolbox import ToolBox, ToolCallError

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]
ERRORS: list[dict[str, Any]] = [
    {"symbol": "ETH/USDT", "horizon": "7h"},
    {"symbol": "ETH", "confidence": 2},
    {},
]
CASES = [
    ("price_forecast", {"symbol": "ETH/USDT", "horizon": "24h"}),
    ("volatility_forecast", {"symbol": "ETH/USDT", "horizon": "1h"}),
    (
        "lp_range",
        {"symbol": "ETH/USDT", "fee_tier": 3000, "capital": 10_000.0, "fee_apr": 0.3},
    ),
    (
        "leverage_advisor",
        {
            "symbol": "ETH/USDT",
            "liquidation_threshold": 0.825,
            "supply_rate": 0.02,
            "borrow_rate": 0.05,
        },
    ),
    ("price_forecast", {"symbol": "ETH/USDT", "horizon": "7h"}),  # no such topic: refused
    ("lp_range", {"symbol": "ETH", "confidence": 2}),  # bad arguments: explained
    ("leverage_advisor", {}),  # missing arguments
]


@pytest.mark.parametrize(("name", "args"), CASES)
def test_direct_equals_invoke(
    tools: dict[str, BaseTool], call: Call, name: str, args: dict[str, Any]
) -> None:
    message = call(tools[name], args)
    box = ToolBox(tools.values())
    assert (message.status == "error") == (args in ERRORS)
    if message.status == "error":
        with pytest.raises(ToolCallError) as refused:
            box.call(name, args)
        assert str(refused.value) == f"{name}: {message.content}"
        assert box.drain()[0].error == message.content
    else:
        assert box.call(name, args) == message.artifact
        assert box.drain()[0].output == message.content
