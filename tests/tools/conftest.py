"""Fixtures for the tool tests: a real synthetic market on a simulated clock, and a network that
serves hand-made inferences (a genuine InferenceSource, so each test knows the exact inputs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from scipy.special import ndtri

from defai.errors import NetworkError
from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView, SimClock
from defai.types import NetworkInference, to_ms
from tools.toolkit import DeFAIToolkit

PERCENTILES = (2.28, 15.87, 50.0, 84.13, 97.72)
NOW_MS = to_ms("2024-01-20")
AGE_MS = 600_000  # every served inference is ten minutes old unless a test says otherwise
WEIGHTS = {"ridge": 0.5, "momentum": 0.3, "garch": 0.2}


def normal_inference(
    topic: str,
    value: float,
    std: float,
    *,
    age_ms: int = AGE_MS,
    weights: Mapping[str, float] = WEIGHTS,
    extra: Mapping[str, Any] | None = None,
) -> NetworkInference:
    """An inference whose CI values are exactly value + std * z(p): a normal fit gives std back."""
    z = ndtri(np.asarray(PERCENTILES) / 100)
    return NetworkInference(
        topic=topic,
        value=value,
        timestamp_ms=NOW_MS - age_ms,
        ci_percentiles=PERCENTILES,
        ci_values=tuple(float(v) for v in value + std * z),
        weights=dict(weights),
        epoch=42,
        extra=dict(extra or {}),
    )


class ServedNetwork:
    """Serves the inferences it is given, by topic name, like any InferenceSource."""

    def __init__(self, *inferences: NetworkInference) -> None:
        self.by_topic = {inference.topic: inference for inference in inferences}

    def serve(self, inference: NetworkInference) -> None:
        self.by_topic[inference.topic] = inference

    def latest(self, topic: str) -> NetworkInference:
        try:
            return self.by_topic[topic]
        except KeyError:
            raise NetworkError(f"no topic named {topic!r}") from None


@pytest.fixture(scope="session")
def feed() -> SyntheticFeed:
    return SyntheticFeed(seed=7, days=30)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(NOW_MS)


@pytest.fixture
def market(feed: SyntheticFeed, clock: SimClock) -> MarketView:
    return MarketView(feed, clock)


@pytest.fixture
def network() -> ServedNetwork:
    return ServedNetwork(
        normal_inference("ETH/USDT log_return 1h", 0.0004, 0.002),
        normal_inference("ETH/USDT volatility 1h", 0.008, 0.001),
        normal_inference("ETH/USDT log_return 24h", 0.003, 0.006),
        normal_inference("ETH/USDT volatility 24h", 0.035, 0.004),
    )


@pytest.fixture
def make_inference() -> Callable[..., NetworkInference]:
    return normal_inference


@pytest.fixture
def tools(network: ServedNetwork, market: MarketView) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in DeFAIToolkit(network=network, market=market).get_tools()}


@pytest.fixture
def call() -> Callable[[BaseTool, dict[str, Any]], ToolMessage]:
    """Invoke a tool the way an agent does (a ToolCall), so the answer is a ToolMessage."""

    def invoke(tool: BaseTool, args: dict[str, Any]) -> ToolMessage:
        message = tool.invoke(
            {"name": tool.name, "args": args, "id": "call-1", "type": "tool_call"}
        )
        assert isinstance(message, ToolMessage)
        return message

    return invoke
