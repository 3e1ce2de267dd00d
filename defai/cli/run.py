"""`defai run`: run an agent on paper (the default) or live (`--live`, see defai/cli/live.py).

Paper runs replay the feed at full speed on a simulated clock, one tick per candle; every venue,
the network and the journal keep their state in one folder, so a run stopped (or killed) and
started again with the same folder resumes from its last journaled tick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from defai.agent.agent import Agent
from defai.agent.guard import RiskLimits
from defai.agent.journal import Journal
from defai.agent.paper import capital_limits, paper_venues
from defai.agent.policy import Policy, Strategy
from defai.agent.runs import build_agent, close_all, open_run
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
    stop_on_signals,
)
from defai.cli.live import connect, require_consent, run_live
from defai.config import Settings
from defai.errors import ConfigError
from defai.market.feed import Feed
from defai.market.view import SimClock
from defai.network.allora import AlloraNetwork
from defai.network.base import InferenceSource
from defai.network.local import LocalNetwork
from defai.types import timeframe_ms, to_ms, to_timestamp

HOUR = 3_600_000
PAPER_RESUMABLE = ("running", "stopped")  # crashed, or stopped by a signal or --max-ticks


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
        float | None,
        typer.Option(
            help="The guard allows an order of at most this (USDT) and a day of 5x. Paper: also "
            "the USDT on the exchange, and as much again in the wallet (default 10,000). Live "
            "default: the guard's own small limits."
        ),
    ] = None,
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
    live: Annotated[
        bool, typer.Option("--live", help="Trade real funds on --exchange (CcxtBroker).")
    ] = False,
    exchange: Annotated[
        str | None, typer.Option(help="Live: the ccxt exchange (default: exchange.name).")
    ] = None,
    confirm_live: Annotated[
        bool,
        typer.Option(
            "--confirm-live", help="Consent to trade live (or agent.live_confirmed = true)."
        ),
    ] = False,
    max_ticks: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many ticks (e.g. a smoke run).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run an agent: its strategy asks the tools, the guard vets, paper (or live) venues trade."""
    settings = settings_from(config)
    if live:
        guarded(lambda: require_consent(settings, confirm_live))
        if replay or csv:
            fail("--live trades on the exchange's own candles: not with --replay or --csv")
    elif exchange:
        fail("--exchange is for --live runs (paper runs replay --csv or the synthetic market)")
    chosen = load_strategy(strategy)
    folder = state_dir or settings.agent.state_dir or settings.data.dir / "agent"
    folder.mkdir(parents=True, exist_ok=True)
    if live:
        venue = settings.exchange.model_copy(update={"name": exchange or settings.exchange.name})
        candles = guarded(lambda: connect(venue, chosen.symbols, settings.data.dir))
        network = _network(network_kind or settings.network.kind, candles, folder, settings)
        policy = guarded(lambda: _llm_policy(llm, None, None, chosen)) if llm else None
        limits = capital_limits(capital, settings.risk) if capital else settings.risk
        guarded(
            lambda: run_live(chosen, venue, candles, network, folder, limits, policy, max_ticks)
        )
        return
    feed, title = guarded(lambda: build_feed(csv, None, None, "", "1h", seed, days, settings))
    network = _network(network_kind or settings.network.kind, feed, folder, settings)
    agent, journal, run_id, start = guarded(
        lambda: _agent(chosen, feed, network, folder, capital or 10_000.0, settings.risk)
    )
    if replay and (
        replay_from is None or replay_from.resolve() == (folder / "journal.sqlite").resolve()
    ):
        fail("--replay needs --replay-from OLD/journal.sqlite and a fresh --state-dir")
    if llm or replay:
        source = Journal(replay_from) if replay_from else journal
        agent.policy = guarded(lambda: _llm_policy(llm, replay, source, chosen))
    end = guarded(lambda: to_ms(until)) if until else feed.span(chosen.symbols[0], "1h")[1]
    span = f"{to_timestamp(start):%Y-%m-%d %H:%M} -> {to_timestamp(end):%Y-%m-%d %H:%M}"
    console.print(
        f"[bold]paper run[/] {run_id}: {chosen.name} on {title}, {span}, state in {folder}"
    )
    clock = agent.clock
    assert isinstance(clock, SimClock)
    now, ticks = start, 0
    with stop_on_signals() as stop:
        while now <= end and not stop.requested and ticks != max_ticks:
            clock.set(now)
            report = agent.tick()
            ticks += 1
            now += timeframe_ms("1h")
    status = "finished" if now > end else "stopped"
    journal.end_run(run_id, status, {"ticks": ticks, "equity": report.equity if ticks else None})
    _close(agent)
    journal.close()
    console.print(f"{status} after {ticks} ticks; equity {agent.portfolio().equity:,.2f} USDT")


def _llm_policy(
    llm: str | None, replay: str | None, journal: Journal | None, strategy: Strategy
) -> Policy:
    """The strategy's symbols and topics, decided by a model (or its journaled answers)."""
    from defai.agent.llm import LLMPolicy  # deferred: only LLM runs pay for it

    if replay:
        assert journal is not None
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
    strategy: Strategy,
    feed: Feed,
    network: InferenceSource,
    folder: Path,
    capital: float,
    risk: RiskLimits | None = None,
) -> tuple[Agent, Journal, str, int]:
    """A new paper run, or the unfinished one of this folder resumed after its last tick."""
    journal = Journal(folder / "journal.sqlite")
    previous = journal.last_run("paper")
    if previous is not None and (
        previous.status not in PAPER_RESUMABLE or previous.strategy != strategy.name
    ):  # the folder's venue books are at that run's last tick: a new run cannot start before
        journal.close()
        raise ConfigError(
            f"{folder} holds paper run {previous.run_id} ({previous.strategy}, "
            f"{previous.status}); its venues' books cannot start over: use another --state-dir"
        )
    run = open_run(journal, "paper", strategy, {"strategy": strategy.name}, PAPER_RESUMABLE)
    first = feed.span(strategy.symbols[0], "1h")[0] + 300 * HOUR  # the network's warm-up
    start = first if run.last_tick_ms is None else run.last_tick_ms + HOUR
    clock = SimClock(start)
    agent = build_agent(
        strategy,
        clock=clock,
        feed=feed,
        network=network,
        venues=paper_venues(
            feed, strategy.symbols, start, exchange=capital, wallet=capital, folder=folder
        ),
        limits=capital_limits(capital, risk),
        journal=journal,
        run=run,
    )
    return agent, journal, run.run_id, start


def _close(agent: Agent) -> None:
    venues = agent.venues
    close_all((venues.exchange, venues.amm, venues.lending, agent.network))
