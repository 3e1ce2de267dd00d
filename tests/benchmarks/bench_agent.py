"""Decision-cycle latency of the agent, per tick, for each built-in strategy (network included).

One tick = venues catch up, the embedded network runs its due epochs (3 topics), the strategy
calls its tools, the guard reviews, venues execute, the journal commits. 200 hourly ticks on
the synthetic market after the network's warm-up. Run: python tests/benchmarks/bench_agent.py
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from defai.cli.common import load_strategy
from defai.cli.run import _agent, _network
from defai.config import load_settings
from defai.market.synthetic import SyntheticFeed

TICKS = 200
HOUR = 3_600_000


def main() -> None:
    logging.disable(logging.WARNING)  # venue refusals are journaled; they would flood the output
    settings = load_settings(environ={})
    for name in ("directional", "lp_rebalance", "leverage_loop"):
        with tempfile.TemporaryDirectory() as folder:
            feed = SyntheticFeed(seed=3, days=30)
            strategy = load_strategy(name)
            network = _network("local", feed, Path(folder), settings)
            # warm the network up first: the tick then runs one epoch per topic, as live
            warm_until = feed.span("ETH/USDT", "1h")[0] + 300 * HOUR
            network.advance(warm_until, feed)  # type: ignore[attr-defined]
            agent, journal, _, start = _agent(strategy, feed, network, Path(folder), 10_000.0)
            latencies = []
            for i in range(TICKS):
                agent.clock.set(start + i * HOUR)  # type: ignore[attr-defined]
                began = time.perf_counter()
                agent.tick()
                latencies.append((time.perf_counter() - began) * 1e3)
            journal.close()
            ms = np.array(latencies)
            print(
                f"{name}: median {np.median(ms):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms "
                f"per tick over {TICKS} ticks"
            )


if __name__ == "__main__":
    main()
