"""The `defai` command. Every defai error ends a command with its message, never a traceback."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from defai import __version__
from defai.cli.common import ConfigOption, console, guarded, settings_from
from defai.cli.data import data_app, print_summary
from defai.cli.network import network_app
from defai.cli.tools import tools_app
from defai.market.synthetic import SyntheticFeed

app = typer.Typer(help="Autonomous DeFi trading agents on an aggregated inference network.")
config_app = typer.Typer(help="Inspect the configuration.")
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(network_app, name="network")
app.add_typer(tools_app, name="tools")


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
    settings = settings_from(config)
    console.print_json(json.dumps(settings.redacted()))


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Synthetic market seed.")] = 7,
    days: Annotated[int, typer.Option(help="Length in days.")] = 365,
) -> None:
    """Offline demo on the embedded synthetic market (no network, no keys)."""
    feed = guarded(lambda: SyntheticFeed(seed=seed, days=days))
    console.print(
        "[bold]defai demo[/]: the embedded synthetic market "
        f"(seed {seed}, {days} days, hourly; calibrated on Binance ETH/BTC 2017-2021)"
    )
    print_summary(feed, None, "hourly candles")
    print_summary(feed, "1d", "daily candles")
