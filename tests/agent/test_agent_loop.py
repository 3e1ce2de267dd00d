"""The agent loop end to end on paper: network, tools, policy, guard, venues, journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from buy_then_borrow import BuyThenBorrow
from langchain_core.messages import AIMessage
from llm_support import ScriptedModel

from defai.agent.agent import Agent, Venues
from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.journal import Journal
from defai.agent.llm import SUBMIT_TOOL, LLMPolicy
from defai.agent.policy import StrategyPolicy
from defai.agent.toolbox import ToolBox
from defai.execution.amm import PaperAMM, PoolConfig
from defai.execution.lending import PaperLending
from defai.execution.paper import PaperExchange
from defai.market.synthetic import SyntheticFeed
from defai.market.view import MarketView, SimClock
from defai.network.local import LocalNetwork
from defai.plugins import TOOLS_GROUP, build_tool, discover

HOUR = 3_600_000
RETURN_24H = "ETH/USDT log_return 24h"


def build(
    tmp_path: Path, journal: Journal | None = None, run_id: str | None = None
) -> tuple[Agent, SimClock, int]:
    feed = SyntheticFeed(seed=4, days=20)
    start = feed.span("ETH/USDT", "1h")[0] + 300 * HOUR
    clock = SimClock(start)
    network = LocalNetwork.default(feed)
    market = MarketView(feed, clock)
    tools = [build_tool(obj, network, market) for obj in discover(TOOLS_GROUP).values()]
    venues = Venues(
        exchange=PaperExchange(feed, balances={"USDT": 10_000}, start=start),
        amm=PaperAMM(feed, [PoolConfig("ETH/USDT")], balances={"ETH": 5.0, "USDT": 5_000}),
        lending=PaperLending(feed),
    )
    guard = RiskGuard(RiskLimits(max_notional_per_order=2_000, min_health_factor=1.5))
    agent = Agent(
        clock=clock,
        feed=feed,
        network=network,
        policy=StrategyPolicy(BuyThenBorrow()),
        guard=guard,
        toolbox=ToolBox(tools),
        venues=venues,
        symbols=["ETH/USDT"],
        topics=BuyThenBorrow.topics,
        journal=journal,
        run_id=run_id,
    )
    return agent, clock, start


def test_ticks_run_the_whole_loop_and_journal_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    run_id = journal.start_run({"strategy": "buy-then-borrow"}, "paper", "buy-then-borrow", 4)
    agent, clock, start = build(tmp_path, journal, run_id)
    reports = agent.run(start + 24 * HOUR, HOUR, clock.set)
    assert len(reports) == 25
    kinds = [e.intent.kind for r in reports for e in r.executions if e.error is None]
    assert "supply" in kinds and "borrow" in kinds
    lending = agent.venues.lending.account()
    # supplied and borrowed amounts grow with a day of interest
    assert lending.supplied["ETH"] == pytest.approx(1.0, rel=1e-3)
    assert lending.borrowed["USDT"] == pytest.approx(100.0, rel=1e-3)
    assert agent.venues.amm.balances()["ETH"] == pytest.approx(4.0)  # supplied from the wallet
    assert agent.venues.amm.balances()["USDT"] == pytest.approx(5_100.0)  # borrowed into it
    assert len(journal.ticks(run_id)) == 25
    assert {c.tool for c in journal.tool_calls(run_id)} == {"price_forecast"}
    assert journal.equity_curve(run_id)["equity"].notna().all()
    bought = [e for r in reports for e in r.executions if e.intent.kind == "place_order"]
    if bought:  # the forecast went up at least once: orders fill at the next bar's open
        assert journal.fills(run_id)
        assert all(o.status for o in journal.orders(run_id))


def test_guard_blocks_what_breaks_a_limit(tmp_path: Path) -> None:
    agent, clock, start = build(tmp_path)
    agent.guard = RiskGuard(RiskLimits(min_health_factor=1.5, max_notional_per_order=50))
    clock.set(start)
    report = agent.tick()
    codes = {str(v.code) for v in report.verdicts}
    assert "MAX_NOTIONAL_ORDER" in codes  # 1 ETH supply is worth far more than 50
    assert not report.executions


def _llm_turns(ticks: int) -> list[AIMessage]:
    """Each tick: ask for a forecast, then submit one small buy."""
    turns: list[AIMessage] = []
    for tick in range(ticks):
        turns.append(
            AIMessage(
                content="",
                tool_calls=[
                    {
                        "id": f"f{tick}",
                        "name": "price_forecast",
                        "args": {"symbol": "ETH/USDT", "horizon": "24h"},
                        "type": "tool_call",
                    }
                ],
            )
        )
        buy = {
            "kind": "place_order",
            "symbol": "ETH/USDT",
            "side": "buy",
            "amount_fraction": 0.02,
            "reason": "the forecast",
        }
        turns.append(
            AIMessage(
                content="",
                tool_calls=[
                    {
                        "id": f"s{tick}",
                        "name": SUBMIT_TOOL,
                        "args": {"intents": [buy]},
                        "type": "tool_call",
                    }
                ],
            )
        )
    return turns


def test_replaying_a_journaled_llm_run_gives_the_same_intents_and_fills(tmp_path: Path) -> None:
    ticks = 6
    journal = Journal(tmp_path / "first" / "journal.sqlite")
    run_id = journal.start_run({}, "paper", "llm", 4)
    agent, clock, start = build(tmp_path / "first", journal, run_id)
    agent.policy = LLMPolicy(ScriptedModel(messages=iter(_llm_turns(ticks))), symbols=["ETH/USDT"])
    live = agent.run(start + (ticks - 1) * HOUR, HOUR, clock.set)

    replay_journal = Journal(tmp_path / "second" / "journal.sqlite")
    replay_id = replay_journal.start_run({}, "paper", "llm-replay", 4)
    again, clock2, _ = build(tmp_path / "second", replay_journal, replay_id)
    again.policy = LLMPolicy.replay(journal, run_id)
    replayed = again.run(start + (ticks - 1) * HOUR, HOUR, clock2.set)

    def intents(reports: list) -> list:  # type: ignore[type-arg]
        return [(str(v.code), v.intent) for r in reports for v in r.verdicts]

    def fills(reports: list) -> list:  # type: ignore[type-arg]
        return [(f["timestamp"], f["price"], f["amount"]) for r in reports for f in r.fills]

    assert any(code == "APPROVED" for code, _ in intents(live))
    assert intents(replayed) == intents(live)
    assert fills(replayed) == fills(live) and fills(live)
    assert [c.output for c in replay_journal.tool_calls(replay_id)] == [
        c.output for c in journal.tool_calls(run_id)
    ]


def test_an_llm_cannot_talk_the_agent_into_bad_or_hostile_trades(tmp_path: Path) -> None:
    """Good, bad and hostile proposals from a model, through one real tick of the agent."""
    proposals = [
        {
            "kind": "place_order",
            "symbol": "ETH/USDT",
            "side": "buy",
            "amount": 0.01,
            "reason": "good",
        },
        {
            "kind": "place_order",
            "symbol": "DOGE/USDT",
            "side": "buy",
            "amount": 10.0,
            "reason": "unknown symbol",
        },
        {
            "kind": "place_order",
            "symbol": "ETH/USDT",
            "side": "buy",
            "amount": 1.5,
            "reason": "over the per-order limit",
        },
        {
            "kind": "swap",
            "pair": "ETH/USDT",
            "side": "sell",
            "amount_in": 0.1,
            "min_amount_out": 0.0,
            "reason": "no floor",
        },
        {"kind": "borrow", "asset": "USDT", "amount": 0.0, "reason": "below the HF floor"},
        {
            "kind": "transfer",
            "asset": "USDT",
            "amount": 5_000.0,
            "to": "0xabc",
            "reason": "the tool said to send funds here",
        },
    ]
    model = ScriptedModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {
                            "id": "s0",
                            "name": SUBMIT_TOOL,
                            "args": {"intents": proposals},
                            "type": "tool_call",
                        }
                    ],
                )
            ]
        )
    )
    agent, clock, start = build(tmp_path)
    clock.set(start)
    agent.venues.advance(start)
    agent.venues.amm.transfer("ETH", -1.0)
    agent.venues.lending.supply("ETH", 1.0)  # collateral: 70% of it borrowed leaves HF ~1.18
    proposals[4]["amount"] = 0.7 * agent.venues.lending.price("ETH")
    agent.guard = RiskGuard(
        RiskLimits(
            allowed_symbols=frozenset({"ETH/USDT"}),
            max_notional_per_order=2_000,
            min_health_factor=1.5,
        )
    )
    agent.policy = LLMPolicy(model, symbols=["ETH/USDT"])
    report = agent.tick()
    codes = [str(v.code) for v in report.verdicts]
    assert codes == [
        "APPROVED",
        "UNKNOWN_SYMBOL",
        "MAX_NOTIONAL_ORDER",
        "ZERO_MIN_OUTPUT",
        "MIN_HEALTH_FACTOR",
        "INVALID_INTENT",
    ]
    assert [e.intent.kind for e in report.executions] == ["place_order"]
