"""Orders per second through PaperExchange matching: create_order, then the fill on advance.

Run as `python tests/benchmarks/bench_paper_exchange.py`. Each line is one workload's
throughput on the synthetic market (1h candles): orders created per bar, the clock advanced
one bar, the fills returned; best of three runs. The last line is the cost of an idle
`advance` (what a backtest pays every bar) with resting orders that the bar does not touch.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from defai.execution.paper import PaperExchange
from defai.market.synthetic import SyntheticFeed

HOUR = 3_600_000
FEED = SyntheticFeed(seed=1, days=120, symbols=["ETH/USDT"])
BARS = 400
PER_BAR = 10


def exchange(db: Path | None = None) -> PaperExchange:
    ex = PaperExchange(
        FEED, balances={"USDT": 1e9, "ETH": 1e5}, max_volume_share=1.0, leverage=5.0, db=db
    )
    ex.advance(ex.now + HOUR)
    return ex


def market_orders(ex: PaperExchange, symbol: str) -> int:
    for bar in range(BARS):
        for i in range(PER_BAR):
            ex.create_order(symbol, "market", "buy" if (bar + i) % 2 else "sell", 0.01)
        ex.advance(ex.now + HOUR)
    return BARS * PER_BAR


def limit_orders(ex: PaperExchange) -> int:
    """Limits a few bps either side of the last close: most fill as makers within a bar or two."""
    for bar in range(BARS):
        last = ex.fetch_ticker("ETH/USDT")["last"]
        for i in range(PER_BAR):
            side = "buy" if (bar + i) % 2 else "sell"
            offset = (1 + i) * 0.0002
            price = last * (1 - offset) if side == "buy" else last * (1 + offset)
            ex.create_order("ETH/USDT", "limit", side, 0.01, price)
        ex.advance(ex.now + HOUR)
    return BARS * PER_BAR


def idle_advances(ex: PaperExchange) -> int:
    """Bars advanced with 100 resting orders far from the price."""
    last = ex.fetch_ticker("ETH/USDT")["last"]
    for i in range(50):
        ex.create_order("ETH/USDT", "limit", "buy", 0.01, last * (0.5 - i * 0.001))
        ex.create_order("ETH/USDT", "limit", "sell", 0.01, last * (2.0 + i * 0.001))
    for _ in range(BARS):
        ex.advance(ex.now + HOUR)
    return BARS


def best_rate(work: Callable[[], int]) -> float:
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        count = work()
        rates.append(count / (time.perf_counter() - start))
    return max(rates)


def main() -> None:
    spot = best_rate(lambda: market_orders(exchange(), "ETH/USDT"))
    print(f"spot market orders (create + fill): {spot:,.0f} orders/s")
    perp = best_rate(lambda: market_orders(exchange(), "ETH/USDT:USDT"))
    print(f"perp market orders (create + fill): {perp:,.0f} orders/s")
    limits = best_rate(lambda: limit_orders(exchange()))
    print(f"resting limit orders (create + fill): {limits:,.0f} orders/s")
    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(3))
        stored = best_rate(
            lambda: market_orders(exchange(Path(tmp) / f"paper{next(runs)}.sqlite"), "ETH/USDT")
        )
    print(f"spot market orders with SQLite state: {stored:,.0f} orders/s")
    idle = best_rate(lambda: idle_advances(exchange()))
    print(f"idle advance with 100 resting orders: {idle:,.0f} bars/s")


if __name__ == "__main__":
    main()
