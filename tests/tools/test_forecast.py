"""price_forecast and volatility_forecast against hand-made inferences and the synthetic market."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from defai.market.feed import Series, SeriesStore, StoreFeed
from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView, SimClock
from defai.types import NetworkInference
from tools.forecast import (
    PriceForecastResult,
    PriceForecastTool,
    VolatilityForecastResult,
)

Call = Callable[[BaseTool, dict[str, Any]], ToolMessage]


def last_close(feed: SyntheticFeed, symbol: str, now_ms: int) -> float:
    return float(feed.candles(symbol, "1h", now_ms, limit=1).close[-1])


def test_price_forecast_reports_value_interval_prices_and_concentration(
    tools: dict[str, BaseTool], call: Call, network: Any, feed: SyntheticFeed, clock: SimClock
) -> None:
    message = call(tools["price_forecast"], {"symbol": "ETH/USDT", "horizon": "1h"})
    result = message.artifact
    assert message.status == "success" and isinstance(result, PriceForecastResult)
    assert json.loads(message.text) == result.model_dump(mode="json")

    served = network.latest("ETH/USDT log_return 1h")
    price = last_close(feed, "ETH/USDT", clock.now_ms())
    assert result.last_price == price
    assert math.isclose(result.expected_price, price * math.exp(served.value))
    np.testing.assert_allclose(result.ci_prices, price * np.exp(served.ci_values))
    assert result.price_low == min(result.ci_prices) and result.price_high == max(result.ci_prices)
    summary = result.inference
    assert summary.topic == "ETH/USDT log_return 1h"
    assert summary.ci_percentiles == list(served.ci_percentiles)
    assert summary.age_s == 600 and summary.max_age_s == 3600 and not summary.stale
    assert summary.workers == 3
    assert math.isclose(summary.weight_hhi or 0, 0.5**2 + 0.3**2 + 0.2**2)
    assert math.isclose(summary.effective_workers or 0, 1 / 0.38)


def test_price_forecast_from_a_price_topic_uses_the_ci_as_prices(
    tools: dict[str, BaseTool], call: Call, network: Any, make_inference: Any
) -> None:
    network.serve(make_inference("BTC/USDT price 4h", 43_000.0, 400.0, weights={}))
    result = call(
        tools["price_forecast"], {"symbol": "BTC/USDT", "horizon": "4h", "target": "price"}
    ).artifact
    served = network.latest("BTC/USDT price 4h")
    assert result.expected_price == 43_000.0
    assert result.ci_prices == list(served.ci_values)
    assert result.inference.workers is None and result.inference.weight_hhi is None


def test_volatility_forecast_annualises_the_horizon_volatility(
    tools: dict[str, BaseTool], call: Call
) -> None:
    result = call(tools["volatility_forecast"], {"symbol": "ETH/USDT", "horizon": "24h"}).artifact
    assert isinstance(result, VolatilityForecastResult)
    assert result.horizon_volatility == 0.035
    assert math.isclose(result.annualised_volatility, 0.035 * math.sqrt(365))


def test_an_inference_older_than_its_horizon_is_flagged_stale(
    tools: dict[str, BaseTool], call: Call, clock: SimClock
) -> None:
    clock.set(clock.now_ms() + 3_600_000)  # the 1h inference is now 70 minutes old
    result = call(tools["price_forecast"], {"symbol": "ETH/USDT", "horizon": "1h"}).artifact
    assert result.inference.stale and result.inference.age_s == 4200


def test_staleness_limit_is_the_one_the_network_states(
    tools: dict[str, BaseTool], call: Call, network: Any, make_inference: Any
) -> None:
    network.serve(
        make_inference("ETH/USDT volatility 24h", 0.03, 0.004, extra={"max_age_ms": 300_000})
    )
    result = call(tools["volatility_forecast"], {"symbol": "ETH/USDT"}).artifact
    assert result.inference.max_age_s == 300 and result.inference.stale


def test_configured_max_age_overrides_and_topic_names_can_be_mapped(
    network: Any, market: MarketView, call: Call, make_inference: Any
) -> None:
    network.serve(make_inference("ETH/USD 1h log return (Allora #14)", 0.001, 0.002))
    tool = PriceForecastTool(
        network=network,
        market=market,
        max_age_ms=60_000,
        topics={("ETH/USDT", "log_return", "1h"): "ETH/USD 1h log return (Allora #14)"},
    )
    result = call(tool, {"symbol": "ETH/USDT"}).artifact
    assert result.inference.topic == "ETH/USD 1h log return (Allora #14)"
    assert result.inference.max_age_s == 60 and result.inference.stale


def test_domain_problems_come_back_as_readable_errors(
    tools: dict[str, BaseTool], call: Call, network: Any, make_inference: Any
) -> None:
    tool = tools["price_forecast"]
    unknown_topic = call(tool, {"symbol": "ETH/USDT", "horizon": "4h"})
    assert unknown_topic.status == "error"
    assert "no topic named 'ETH/USDT log_return 4h'" in unknown_topic.content

    unknown_symbol = call(tool, {"symbol": "DOGE/USDT"})
    assert (
        unknown_symbol.status == "error" and "unknown symbol 'DOGE/USDT'" in unknown_symbol.content
    )

    network.serve(make_inference("ETH/USDT log_return 1h", math.nan, 0.002))
    nan = call(tool, {"symbol": "ETH/USDT"})
    assert nan.status == "error" and "non-finite" in nan.content

    network.serve(make_inference("ETH/USDT volatility 24h", -0.01, 0.001))
    negative = call(tools["volatility_forecast"], {"symbol": "ETH/USDT"})
    assert negative.status == "error" and "a volatility of -0.01 is impossible" in negative.content


def test_bad_arguments_come_back_as_a_list_of_what_to_fix(
    tools: dict[str, BaseTool], call: Call
) -> None:
    message = call(tools["price_forecast"], {"symbol": "ETHUSDT", "horizon": "1x"})
    assert message.status == "error"
    assert message.text.startswith("invalid arguments: symbol: String should match pattern")
    assert "horizon: String should match pattern" in message.content and "'1x'" in message.content
    missing = call(tools["volatility_forecast"], {})
    assert missing.text.startswith("invalid arguments: symbol: Field required")


def test_a_nan_price_is_refused(network: Any, call: Call) -> None:
    hour = 3_600_000
    ts = np.arange(3, dtype=np.int64) * hour
    close = np.array([100.0, 101.0, math.nan])
    series = Series.from_arrays("ETH/USDT", "1h", ts, close, close, close, close, np.ones(3))
    market = MarketView(StoreFeed(SeriesStore([series])), SimClock(3 * hour))
    message = call(PriceForecastTool(network=network, market=market), {"symbol": "ETH/USDT"})
    assert message.status == "error" and "is not a usable price" in message.content


def test_plain_invoke_returns_the_json_the_model_reads(tools: dict[str, BaseTool]) -> None:
    content = tools["volatility_forecast"].invoke({"symbol": "ETH/USDT"})
    assert isinstance(content, str) and ", " not in content and '": ' not in content  # compact
    assert json.loads(content)["horizon_volatility"] == 0.035


def test_weights_revealed_by_one_worker_give_full_concentration(
    tools: dict[str, BaseTool], call: Call, network: Any
) -> None:
    served = network.latest("ETH/USDT volatility 24h")
    network.serve(
        NetworkInference(served.topic, served.value, served.timestamp_ms, weights={"solo": 1.0})
    )
    summary = call(tools["volatility_forecast"], {"symbol": "ETH/USDT"}).artifact.inference
    assert summary.weight_hhi == 1.0 and summary.effective_workers == 1.0
    assert summary.ci_values == []
