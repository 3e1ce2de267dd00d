"""Time each built-in tool call as an agent makes it: `tool.invoke(args)`, validation included.

Run as `python tests/benchmarks/bench_tools.py`. Each line is one tool's median latency in
microseconds over repeated calls, on the synthetic market and a network serving fixed
inferences (so only the tool is timed, not a network epoch).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy.special import ndtri

from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView, SimClock
from defai.types import NetworkInference, to_ms
from tools.toolkit import DeFAIToolkit

NOW_MS = to_ms("2024-01-20")
PERCENTILES = (2.28, 15.87, 50.0, 84.13, 97.72)
ARGS: dict[str, dict[str, Any]] = {
    "price_forecast": {"symbol": "ETH/USDT"},
    "volatility_forecast": {"symbol": "ETH/USDT"},
    "lp_range": {"symbol": "ETH/USDT", "fee_tier": 3000, "capital": 10_000, "fee_apr": 0.3},
    "liquidation_risk": {
        "symbol": "ETH/USDT",
        "collateral_amount": 10,
        "debt": 20_000,
        "liquidation_threshold": 0.825,
    },
    "mev_check": {
        "pool": {"kind": "constant_product", "reserve_in": 1e6, "reserve_out": 500},
        "amount_in": 20_000,
        "slippage": 0.01,
        "gas_cost": 10,
    },
    "leverage_advisor": {
        "symbol": "ETH/USDT",
        "liquidation_threshold": 0.825,
        "supply_rate": 0.02,
        "borrow_rate": 0.05,
    },
}


class FixedNetwork:
    """Serves one normal-shaped inference per topic, ten minutes old."""

    def __init__(self, values: dict[str, tuple[float, float]]) -> None:
        z = ndtri(np.asarray(PERCENTILES) / 100)
        self.by_topic = {
            topic: NetworkInference(
                topic,
                value,
                NOW_MS - 600_000,
                PERCENTILES,
                tuple(float(v) for v in value + std * z),
                {"a": 0.5, "b": 0.3, "c": 0.2},
            )
            for topic, (value, std) in values.items()
        }

    def latest(self, topic: str) -> NetworkInference:
        return self.by_topic[topic]


def median_us(run: Callable[[], object], budget_s: float = 1.0, max_runs: int = 2000) -> float:
    """Median wall time of `run` over repeated calls, stopping after ~budget_s seconds."""
    run()  # warm caches and imports
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (len(times) < max_runs and time.perf_counter() < deadline):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    network = FixedNetwork(
        {
            "ETH/USDT log_return 1h": (0.0004, 0.002),
            "ETH/USDT log_return 24h": (0.003, 0.006),
            "ETH/USDT volatility 24h": (0.035, 0.004),
        }
    )
    market = MarketView(SyntheticFeed(seed=7, days=30), SimClock(NOW_MS))
    for tool in DeFAIToolkit(network=network, market=market).get_tools():
        print(f"{tool.name} {median_us(partial(tool.invoke, ARGS[tool.name])):.0f} us")


if __name__ == "__main__":
    main()
