"""The `defai` command. Every defai error ends a command with its message, never a traceback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from defai import __version__
from defai.agent.paper import capital_limits
from defai.backtest import Backtest
from defai.cli.backtest import backtest as backtest_command
from defai.cli.backtest import network_cache, print_metrics, run_all, write
from defai.cli.common import ConfigOption, console, guarded, load_strategy, settings_from
from defai.cli.data import data_app
from defai.cli.network import network_app
from defai.cli.run import run as run_command
from defai.cli.tools import tools_app
from defai.market.synthetic import SyntheticFeed
from defai.plugins import STRATEGIES_GROUP, discover

app = typer.Typer(help="Autonomous DeFi trading agents on an aggregated inference network.")
config_app = typer.Typer(help="Inspect the configuration.")
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(network_app, name="network")
app.add_typer(tools_app, name="tools")
app.command("run")(run_command)
app.command("backtest")(backtest_command)


def _version(value: bool) -> None:
    if value:
        console.print(f"defai {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="Log level: DEBUG, INFO, WARNING (venue refusals), ERROR.")
    ] = "WARNING",
) -> None:
    """defai: agents that ask an aggregated inference network, then trade under a risk guard."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective settings (file + environment) with every secret redacted."""
    settings = settings_from(config)
    console.print_json(json.dumps(settings.redacted()))


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Synthetic market seed.")] = 7,
    days: Annotated[int, typer.Option(help="Length of the synthetic market in days.")] = 180,
    report: Annotated[Path, typer.Option(help="Folder for the report.")] = Path("defai-report"),
    config: ConfigOption = None,
) -> None:
    """Offline demo: backtest every installed strategy on the synthetic market with the embedded
    network; print the metrics and write the report (PNG plots + HTML)."""
    settings = settings_from(config)
    feed = guarded(lambda: SyntheticFeed(seed=seed, days=days))
    names = sorted(guarded(lambda: discover(STRATEGIES_GROUP)))
    console.print(
        f"[bold]defai demo[/]: {', '.join(names)} backtested on the synthetic market (seed "
        f"{seed}, {days} days hourly, calibrated on Binance ETH/BTC 2017-2021) with the embedded "
        "inference network; every order vetted by the risk guard, filled by paper venues"
    )
    runs = [
        Backtest(
            load_strategy(name),
            feed,
            cache_dir=network_cache(settings),
            limits=capital_limits(10_000.0, settings.risk),
        )
        for name in names
    ]
    results = run_all(runs)
    print_metrics(results)
    write(results, report, f"defai demo: synthetic market, seed {seed}, {days} days")
