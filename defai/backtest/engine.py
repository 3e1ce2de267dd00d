"""Backtest: the agent on a simulated clock over a feed, with paper venues and a replayed network.

Nothing here decides or fills: the same `Agent` as on paper and live ticks once per candle; this
module only sets the clock, wires paper venues funded for what the strategy uses, and records what
each tick left behind (equity, exposure, health factor, LP book, decisions) for the result.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from defai.agent.agent import Agent, TickReport, Venues
from defai.agent.guard import RiskLimits
from defai.agent.intents import CloseLPRange, Intent, Verdict
from defai.agent.journal import Journal
from defai.agent.observation import Portfolio
from defai.agent.paper import capital_limits, paper_venues
from defai.agent.policy import Policy, Strategy
from defai.agent.runs import Run, build_agent
from defai.backtest.result import BacktestResult, LpRange, build_result
from defai.backtest.tape import NetworkTape
from defai.errors import ConfigError
from defai.execution.amm import LpValuation
from defai.market.feed import Feed
from defai.market.view import SimClock
from defai.network.base import InferenceSource
from defai.network.local import Topic, default_topics
from defai.types import timeframe_ms, to_ms, to_timestamp

ALL_VENUES = ("exchange", "amm", "lending")
NetworkChoice = str | InferenceSource | None
Progress = Callable[[int, int], None]


@dataclass
class Backtest:
    """Run `strategy` from `start` to `end` (default: after `warmup` candles, to the feed's end).

    `network`: "local" replays the embedded network over the feed (recorded once, cached in
    `cache_dir`); None runs without one (plain strategies); an InferenceSource is used as given
    (a LocalNetwork then advances tick by tick, as on paper). Capital goes to the venues the
    strategy names in `venues` (all three when it names none), split evenly between the exchange
    and the on-chain wallet when it uses both. `exchange` holds PaperExchange options (fees,
    spread, impact...); `limits` the guard's (default: scaled to the capital).
    """

    strategy: Strategy
    feed: Feed
    start: int | str | None = None
    end: int | str | None = None
    capital: float = 10_000.0
    timeframe: str = "1h"
    network: NetworkChoice = "local"
    limits: RiskLimits | None = None
    exchange: Mapping[str, Any] = field(default_factory=dict)
    policy: Policy | None = None
    tools: Sequence[Any] = ()
    """More tool plugins (tools, or factories taking network= and market=) beside the
    installed ones."""
    journal: Path | None = None
    cache_dir: Path | None = None
    warmup: int = 300
    network_until: int | str | None = None
    """Record the network up to this time rather than `end`: runs over consecutive windows
    (walk-forward) then share one recording; each tick still sees only past epochs."""
    window: int = 256

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capital) and self.capital > 0):
            raise ConfigError(f"backtest capital must be a positive number, not {self.capital!r}")
        if self.warmup < 0 or self.window < 1:
            raise ConfigError(
                f"backtest warmup must be >= 0 and window >= 1 (got {self.warmup}, {self.window})"
            )

    def span(self) -> tuple[int, int]:
        """The first and last tick (epoch ms), on candle closes of the timeframe."""
        step = timeframe_ms(self.timeframe)
        first, last = self.feed.span(self.strategy.symbols[0], self.timeframe)
        start = first + self.warmup * step if self.start is None else to_ms(self.start)
        end = last if self.end is None else min(to_ms(self.end), last)
        start = -(-start // step) * step
        if start > end:
            raise ConfigError(
                f"backtest: nothing to run from {to_timestamp(start)} to {to_timestamp(end)} "
                f"({self.strategy.symbols[0]} {self.timeframe} candles end {to_timestamp(last)}; "
                f"without a start the first {self.warmup} candles are the warm-up)"
            )
        return start, end

    def run(
        self, progress: Progress | None = None, recording: Progress | None = None
    ) -> BacktestResult:
        """`progress(ticks done, ticks)` follows the loop, `recording(epochs done, epochs)` the
        network's recording when it is not cached yet."""
        began = time.perf_counter()
        start, end = self.span()
        clock = SimClock(start)
        agent = self._agent(clock, start, end, recording)
        setup_s = time.perf_counter() - began  # the network's recording, when not cached
        tape = agent.network if isinstance(agent.network, NetworkTape) else None
        book = _Book(agent.venues, self.strategy.symbols)
        step = timeframe_ms(self.timeframe)
        total = (end - start) // step + 1
        for i in range(total):
            clock.set(start + i * step)
            book.record(agent.tick())
            if progress is not None:
                progress(i + 1, total)
        if self.journal is not None and agent.journal is not None and agent.run_id is not None:
            agent.journal.end_run(agent.run_id, "completed", {"ticks": total})
            agent.journal.close()
        return build_result(
            strategy=self.strategy.name,
            quote=agent.quote,
            capital=self.capital,
            timeframe=self.timeframe,
            times=np.asarray(book.times, dtype=np.int64),
            equity=np.asarray(book.equity),
            exposure=np.asarray(book.exposure),
            health_factor=np.asarray(book.health_factor),
            prices=book.prices,
            lp=book.lp,
            lp_ranges=book.ranges(),
            trades=agent.venues.exchange.fetch_my_trades() if agent.venues.exchange else [],
            actions=book.actions,
            verdicts=book.verdict_counts,
            decisions=book.decisions,
            liquidations=list(agent.venues.liquidations),
            network={} if tape is None else {n: r.frame for n, r in tape.recordings.items()},
            elapsed_s=time.perf_counter() - began,
            setup_s=setup_s,
        )

    def _agent(
        self, clock: SimClock, start: int, end: int, recording: Progress | None = None
    ) -> Agent:
        strategy = self.strategy
        journal = run = None
        if self.journal is not None:
            journal = Journal(self.journal)
            config = {"strategy": strategy.name, "start": start, "end": end}
            run = Run(journal.start_run(config, "backtest", strategy.name, None), False, None)
        return build_agent(
            strategy,
            clock=clock,
            feed=self.feed,
            network=self._network(clock, end, recording),
            venues=self._venues(start),
            limits=self.limits or capital_limits(self.capital),
            journal=journal,
            run=run,
            policy=self.policy,
            tools=self.tools,
            timeframe=self.timeframe,
            window=self.window,
        )

    def _venues(self, start: int) -> Venues:
        used = tuple(getattr(self.strategy, "venues", ALL_VENUES))
        unknown = set(used) - set(ALL_VENUES)
        if unknown:
            raise ConfigError(f"{self.strategy.name}: unknown venues {sorted(unknown)}")
        on_chain = "amm" in used or "lending" in used
        share = self.capital / 2 if ("exchange" in used and on_chain) else self.capital
        return paper_venues(
            self.feed,
            self.strategy.symbols,
            start,
            exchange=share if "exchange" in used else None,
            wallet=share if on_chain else None,
            lending="lending" in used,
            exchange_options=self.exchange,
        )

    def _network(
        self, clock: SimClock, end: int, recording: Progress | None = None
    ) -> InferenceSource:
        if self.network is None:
            return NetworkTape([], clock)
        if not isinstance(self.network, str):
            return self.network
        if self.network != "local":
            raise ConfigError(
                f"backtest network must be 'local', None or an InferenceSource, "
                f"not {self.network!r} (a remote network has no replayable history)"
            )
        until = end if self.network_until is None else max(end, to_ms(self.network_until))
        chosen = embedded_topics(self.strategy)
        return NetworkTape.record(chosen, self.feed, until, clock, self.cache_dir, recording)


def embedded_topics(strategy: Strategy) -> list[Topic]:
    """The embedded network's topics the strategy declares; ConfigError naming any it lacks."""
    pairs = sorted({s.partition(":")[0] for s in strategy.symbols})
    available = {t.name: t for t in default_topics(pairs)}
    missing = [t for t in strategy.topics if t not in available]
    if missing:
        raise ConfigError(
            f"{strategy.name} needs topics {missing} the embedded network does not "
            f"have; it has {sorted(available)}"
        )
    return [available[t] for t in strategy.topics]


class _Book:
    """What each tick leaves behind, kept as plain lists until the result is built."""

    def __init__(self, venues: Venues, symbols: Sequence[str]) -> None:
        self.venues = venues
        self.symbols = tuple(symbols)
        self.times: list[int] = []
        self.equity: list[float] = []
        self.exposure: list[float] = []
        self.health_factor: list[float] = []
        self.prices: dict[str, list[float]] = {s: [] for s in symbols}
        self.lp: dict[str, list[float]] = {"value": [], "fees_owed": [], "impermanent_loss": []}
        self.actions: list[dict[str, Any]] = []
        self.verdict_counts: dict[str, int] = {}
        self.decisions: list[str] = []
        self._ranges: dict[int, LpRange] = {}

    def record(self, report: TickReport) -> None:
        now = report.time_ms
        self.times.append(now)
        self.equity.append(report.equity)
        portfolio = report.observation.portfolio
        self.exposure.append(gross_exposure(portfolio, report.observation.prices))
        for s in self.symbols:
            self.prices[s].append(report.observation.prices.get(s, np.nan))
        self.decisions.append(decision_key(report.verdicts))
        for verdict in report.verdicts:
            code = str(verdict.code)
            self.verdict_counts[code] = self.verdict_counts.get(code, 0) + 1
        for execution in report.executions:
            self._action(now, execution.intent, execution.result, execution.error)
        self._lending()
        self._lp(now)

    def _action(
        self, now: int, intent: Intent, result: Mapping[str, Any], error: str | None
    ) -> None:
        if intent.kind == "hold":
            return
        self.actions.append(
            {
                "time_ms": now,
                "kind": intent.kind,
                "intent": intent.model_dump(mode="json", exclude_none=True),
                "result": _plain(result),
                "error": error,
            }
        )
        if isinstance(intent, CloseLPRange) and error is None:
            held = self._ranges.get(intent.position_id)
            if held is not None:
                self._ranges[intent.position_id] = held.closed(now)

    def _lending(self) -> None:
        market = self.venues.lending
        if market is None:
            self.health_factor.append(np.nan)
            return
        account = market.account()
        self.health_factor.append(account.health_factor if account.debt > 0 else np.nan)

    def _lp(self, now: int) -> None:
        amm = self.venues.amm
        positions = [] if amm is None else amm.positions()
        live = [p for p in positions if p.liquidity > 0]
        self.lp["value"].append(sum(p.value for p in live))
        self.lp["fees_owed"].append(sum(p.fees_owed for p in live))
        self.lp["impermanent_loss"].append(sum(_loss_in_quote(p) for p in live))
        for p in live:
            if p.id not in self._ranges:
                self._ranges[p.id] = LpRange(
                    p.id, p.pair, p.opened_ms, None, p.price_lower, p.price_upper
                )

    def ranges(self) -> list[LpRange]:
        return list(self._ranges.values())


def _loss_in_quote(position: LpValuation) -> float:
    """The position's IL in the quote: its principal minus what holding would be worth
    (the venue reports IL as a fraction of the holding's value)."""
    if position.impermanent_loss is None:
        return 0.0
    principal = position.value - position.fees_owed
    return principal - principal / (1.0 + position.impermanent_loss)


def gross_exposure(portfolio: Portfolio, prices: Mapping[str, float]) -> float:
    """Market value at risk over equity: non-quote holdings, |perpetual notionals|, LP
    positions, lending collateral and debt (gross: a hedge does not cancel)."""
    if not portfolio.equity > 0:
        return np.nan
    quote = portfolio.quote

    def price(asset: str) -> float:
        return prices.get(f"{asset}/{quote}", np.nan)

    value = sum(
        b.total * price(asset)
        for asset, b in portfolio.balances.items()
        if asset != quote and b.total
    )
    value += sum(abs(p.notional) for p in portfolio.positions)
    value += sum(p.value for p in portfolio.lp_positions)
    value += sum(
        (r.supplied + r.debt) * r.price
        for asset, r in portfolio.lending.reserves.items()
        if asset != quote
    )
    return float(value / portfolio.equity)


def decision_key(verdicts: Sequence[Verdict]) -> str:
    """What the policy proposed this tick, canonically: equal keys, equal decisions."""
    return json.dumps(
        [
            v.intent.model_dump(mode="json", exclude={"reason"})
            if v.intent is not None
            else repr(v.proposal)
            for v in verdicts
        ],
        sort_keys=True,
    )


def _plain(value: Any) -> Any:
    """A venue's receipt as JSON-able data (dataclasses and tuples included)."""
    return json.loads(
        json.dumps(value, default=lambda o: asdict(o) if is_dataclass(o) else repr(o))  # type: ignore[arg-type]
    )
