"""The look-ahead check catches a strategy that peeks at the next candle, and passes ours."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import BaseTool, StructuredTool

from defai.agent.intents import EXCHANGE, Hold, PlaceOrder
from defai.agent.observation import Observation
from defai.agent.toolbox import ToolBox
from defai.backtest import Backtest
from defai.backtest.lookahead import TruncatedFeed, check_lookahead
from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView
from defai.plugins import STRATEGIES_GROUP, resolve

HOUR = 3_600_000


def next_close_tool(network: Any, market: MarketView) -> BaseTool:
    """A buggy user tool: it reads the feed one candle past the clock."""

    def next_close(symbol: str) -> float:
        ahead = market.feed.candles(symbol, "1h", as_of=market.now_ms() + HOUR, limit=1)
        return float(ahead.close[-1])

    return StructuredTool.from_function(next_close, description="tomorrow's news, today")


class Clairvoyant:
    """Buys before a rise and sells before a fall: what only the future can tell."""

    name = "clairvoyant"
    symbols = ("ETH/USDT",)
    topics = ()
    venues = ("exchange",)

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        now, ahead = (
            observation.prices["ETH/USDT"],
            toolbox.call("next_close", {"symbol": "ETH/USDT"}),
        )
        held = observation.portfolio.free("ETH", EXCHANGE)
        if ahead > now and held == 0:
            cash = observation.portfolio.free("USDT", EXCHANGE)
            return [PlaceOrder(symbol="ETH/USDT", side="buy", amount=0.5 * cash / now)]
        if ahead < now and held > 0:
            return [PlaceOrder(symbol="ETH/USDT", side="sell", amount=held)]
        return [Hold(reason="no edge")]


def test_a_strategy_peeking_at_the_next_candle_is_caught() -> None:
    feed = SyntheticFeed(seed=5, days=16)
    backtest = Backtest(Clairvoyant(), feed, network=None, tools=[next_close_tool])
    report = check_lookahead(backtest, checkpoints=4)
    assert not report.clean
    assert len(report.cuts_ms) == 4
    assert {d.time_ms for d in report.differences} <= set(report.cuts_ms)  # only at the cuts
    assert all(d.full != d.truncated for d in report.differences)


def test_the_builtin_directional_strategy_and_the_network_do_not_peek() -> None:
    feed = SyntheticFeed(seed=3, days=16)
    found = resolve(STRATEGIES_GROUP, "directional")
    report = check_lookahead(Backtest(found(), feed), checkpoints=3)
    assert report.clean, report.differences[:3]
    assert report.ticks_compared > 100


def test_a_truncated_feed_ends_at_its_cut() -> None:
    feed = SyntheticFeed(seed=3, days=5)
    first, last = feed.span("ETH/USDT", "1h")
    cut = first + 50 * HOUR
    short = TruncatedFeed(feed, cut)
    assert short.span("ETH/USDT", "1h") == (first, cut)
    assert short.candles("ETH/USDT", "1h", as_of=last).close_ts[-1] == cut
    with pytest.raises(Exception, match="nothing to run"):
        Backtest(Clairvoyant(), short, start=cut + 2 * HOUR, network=None).run()
