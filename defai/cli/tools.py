"""`defai tools`: list the tools an agent can call, and call one by hand.

Tools are found as plugins (the `defai.tools` entry points, plus folders and 'module:attr'
specs), so a user's own tool shows up and runs exactly like a built-in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from rich.table import Table

from defai.cli.common import (
    ConfigOption,
    CsvOption,
    DaysOption,
    SeedOption,
    build_feed,
    console,
    err_console,
    fail,
    guarded,
    settings_from,
)
from defai.cli.network import local_network, network_db
from defai.market.feed import StoreFeed
from defai.market.view import MarketView, SimClock
from defai.network.allora import AlloraNetwork
from defai.network.base import InferenceSource
from defai.plugins import TOOLS_GROUP, build_tool, discover

tools_app = typer.Typer(help="List the agent's tools, or call one by hand.")

ToolsDirOption = Annotated[
    list[Path] | None, typer.Option("--tools-dir", help="Also load tools from this folder.")
]
ToolSpecOption = Annotated[
    list[str] | None, typer.Option("--tool", help="Also load this tool ('module:attr').")
]


def _tools(
    network: InferenceSource, market: MarketView, folders: list[Path], specs: list[str]
) -> dict[str, BaseTool]:
    def is_tool(obj: Any) -> bool:
        return isinstance(obj, BaseTool) or (isinstance(obj, type) and issubclass(obj, BaseTool))

    found = guarded(lambda: discover(TOOLS_GROUP, folders, specs, accept=is_tool))
    built = {}
    for name, obj in found.items():
        tool = guarded(lambda obj=obj: build_tool(obj, network, market))  # type: ignore[misc]
        built[tool.name or name] = tool
    return built


def _market(feed: StoreFeed, symbol: str) -> MarketView:
    """The market as of the feed's last candle: tools answer about 'now' at the end of data."""
    return MarketView(feed, SimClock(feed.span(symbol, "1h")[1]))


@tools_app.command("list")
def tools_list(
    tools_dir: ToolsDirOption = None,
    tool: ToolSpecOption = None,
    schema: Annotated[bool, typer.Option(help="Print each tool's JSON argument schema.")] = False,
) -> None:
    """Name, description and arguments of every tool found."""
    feed, _ = guarded(lambda: build_feed(None, None, None, "", "1h", 7, 30, settings_from(None)))
    network = local_network("ETH/USDT", None, False, "v0.6")
    tools = _tools(network, _market(feed, "ETH/USDT"), tools_dir or [], tool or [])
    if schema:
        console.print_json(
            json.dumps({name: t.args_schema.model_json_schema() for name, t in tools.items()})  # type: ignore[union-attr]
        )
        return
    table = Table(show_lines=True)
    table.add_column("tool", no_wrap=True)
    table.add_column("what it answers")
    table.add_column("arguments (* required)")
    for name, t in sorted(tools.items()):
        required = set(t.tool_call_schema.model_json_schema().get("required", []))  # type: ignore[union-attr]
        arguments = ", ".join(f"{a}{'*' if a in required else ''}" for a in t.args)
        summary = re.split(r"[:.]\s", t.description, maxsplit=1)[0]
        table.add_row(name, summary, arguments)
    console.print(table)


@tools_app.command("call")
def tools_call(
    name: Annotated[str, typer.Argument(help="Tool name, e.g. price_forecast.")],
    args: Annotated[str, typer.Option("--args", help="Arguments as JSON.")] = "{}",
    csv: CsvOption = None,
    symbol: Annotated[
        str, typer.Option(help="Symbol whose topics the local network runs.")
    ] = "ETH/USDT",
    seed: SeedOption = 7,
    days: DaysOption = 30,
    db: Annotated[Path | None, typer.Option(help="Reuse a saved local network state.")] = None,
    allora: Annotated[bool, typer.Option("--allora", help="Ask the real Allora network.")] = False,
    tools_dir: ToolsDirOption = None,
    tool: ToolSpecOption = None,
    config: ConfigOption = None,
) -> None:
    """Call a tool as an agent would; prints what the model would read (exit 1 on a tool error).

    Offline by default: the embedded network is advanced over the feed (the synthetic market
    unless --csv) and the tool answers as of the feed's last candle.
    """
    settings = settings_from(config)
    try:
        arguments = json.loads(args)
    except json.JSONDecodeError as exc:
        fail(f"--args is not valid JSON: {exc}")
    if not isinstance(arguments, dict):
        fail('--args must be a JSON object, e.g. \'{"symbol": "ETH/USDT"}\'')
    feed, _ = guarded(lambda: build_feed(csv, None, [symbol], "", "1h", seed, days, settings))
    market = guarded(lambda: _market(feed, symbol))
    network: InferenceSource
    if allora or settings.network.kind == "allora":
        network = guarded(lambda: AlloraNetwork.from_settings(settings.allora))
    else:
        local = guarded(
            lambda: local_network(symbol, network_db(settings, db) if db else None, False, "v0.6")
        )
        guarded(lambda: local.advance(market.now_ms(), feed))
        network = local
    tools = _tools(network, market, tools_dir or [], tool or [])
    if name not in tools:
        fail(f"no tool named {name!r}; found: {', '.join(sorted(tools))}")
    message = tools[name].invoke(
        {"name": name, "args": arguments, "id": "cli", "type": "tool_call"}
    )
    text = message.content if isinstance(message, ToolMessage) else str(message)
    if isinstance(message, ToolMessage) and message.status == "error":
        err_console.print(f"[bold red]tool error:[/] {text}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    try:
        console.print_json(str(text))
    except json.JSONDecodeError:
        console.print(text, highlight=False)
