"""`defai network`: run the embedded inference network over a feed, or ask Allora's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.progress import Progress
from rich.table import Table

from defai.cli.common import (
    ConfigOption,
    CsvOption,
    DaysOption,
    ExchangeOption,
    SeedOption,
    SinceOption,
    build_feed,
    console,
    err_console,
    fail,
    guarded,
    settings_from,
)
from defai.config import Settings
from defai.network.allora import AlloraNetwork
from defai.network.local import LocalNetwork, default_topics
from defai.network.workers import bad_actors
from defai.types import NetworkInference, to_ms, to_timestamp

network_app = typer.Typer(help="Run the embedded inference network, or query Allora's.")


def network_db(settings: Settings, db: Path | None) -> Path:
    return db or settings.network.db or settings.data.dir / "network.sqlite"


def local_network(
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
    settings = settings_from(config)
    feed, title = guarded(
        lambda: build_feed(csv, exchange, [symbol], since, "1h", seed, days, settings)
    )
    path = network_db(settings, db)
    network = guarded(lambda: local_network(symbol, path, with_bad_actors, weighting))
    start, end = guarded(lambda: feed.span(symbol, "1h"))
    stop = guarded(lambda: to_ms(until)) if until else end
    step = 7 * 86_400_000
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task(f"epochs over {title}", total=max(stop - start, 1))
        for now in [*range(start + step, stop, step), stop]:
            guarded(lambda now=now: network.advance(now, feed))  # type: ignore[misc]
            progress.update(task, completed=now - start)
    network.close()
    console.print(f"state saved to {path}")
    for spec in network.topics():
        print_network(network.latest(spec.name), network)


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
    settings = settings_from(config)
    if allora or settings.network.kind == "allora":
        remote = guarded(lambda: AlloraNetwork.from_settings(settings.allora))
        print_network(guarded(lambda: remote.latest(topic)), None)
        return
    path = network_db(settings, db)
    if not path.exists():
        fail(f"{path}: no network state; run `defai network run` first")
    network = guarded(lambda: local_network(topic.split(" ")[0], path, with_bad_actors, weighting))
    print_network(guarded(lambda: network.latest(topic)), network)


def print_network(inference: NetworkInference, network: LocalNetwork | None) -> None:
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
        label = f"{name}*" if row["status"] == "suspended" else str(name)
        cells = ("" if row[c] != row[c] else fmt.format(row[c]) for c, (_, fmt) in formats.items())
        table.add_row(label, *cells)
    console.print(table)
    console.print(
        "loss: EMA of log10 loss; regret: network loss minus own (higher is better); weight: "
        "share of the latest inference (reputers: listening coefficient); stake: deposit "
        "(reputers: stake); slashed: lost to defai's slashing rule; *: suspended",
        style="dim",
    )
