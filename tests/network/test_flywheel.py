"""The flywheel on real ETH candles, fast: whom does the network learn to trust?

Two months of hourly Binance ETH/USDT with the built-in zoo, three random guessers and a
biased adversary (the full 2.5-year run is tests/benchmarks/bench_flywheel.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import shared_file

from defai.market.csv import CsvFeed
from defai.network.local import LocalNetwork, Topic, default_reputers
from defai.network.reputers import DishonestReputer, Reputer
from defai.network.topic import TopicSpec
from defai.network.workers import Adversarial, RandomGuesser, default_forecasters, default_zoo
from defai.types import to_ms

START, END = to_ms("2021-01-01"), to_ms("2021-03-01")
TOPIC = "ETH/USDT log_return 1h"
BAD = ["random-0", "random-1", "random-2", "adversarial"]
HONEST = [w.name for w in default_zoo()]


def run(reputers: tuple[Reputer, ...]) -> LocalNetwork:
    feed = CsvFeed(shared_file("data", "binance_ETHUSDT_1h.csv.gz"))
    spec = TopicSpec(name=TOPIC, symbol="ETH/USDT", target="log_return")
    guessers = [RandomGuesser(seed=i, name=f"random-{i}") for i in range(3)]
    topic = Topic(
        spec=spec,
        workers=(*default_zoo(), *guessers, Adversarial()),
        forecasters=tuple(default_forecasters()),
        reputers=reputers,
    )
    network = LocalNetwork([topic], start=START)
    network.advance(END, feed)
    return network


@pytest.fixture(scope="module")
def honest() -> LocalNetwork:
    return run(default_reputers())


def after_warmup(history: pd.DataFrame) -> pd.DataFrame:
    return history[history.index >= history.index[0] + pd.Timedelta(days=7)]


def rmse(log10_losses: pd.Series) -> float:
    return float(np.sqrt(np.mean(10 ** log10_losses.dropna())))


def test_bad_actors_hold_under_five_percent_of_the_weight(honest: LocalNetwork) -> None:
    weights = after_warmup(honest.history(TOPIC)).filter(like="weight:").fillna(0.0)
    share = weights[[f"weight:{n}" for n in BAD]].sum(axis=1)
    assert share.mean() < 0.05
    random_share = weights[[f"weight:random-{i}" for i in range(3)]].sum(axis=1)
    assert random_share.mean() < 0.001


def test_network_beats_the_average_worker_and_the_naive_network(honest: LocalNetwork) -> None:
    history = after_warmup(honest.history(TOPIC))
    network = rmse(history["network_loss"])
    assert network < np.mean([rmse(history[f"loss:{n}"]) for n in HONEST])
    assert network < np.mean([rmse(history[f"loss:{n}"]) for n in HONEST + BAD])
    assert network <= rmse(history["naive_loss"]) * 1.001


def test_random_guessers_lose_deposit_honest_workers_keep_theirs(honest: LocalNetwork) -> None:
    card = honest.scorecard(TOPIC)
    assert (card.loc[[f"random-{i}" for i in range(3)], "slashed"] > 0).all()
    assert (card.loc[HONEST, "slashed"] == 0).all()
    rewards = card.loc[HONEST + BAD, "rewards"]
    assert rewards[[f"random-{i}" for i in range(3)]].max() < rewards[HONEST].min()


def test_a_dishonest_reputer_with_a_fifth_of_the_stake_is_not_listened_to() -> None:
    liar = DishonestReputer("liar", 300.0, mode="invert")
    honest_stakes = (320.0, 320.0, 320.0, 240.0)
    network = run((*(Reputer(f"reputer-{i}", s) for i, s in enumerate(honest_stakes)), liar))
    card = network.scorecard(TOPIC)
    reputers = card[card.kind == "reputer"]
    assert reputers.loc["liar", "weight"] < 0.05  # its listening coefficient
    assert reputers.loc["liar", "rewards"] < 0.05 * reputers["rewards"].sum()
