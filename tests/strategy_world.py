"""The world strategy tests decide in: a synthetic month, the real network and tools at its end.

Built once per test session (advancing the network takes seconds) and shared by every
strategy's tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from defai.agent.toolbox import ToolBox
from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView, SimClock
from defai.network.base import InferenceSource
from defai.network.local import LocalNetwork
from defai.types import NetworkInference
from tools.toolkit import DeFAIToolkit


class Shifted:
    """The network, with its 24h log-return forecast moved by `shift`."""

    def __init__(self, network: InferenceSource, shift: float) -> None:
        self.network, self.shift = network, shift

    def latest(self, topic: str) -> NetworkInference:
        inference = self.network.latest(topic)
        if topic != "ETH/USDT log_return 24h":
            return inference
        values = tuple(v + self.shift for v in inference.ci_values)
        return replace(inference, value=inference.value + self.shift, ci_values=values)


@dataclass(frozen=True)
class World:
    feed: SyntheticFeed
    network: LocalNetwork
    end_ms: int
    price: float

    def source(self, shift: float) -> InferenceSource:
        return Shifted(self.network, shift) if shift else self.network

    def toolbox(self, shift: float = 0.0, late_ms: int = 0) -> ToolBox:
        """The built-in tools, `late_ms` after the network's last inference."""
        market = MarketView(self.feed, SimClock(self.end_ms + late_ms))
        return ToolBox(DeFAIToolkit(network=self.source(shift), market=market).get_tools())


def build_world() -> World:
    feed = SyntheticFeed(seed=7, days=30)
    end_ms = int(feed.candles("ETH/USDT", "1h", 2**62).close_ts[-1])
    network = LocalNetwork.default(feed)
    network.advance(end_ms, feed)
    price = MarketView(feed, SimClock(end_ms)).last_price("ETH/USDT")
    return World(feed, network, end_ms, price)
