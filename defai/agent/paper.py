"""The paper venues and guard limits a run starts with, shared by `defai run` and backtests.

One place decides how a paper account is funded and how the guard scales with it, so a paper
run and a backtest of the same strategy and capital start from the same books.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from defai.agent.agent import Venues
from defai.agent.guard import RiskLimits
from defai.execution.amm import PaperAMM, PoolConfig
from defai.execution.lending import PaperLending
from defai.execution.paper import PaperExchange
from defai.market.feed import Feed


def capital_limits(capital: float) -> RiskLimits:
    """The guard's defaults, scaled to the run: an order at most the capital, a day's orders at
    most five times it; every other limit as RiskLimits() sets it."""
    return RiskLimits(max_notional_per_order=capital, max_notional_per_day=5 * capital)


def wallet(feed: Feed, pairs: Sequence[str], capital: float, start: int) -> dict[str, float]:
    """The on-chain wallet: half the capital in the quote, half in the first pair's base."""
    if not pairs:
        return {"USDT": capital}
    base, quote = pairs[0].split("/")
    price = float(feed.candles(pairs[0], "1h", as_of=start, limit=1).close[-1])
    return {quote: capital / 2, base: capital / 2 / price}


def paper_venues(
    feed: Feed,
    symbols: Sequence[str],
    capital: float,
    start: int,
    folder: Path | None = None,
) -> Venues:
    """An exchange funded with `capital` USDT, a wallet worth as much again on the AMM and a
    lending market; state in `folder` (resumable) or in memory when None (a backtest)."""
    pairs = [s for s in symbols if s in feed.symbols()]

    def db(name: str) -> Path | None:
        return None if folder is None else folder / f"{name}.sqlite"

    return Venues(
        exchange=PaperExchange(feed, balances={"USDT": capital}, start=start, db=db("exchange")),
        amm=PaperAMM(
            feed,
            [PoolConfig(pair) for pair in pairs],
            balances=wallet(feed, pairs, capital, start),
            db=db("amm"),
        ),
        lending=PaperLending(feed, db=db("lending")),
    )
