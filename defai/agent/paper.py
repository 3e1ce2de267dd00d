"""The paper venues and guard limits a run starts with, shared by `defai run` and backtests.

One place decides how a paper account is funded and how the guard scales with it, so a paper
run and a backtest of the same strategy and capital start from the same books.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from defai.agent.agent import Venues
from defai.agent.guard import RiskLimits
from defai.errors import ConfigError
from defai.execution.amm import PaperAMM, PoolConfig
from defai.execution.lending import PaperLending
from defai.execution.paper import PaperExchange
from defai.market.feed import Feed


def capital_limits(capital: float, configured: RiskLimits | None = None) -> RiskLimits:
    """The guard's limits scaled to the run: an order at most the capital, a day's orders at
    most five times it; every limit the configuration sets ([risk]) wins over those and over
    RiskLimits' defaults."""
    if not (math.isfinite(capital) and capital > 0):
        raise ConfigError(f"capital must be a positive number, not {capital!r}")
    scaled = RiskLimits(max_notional_per_order=capital, max_notional_per_day=5 * capital)
    if configured is None:
        return scaled
    return RiskLimits.model_validate(
        {**scaled.model_dump(), **configured.model_dump(exclude_unset=True)}
    )


def wallet_balances(
    feed: Feed, pairs: Sequence[str], capital: float, start: int
) -> dict[str, float]:
    """The on-chain wallet: half the capital in the quote, half in the first pair's base."""
    if not pairs:
        return {"USDT": capital}
    base, quote = pairs[0].split("/")
    price = float(feed.candles(pairs[0], "1h", as_of=start, limit=1).close[-1])
    return {quote: capital / 2, base: capital / 2 / price}


def paper_venues(
    feed: Feed,
    symbols: Sequence[str],
    start: int,
    *,
    exchange: float | None,
    wallet: float | None,
    lending: bool = True,
    folder: Path | None = None,
    exchange_options: Mapping[str, Any] | None = None,
) -> Venues:
    """An exchange funded with `exchange` USDT, an on-chain wallet worth `wallet` on the AMM and,
    with it, a lending market; None leaves a venue out. State in `folder` (resumable) or in
    memory when None (a backtest). `exchange_options` go to PaperExchange (fees, slippage...)."""
    pairs = [s for s in symbols if s in feed.symbols()]

    def db(name: str) -> Path | None:
        return None if folder is None else folder / f"{name}.sqlite"

    venues = Venues()
    if exchange is not None:
        venues.exchange = PaperExchange(
            feed,
            balances={"USDT": exchange},
            start=start,
            db=db("exchange"),
            **dict(exchange_options or {}),
        )
    if wallet is not None and pairs:
        venues.amm = PaperAMM(
            feed,
            [PoolConfig(pair) for pair in pairs],
            balances=wallet_balances(feed, pairs, wallet, start),
            db=db("amm"),
        )
        if lending:
            venues.lending = PaperLending(feed, db=db("lending"))
    return venues
