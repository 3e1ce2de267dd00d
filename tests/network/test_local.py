"""LocalNetwork: the epoch cycle on real feeds, point-in-time, persistence, slashing, failures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from defai.errors import NetworkError
from defai.market.feed import Series, SeriesStore, StoreFeed
from defai.market.synthetic import SyntheticFeed
from defai.network.epoch import EpochParams
from defai.network.local import CODEC, LocalNetwork, SlashingRule, Topic, default_topics
from defai.network.synthesis import SynthesisParams
from defai.network.workers import RandomGuesser, as_worker, default_zoo
from defai.types import Candles

HOUR = 3_600_000
RETURNS = "ETH/USDT log_return 1h"
VOLATILITY = "ETH/USDT volatility 24h"


@pytest.fixture(scope="module")
def feed() -> SyntheticFeed:
    return SyntheticFeed(seed=5, days=24)


def end_of(feed: StoreFeed) -> int:
    return feed.span("ETH/USDT", "1h")[1]


def filtered(feed: StoreFeed, keep_mask: Callable[[Series], np.ndarray]) -> StoreFeed:
    """The feed's ETH/USDT hourly series with only the candles `keep_mask` selects."""
    series = feed.store.series("ETH/USDT", "1h")
    keep = keep_mask(series)
    arrays = (series.ts, series.open, series.high, series.low, series.close, series.volume)
    return StoreFeed(
        SeriesStore([Series.from_arrays("ETH/USDT", "1h", *(a[keep] for a in arrays))])
    )


def test_latest_is_a_complete_inference(feed: SyntheticFeed) -> None:
    net = LocalNetwork.default(feed)
    ran = net.advance(end_of(feed), feed)
    # epochs start once a full 256-candle window exists: 24 days = 576 hours
    assert len(net.topics()) == 3
    assert ran == 3 * (576 - 255)
    for topic in (RETURNS, VOLATILITY):
        inference = net.latest(topic)
        assert inference.timestamp_ms == end_of(feed)
        assert len(inference.ci_values) == 5
        assert list(inference.ci_values) == sorted(inference.ci_values)
        assert inference.ci_values[0] <= inference.value <= inference.ci_values[-1]
        assert sum(inference.weights.values()) == pytest.approx(1.0)
        assert inference.extra["max_age_ms"] == HOUR
    assert net.latest(VOLATILITY).value > 0


def test_no_inference_before_advance_and_unknown_topic(feed: SyntheticFeed) -> None:
    net = LocalNetwork.default(feed)
    with pytest.raises(NetworkError, match="has no inference yet"):
        net.latest(RETURNS)
    with pytest.raises(NetworkError, match=r"unknown topic 'ETH/USDT price 1h'; this network has"):
        net.latest("ETH/USDT price 1h")


def test_advancing_in_steps_equals_advancing_at_once(feed: SyntheticFeed) -> None:
    """Epochs see only the past: running hour by hour gives the same result as one catch-up."""
    stepwise, at_once = LocalNetwork.default(feed), LocalNetwork.default(feed)
    end = end_of(feed)
    for now in range(end - 60 * HOUR, end + 1, 7 * HOUR):
        stepwise.advance(now, feed)
    stepwise.advance(end, feed)
    at_once.advance(end - 60 * HOUR, feed)
    at_once.advance(end, feed)
    for topic in (RETURNS, VOLATILITY):
        assert stepwise.latest(topic) == at_once.latest(topic)
        assert CODEC.dumps(stepwise._ledgers[topic]) == CODEC.dumps(at_once._ledgers[topic])


def test_future_candles_change_nothing(feed: SyntheticFeed) -> None:
    """A feed that also holds the future answers as one cut at `now`: no look-ahead."""
    cut = end_of(feed) - 100 * HOUR
    full = LocalNetwork.default(feed)
    full.advance(cut, feed)
    truncated = filtered(feed, lambda series: series.close_ts <= cut)
    past_only = LocalNetwork.default(truncated)
    past_only.advance(cut, truncated)
    assert full.latest(RETURNS) == past_only.latest(RETURNS)
    assert full.history(VOLATILITY).equals(past_only.history(VOLATILITY))


def test_restored_network_continues_bit_identically(feed: SyntheticFeed, tmp_path: Path) -> None:
    db = tmp_path / "network.sqlite"
    end = end_of(feed)
    first = LocalNetwork.default(feed, db=db)
    first.advance(end - 150 * HOUR, feed)
    first.close()
    reopened = LocalNetwork.default(feed, db=db)
    assert reopened.latest(RETURNS) == first.latest(RETURNS)
    reopened.advance(end, feed)
    straight = LocalNetwork.default(feed)
    straight.advance(end - 150 * HOUR, feed)
    straight.advance(end, feed)
    for topic in (RETURNS, VOLATILITY):
        assert reopened.latest(topic) == straight.latest(topic)
        assert CODEC.dumps(reopened._ledgers[topic]) == CODEC.dumps(straight._ledgers[topic])
        assert reopened.history(topic).equals(straight.history(topic))
        assert reopened.scorecard(topic).equals(straight.scorecard(topic))


def test_state_from_another_cast_is_refused(feed: SyntheticFeed, tmp_path: Path) -> None:
    db = tmp_path / "network.sqlite"
    net = LocalNetwork.default(feed, db=db)
    net.advance(end_of(feed), feed)
    net.close()
    other = default_topics(extra_workers=[RandomGuesser(seed=1)])
    with pytest.raises(NetworkError, match="saved with other participants or parameters"):
        LocalNetwork(other, db=db)


def quick_slashing_topic(extra: list) -> Topic:  # type: ignore[type-arg]
    topic = default_topics(extra_workers=extra)[0]
    rule = SlashingRule(trend_epochs=24, warmup=24, patience=12, fraction=0.5, min_deposit=10)
    return dataclasses.replace(topic, slashing=rule)


def test_random_guesser_is_slashed_and_suspended_honest_workers_are_not() -> None:
    feed = SyntheticFeed(seed=9, days=40)
    net = LocalNetwork([quick_slashing_topic([RandomGuesser(seed=3, width=20.0)])])
    net.advance(end_of(feed), feed)
    card = net.scorecard(RETURNS)
    guesser = card.loc["random-guesser"]
    assert guesser["status"] == "suspended"
    assert guesser["stake"] < 10 and guesser["slashed"] > 90
    honest = card.loc[[w.name for w in default_zoo()]]
    assert (honest["status"] == "active").all()
    assert (honest["slashed"] == 0).all()
    # once suspended it is no longer part of the network
    assert "random-guesser" not in net.latest(RETURNS).weights
    # what was slashed went to the others: total paid = emission + slashed
    scored = len(net.history(RETURNS)["truth"].dropna())
    paid = card["rewards"].sum()
    assert paid == pytest.approx(
        scored * 1.0 + card["slashed"].sum() - _unpaid_carry(net), rel=1e-9
    )


def _unpaid_carry(net: LocalNetwork) -> float:
    return net._ledgers[RETURNS].carry_reward


def test_a_failing_user_model_gives_no_inference_not_a_crash(feed: SyntheticFeed) -> None:
    def broken(window: Candles) -> float:
        if window.close[-1] > window.close[-2]:
            raise ZeroDivisionError("model blew up")
        return float("nan")

    topic = default_topics(extra_workers=[as_worker(broken, name="broken")])[0]
    net = LocalNetwork([topic])
    net.advance(end_of(feed), feed)
    assert "broken" not in net.latest(RETURNS).weights
    assert np.isnan(net.scorecard(RETURNS).loc["broken", "loss_ema"])


def test_gap_in_the_feed_skips_epochs_without_crashing() -> None:
    feed = SyntheticFeed(seed=2, days=16)
    series = feed.store.series("ETH/USDT", "1h")
    outage = np.zeros(len(series.ts), dtype=bool)
    outage[300:303] = True  # a three-hour outage
    gappy = filtered(feed, lambda s: ~outage)
    net = LocalNetwork.default(gappy)
    net.advance(end_of(gappy), gappy)
    history = net.history(RETURNS)
    missing = series.close_ts[300:303]
    assert not set(missing) & {int(t.value // 1_000_000) for t in history.index}
    # the epoch just before the outage has no truth (its next candle is missing): never scored
    before = series.close_ts[299]
    assert np.isnan(history.loc[history.index.asi8 // 1_000_000 == before, "truth"]).all()


def test_v016_weighting_topic(feed: SyntheticFeed) -> None:
    topics = default_topics(weighting="v0.16")
    assert topics[0].params == EpochParams(synthesis=SynthesisParams(weighting="v0.16"))
    net = LocalNetwork(topics)
    net.advance(end_of(feed), feed)
    weights = net.latest(RETURNS).weights
    assert sum(weights.values()) == pytest.approx(1.0)
    assert all(w > 0 for w in weights.values())  # v0.16 has no zero cut-off


def test_history_and_scorecard_shapes(feed: SyntheticFeed) -> None:
    net = LocalNetwork.default(feed)
    net.advance(end_of(feed), feed)
    history = net.history(RETURNS)
    weights = history.filter(like="weight:")
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert history["truth"].notna().sum() == len(history) - 1  # the last epoch awaits its truth
    card = net.scorecard(RETURNS)
    assert list(card["kind"].unique()) == ["inferer", "forecaster", "reputer"]
    assert card.loc[card.kind != "reputer", "weight"].sum() == pytest.approx(1.0)
