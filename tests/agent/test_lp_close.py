"""Closing a range that earned no fee: the burn closes it, and the agent reports success."""

from __future__ import annotations

from defai.agent.agent import Agent, Venues
from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import CloseLPRange, OpenLPRange
from defai.agent.observation import Observation
from defai.agent.policy import StrategyPolicy
from defai.agent.toolbox import ToolBox
from defai.execution.amm import PaperAMM, PoolConfig
from defai.market.synthetic import SyntheticFeed
from defai.market.view import SimClock
from defai.network.local import LocalNetwork

HOUR = 3_600_000


class OpenAboveThenClose:
    """A range wholly above the price (it earns nothing), closed on the next tick."""

    name = "open-then-close"
    symbols = ("ETH/USDT",)
    topics = ()

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        held = observation.portfolio.lp_positions
        if held:
            return [CloseLPRange(position_id=held[0].id)]
        price = observation.prices["ETH/USDT"]
        return [
            OpenLPRange(
                pair="ETH/USDT",
                fee_tier=3000,
                lower_price=price * 1.3,
                upper_price=price * 1.4,
                capital=1_000.0,
            )
        ]


def test_a_range_without_fees_closes_cleanly() -> None:
    feed = SyntheticFeed(seed=2, days=20)
    start = feed.span("ETH/USDT", "1h")[0] + 300 * HOUR
    clock = SimClock(start)
    amm = PaperAMM(feed, [PoolConfig("ETH/USDT")], balances={"ETH": 2.0, "USDT": 100.0})
    agent = Agent(
        clock=clock,
        feed=feed,
        network=LocalNetwork.default(feed),
        policy=StrategyPolicy(OpenAboveThenClose()),
        guard=RiskGuard(RiskLimits()),
        toolbox=ToolBox([]),
        venues=Venues(amm=amm),
        symbols=["ETH/USDT"],
    )
    opened = agent.tick()
    assert [e.error for e in opened.executions] == [None]
    clock.set(start + HOUR)
    closed = agent.tick()
    [execution] = closed.executions
    assert execution.error is None and set(execution.result) == {"burn"}
    assert amm.positions() == []
    assert amm.balances()["USDT"] == 100.0 - 2 * 5.0  # two actions' gas, no fee earned
