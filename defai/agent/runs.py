"""A journaled run of an agent, opened or resumed, whatever drives it (paper replay or live).

Paper and live runs differ in their clock, feed and venues only; how a run is found again after a
restart and how the agent is wired around it is the same, so it is written once, here (a
backtest wires its agent the same way, without a run to resume).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from defai.agent.agent import Agent, Venues
from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.journal import Journal, Mode
from defai.agent.policy import Policy, Strategy, StrategyPolicy
from defai.agent.toolbox import ToolBox
from defai.market.feed import Feed
from defai.market.view import Clock, MarketView
from defai.network.base import InferenceSource
from defai.plugins import TOOLS_GROUP, build_tool, discover


@dataclass(frozen=True)
class Run:
    """A run of the journal: `last_tick_ms` is None before its first tick."""

    run_id: str
    resumed: bool
    last_tick_ms: int | None


def open_run(
    journal: Journal,
    mode: Mode,
    strategy: Strategy,
    config: dict[str, object],
    resumable: Sequence[str] = ("running",),
) -> Run:
    """The folder's last run of this mode and strategy if its status is `resumable`, resumed;
    else a new one."""
    previous = journal.last_run(mode)
    if previous is not None and previous.status in resumable and previous.strategy == strategy.name:
        journal.resume_run(previous.run_id)
        last = journal.last_tick(previous.run_id)
        return Run(previous.run_id, True, None if last is None else last.time_ms)
    return Run(journal.start_run(config, mode, strategy.name, None), False, None)


def build_agent(
    strategy: Strategy,
    *,
    clock: Clock,
    feed: Feed,
    network: InferenceSource,
    venues: Venues,
    limits: RiskLimits,
    journal: Journal | None = None,
    run: Run | None = None,
    policy: Policy | None = None,
    tools: Sequence[object] = (),
    timeframe: str = "1h",
    window: int = 256,
) -> Agent:
    """The agent of a run (paper, live or backtest): every installed tool and `tools`, deciding
    by `policy` (default: the strategy), its guard requiring the strategy's topics."""
    market = MarketView(feed, clock, timeframe)
    plugins = [*discover(TOOLS_GROUP).values(), *tools]
    return Agent(
        clock=clock,
        feed=feed,
        network=network,
        policy=policy or StrategyPolicy(strategy),
        guard=RiskGuard(strategy_limits(limits, strategy)),
        toolbox=ToolBox([build_tool(obj, network, market) for obj in plugins]),
        venues=venues,
        symbols=strategy.symbols,
        topics=strategy.topics,
        timeframe=timeframe,
        window=window,
        journal=journal,
        run_id=None if run is None else run.run_id,
        resumed=False if run is None else run.resumed,
    )


def strategy_limits(limits: RiskLimits, strategy: Strategy) -> RiskLimits:
    """The strategy's topics become required for adding exposure on its symbols (unless the
    limits say otherwise): a policy that names no topic — an LLM — cannot trade those markets
    on a missing or stale forecast either."""
    if limits.required_topics or not strategy.topics:
        return limits
    required = {symbol: frozenset(strategy.topics) for symbol in strategy.symbols}
    return limits.model_copy(update={"required_topics": required})


def close_all(closables: Iterable[object]) -> None:
    """Release what holds a database or a connection (venues, a network); None is skipped."""
    for thing in closables:
        close = getattr(thing, "close", None)
        if callable(close):
            close()
