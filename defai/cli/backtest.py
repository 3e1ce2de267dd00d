"""`defai backtest`: built-in or user strategies over history, with metrics, report and checks.

Each strategy runs the same Agent as `defai run`, on a simulated clock over the feed, with paper
venues and the embedded network replayed (recorded once per feed and cached under the data
folder, so later backtests and sweeps on the same candles start at once).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from defai.agent.paper import capital_limits
from defai.agent.policy import Strategy
from defai.backtest import Backtest, BacktestResult
from defai.backtest.lookahead import LookaheadReport, check_lookahead
from defai.backtest.result import METRIC_LABELS, PERCENT_METRICS
from defai.backtest.sweep import grid, sweep
from defai.backtest.sweep import walk_forward as run_walk_forward
from defai.cli.common import (
    ConfigOption,
    CsvOption,
    DaysOption,
    SeedOption,
    build_feed,
    console,
    fail,
    guarded,
    load_strategy,
    settings_from,
)
from defai.config import Settings
from defai.market.feed import Feed
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
    sweep_values: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep", help="Grid axis 'param=v1,v2,...' (repeatable): backtest every combination."
        ),
    ] = None,
    walk_forward: Annotated[
        str | None,
        typer.Option(help="With --sweep: walk-forward 'TRAIN:TEST', e.g. '60d:14d'."),
    ] = None,
    metric: Annotated[str, typer.Option(help="Walk-forward: the metric that picks.")] = "sharpe",
    processes: Annotated[int, typer.Option(help="Worker processes of a sweep.")] = 1,
    config: ConfigOption = None,
) -> None:
    """Backtest strategies: metrics table, optional report, look-ahead check, sweep."""
    settings = settings_from(config)
    feed, title = guarded(lambda: build_feed(csv, None, None, "", "1h", seed, days, settings))
    if network not in ("local", "none"):
        fail(f"--network must be local or none, not {network!r}")
    strategies = [load_strategy(spec) for spec in strategy or ["directional"]]
    if sweep_values or walk_forward:
        options = {
            "start": start,
            "end": end,
            "capital": capital,
            "limits": guarded(lambda: capital_limits(capital, settings.risk)),
            "network": None if network == "none" else "local",
            "cache_dir": network_cache(settings),
        }
        plan = Sweep(parse_grid(sweep_values or []), walk_forward, metric, processes)
        for chosen in strategies:
            run_sweep(chosen, feed, plan, options)
        return
    runs = guarded(
        lambda: [
            Backtest(
                s,
                feed,
                start=start,
                end=end,
                capital=capital,
                network=None if network == "none" else "local",
                limits=capital_limits(capital, settings.risk),
                journal=journal,
                cache_dir=network_cache(settings),
            )
            for s in strategies
        ]
    )
    console.print(f"[bold]backtest[/] on {title}")
    results = run_all(runs)
    print_metrics(results)
    if check:
        for run, result in zip(runs, results, strict=True):
            print_lookahead(run.strategy.name, lookahead(run, result, checkpoints))
    if report is not None:
        write(results, report, f"defai backtest: {title}")


@dataclass(frozen=True)
class Sweep:
    grid: list[dict[str, Any]]
    walk_forward: str | None
    metric: str
    processes: int


def parse_grid(axes: Sequence[str]) -> list[dict[str, Any]]:
    """'kelly_fraction=0.25,0.5' -> values read as JSON where they parse (numbers, true, null),
    as text otherwise."""
    values: dict[str, list[Any]] = {}
    for axis in axes:
        name, sep, listed = axis.partition("=")
        if not sep or not name.strip() or not listed.strip():
            fail(f"--sweep {axis!r}: write it as name=value1,value2")
        values[name.strip()] = [_value(v.strip()) for v in listed.split(",")]
    return grid(**values)


def run_sweep(strategy: Strategy, feed: Feed, plan: Sweep, options: dict[str, Any]) -> None:
    processes = f"{plan.processes} process{'es' if plan.processes > 1 else ''}"
    if plan.walk_forward is None:
        console.print(
            f"[bold]sweep[/] {strategy.name}: {len(plan.grid)} parameter sets, {processes}"
        )
        with console.status("backtesting the grid..."):
            frame = guarded(
                lambda: sweep(strategy, feed, plan.grid, processes=plan.processes, **options)
            )
        print_frame(frame, [*plan.grid[0], *SWEEP_COLUMNS])
        return
    train, sep, test = plan.walk_forward.partition(":")
    if not sep:
        fail(f"--walk-forward {plan.walk_forward!r}: write it as TRAIN:TEST, e.g. 60d:14d")
    console.print(
        f"[bold]walk-forward[/] {strategy.name}: train {train}, test {test}, best by "
        f"{plan.metric} of {len(plan.grid)} parameter sets, {processes}"
    )
    with console.status("training and testing each split..."):
        result = guarded(
            lambda: run_walk_forward(
                strategy,
                feed,
                plan.grid,
                train=train,
                test=test,
                metric=plan.metric,
                processes=plan.processes,
                **options,
            )
        )
    print_frame(result.splits, list(result.splits.columns))
    summary = ", ".join(f"{k} {_format(k, v)}" for k, v in result.metrics.items())
    console.print(f"out-of-sample (stitched test windows): {summary}")


SWEEP_COLUMNS = ["total_return", "sharpe", "max_drawdown", "trades", "trade_hash", "error"]


def print_frame(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    table = Table(show_lines=False)
    shown = [c for c in columns if c in frame.columns]
    for column in shown:
        table.add_column(str(column), overflow="fold")
    for _, row in frame.iterrows():
        table.add_row(*(_cell(column, row[column]) for column in shown))
    console.print(table)


def _cell(column: str, value: Any) -> str:
    if isinstance(value, float):
        return _format(column, value)
    if column == "trade_hash" and isinstance(value, str):
        return value[:12]
    return "" if value is None else str(value)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def network_cache(settings: Settings) -> Path:
    return settings.data.dir / "network-cache"


def run_all(runs: Sequence[Backtest]) -> list[BacktestResult]:
    """Each backtest with progress bars: the network's recording (first run on these candles
    only), then the ticks."""
    results = []
    with _progress() as progress:
        for run in runs:
            name = run.strategy.name
            ticks = progress.add_task(name, total=None, visible=False)
            epochs = progress.add_task(f"{name} network", total=None, visible=False)

            def ticked(done: int, total: int, task: TaskID = ticks) -> None:
                progress.update(task, completed=done, total=total, visible=True)

            def recorded(done: int, total: int, task: TaskID = epochs) -> None:
                progress.update(task, completed=done, total=total, visible=done < total)

            results.append(guarded(lambda run=run, t=ticked, r=recorded: run.run(t, r)))  # type: ignore[misc]
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
    table.add_row("Setup s (network)", *(f"{r.setup_s:,.1f}" for r in results))
    table.add_row("Bars / second", *(f"{r.bars_per_second:,.0f}" for r in results))
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
        TextColumn("{task.description:>22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
