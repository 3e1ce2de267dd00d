"""`defai backtest`: built-in or user strategies over history, with metrics, report and checks.

Each strategy runs the same Agent as `defai run`, on a simulated clock over the feed, with paper
venues and the embedded network replayed (recorded once per feed and cached under the data
folder, so later backtests and sweeps on the same candles start at once).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from defai.agent.policy import Strategy
from defai.backtest import Backtest, BacktestResult
from defai.backtest.lookahead import LookaheadReport, check_lookahead
from defai.backtest.result import METRIC_LABELS, PERCENT_METRICS
from defai.cli.common import (
    ConfigOption,
    CsvOption,
    DaysOption,
    SeedOption,
    build_feed,
    console,
    fail,
    guarded,
    settings_from,
)
from defai.config import Settings
from defai.plugins import STRATEGIES_GROUP, resolve
from defai.types import to_timestamp

StrategyOption = Annotated[
    list[str] | None,
    typer.Option("--strategy", "-s", help="Strategy name or 'module:Class' (repeatable)."),
]
ReportOption = Annotated[
    Path | None, typer.Option(help="Write PNG plots and an HTML page into this folder.")
]


def backtest(
    strategy: StrategyOption = None,
    csv: CsvOption = None,
    seed: SeedOption = 7,
    days: DaysOption = 180,
    start: Annotated[
        str | None, typer.Option(help="First tick (default: after a 300-candle warm-up).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last tick (default: the feed's end).")] = None,
    capital: Annotated[float, typer.Option(help="Starting capital in USDT.")] = 10_000.0,
    network: Annotated[
        str, typer.Option(help="'local' (embedded, replayed) or 'none' (plain strategies).")
    ] = "local",
    report: ReportOption = None,
    check: Annotated[
        bool,
        typer.Option("--check-lookahead", help="Re-run on cut histories; list every difference."),
    ] = False,
    checkpoints: Annotated[int, typer.Option(help="Cuts of the look-ahead check.")] = 5,
    journal: Annotated[
        Path | None, typer.Option(help="Journal every tick into this SQLite file (slower).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Backtest strategies: metrics table, optional report, optional look-ahead check."""
    settings = settings_from(config)
    feed, title = guarded(lambda: build_feed(csv, None, None, "", "1h", seed, days, settings))
    if network not in ("local", "none"):
        fail(f"--network must be local or none, not {network!r}")
    strategies = [load_strategy(spec) for spec in strategy or ["directional"]]
    runs = [
        Backtest(
            s,
            feed,
            start=start,
            end=end,
            capital=capital,
            network=None if network == "none" else "local",
            journal=journal,
            cache_dir=network_cache(settings),
        )
        for s in strategies
    ]
    console.print(f"[bold]backtest[/] on {title}")
    results = run_all(runs)
    print_metrics(results)
    if check:
        for run, result in zip(runs, results, strict=True):
            print_lookahead(run.strategy.name, lookahead(run, result, checkpoints))
    if report is not None:
        write(results, report, f"defai backtest: {title}")


def load_strategy(spec: str) -> Strategy:
    found = guarded(lambda: resolve(STRATEGIES_GROUP, spec))
    instance: Any = guarded(lambda: found() if isinstance(found, type) else found)
    if not isinstance(instance, Strategy):
        fail(f"{spec!r} is not a strategy (it needs name, symbols, topics and decide)")
    return instance  # type: ignore[no-any-return]


def network_cache(settings: Settings) -> Path:
    return settings.data.dir / "network-cache"


def run_all(runs: Sequence[Backtest]) -> list[BacktestResult]:
    """Each backtest with a progress bar (the network's recording shows as its first pause)."""
    results = []
    with _progress() as progress:
        for run in runs:
            task = progress.add_task(run.strategy.name, total=None)
            results.append(
                guarded(
                    lambda run=run, task=task: run.run(  # type: ignore[misc]
                        lambda done, total: progress.update(task, completed=done, total=total)
                    )
                )
            )
    return results


def lookahead(run: Backtest, result: BacktestResult, checkpoints: int) -> LookaheadReport:
    with _progress() as progress:
        task = progress.add_task(f"look-ahead {run.strategy.name}", total=checkpoints)
        return guarded(
            lambda: check_lookahead(
                run,
                checkpoints,
                full=result,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        )


def print_metrics(results: Sequence[BacktestResult]) -> None:
    """One column per strategy; percentages, money and ratios formatted for reading."""
    first = results[0]
    span = f"{first.equity.index[0]:%Y-%m-%d %H:%M} -> {first.equity.index[-1]:%Y-%m-%d %H:%M}"
    table = Table(title=f"{span} UTC, {first.bars} hourly bars", title_justify="left")
    table.add_column("metric")
    for result in results:
        table.add_column(result.strategy, justify="right")
    for key, label in METRIC_LABELS.items():
        table.add_row(label, *(_format(key, r.metrics.get(key, math.nan)) for r in results))
    table.add_row("Bars / second", *(f"{r.bars / r.elapsed_s:,.0f}" for r in results))
    table.add_row("Trade hash", *(r.trade_hash[:16] for r in results))
    console.print(table)


def print_lookahead(name: str, report: LookaheadReport) -> None:
    cuts = ", ".join(f"{to_timestamp(c):%Y-%m-%d %H:%M}" for c in report.cuts_ms)
    if report.clean:
        console.print(
            f"[green]look-ahead check {name}: clean[/] ({report.ticks_compared} tick decisions "
            f"compared on histories cut at {cuts})"
        )
        return
    console.print(
        f"[bold red]look-ahead check {name}: {len(report.differences)} decisions changed when "
        f"the future was removed[/] (cuts at {cuts})"
    )
    for difference in report.differences:
        console.print(
            f"  {to_timestamp(difference.time_ms):%Y-%m-%d %H:%M} (history cut there): "
            f"full data proposed {difference.full}; cut data proposed {difference.truncated}",
            highlight=False,
            soft_wrap=True,
        )


def write(results: Sequence[BacktestResult], folder: Path, title: str) -> None:
    from defai.backtest.report import write_report  # deferred: matplotlib is slow to import

    page = guarded(lambda: write_report(results, folder, title=title))
    console.print(f"report: {page}")


def _format(key: str, value: float) -> str:
    if not math.isfinite(value):
        return "inf" if value == math.inf else "-"
    if key in PERCENT_METRICS:
        return f"{value:.2%}"
    if key in ("trades", "round_trips", "liquidations"):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:>14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
