"""The `defai` command. Every defai error ends the command with its message, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from defai import __version__
from defai.config import Settings, load_settings
from defai.errors import DefaiError
from defai.market.ccxt_feed import CcxtFeed, make_exchange
from defai.market.csv import CsvFeed, find_gaps
from defai.market.feed import StoreFeed
from defai.market.stats import ReturnStats, return_stats
from defai.market.synthetic import SyntheticFeed
from defai.types import to_ms, to_timestamp

app = typer.Typer(help="Autonomous DeFi trading agents on an aggregated inference network.")
config_app = typer.Typer(help="Inspect the configuration.")
data_app = typer.Typer(help="Download and inspect market data.")
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML settings file (default: $DEFAI_CONFIG or ./defai.toml)."
    ),
]


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except DefaiError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _settings(path: Path | None) -> Settings:
    return _guarded(lambda: load_settings(path))


def _version(value: bool) -> None:
    if value:
        console.print(f"defai {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """defai: agents that ask an aggregated inference network, then trade under a risk guard."""


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective settings (file + environment) with every secret redacted."""
    settings = _settings(config)
    console.print_json(json.dumps(settings.redacted()))


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
    settings = _settings(config)

    def run() -> StoreFeed:
        return CcxtFeed(
            make_exchange(exchange),
            symbol,
            timeframe,
            since=to_ms(since),
            until=None if until is None else to_ms(until),
            cache_dir=settings.data.dir,
        )

    feed = _guarded(run)
    _print_summary(feed, timeframe, f"{exchange} -> {settings.data.dir}")


@data_app.command("show")
def data_show(
    csv: Annotated[
        list[Path] | None, typer.Option(help="CSV / CSV.gz file(s) (ccxt order or normalised).")
    ] = None,
    exchange: Annotated[
        str | None, typer.Option(help="Read cached candles of this ccxt exchange.")
    ] = None,
    symbol: Annotated[list[str] | None, typer.Option(help="Symbols for --exchange.")] = None,
    since: Annotated[str, typer.Option(help="With --exchange: first candle.")] = "2024-01-01",
    timeframe: Annotated[str | None, typer.Option(help="Candle length to summarise.")] = None,
    seed: Annotated[int, typer.Option(help="Synthetic market seed.")] = 7,
    days: Annotated[int, typer.Option(help="Synthetic market length in days.")] = 365,
    config: ConfigOption = None,
) -> None:
    """Range, rows, gaps and return statistics of a feed (default: the synthetic market)."""
    settings = _settings(config)

    def build() -> tuple[StoreFeed, str]:
        if csv:
            return CsvFeed(list(csv)), ", ".join(str(p) for p in csv)
        if exchange:
            if not symbol:
                raise DefaiError("--exchange needs at least one --symbol")
            feed = CcxtFeed(
                make_exchange(exchange),
                symbol,
                timeframe or "1h",
                since=to_ms(since),
                cache_dir=settings.data.dir,
            )
            return feed, f"{exchange} (cache {settings.data.dir})"
        return SyntheticFeed(seed=seed, days=days), f"synthetic market, seed {seed}"

    feed, title = _guarded(build)
    _print_summary(feed, timeframe, title)


def _print_summary(feed: StoreFeed, timeframe: str | None, title: str) -> None:
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

    stats, n_gaps, missing = _guarded(compute)
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


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Synthetic market seed.")] = 7,
    days: Annotated[int, typer.Option(help="Length in days.")] = 365,
) -> None:
    """Offline demo on the embedded synthetic market (no network, no keys)."""
    feed = _guarded(lambda: SyntheticFeed(seed=seed, days=days))
    console.print(
        "[bold]defai demo[/]: the embedded synthetic market "
        f"(seed {seed}, {days} days, hourly; calibrated on Binance ETH/BTC 2017-2021)"
    )
    _print_summary(feed, None, "hourly candles")
    _print_summary(feed, "1d", "daily candles")


def run() -> None:  # pragma: no cover - console entry point helper
    sys.exit(app())
