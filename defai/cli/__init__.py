"""The `defai` command. Every defai error ends a command with its message, never a traceback."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.table import Table

from defai import __version__
from defai.cli.common import ConfigOption, console, guarded, settings_from
from defai.cli.data import data_app, print_summary
from defai.cli.network import network_app, print_network
from defai.cli.run import run as run_command
from defai.cli.tools import tools_app
from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView, SimClock
from defai.network.local import LocalNetwork, default_topics
from defai.network.workers import bad_actors
from defai.plugins import TOOLS_GROUP, build_tool, discover

app = typer.Typer(help="Autonomous DeFi trading agents on an aggregated inference network.")
config_app = typer.Typer(help="Inspect the configuration.")
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")
app.add_typer(network_app, name="network")
app.add_typer(tools_app, name="tools")
app.command("run")(run_command)


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
    days: Annotated[int, typer.Option(help="Length in days.")] = 365,
    network_days: Annotated[
        int, typer.Option(help="Days the embedded network runs at the end.")
    ] = 45,
) -> None:
    """Offline demo on the embedded defaults: the synthetic market, the network, two tools."""
    feed = guarded(lambda: SyntheticFeed(seed=seed, days=days))
    console.print(
        "[bold]defai demo[/]: the embedded synthetic market "
        f"(seed {seed}, {days} days, hourly; calibrated on Binance ETH/BTC 2017-2021)"
    )
    print_summary(feed, None, "hourly candles")
    print_summary(feed, "1d", "daily candles")

    end = feed.span("ETH/USDT", "1h")[1]
    start = max(end - network_days * 86_400_000, feed.span("ETH/USDT", "1h")[0])
    console.rule(f"the embedded inference network, last {network_days} days, with 3 bad actors")
    topics = default_topics(["ETH/USDT"], extra_workers=bad_actors(seed))
    network = LocalNetwork(topics, start=start)
    with console.status("running epochs..."):
        guarded(lambda: network.advance(end, feed))
    for spec in network.topics():
        shown = spec.name == "ETH/USDT log_return 1h"
        print_network(network.latest(spec.name), network if shown else None)

    console.rule("two tools, as an agent calls them")
    market = MarketView(feed, SimClock(end))
    tools = {
        name: guarded(lambda obj=obj: build_tool(obj, network, market))  # type: ignore[misc]
        for name, obj in guarded(lambda: discover(TOOLS_GROUP)).items()
    }
    calls = {
        "lp_range": {
            "symbol": "ETH/USDT",
            "fee_tier": 3000,
            "capital": 10_000,
            "horizon": "24h",
            "fee_apr": 0.25,
        },
        "liquidation_risk": {
            "symbol": "ETH/USDT",
            "collateral_amount": 10,
            "debt": 0.4 * 10 * market.last_price("ETH/USDT"),
            "liquidation_threshold": 0.83,
        },
    }
    for name, arguments in calls.items():
        if name not in tools:
            continue
        answer = json.loads(str(tools[name].invoke(arguments)))
        table = Table(
            title=f"{name}({json.dumps(arguments)})", title_justify="left", show_header=False
        )
        for key, value in answer.items():
            if isinstance(value, float):
                table.add_row(key, f"{value:.6g}")
            elif isinstance(value, int | str | bool):
                table.add_row(key, str(value))
        console.print(table)
