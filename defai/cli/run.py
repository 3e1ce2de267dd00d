"""`defai run`: run an agent on paper, offline, on the synthetic market or a CSV history.

Paper runs replay the feed at full speed on a simulated clock, one tick per candle; every venue,
the network and the journal keep their state in one folder, so a run stopped (or killed) and
started again with the same folder resumes from its last journaled tick.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from defai.agent.agent import Agent
from defai.agent.guard import RiskGuard
from defai.agent.journal import Journal
from defai.agent.paper import capital_limits, paper_venues
from defai.agent.policy import Policy, Strategy, StrategyPolicy
from defai.agent.toolbox import ToolBox
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
from defai.market.feed import Feed
from defai.market.view import MarketView, SimClock
from defai.network.allora import AlloraNetwork
from defai.network.base import InferenceSource
from defai.network.local import LocalNetwork
from defai.plugins import STRATEGIES_GROUP, TOOLS_GROUP, build_tool, discover, resolve
from defai.types import timeframe_ms, to_ms, to_timestamp

HOUR = 3_600_000


@dataclass
class _Stop:
    """Set by SIGINT/SIGTERM: the loop finishes its tick, journals it and ends cleanly."""

    requested: bool = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run(
    strategy: Annotated[str, typer.Option(help="Strategy name or 'module:Class'.")] = "directional",
    network_kind: Annotated[
        str | None, typer.Option("--network", help="local (embedded) or allora.")
    ] = None,
    csv: CsvOption = None,
    seed: SeedOption = 7,
    days: DaysOption = 60,
    until: Annotated[
        str | None, typer.Option(help="Stop the replay here (default: feed end).")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for the journal and venue state (resumes if run before)."),
    ] = None,
    capital: Annotated[
        float,
        typer.Option(
            help="USDT on the exchange, and as much again in the wallet (half in the base)."
        ),
    ] = 10_000.0,
    llm: Annotated[
        str | None,
        typer.Option(help="Let a LangChain chat model decide, e.g. 'openai:gpt-4o-mini'."),
    ] = None,
    replay: Annotated[
        str | None, typer.Option(help="Re-run a journaled LLM run (run id) without the model.")
    ] = None,
    replay_from: Annotated[
        Path | None,
        typer.Option(help="The journal holding the --replay run (run into a fresh --state-dir)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run an agent on paper: its strategy asks the tools, the guard vets, paper venues trade."""
    settings = settings_from(config)
    feed, title = guarded(lambda: build_feed(csv, None, None, "", "1h", seed, days, settings))
    chosen = _strategy(strategy)
    folder = state_dir or settings.agent.state_dir or settings.data.dir / "agent"
    folder.mkdir(parents=True, exist_ok=True)
    network = _network(network_kind or settings.network.kind, feed, folder, settings)
    agent, journal, run_id, start = _agent(chosen, feed, network, folder, capital)
    if replay and (
        replay_from is None or replay_from.resolve() == (folder / "journal.sqlite").resolve()
    ):
        fail("--replay needs --replay-from OLD/journal.sqlite and a fresh --state-dir")
    if llm or replay:
        source = Journal(replay_from) if replay_from else journal
        agent.policy = guarded(lambda: _llm_policy(llm, replay, source, chosen))
    end = guarded(lambda: to_ms(until)) if until else feed.span(chosen.symbols[0], "1h")[1]
    stop = _Stop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    span = f"{to_timestamp(start):%Y-%m-%d %H:%M} -> {to_timestamp(end):%Y-%m-%d %H:%M}"
    console.print(
        f"[bold]paper run[/] {run_id}: {chosen.name} on {title}, {span}, state in {folder}"
    )
    clock = agent.clock
    assert isinstance(clock, SimClock)
    now, ticks = start, 0
    while now <= end and not stop.requested:
        clock.set(now)
        report = agent.tick()
        ticks += 1
        now += timeframe_ms("1h")
    status = "stopped" if stop.requested else "finished"
    journal.end_run(run_id, status, {"ticks": ticks, "equity": report.equity if ticks else None})
    _close(agent)
    journal.close()
    console.print(f"{status} after {ticks} ticks; equity {agent.portfolio().equity:,.2f} USDT")


def _strategy(spec: str) -> Strategy:
    found = guarded(lambda: resolve(STRATEGIES_GROUP, spec))
    instance: Any = found() if isinstance(found, type) else found
    if not isinstance(instance, Strategy):
        fail(f"{spec!r} is not a strategy (it needs name, symbols, topics and decide)")
    return instance  # type: ignore[no-any-return]


def _llm_policy(
    llm: str | None, replay: str | None, journal: Journal, strategy: Strategy
) -> Policy:
    """The strategy's symbols and topics, decided by a model (or its journaled answers)."""
    from defai.agent.llm import LLMPolicy  # deferred: only LLM runs pay for it

    if replay:
        return LLMPolicy.replay(journal, replay)
    assert llm is not None
    return LLMPolicy(llm, symbols=strategy.symbols, topics=strategy.topics)


def _network(kind: str, feed: Feed, folder: Path, settings: Settings) -> InferenceSource:
    if kind == "allora":
        return guarded(lambda: AlloraNetwork.from_settings(settings.allora))
    if kind != "local":
        fail(f"--network must be local or allora, not {kind!r}")
    return guarded(lambda: LocalNetwork.default(feed, db=folder / "network.sqlite"))


def _agent(
    strategy: Strategy, feed: Feed, network: InferenceSource, folder: Path, capital: float
) -> tuple[Agent, Journal, str, int]:
    """A new run, or the unfinished one of this folder resumed after its last tick."""
    journal = Journal(folder / "journal.sqlite")
    previous = journal.last_run("paper")
    first = feed.span(strategy.symbols[0], "1h")[0] + 300 * HOUR  # the network's warm-up
    resumed = (
        previous is not None and previous.status == "running" and previous.strategy == strategy.name
    )
    if resumed:
        assert previous is not None
        run_id = previous.run_id
        journal.resume_run(run_id)
        last = journal.last_tick(run_id)
        start = first if last is None else last.time_ms + HOUR
    else:
        run_id = journal.start_run({"strategy": strategy.name}, "paper", strategy.name, None)
        start = first
    clock = SimClock(start)
    market = MarketView(feed, clock)
    tools = [build_tool(obj, network, market) for obj in discover(TOOLS_GROUP).values()]
    venues = paper_venues(
        feed, strategy.symbols, start, exchange=capital, wallet=capital, folder=folder
    )
    policy: Policy = StrategyPolicy(strategy)
    agent = Agent(
        clock=clock,
        feed=feed,
        network=network,
        policy=policy,
        guard=RiskGuard(capital_limits(capital)),
        toolbox=ToolBox(tools),
        venues=venues,
        symbols=strategy.symbols,
        topics=strategy.topics,
        journal=journal,
        run_id=run_id,
        resumed=resumed,
    )
    return agent, journal, run_id, start


def _close(agent: Agent) -> None:
    for venue in (agent.venues.exchange, agent.venues.amm, agent.venues.lending, agent.network):
        close = getattr(venue, "close", None)
        if callable(close):
            close()
