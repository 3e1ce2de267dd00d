"""The flywheel, measured: does the embedded network learn whom to trust on real data?

An hourly ETH/USDT log-return topic on Binance candles, 2019-01-01 to 2021-06-01, with the
built-in zoo plus three random guessers and one adversary. Prints: the network inference's
loss against the best single worker, the mean worker and the naive inference; the weight held
by the bad actors over time; reward and stake shares by class; and what a dishonest reputer
holding 20% of the stake does to the consensus. Run: python tests/benchmarks/bench_flywheel.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from defai.market.csv import CsvFeed
from defai.network.local import LocalNetwork, Topic, default_reputers
from defai.network.reputers import DishonestReputer, Reputer
from defai.network.topic import TopicSpec
from defai.network.workers import Adversarial, RandomGuesser, default_forecasters, default_zoo
from defai.types import to_ms

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "binance_ETHUSDT_1h.csv.gz"
START, END = to_ms("2019-01-01"), to_ms("2021-06-01")
WARMUP_DAYS = 14
HONEST = [w.name for w in default_zoo()]
RANDOM = [f"random-{i}" for i in range(3)]
ADVERSARY = ["adversarial"]


def flywheel_topic(reputers: tuple[Reputer, ...]) -> Topic:
    spec = TopicSpec(name="ETH/USDT log_return 1h", symbol="ETH/USDT", target="log_return")
    guessers = [RandomGuesser(seed=i, name=name) for i, name in enumerate(RANDOM)]
    return Topic(
        spec=spec,
        workers=(*default_zoo(), *guessers, Adversarial()),
        forecasters=tuple(default_forecasters()),
        reputers=reputers,
    )


def run(reputers: tuple[Reputer, ...], feed: CsvFeed) -> tuple[LocalNetwork, float]:
    network = LocalNetwork([flywheel_topic(reputers)], start=START)
    began = time.perf_counter()
    network.advance(END, feed)
    return network, time.perf_counter() - began


def rmse(log10_losses: pd.Series) -> float:
    """Root of the mean squared error from per-epoch log10 MSE losses."""
    return float(np.sqrt(np.mean(10 ** log10_losses.dropna())))


def main() -> None:
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: this benchmark needs ../shared beside the project")
    feed = CsvFeed(DATA)
    topic = "ETH/USDT log_return 1h"
    honest_net, seconds = run(default_reputers(), feed)
    history = honest_net.history(topic)
    after = history[history.index >= history.index[0] + pd.Timedelta(days=WARMUP_DAYS)]
    epochs = len(history)
    print(f"epochs: {epochs} in {seconds:.1f} s ({seconds / epochs * 1e3:.2f} ms per epoch)")

    print("\n# loss after warm-up (RMSE of the hourly log-return; lower is better)")
    workers = {name: rmse(after[f"loss:{name}"]) for name in HONEST + RANDOM + ADVERSARY}
    best = min(HONEST, key=workers.__getitem__)
    print(f"network inference      {rmse(after['network_loss']):.6f}")
    print(f"naive inference        {rmse(after['naive_loss']):.6f}")
    print(f"best single worker     {workers[best]:.6f} ({best})")
    print(f"mean honest worker     {np.mean([workers[n] for n in HONEST]):.6f}")
    print(f"mean of all inferers   {np.mean(list(workers.values())):.6f}")
    print(f"zero forecast          {float(np.sqrt(np.mean(after['truth'] ** 2))):.6f}")
    mean_log = [after[f"loss:{name}"].mean() for name in HONEST]
    print(
        f"mean log10 loss: network {after['network_loss'].mean():.3f}, "
        f"best worker {min(mean_log):.3f}, mean honest worker {np.mean(mean_log):.3f}"
    )

    print("\n# weight held by bad actors (mean share of the combined inference)")
    weights = history.filter(like="weight:").fillna(0.0)
    random_share = weights[[f"weight:{n}" for n in RANDOM]].sum(axis=1)
    adversary_share = weights[[f"weight:{n}" for n in ADVERSARY]].sum(axis=1)
    by_quarter = (
        pd.DataFrame({"random": random_share, "adversary": adversary_share}).resample("QE").mean()
    )
    for when, row in by_quarter.iterrows():
        print(f"{when:%Y-%m}  random {row['random']:.2%}  adversary {row['adversary']:.2%}")
    after_mask = history.index >= after.index[0]
    print(
        f"after warm-up: random {random_share[after_mask].mean():.2%}, "
        f"adversary {adversary_share[after_mask].mean():.2%}, "
        f"together {(random_share + adversary_share)[after_mask].mean():.2%} (goal < 5%)"
    )

    print("\n# rewards and deposits by class")
    card = honest_net.scorecard(topic)
    classes = {
        "honest inferers": HONEST,
        "random guessers": RANDOM,
        "adversary": ADVERSARY,
        "forecasters": [f.name for f in default_forecasters()],
    }
    workers_total = card.loc[card.kind != "reputer", "rewards"].sum()
    for label, names in classes.items():
        rows = card.loc[names]
        suspended = int((rows["status"] == "suspended").sum())
        print(
            f"{label:16s} reward share {rows['rewards'].sum() / workers_total:6.2%}  "
            f"({rows['rewards'].sum() / len(names):7.1f} each)  "
            f"deposit left {rows['stake'].mean():6.1f} of 100  suspended {suspended}/{len(names)}"
        )

    print("\n# a dishonest reputer with 20% of the stake (reports inverted losses)")
    stakes = (320.0, 320.0, 320.0, 240.0)
    liar = DishonestReputer("liar", 300.0, mode="invert")
    reputers = (*(Reputer(f"reputer-{i}", s) for i, s in enumerate(stakes)), liar)
    liar_net, _ = run(reputers, feed)
    liar_history = liar_net.history(topic)
    liar_after = liar_history[liar_history.index >= after.index[0]]
    liar_card = liar_net.scorecard(topic)
    # the liar's run reports distorted losses: judge its inference by the honest squared error
    honest_view = np.log10((liar_after["value"] - liar_after["truth"]) ** 2)
    print(
        f"network RMSE honest reputers {rmse(after['network_loss']):.6f}  "
        f"with the liar (judged honestly) {rmse(honest_view):.6f}"
    )
    bad = [f"weight:{n}" for n in RANDOM + ADVERSARY]
    bad_weight = liar_after.filter(like="weight:").fillna(0.0)[bad].sum(axis=1).mean()
    print(f"bad actors' weight after warm-up: {bad_weight:.2%}")
    reputers = liar_card[liar_card.kind == "reputer"]
    liar_share = reputers.loc["liar", "rewards"] / reputers["rewards"].sum()
    print(
        f"liar's listening coefficient {reputers.loc['liar', 'weight']:.3f}, "
        f"reward share among reputers {liar_share:.2%} (stake share at start 20.00%)"
    )


if __name__ == "__main__":
    main()
