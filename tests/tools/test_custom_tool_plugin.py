"""examples/custom_tool.py found as a plugin (folder and "path.py:attr"), built and called."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView
from defai.network.topic import TopicSpec, ground_truth
from defai.plugins import TOOLS_GROUP, discover, from_folder, load_object

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def is_tool_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseTool) and not inspect.isabstract(obj)


def test_custom_tool_is_found_built_and_measures_like_the_network(
    network: Any, market: MarketView, feed: SyntheticFeed, call: Call
) -> None:
    found = from_folder(EXAMPLES, accept=is_tool_class)
    plugin = found["realised_volatility"]
    assert load_object(f"{EXAMPLES / 'custom_tool.py'}:RealisedVolatilityTool") is plugin
    assert "realised_volatility" in discover(TOOLS_GROUP, folders=[EXAMPLES], accept=is_tool_class)

    tool = plugin(network=network, market=market)  # the plugin convention
    message = call(tool, {"symbol": "ETH/USDT", "candles": 24})
    assert message.status == "success"
    answer = json.loads(message.text)

    closes = feed.candles("ETH/USDT", "1h", market.now_ms(), limit=25).close
    topic = TopicSpec(name="eth vol", symbol="ETH/USDT", target="volatility", horizon=24)
    truth = ground_truth(float(closes[0]), closes[1:], topic)
    assert math.isclose(answer["realised_volatility"], truth, rel_tol=1e-12)
    assert math.isclose(answer["annualised_volatility"], truth * math.sqrt(365), rel_tol=1e-12)
    assert answer["last_close_ms"] == market.now_ms()

    unknown = call(tool, {"symbol": "DOGE/USDT"})
    assert unknown.status == "error" and "unknown symbol" in unknown.content
