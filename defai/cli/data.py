"""`defai data`: download candles and summarise any feed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from defai.cli.common import (
    ConfigOption,
    CsvOption,
    DaysOption,
    ExchangeOption,
    SeedOption,
    SinceOption,
    SymbolsOption,
    build_feed,
    console,
    guarded,
    settings_from,
)
from defai.errors import DefaiError
from defai.market.ccxt_feed import CcxtFeed, make_exchange
from defai.market.csv import find_gaps
from defai.market.feed import StoreFeed
from defai.market.stats import ReturnStats, return_stats
from defai.types import to_ms, to_timestamp

data_app = typer.Typer(help="Download and inspect market data.")


@data_app.command("download")
def data_download(
    exchange: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binance, kraken, okx.")],
    symbol: Annotated[list[str], typer.Option(help="Market symbol; repeat for several.")],
    since: Annotated[str, typer.Option(help="First candle, e.g. 2024-01-01.")],
    timeframe: Annotated[str, typer.Option(help="Candle length, e.g. 1h.")] = "1h",
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    config: ConfigOption = None,
) -> None:
    """Download candles into the cache directory ([data] dir); reruns fetch only what is new."""
    settings = settings_from(config)

    def run() -> StoreFeed:
        return CcxtFeed(
            make_exchange(exchange),
            symbol,
            timeframe,
            since=to_ms(since),
            until=None if until is None else to_ms(until),
            cache_dir=settings.data.dir,
        )

    feed = guarded(run)
    print_summary(feed, timeframe, f"{exchange} -> {settings.data.dir}")


@data_app.command("show")
def data_show(
    csv: CsvOption = None,
    exchange: ExchangeOption = None,
    symbol: SymbolsOption = None,
    since: SinceOption = "2024-01-01",
    timeframe: Annotated[str | None, typer.Option(help="Candle length to summarise.")] = None,
    seed: SeedOption = 7,
    days: DaysOption = 365,
    config: ConfigOption = None,
) -> None:
    """Range, rows, gaps and return statistics of a feed (default: the synthetic market)."""
    settings = settings_from(config)
    feed, title = guarded(
        lambda: build_feed(csv, exchange, symbol, since, timeframe or "1h", seed, days, settings)
    )
    print_summary(feed, timeframe, title)


def print_summary(feed: StoreFeed, timeframe: str | None, title: str) -> None:
    """One column per symbol, one row per statistic: fits a terminal whatever the symbols."""
    symbols = feed.symbols()
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for sym in symbols:
        table.add_column(sym, justify="right")
    columns = [_summary_column(feed, sym, timeframe) for sym in symbols]
    for i, label in enumerate(_SUMMARY_ROWS):
        table.add_row(label, *(col[i] for col in columns))
    console.print(table)


_SUMMARY_ROWS = (
    "timeframe",
    "from (open)",
    "to (close)",
    "rows",
    "gaps (missing candles)",
    "first / last close",
    "mean log-return",
    "std log-return",
    "annualised vol",
    "skew",
    "excess kurtosis",
    "min / max log-return",
    "max drawdown",
)


def _summary_column(feed: StoreFeed, symbol: str, timeframe: str | None) -> list[str]:
    tf = timeframe or feed.store.base_timeframe(symbol)

    def compute() -> tuple[ReturnStats, int, int]:
        candles = feed.candles(symbol, tf, as_of=2**62)
        try:
            stats = return_stats(candles)
        except ValueError as exc:
            raise DefaiError(str(exc)) from None
        gaps = find_gaps(feed.store.series(symbol, tf))
        return stats, len(gaps), sum(g.missing for g in gaps)

    stats, n_gaps, missing = guarded(compute)
    return [
        tf,
        f"{to_timestamp(stats.first_open_ms):%Y-%m-%d %H:%M}",
        f"{to_timestamp(stats.last_close_ms):%Y-%m-%d %H:%M}",
        f"{stats.rows:,}",
        f"{n_gaps} ({missing})",
        f"{stats.first_close:,.2f} / {stats.last_close:,.2f}",
        f"{stats.mean_log_return:.2e}",
        f"{stats.std_log_return:.4f}",
        f"{stats.annualised_vol:.1%}",
        f"{stats.skew:.2f}",
        f"{stats.excess_kurtosis:.1f}",
        f"{stats.min_log_return:.3f} / {stats.max_log_return:.3f}",
        f"{stats.max_drawdown:.1%}",
    ]
