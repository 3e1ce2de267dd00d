"""Time the network maths: one full v0.6 epoch per network size, and v0.16 at Allora's scale.

Run as `python tests/benchmarks/bench_synthesis.py`. Each line is the median of repeated runs in
milliseconds. An epoch is `synthesize` (combined, naive, forecast-implied with and without each
inferer, one-out, one-in, confidence interval) then `score_epoch` (losses, every regret family,
scores, reputer consensus, rewards); each half is also timed alone.
Goals: a (32, 6) epoch <= 1 ms; 280,000 inferers <= 100 ms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from defai.network.epoch import EpochParams, EpochState, score_epoch
from defai.network.synthesis import (
    Synthesis,
    SynthesisParams,
    ValueBundle,
    network_rows,
    synthesize,
)

N_REPUTERS = 6
SEED = 7


def median_ms(run: Callable[[], object], budget_s: float = 2.0, max_runs: int = 200) -> float:
    """Median wall time of `run` over repeated calls, stopping after ~budget_s seconds."""
    run()  # warm caches and imports
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (len(times) < max_runs and time.perf_counter() < deadline):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def reputer_losses(synthesis: Synthesis, truth: float, rng: np.random.Generator) -> ValueBundle:
    """Each reputer's log10 squared error of every value, with a little disagreement."""
    squared = synthesis.values.map(lambda v: np.log10((v - truth) ** 2 + 1e-12))

    def reported_by_one(offset: float) -> ValueBundle:
        return squared.map(lambda v: v + offset)

    return ValueBundle.stack([reported_by_one(e) for e in rng.normal(0, 0.02, N_REPUTERS)])


def bench_epoch(n_inferers: int, n_forecasters: int) -> dict[str, float]:
    """Times an epoch of a topic already scored three times, so every worker has regrets."""
    params = EpochParams()
    rng = np.random.default_rng(SEED)
    stakes = rng.uniform(1e5, 5e5, N_REPUTERS)
    state = EpochState.initial(n_inferers, n_forecasters, N_REPUTERS)
    for _ in range(4):
        truth = float(rng.normal())
        inferences = truth + rng.normal(0, rng.uniform(0.01, 1, n_inferers))
        forecasted = rng.normal(-2, 1, (n_forecasters, n_inferers))
        synthesis = synthesize(inferences, forecasted, state.synthesis, params.synthesis)
        losses = reputer_losses(synthesis, truth, rng)
        previous, state = (
            state,
            score_epoch(synthesis, losses, stakes, 7_700.0, state, params).state,
        )

    def synthesis_only() -> Synthesis:
        return synthesize(inferences, forecasted, previous.synthesis, params.synthesis)

    def scoring_only() -> None:
        score_epoch(synthesis, losses, stakes, 7_700.0, previous, params)

    def epoch() -> None:
        score_epoch(synthesis_only(), losses, stakes, 7_700.0, previous, params)

    return {
        "epoch": median_ms(epoch),
        "synthesize": median_ms(synthesis_only),
        "score_epoch": median_ms(scoring_only),
    }


def bench_v016_combined(n_inferers: int) -> float:
    params = SynthesisParams(weighting="v0.16")
    rng = np.random.default_rng(SEED)
    inferences = rng.normal(0, 1, n_inferers)
    regrets = rng.normal(0, 0.5, n_inferers)
    taking_part = np.ones(n_inferers, dtype=bool)
    weighted_before = rng.uniform(0, 1e-5, n_inferers) > 1e-6

    def combined() -> None:
        network_rows(
            inferences,
            regrets,
            taking_part,
            cold=False,
            initial_regret=0.0,
            scale_mask=weighted_before,
            params=params,
        )

    return median_ms(combined)


def main() -> None:
    for n_inferers, n_forecasters in [(5, 3), (32, 6), (256, 32), (1024, 64)]:
        size = f"{n_inferers} inferers, {n_forecasters} forecasters, {N_REPUTERS} reputers"
        for part, ms in bench_epoch(n_inferers, n_forecasters).items():
            print(f"v0.6 {part} ({size}): {ms:.3f} ms", flush=True)
    print(f"v0.16 weights + combined (280000 inferers): {bench_v016_combined(280_000):.3f} ms")


if __name__ == "__main__":
    main()
