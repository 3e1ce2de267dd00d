"""What every `defai` command shares: consoles, error handling, settings, feed options."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from defai.agent.policy import Strategy
from defai.config import Settings, load_settings
from defai.errors import DefaiError
from defai.market.ccxt_feed import CcxtFeed, make_exchange
from defai.market.csv import CsvFeed
from defai.market.feed import StoreFeed
from defai.market.synthetic import SyntheticFeed
from defai.plugins import STRATEGIES_GROUP, resolve
from defai.types import to_ms

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML settings file (default: $DEFAI_CONFIG or ./defai.toml)."
    ),
]


def guarded(action: Callable[[], T]) -> T:
    """Run `action`; a defai error ends the command with its message (exit 2), no traceback."""
    try:
        return action()
    except DefaiError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@dataclass
class Stop:
    """Set by SIGINT/SIGTERM: a run finishes its tick, journals it and ends cleanly."""

    requested: bool = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """A Stop that SIGINT and SIGTERM set while the block runs; the old handlers after it."""
    stop = Stop()
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def load_strategy(spec: str) -> Strategy:
    """A strategy plugin by name or 'module:Class' (a class is built with its defaults)."""
    found = guarded(lambda: resolve(STRATEGIES_GROUP, spec))
    instance: Any = guarded(lambda: found() if isinstance(found, type) else found)
    if not isinstance(instance, Strategy):
        fail(f"{spec!r} is not a strategy (it needs name, symbols, topics and decide)")
    return instance  # type: ignore[no-any-return]


def settings_from(path: Path | None) -> Settings:
    return guarded(lambda: load_settings(path))


def fail(message: str) -> None:
    """End a command with a plain error message (exit code 2)."""
    guarded(lambda: _raise(message))


def _raise(message: str) -> None:
    raise DefaiError(message)


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


def build_feed(
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
