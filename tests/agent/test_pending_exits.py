"""A stop-loss waiting for its entry to fill survives a restart: it is journaled with the tick."""

from __future__ import annotations

from pathlib import Path

from defai.agent.agent import Agent, Venues
from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import Hold, PlaceOrder
from defai.agent.journal import Journal
from defai.agent.observation import Observation
from defai.agent.policy import StrategyPolicy
from defai.agent.toolbox import ToolBox
from defai.execution.paper import PaperExchange
from defai.market.synthetic import SyntheticFeed
from defai.market.view import SimClock
from defai.network.local import LocalNetwork

HOUR = 3_600_000


class LimitEntryWithStop:
    """Once: a limit buy 1% under the close, protected by a stop 5% under it."""

    name = "limit-entry"
    symbols = ("ETH/USDT",)
    topics = ()

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        if observation.portfolio.free("USDT") < 10_000:
            return [Hold(reason="entered once")]
        price = observation.prices["ETH/USDT"]
        return [
            PlaceOrder(
                symbol="ETH/USDT",
                side="buy",
                order_type="limit",
                amount=0.3,
                price=round(price * 0.99, 2),
                stop_loss=round(price * 0.95, 2),
            )
        ]


def agent(
    feed: SyntheticFeed, folder: Path, journal: Journal, run_id: str, now: int, resumed: bool
) -> tuple[Agent, SimClock]:
    clock = SimClock(now)
    exchange = PaperExchange(
        feed, balances={"USDT": 10_000}, start=now, db=folder / "exchange.sqlite"
    )
    return Agent(
        clock=clock,
        feed=feed,
        network=LocalNetwork.default(feed),
        policy=StrategyPolicy(LimitEntryWithStop()),
        guard=RiskGuard(RiskLimits()),
        toolbox=ToolBox([]),
        venues=Venues(exchange=exchange),
        symbols=["ETH/USDT"],
        journal=journal,
        run_id=run_id,
        resumed=resumed,
    ), clock


def test_a_restart_places_the_stop_of_an_entry_that_filled_while_it_was_down(
    tmp_path: Path,
) -> None:
    feed = SyntheticFeed(seed=2, days=30)
    start = feed.span("ETH/USDT", "1h")[0] + 300 * HOUR
    journal = Journal(tmp_path / "journal.sqlite")
    run_id = journal.start_run({}, "paper", "limit-entry", None)
    first, clock = agent(feed, tmp_path, journal, run_id, start, resumed=False)
    first.tick()  # the entry is placed: its stop waits for the fill
    [(entry_id, entry)] = journal.pending_exits(run_id)
    assert entry["stop_loss"] is not None
    first.venues.exchange.close()  # the process dies here

    second, clock = agent(feed, tmp_path, journal, run_id, start + HOUR, resumed=True)
    for hour in range(1, 48):
        clock.set(start + hour * HOUR)
        second.tick()
        if not journal.pending_exits(run_id):
            break
    exchange = second.venues.exchange
    assert exchange.fetch_order(entry_id, "ETH/USDT")["status"] == "closed"
    stops = [o for o in exchange.fetch_open_orders("ETH/USDT") if o.get("triggerPrice")]
    assert [(o["side"], o["amount"], o["triggerPrice"]) for o in stops] == [
        ("sell", 0.3, entry["stop_loss"])
    ]
