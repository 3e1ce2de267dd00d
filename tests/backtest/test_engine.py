"""Backtest: the same Agent on a simulated clock; determinism, the network tape, venues, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import shared_file

from defai.agent.guard import RiskLimits
from defai.agent.intents import Borrow, Hold, Supply
from defai.agent.observation import Observation
from defai.agent.policy import Strategy
from defai.agent.toolbox import ToolBox
from defai.backtest import Backtest
from defai.backtest.tape import NetworkTape
from defai.errors import ConfigError
from defai.market.csv import CsvFeed
from defai.market.synthetic import SyntheticFeed
from defai.market.view import SimClock
from defai.network.local import LocalNetwork, default_topics
from defai.plugins import STRATEGIES_GROUP, resolve


@pytest.fixture(scope="module")
def feed() -> SyntheticFeed:
    return SyntheticFeed(seed=3, days=20)


def strategy(name: str) -> Strategy:
    found = resolve(STRATEGIES_GROUP, name)
    return found() if isinstance(found, type) else found  # type: ignore[no-any-return]


def test_same_data_and_seed_give_the_same_trades(feed: SyntheticFeed, tmp_path: Path) -> None:
    first = Backtest(strategy("directional"), feed, cache_dir=tmp_path).run()
    again = Backtest(strategy("directional"), SyntheticFeed(seed=3, days=20)).run()
    assert len(first.trades) > 5
    assert first.trade_hash == again.trade_hash
    assert np.array_equal(first.equity.to_numpy(), again.equity.to_numpy())
    assert first.decisions == again.decisions


def test_the_tape_replays_what_a_network_advancing_tick_by_tick_answers(
    feed: SyntheticFeed,
) -> None:
    chosen = strategy("directional")
    topics = [t for t in default_topics(["ETH/USDT"]) if t.name in chosen.topics]
    taped = Backtest(chosen, feed).run()
    stepwise = Backtest(chosen, feed, network=LocalNetwork(topics)).run()
    assert taped.decisions == stepwise.decisions
    assert taped.trade_hash == stepwise.trade_hash
    assert set(taped.network) == set(chosen.topics)
    frame = taped.network[chosen.topics[0]]
    assert frame.index[0] >= taped.equity.index[0] and len(frame) == taped.bars


def test_the_network_is_recorded_once_then_read_from_the_cache(
    feed: SyntheticFeed, tmp_path: Path
) -> None:
    first = Backtest(strategy("directional"), feed, cache_dir=tmp_path).run()
    cached = sorted(tmp_path.glob("network-*.npz"))
    assert len(cached) == 2  # one per topic
    stamps = [p.stat().st_mtime_ns for p in cached]
    again = Backtest(strategy("directional"), feed, cache_dir=tmp_path).run()
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert again.trade_hash == first.trade_hash
    other = SyntheticFeed(seed=4, days=20)  # other candles: another recording
    Backtest(strategy("directional"), other, cache_dir=tmp_path).run()
    assert len(list(tmp_path.glob("network-*.npz"))) == 4


def test_capital_goes_to_the_venues_the_strategy_names(feed: SyntheticFeed) -> None:
    directional = Backtest(strategy("directional"), feed)
    venues = directional._venues(directional.span()[0])
    assert venues.amm is None and venues.lending is None
    assert venues.exchange is not None and venues.exchange.equity() == 10_000.0
    lp = Backtest(strategy("lp_rebalance"), feed, capital=5_000.0)
    on_chain = lp._venues(lp.span()[0])
    assert on_chain.exchange is None and on_chain.lending is None and on_chain.amm is not None
    on_chain.amm.advance(lp.span()[0])
    assert on_chain.amm.equity("USDT") == pytest.approx(5_000.0)


def test_results_line_up(feed: SyntheticFeed) -> None:
    result = Backtest(strategy("directional"), feed).run()
    start, end = Backtest(strategy("directional"), feed).span()
    assert result.equity.index[0].value // 1_000_000 == start
    assert result.equity.index[-1].value // 1_000_000 == end
    assert result.metrics["end_equity"] == result.equity.iloc[-1]
    assert result.metrics["trades"] == len(result.trades)
    assert (result.trades["fee"] > 0).all()
    assert result.trades["time"].is_monotonic_increasing
    assert sum(result.verdicts.values()) >= result.bars  # at least one verdict per tick
    assert (result.exposure.dropna() >= 0).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2030-01-01"}, "nothing to run"),
        ({"network": "allora"}, "no replayable history"),
        ({"start": "not a date"}, "not a time"),
    ],
)
def test_bad_settings_are_refused_clearly(
    feed: SyntheticFeed, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(Exception, match=message):
        Backtest(strategy("directional"), feed, **kwargs).run()  # type: ignore[arg-type]


def test_a_topic_the_embedded_network_lacks_is_named(feed: SyntheticFeed) -> None:
    class Wants7h:
        name = "wants-7h"
        symbols = ("ETH/USDT",)
        topics = ("ETH/USDT log_return 7h",)

        def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
            return [Hold(reason="never runs")]

    with pytest.raises(ConfigError, match="log_return 7h"):
        Backtest(Wants7h(), feed).run()


class BorrowToTheLimit:
    """Supplies the wallet's ETH and borrows USDT to a health factor near 1.1 on the first tick."""

    name = "borrow-to-the-limit"
    symbols = ("ETH/USDT",)
    topics = ()
    venues = ("amm", "lending")

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        if observation.portfolio.lending.has_debt:
            return [Hold(reason="holding the loan")]
        if not observation.portfolio.lending.reserves["ETH"].supplied:
            return [Supply(asset="ETH", amount_fraction=1.0)]
        return [Borrow(asset="USDT", amount_fraction=0.95)]


def test_a_crash_liquidates_the_loan_and_the_result_shows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = CsvFeed(shared_file("data", "binance_ETHUSDT_1h.csv.gz"))
    limits = RiskLimits(max_notional_per_order=1e9, max_notional_per_day=1e9, min_health_factor=1.0)
    caplog.set_level(logging.ERROR)
    result = Backtest(
        BorrowToTheLimit(), feed, start="2020-03-01", end="2020-03-14", limits=limits
    ).run()
    assert result.metrics["liquidations"] >= 1
    first = result.liquidations.iloc[0]
    borrowed = result.actions[result.actions["kind"] == "borrow"]["time_ms"].iloc[0]
    assert first["time_ms"] > borrowed and first["health_factor"] < 1.0
    assert 1.0 < result.health_factor.dropna().iloc[0] < 1.2  # HF ~ LT / LTV / 0.95
    price = result.prices["ETH/USDT"]
    assert price[price.index.asi8 // 1_000_000 <= first["time_ms"]].iloc[-1] < price.iloc[0]


def test_topics_recorded_in_separate_processes_equal_those_recorded_here(
    feed: SyntheticFeed,
) -> None:
    topics = [t for t in default_topics(["ETH/USDT"]) if t.name in strategy("directional").topics]
    end = feed.span("ETH/USDT", "1h")[1]
    clock = SimClock(end)
    seen: list[tuple[int, int]] = []
    here = NetworkTape.record(topics, feed, end, clock, processes=1)
    apart = NetworkTape.record(
        topics, feed, end, clock, processes=2, progress=lambda *p: seen.append(p)
    )
    for topic in topics:
        pd.testing.assert_frame_equal(
            here.recordings[topic.name].frame, apart.recordings[topic.name].frame
        )
    assert seen[-1][0] == seen[-1][1] and len(seen) == 2  # a report per finished topic
