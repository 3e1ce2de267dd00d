"""Agent: one tick loop, the same in a backtest, on paper and live.

Each tick: the venues catch up with the clock (fills of orders placed earlier, fees, interest,
liquidations), the network runs its due epochs, the policy sees an observation built from
candles closed by now and proposes intents, the RiskGuard reviews them, and only what it
approved reaches a venue. Everything is journaled. Only the clock, the feed, the network and
the venues differ between modes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt

from defai.agent.guard import Approved, RiskGuard, require_approved
from defai.agent.intents import (
    EXCHANGE,
    WALLET,
    Borrow,
    CancelOrder,
    CloseLPRange,
    Hold,
    Intent,
    OpenLPRange,
    PlaceOrder,
    Repay,
    Supply,
    Swap,
    Verdict,
    Withdraw,
)
from defai.agent.journal import Journal
from defai.agent.observation import (
    Balance,
    LendingAccount,
    LPPosition,
    Observation,
    Portfolio,
    Position,
    Reserve,
)
from defai.agent.policy import Policy
from defai.agent.toolbox import ToolBox
from defai.defi.uniswap_v3_lp import range_amounts
from defai.errors import DefaiError, NetworkError
from defai.execution.amm import PaperAMM
from defai.execution.broker import Broker
from defai.execution.lending import PaperLending
from defai.market.feed import Feed
from defai.market.view import Clock
from defai.network.base import InferenceSource

log = logging.getLogger(__name__)


@dataclass
class Venues:
    """Where approved intents go: an exchange (orders), an AMM and a lending market (on-chain).

    The AMM's wallet is the on-chain account: a lending action moves tokens between it and the
    lending market, as supplying from and borrowing to one wallet does on a chain.
    """

    exchange: Broker | None = None
    amm: PaperAMM | None = None
    lending: PaperLending | None = None
    liquidations: list[Any] = field(default_factory=list)
    """Every liquidation the lending market made, oldest first (reports and backtests read it)."""

    def advance(self, now_ms: int) -> list[dict[str, Any]]:
        """Catch every venue up with the clock; the exchange's fills of this step."""
        fills: list[dict[str, Any]] = []
        advance = getattr(self.exchange, "advance", None)
        if callable(advance):
            fills = list(advance(now_ms))
        if self.amm is not None:
            self.amm.advance(now_ms)
        if self.lending is not None:
            for event in self.lending.advance(now_ms):
                log.warning("lending liquidation: %s", event)
                self.liquidations.append(event)
        return fills

    def equity_by_venue(self, quote: str) -> dict[str, float]:
        values: dict[str, float] = {}
        equity = getattr(self.exchange, "equity", None)
        if callable(equity):
            values["exchange"] = float(equity())
        if self.amm is not None:
            values["amm"] = self.amm.equity(quote)
        if self.lending is not None:
            values["lending"] = self.lending.equity(quote)
        return values


@dataclass(frozen=True, slots=True)
class Execution:
    """What a venue did with one approved intent; `error` when it refused."""

    intent: Intent
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TickReport:
    time_ms: int
    observation: Observation
    verdicts: tuple[Verdict, ...]
    executions: tuple[Execution, ...]
    fills: tuple[Mapping[str, Any], ...]
    equity: float


class Agent:
    """Wires clock, feed, network, toolbox, policy, guard, venues and journal."""

    def __init__(
        self,
        *,
        clock: Clock,
        feed: Feed,
        network: InferenceSource,
        policy: Policy,
        guard: RiskGuard,
        toolbox: ToolBox,
        venues: Venues,
        symbols: Sequence[str],
        topics: Sequence[str] = (),
        quote: str = "USDT",
        timeframe: str = "1h",
        window: int = 256,
        journal: Journal | None = None,
        run_id: str | None = None,
        resumed: bool = False,
    ) -> None:
        """`resumed`: the run restarts after a stop or a crash; the first tick then journals the
        exchange's trades the journal may have missed (the journal ignores those it has)."""
        self.clock, self.feed, self.network = clock, feed, network
        self.policy, self.guard, self.toolbox, self.venues = policy, guard, toolbox, venues
        self.symbols, self.topics = tuple(symbols), tuple(topics)
        self.quote, self.timeframe, self.window = quote, timeframe, window
        self.journal, self.run_id = journal, run_id
        if journal is not None and run_id is None:
            raise DefaiError("a journaled agent needs the run id the journal opened")
        self._peak = -math.inf
        self._orders_sent = 0
        self._pending_exits: list[tuple[str, PlaceOrder]] = []  # entry order id, its intent
        if resumed and journal is not None and run_id is not None:
            self._pending_exits = [
                (order_id, PlaceOrder.model_validate(intent))
                for order_id, intent in journal.pending_exits(run_id)
            ]
        self._catch_up = resumed

    # ------------------------------------------------------------------ one tick

    def tick(self) -> TickReport:
        now = self.clock.now_ms()
        self._orders_sent = 0  # ids restart each tick: a re-run tick resends the same ids
        fills = self.venues.advance(now)
        if self._catch_up and self.venues.exchange is not None:
            fills = [*self.venues.exchange.fetch_my_trades(), *fills]
            self._catch_up = False
        self._place_exits(now)
        advance = getattr(self.network, "advance", None)  # cheaper than a Protocol check
        if callable(advance):
            advance(now, self.feed)
        observation = self.observe(now)
        proposals = self._decide(observation)
        review = self.guard.review(proposals, observation)
        executions = tuple(self._execute(a, now) for a in review.approved)
        transcript = list(getattr(self.policy, "last_transcript", None) or [])
        acted = any(not isinstance(e.intent, Hold) for e in executions)
        by_venue = (  # nothing moved since the observation: its valuation still holds
            self.venues.equity_by_venue(self.quote)
            if acted
            else dict(observation.portfolio.equity_by_venue)
        )
        equity = self._journal(now, review.verdicts, executions, fills, transcript, by_venue)
        return TickReport(now, observation, review.verdicts, executions, tuple(fills), equity)

    def run(self, until_ms: int, step_ms: int, set_time: Callable[[int], None]) -> list[TickReport]:
        """Tick every `step_ms` up to `until_ms`, moving a simulated clock with `set_time`."""
        reports = []
        now = self.clock.now_ms()
        while now <= until_ms:
            set_time(now)
            reports.append(self.tick())
            now += step_ms
        return reports

    def _decide(self, observation: Observation) -> list[object]:
        try:
            return self.policy.decide(observation, self.toolbox)
        except DefaiError as exc:  # a policy that fails this tick proposes nothing
            log.warning("policy failed at %d: %s", observation.time_ms, exc)
            return [Hold(reason=f"policy failed: {exc}")]

    # ------------------------------------------------------------------ observation

    def observe(self, now: int) -> Observation:
        candles = {
            s: self.feed.candles(s, self.timeframe, as_of=now, limit=self.window)
            for s in self.symbols
        }
        prices = {s: float(c.close[-1]) for s, c in candles.items() if len(c)}
        inferences = {}
        for topic in self.topics:
            try:
                inferences[topic] = self.network.latest(topic)
            except NetworkError as exc:  # missing: the guard blocks what depends on it
                log.info("no inference for %s: %s", topic, exc)
        portfolio = self.portfolio()
        return Observation(now, prices, portfolio, candles, inferences)

    def portfolio(self) -> Portfolio:
        balances: dict[str, Balance] = {}
        accounts: dict[str, dict[str, Balance]] = {}

        def add(account: str, asset: str, free: float, total: float) -> None:
            held = balances.get(asset, Balance(0.0, 0.0))
            balances[asset] = Balance(held.free + free, held.total + total)
            accounts.setdefault(account, {})[asset] = Balance(free, total)

        positions: list[Position] = []
        exchange = self.venues.exchange
        if exchange is not None:
            account = exchange.fetch_balance()
            for asset, total in (account.get("total") or {}).items():
                free = float(account["free"].get(asset) or 0.0)
                add(EXCHANGE, asset, free, float(total or 0.0))
            for p in exchange.fetch_positions():
                if not p.get("contracts"):
                    continue
                positions.append(
                    Position(
                        symbol=p["symbol"],
                        side=p["side"],
                        contracts=float(p["contracts"]),
                        entry_price=float(p["entryPrice"]),
                        mark_price=float(p["markPrice"]),
                        leverage=float(p["leverage"]),
                        liquidation_price=p.get("liquidationPrice"),
                        notional=float(p["notional"]),
                    )
                )
        lp: list[LPPosition] = []
        amm = self.venues.amm
        if amm is not None:
            for asset, amount in amm.balances().items():
                add(WALLET, asset, amount, amount)
            lp = [
                LPPosition(
                    v.id, v.pair, amm.fee_tier(v.pair), v.price_lower, v.price_upper, v.value
                )
                for v in amm.positions()
            ]
        lending = LendingAccount()
        market = self.venues.lending
        if market is not None:
            held = market.account()
            lending = LendingAccount(
                {
                    asset: Reserve(
                        supplied=held.supplied.get(asset, 0.0),
                        debt=held.borrowed.get(asset, 0.0),
                        price=market.price(asset),
                        ltv=config.ltv,
                        liquidation_threshold=config.liquidation_threshold,
                    )
                    for asset, config in market.reserves.items()
                }
            )
        by_venue = self.venues.equity_by_venue(self.quote)
        equity = sum(by_venue.values())
        self._peak = max(self._peak, equity)
        return Portfolio(
            self.quote,
            equity,
            self._peak,
            balances,
            tuple(positions),
            tuple(lp),
            lending,
            accounts,
            by_venue,
        )

    # ------------------------------------------------------------------ execution

    def _execute(self, approved: Approved, now: int) -> Execution:
        intent = require_approved(approved)
        try:
            return Execution(intent, self._dispatch(intent, now))
        except (DefaiError, ccxt.BaseError) as exc:
            log.warning("venue refused %s: %s", intent.kind, exc)
            return Execution(intent, error=f"{type(exc).__name__}: {exc}")

    def _dispatch(self, intent: Intent, now: int) -> Mapping[str, Any]:
        if isinstance(intent, Hold):
            return {}
        if isinstance(intent, PlaceOrder | CancelOrder):
            return self._order(intent, now)
        amm = self._need(self.venues.amm, "an AMM", intent)
        if isinstance(intent, Swap):
            assert intent.amount_in is not None  # resolved by the guard
            return _as_dict(
                amm.swap(intent.pair, intent.side, intent.amount_in, self._min_out(intent))
            )
        if isinstance(intent, OpenLPRange):
            return self._open_range(amm, intent)
        if isinstance(intent, CloseLPRange):
            burned = amm.burn(intent.position_id)
            if all(p.id != intent.position_id for p in amm.positions()):
                return {"burn": _as_dict(burned)}  # no fees owed: the burn closed it
            collected = amm.collect(intent.position_id)
            return {"burn": _as_dict(burned), "collect": _as_dict(collected)}
        lending = self._need(self.venues.lending, "a lending market", intent)
        amount = intent.amount
        assert amount is not None  # resolved by the guard
        if isinstance(intent, Supply):
            amm.transfer(intent.asset, -amount)
            try:
                return _as_dict(lending.supply(intent.asset, amount))
            except DefaiError:
                amm.transfer(intent.asset, amount)
                raise
        if isinstance(intent, Repay):
            amm.transfer(intent.asset, -amount)
            try:
                receipt = lending.repay(intent.asset, amount)
            except DefaiError:
                amm.transfer(intent.asset, amount)
                raise
            if receipt.amount < amount:  # more than was owed: the rest stays in the wallet
                amm.transfer(intent.asset, amount - receipt.amount)
            return _as_dict(receipt)
        action = lending.withdraw if isinstance(intent, Withdraw) else lending.borrow
        assert isinstance(intent, Withdraw | Borrow)
        receipt = action(intent.asset, amount)
        amm.transfer(intent.asset, receipt.amount)
        return _as_dict(receipt)

    def _order(self, intent: PlaceOrder | CancelOrder, now: int) -> Mapping[str, Any]:
        exchange = self._need(self.venues.exchange, "an exchange", intent)
        if isinstance(intent, CancelOrder):
            by_client = {"clientOrderId": intent.client_order_id} if intent.client_order_id else {}
            canceled: Mapping[str, Any] = exchange.cancel_order(
                intent.order_id or "", intent.symbol, by_client
            )
            return canceled
        symbol = intent.symbol
        if intent.leverage is not None and ":" not in symbol:
            symbol = f"{symbol}:{symbol.split('/')[1]}"
        setter = getattr(exchange, "set_leverage", None)
        if intent.leverage is not None and callable(setter):
            setter(intent.leverage, symbol)
        assert intent.amount is not None  # resolved by the guard
        params: dict[str, Any] = {"clientOrderId": intent.client_order_id or self._client_id(now)}
        if intent.reduce_only:
            params["reduceOnly"] = True
        order_type = "limit" if intent.price is not None else "market"
        if intent.order_type == "stop":
            params["triggerPrice"] = intent.trigger_price
        order = exchange.create_order(
            symbol, order_type, intent.side, intent.amount, intent.price, params
        )
        if intent.stop_loss is not None or intent.take_profit is not None:
            # exits protect what was bought: they go in once the entry has filled
            self._pending_exits.append(
                (str(order["id"]), intent.model_copy(update={"symbol": symbol}))
            )
        return {"order": order}

    def _place_exits(self, now: int) -> None:
        """Place the stop-loss / take-profit of entries that filled; drop those that never will."""
        exchange = self.venues.exchange
        waiting, self._pending_exits = self._pending_exits, []
        for order_id, entry in waiting:
            if exchange is None:
                continue
            order = exchange.fetch_order(order_id, entry.symbol)
            filled = float(order.get("filled") or 0.0)
            if order.get("status") == "open":
                self._pending_exits.append((order_id, entry))
            elif filled > 0:
                try:
                    self._exits(exchange, entry, filled, now)
                except (DefaiError, ccxt.BaseError) as exc:
                    log.warning("could not place the exits of %s: %s", order_id, exc)

    def _exits(self, exchange: Broker, entry: PlaceOrder, amount: float, now: int) -> None:
        symbol = entry.symbol
        exit_side = "sell" if entry.side == "buy" else "buy"
        for key, price in (
            ("stopLossPrice", entry.stop_loss),
            ("takeProfitPrice", entry.take_profit),
        ):
            if price is None:
                continue
            params: dict[str, Any] = {"clientOrderId": self._client_id(now)}
            if ":" in symbol:  # perpetual: a reduce-only exit of the position
                params.update({key: price, "reduceOnly": True})
            elif key == "stopLossPrice":  # spot: a stop on the holding
                params["triggerPrice"] = price
            spot_take_profit = key == "takeProfitPrice" and ":" not in symbol
            exchange.create_order(
                symbol,
                "limit" if spot_take_profit else "market",
                exit_side,
                amount,
                price if spot_take_profit else None,
                params,
            )

    def _client_id(self, now: int) -> str:
        """Deterministic per run, tick and position in the tick: a tick re-run after a crash
        resends the same ids, and the venue answers with the order it already has."""
        self._orders_sent += 1
        return f"{(self.run_id or 'run')[-12:]}-{now // 60_000}-{self._orders_sent}"

    def _min_out(self, swap: Swap) -> float:
        if swap.min_amount_out is not None:
            return swap.min_amount_out
        assert swap.amount_in is not None and swap.max_slippage is not None
        price = self._need(self.venues.amm, "an AMM", swap).price(swap.pair)
        expected = swap.amount_in * price if swap.side == "sell" else swap.amount_in / price
        return float(expected * (1 - swap.max_slippage))

    def _open_range(self, amm: PaperAMM, intent: OpenLPRange) -> Mapping[str, Any]:
        """Split the capital into the token amounts the range takes at the current price."""
        price = amm.price(intent.pair)
        unit0, unit1 = range_amounts(1.0, price, intent.lower_price, intent.upper_price)
        scale = intent.capital / (unit0 * price + unit1)
        return _as_dict(
            amm.mint(
                intent.pair,
                intent.lower_price,
                intent.upper_price,
                amount0_max=unit0 * scale,
                amount1_max=unit1 * scale,
            )
        )

    @staticmethod
    def _need(venue: Any, what: str, intent: Intent) -> Any:
        if venue is None:
            raise DefaiError(f"{intent.kind} needs {what}, and this agent has none")
        return venue

    # ------------------------------------------------------------------ journal

    def _journal(
        self,
        now: int,
        verdicts: Sequence[Verdict],
        executions: Sequence[Execution],
        fills: Sequence[Mapping[str, Any]],
        transcript: Sequence[Mapping[str, Any]],
        by_venue: dict[str, float],
    ) -> float:
        """Journal the tick (one transaction); the equity it ends with, valued `by_venue`."""
        equity = sum(by_venue.values())
        calls = self.toolbox.drain()
        if self.journal is None or self.run_id is None:
            return equity
        journal = self.journal
        with journal.transaction():
            tick = journal.tick(self.run_id, now)
            for entry in transcript:  # an LLM policy's conversation, replayable
                journal.llm_message(tick, **entry)
            for call in calls:
                journal.tool_call(
                    tick, call.tool, call.inputs, call.output, call.latency_ms, call.error
                )
            for verdict in verdicts:
                payload = verdict.intent if verdict.intent is not None else verdict.proposal
                intent_id = journal.intent(tick, payload)
                journal.verdict(
                    tick, intent_id, str(verdict.code), verdict.message, verdict.approved
                )
            for execution in executions:
                order = execution.result.get("order") if execution.result else None
                if isinstance(order, Mapping) and order.get("clientOrderId"):
                    journal.order(
                        tick, "exchange", order["clientOrderId"], order, order.get("status", "")
                    )
            for trade in fills:
                journal.fill(tick, "exchange", trade)
            journal.set_pending_exits(
                self.run_id,
                [(oid, entry.model_dump(mode="json")) for oid, entry in self._pending_exits],
            )
            journal.equity(tick, equity, by_venue)
        return equity


def _as_dict(receipt: Any) -> dict[str, Any]:
    fields = getattr(receipt, "__dataclass_fields__", None)
    if fields is None:
        return dict(receipt)
    return {name: getattr(receipt, name) for name in fields}


__all__ = ["Agent", "Execution", "TickReport", "Venues"]
