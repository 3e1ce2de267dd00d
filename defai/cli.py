"""The `defai` command. Every defai error ends the command with its message, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from defai import __version__
from defai.config import Settings, load_settings
from defai.errors import DefaiError
from defai.market.ccxt_feed import CcxtFeed, make_exchange
from defai.market.csv import CsvFeed, find_gaps
from defai.market.feed import StoreFeed
from defai.market.stats import ReturnStats, return_stats
from defai.market.synthetic import SyntheticFeed
from defai.network.allora import AlloraNetwork
from defai.network.local import LocalNetwork, default_topics
from defai.network.workers import bad_actors
from defai.types import NetworkInference, to_ms, to_timestamp

app = typer.Typer(help="Autonomous DeFi trading agents on an aggregated inference network.")
config_app = typer.Typer(help="Inspect the configuration.")
data_app = typer.Typer(help="Download and inspect market data.")
network_app = typer.Typer(help="Run the embedded inference network, or query Allora's.")
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(network_app, name="network")

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


CsvOption = Annotated[
    list[Path] | None, typer.Option(help="CSV / CSV.gz file(s) (ccxt order or normalised).")
]
ExchangeOption = Annotated[
    str | None, typer.Option(help="Read cached candles of this ccxt exchange.")
]
SymbolsOption = Annotated[list[str] | None, typer.Option("--symbol", help="Market symbol(s).")]
SinceOption = Annotated[str, typer.Option(help="With --exchange: first candle.")]
SeedOption = Annotated[int, typer.Option(help="Synthetic market seed.")]
DaysOption = Annotated[int, typer.Option(help="Synthetic market length in days.")]


def _build_feed(
    csv: list[Path] | None,
    exchange: str | None,
    symbols: list[str] | None,
    since: str,
    timeframe: str,
    seed: int,
    days: int,
    settings: Settings,
) -> tuple[StoreFeed, str]:
    """CSV files, an exchange's cache, or (by default) the synthetic market; and a title."""
    if csv:
        return CsvFeed(list(csv)), ", ".join(str(p) for p in csv)
    if exchange:
        if not symbols:
            raise DefaiError("--exchange needs at least one --symbol")
        feed = CcxtFeed(
            make_exchange(exchange),
            symbols,
            timeframe,
            since=to_ms(since),
            cache_dir=settings.data.dir,
        )
        return feed, f"{exchange} (cache {settings.data.dir})"
    return SyntheticFeed(seed=seed, days=days), f"synthetic market, seed {seed}"


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
    settings = _settings(config)
    feed, title = _guarded(
        lambda: _build_feed(csv, exchange, symbol, since, timeframe or "1h", seed, days, settings)
    )
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


def _network_db(settings: Settings, db: Path | None) -> Path:
    return db or settings.network.db or settings.data.dir / "network.sqlite"


def _local_network(
    symbol: str, db: Path | None, with_bad_actors: bool, weighting: str
) -> LocalNetwork:
    extra = bad_actors(seed=0) if with_bad_actors else []
    return LocalNetwork(default_topics([symbol], weighting, extra), db=db)


@network_app.command("run")
def network_run(
    csv: CsvOption = None,
    exchange: ExchangeOption = None,
    symbol: Annotated[str, typer.Option(help="Symbol whose topics to run.")] = "ETH/USDT",
    since: SinceOption = "2024-01-01",
    until: Annotated[
        str | None, typer.Option(help="Run epochs up to here (default: feed end).")
    ] = None,
    seed: SeedOption = 7,
    days: DaysOption = 90,
    db: Annotated[
        Path | None, typer.Option(help="SQLite state file (default: [network] db).")
    ] = None,
    with_bad_actors: Annotated[
        bool,
        typer.Option("--bad-actors", help="Add a random guesser, a stale copier, an adversary."),
    ] = False,
    weighting: Annotated[str, typer.Option(help="v0.6 or v0.16 weighting.")] = "v0.6",
    config: ConfigOption = None,
) -> None:
    """Advance the embedded network over a feed, then print each topic's inference and scorecard.

    State is saved as it goes: run again with a later --until to continue where it stopped.
    """
    settings = _settings(config)
    feed, title = _guarded(
        lambda: _build_feed(csv, exchange, [symbol], since, "1h", seed, days, settings)
    )
    path = _network_db(settings, db)
    network = _guarded(lambda: _local_network(symbol, path, with_bad_actors, weighting))
    start, end = _guarded(lambda: feed.span(symbol, "1h"))
    stop = _guarded(lambda: to_ms(until)) if until else end
    step = 7 * 86_400_000
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"epochs over {title}", total=max(stop - start, 1))
        for now in [*range(start + step, stop, step), stop]:
            _guarded(lambda now=now: network.advance(now, feed))  # type: ignore[misc]
            progress.update(task, completed=now - start)
    network.close()
    console.print(f"state saved to {path}")
    for spec in network.topics():
        _print_network(network.latest(spec.name), network)


@network_app.command("show")
def network_show(
    topic: Annotated[str, typer.Argument(help="Topic name, e.g. 'ETH/USDT log_return 1h'.")],
    db: Annotated[
        Path | None, typer.Option(help="SQLite state file (default: [network] db).")
    ] = None,
    with_bad_actors: Annotated[bool, typer.Option("--bad-actors", help="As given to run.")] = False,
    weighting: Annotated[str, typer.Option(help="As given to run.")] = "v0.6",
    allora: Annotated[
        bool, typer.Option("--allora", help="Ask the real Allora network ([allora] settings).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """The latest inference of a topic (and, for the embedded network, its scorecard)."""
    settings = _settings(config)
    if allora or settings.network.kind == "allora":
        remote = _guarded(lambda: AlloraNetwork.from_settings(settings.allora))
        _print_network(_guarded(lambda: remote.latest(topic)), None)
        return
    path = _network_db(settings, db)
    if not path.exists():
        _guarded(lambda: _raise(f"{path}: no network state; run `defai network run` first"))
    network = _guarded(
        lambda: _local_network(topic.split(" ")[0], path, with_bad_actors, weighting)
    )
    _print_network(_guarded(lambda: network.latest(topic)), network)


def _raise(message: str) -> None:
    raise DefaiError(message)


def _print_network(inference: NetworkInference, network: LocalNetwork | None) -> None:
    ci = ", ".join(
        f"p{p:g}={v:.6g}"
        for p, v in zip(inference.ci_percentiles, inference.ci_values, strict=True)
    )
    console.print(
        f"[bold]{inference.topic}[/] at {to_timestamp(inference.timestamp_ms):%Y-%m-%d %H:%M} UTC: "
        f"{inference.value:.6g}  ({ci})",
        highlight=False,
    )
    if network is None:
        return
    card = network.scorecard(inference.topic)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    formats = {
        "loss_ema": ("loss", "{:.2f}"),
        "regret": ("regret", "{:+.2f}"),
        "weight": ("weight", "{:.3f}"),
        "score_ema": ("score", "{:+.3g}"),
        "rewards": ("rewards", "{:.1f}"),
        "stake": ("stake", "{:.0f}"),
        "slashed": ("slashed", "{:.0f}"),
    }
    table.add_column("participant", no_wrap=True)
    for header, _ in formats.values():
        table.add_column(header, justify="right", no_wrap=True)
    previous_kind = None
    for name, row in card.iterrows():
        if previous_kind is not None and row["kind"] != previous_kind:
            table.add_section()
        previous_kind = row["kind"]
        label = f"{name} (suspended)" if row["status"] == "suspended" else str(name)
        cells = ("" if row[c] != row[c] else fmt.format(row[c]) for c, (_, fmt) in formats.items())
        table.add_row(label, *cells)
    console.print(table)
    console.print(
        "loss: EMA of log10 loss; regret: network loss minus own (higher is better); weight: "
        "share of the latest inference (reputers: listening coefficient); stake: deposit "
        "(reputers: stake); slashed: lost to defai's slashing rule",
        style="dim",
    )


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
