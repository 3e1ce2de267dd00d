"""RiskGuard: the one deterministic gate between any policy and any venue.

The guard trusts nothing it is handed. It re-parses every proposal (a tampered or hand-built
intent fails like bad JSON), computes amounts and notionals itself from the observation's prices
and balances, refuses NaN, missing or stale prices and inferences, and simulates the lending
account's health factor after a borrow or a withdrawal. Intents are reviewed in order and each
sees what the earlier approved ones already committed (balance, health factor, exposure, the
day's notional), so a batch cannot pass piecemeal what it could not pass whole.

It is pure: no I/O and no clock. Its state lives in the object and moves only with `review`'s
observations and the explicit switches: the notional used today (reset when an observation
falls on a later UTC day), the drawdown circuit breaker (latched until `reset()`), and the kill
switch (`kill()` / `revive()`). The optional human approver is the one callback it makes.

Only the guard makes `Approved` values; a venue executes nothing else (`require_approved`).
Limits, reason codes and an example: docs/risk_guard.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, assert_never

from pydantic import BaseModel, ConfigDict, Field

from defai.agent.intents import (
    Borrow,
    CancelOrder,
    CloseLPRange,
    Hold,
    Intent,
    LendingIntent,
    OpenLPRange,
    PlaceOrder,
    ReasonCode,
    Refusal,
    Repay,
    Supply,
    Swap,
    Verdict,
    Withdraw,
    account_of,
    account_summary,
    market_assets,
    parse_intent,
    resolve_amounts,
    usable_price,
)
from defai.agent.observation import LendingAccount, Observation, Portfolio
from defai.errors import RiskError

Approver = Callable[[Intent, Observation], bool]
LendingAction = Supply | Withdraw | Borrow | Repay
Trade = PlaceOrder | Swap | OpenLPRange | CloseLPRange | LendingAction

_DAY_MS = 86_400_000
_TOLERANCE = 1e-9  # relative: "100% of the USDC" divided by a price and back may gain an ulp

PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class RiskLimits(BaseModel):
    """The guard's limits. Money is in the portfolio's quote currency; None switches a check
    off. Defaults are deliberately small: raise them on purpose, not by accident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_notional_per_order: PositiveFinite = 1_000.0
    max_notional_per_day: PositiveFinite = 10_000.0
    max_leverage: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 3.0
    min_health_factor: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 1.5
    max_slippage: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.01
    allowed_symbols: frozenset[str] | None = None
    allowed_pools: frozenset[str] | None = None
    allowed_assets: frozenset[str] | None = None
    max_inference_age_ms: Annotated[int, Field(gt=0)] | None = None
    max_relative_ci_width: PositiveFinite | None = None
    max_ci_width: Mapping[str, PositiveFinite] = Field(default_factory=dict)
    max_price_age_ms: Annotated[int, Field(gt=0)] | None = None
    required_topics: Mapping[str, frozenset[str]] = Field(default_factory=dict)
    """Per market (symbol, pair, pool pair or lending asset): topics that must be present and
    fresh before any intent adds exposure there, whatever topics the intent itself names."""
    max_drawdown: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.2
    approval_threshold_notional: PositiveFinite | None = None


def _market(intent: Trade) -> str:
    match intent:
        case PlaceOrder(symbol=symbol) | Swap(pair=symbol) | OpenLPRange(pair=symbol):
            return symbol
        case LendingIntent(asset=asset):
            return asset
    return ""


_SEAL = object()


@dataclass(frozen=True, slots=True)
class Approved:
    """An intent the guard let through at `time_ms`, amounts resolved, worth `notional` in the
    portfolio's quote. Only RiskGuard.review can make one: the constructor checks a seal."""

    intent: Intent
    notional: float
    time_ms: int
    _seal: object = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise RiskError("only RiskGuard.review approves intents")


def require_approved(candidate: object) -> Intent:
    """What a venue calls before acting: the intent, if the guard approved it; else RiskError."""
    if isinstance(candidate, Approved) and getattr(candidate, "_seal", None) is _SEAL:
        return candidate.intent
    raise RiskError(f"refusing to execute {type(candidate).__name__}: not approved by RiskGuard")


@dataclass(frozen=True, slots=True)
class Review:
    """The outcome of one review: a verdict per proposal, in order, and the approvals."""

    approved: tuple[Approved, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def rejected(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if not verdict.approved]


def reduces_exposure(intent: Intent, portfolio: Portfolio) -> bool:
    """Whether an intent only takes risk off: what may still pass once the breaker has tripped.

    Reduce-only derivative orders, spot sales and swaps into the portfolio's quote currency,
    closing an LP range, repaying debt, and withdrawing from a lending account with no debt.
    """
    match intent:
        case CancelOrder() | Hold() | CloseLPRange() | Repay():
            return True
        case PlaceOrder():
            _, quote, settle = market_assets(intent.symbol)
            if settle is not None:
                return intent.reduce_only
            return intent.side == "sell" and quote == portfolio.quote
        case Swap():
            return intent.bought == portfolio.quote
        case Withdraw():
            return not portfolio.lending.has_debt
        case _:
            return False


@dataclass(slots=True)
class _Book:
    """What the approved intents of this review have committed so far; each intent is checked
    on a copy, which replaces the book only when the intent is approved."""

    free: dict[tuple[str, str], float]
    """(account, asset) -> free; one unnamed account when the portfolio has no accounts."""
    lending: LendingAccount
    notional_today: float
    added_exposure: float = 0.0
    reducing: dict[str, float] = field(default_factory=dict)  # contracts, by symbol
    closing: frozenset[int] = frozenset()  # LP position ids
    account: str = ""  # the account of the intent being checked: where spending comes from

    @classmethod
    def of(cls, portfolio: Portfolio, notional_today: float) -> _Book:
        accounts = portfolio.accounts or {"": portfolio.balances}
        free = {(name, a): b.free for name, held in accounts.items() for a, b in held.items()}
        return cls(free, portfolio.lending, notional_today)

    def for_intent(self, intent: Intent) -> _Book:
        """A trial copy spending from the intent's account (the only one without accounts)."""
        trial = self.copy()
        if any(name for name, _ in self.free):
            trial.account = account_of(intent)
        return trial

    def available(self, asset: str) -> float:
        return self.free.get((self.account, asset), 0.0)

    def copy(self) -> _Book:
        return _Book(
            dict(self.free),
            self.lending,
            self.notional_today,
            self.added_exposure,
            dict(self.reducing),
            self.closing,
        )

    def spend(self, asset: str, amount: float) -> None:
        available = self.available(asset)
        if not math.isfinite(available):
            raise Refusal(ReasonCode.NON_FINITE_INPUT, f"free {asset} balance is {available!r}")
        if not _within(amount, available):
            raise Refusal(
                ReasonCode.INSUFFICIENT_BALANCE,
                f"needs {amount:g} {asset}, {available:g} free (after earlier intents)",
            )
        self.free[(self.account, asset)] = max(available - amount, 0.0)


def _within(need: float, available: float) -> bool:
    """need <= available, forgiving rounding; False for NaN (every check fails closed)."""
    return need <= available * (1 + _TOLERANCE)


class RiskGuard:
    """Reviews intents against `limits`; `approve` is asked (with the resolved intent and the
    observation) about anything above `limits.approval_threshold_notional`."""

    def __init__(self, limits: RiskLimits | None = None, approve: Approver | None = None) -> None:
        self.limits = limits or RiskLimits()
        self._approve = approve
        self._killed = False
        self._halted = False
        self._peak: float | None = None
        self._trust_portfolio_peak = True
        self._day: int | None = None
        self._notional_today = 0.0

    @property
    def killed(self) -> bool:
        return self._killed

    @property
    def halted(self) -> bool:
        return self._halted

    @property
    def notional_today(self) -> float:
        """Exposure-adding notional approved since 00:00 UTC of the latest observation."""
        return self._notional_today

    def kill(self) -> None:
        """Stop everything but cancels, until `revive()`."""
        self._killed = True

    def revive(self) -> None:
        self._killed = False

    def reset(self) -> None:
        """Clear HALTED and measure drawdown afresh from the next observation's equity (the
        portfolio's own peak is ignored from now on, or the breaker would trip again at once)."""
        self._halted = False
        self._peak = None
        self._trust_portfolio_peak = False

    def review(self, proposals: Iterable[object], observation: Observation) -> Review:
        """A verdict for each proposal (an Intent or its JSON object), in order; never raises
        on bad proposals or a bad observation: they are refused with a reason code."""
        self._observe(observation)
        book = _Book.of(observation.portfolio, self._notional_today)
        approved: list[Approved] = []
        verdicts: list[Verdict] = []
        for proposal in proposals:
            intent = parse_intent(proposal)
            if isinstance(intent, Verdict):
                verdicts.append(intent)
                continue
            trial = book.for_intent(intent)
            try:
                resolved, notional = self._vet(intent, observation, trial)
            except Refusal as refusal:
                verdicts.append(Verdict(proposal, refusal.code, refusal.message, intent))
                continue
            book = trial
            approved.append(Approved(resolved, notional, observation.time_ms, _SEAL))
            message = f"approved, notional {notional:,.2f} {observation.portfolio.quote}"
            verdicts.append(Verdict(proposal, ReasonCode.APPROVED, message, resolved))
        self._notional_today = book.notional_today
        return Review(tuple(approved), tuple(verdicts))

    # -- state --------------------------------------------------------------------------------

    def _observe(self, observation: Observation) -> None:
        """Roll the day counter and watch the drawdown; a NaN equity latches nothing (each
        intent is refused for it instead)."""
        day = observation.time_ms // _DAY_MS
        if self._day is None or day > self._day:
            self._day, self._notional_today = day, 0.0
        portfolio = observation.portfolio
        equity = portfolio.equity
        if not math.isfinite(equity):
            return
        peaks = [equity] if self._peak is None else [equity, self._peak]
        if self._trust_portfolio_peak and math.isfinite(portfolio.peak_equity):
            peaks.append(portfolio.peak_equity)
        self._peak = max(peaks)
        if equity <= 0 or equity < self._peak * (1 - self.limits.max_drawdown):
            self._halted = True

    # -- one intent ---------------------------------------------------------------------------

    def _vet(self, intent: Intent, observation: Observation, book: _Book) -> tuple[Intent, float]:
        """The resolved intent and its notional, or a Refusal; updates `book` as it goes."""
        if isinstance(intent, CancelOrder | Hold):
            return intent, 0.0  # they move nothing: they pass even a kill switch
        if self._killed:
            raise Refusal(ReasonCode.KILL_SWITCH, "the kill switch is on: only cancels pass")
        portfolio = observation.portfolio
        if not math.isfinite(portfolio.equity):
            raise Refusal(ReasonCode.NON_FINITE_INPUT, f"equity is {portfolio.equity!r}")
        reducing = reduces_exposure(intent, portfolio)
        # a withdrawal against debt adds no market exposure: it is how a loop unwinds
        # (withdraw, sell, repay), so the breaker lets it through; the HF floor still applies
        unwinding = isinstance(intent, Withdraw)
        if self._halted and not (reducing or unwinding):
            raise Refusal(
                ReasonCode.HALTED,
                f"drawdown breaker tripped (equity {portfolio.equity:,.2f}, peak "
                f"{self._peak or 0:,.2f}, limit {self.limits.max_drawdown:.0%}): only cancels "
                "and exposure-reducing intents pass until reset()",
            )
        self._check_allowed(intent)
        self._check_inferences(intent, observation, reducing)
        resolved, notional = self._size(intent, observation, book)
        if not math.isfinite(notional):
            raise Refusal(ReasonCode.NON_FINITE_INPUT, f"notional is {notional!r}")
        if not reducing:
            self._check_notional(notional, book, portfolio.quote)
        self._check_approval(resolved, notional, observation)
        return resolved, notional

    def _check_allowed(self, intent: Trade) -> None:
        limits = self.limits
        match intent:
            case PlaceOrder(symbol=symbol) | Swap(pair=symbol):
                if limits.allowed_symbols is not None and symbol not in limits.allowed_symbols:
                    raise Refusal(ReasonCode.UNKNOWN_SYMBOL, f"{symbol} is not allow-listed")
            case OpenLPRange():
                names = {intent.pair, intent.pool}
                if limits.allowed_pools is not None and not names & limits.allowed_pools:
                    raise Refusal(
                        ReasonCode.UNKNOWN_POOL, f"pool {intent.pool} is not allow-listed"
                    )
            case LendingIntent(asset=asset):
                if limits.allowed_assets is not None and asset not in limits.allowed_assets:
                    raise Refusal(ReasonCode.UNKNOWN_SYMBOL, f"asset {asset} is not allow-listed")

    def _check_inferences(self, intent: Trade, observation: Observation, reducing: bool) -> None:
        """Every topic the intent relies on — those it names, and for an intent adding exposure
        those `required_topics` lists for its market — was fetched this tick, is finite, fresh
        and narrow. An exit never waits for the network."""
        required = () if reducing else self.limits.required_topics.get(_market(intent), ())
        for topic in dict.fromkeys([*intent.topics, *sorted(required)]):
            inference = observation.inferences.get(topic)
            if inference is None:
                raise Refusal(ReasonCode.MISSING_INFERENCE, f"no inference of topic {topic!r}")
            numbers = (inference.value, *inference.ci_values)
            if not all(math.isfinite(x) for x in numbers):
                raise Refusal(
                    ReasonCode.NON_FINITE_INPUT, f"topic {topic!r}: non-finite inference {numbers}"
                )
            max_age = self._max_age_ms(inference.extra)
            if max_age is None:
                raise Refusal(
                    ReasonCode.STALE_INFERENCE,
                    f"topic {topic!r}: freshness unknown (the inference states no max_age_ms and "
                    "max_inference_age_ms is not set)",
                )
            age = inference.age_ms(observation.time_ms)
            if age < 0 or inference.is_stale(observation.time_ms, max_age):
                raise Refusal(
                    ReasonCode.STALE_INFERENCE,
                    f"topic {topic!r}: inference is {age / 1000:g}s old, allowed 0-"
                    f"{max_age / 1000:g}s",
                )
            self._check_confidence(topic, inference.value, inference.ci_values)

    def _max_age_ms(self, extra: Mapping[str, object]) -> int | None:
        """The configured limit, else the network's own (the topic's epoch)."""
        if self.limits.max_inference_age_ms is not None:
            return self.limits.max_inference_age_ms
        stated = extra.get("max_age_ms")
        if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0:
            return stated
        return None

    def _check_confidence(self, topic: str, value: float, ci_values: tuple[float, ...]) -> None:
        """The CI's full width (highest minus lowest value reported) against the topic's own
        limit, else against max_relative_ci_width x |value|."""
        absolute = self.limits.max_ci_width.get(topic)
        relative = self.limits.max_relative_ci_width
        if absolute is not None:
            allowed = absolute
        elif relative is not None:
            allowed = relative * abs(value)
        else:
            return
        if not ci_values:
            raise Refusal(ReasonCode.LOW_CONFIDENCE, f"topic {topic!r}: no confidence interval")
        width = max(ci_values) - min(ci_values)
        if not width <= allowed:
            raise Refusal(
                ReasonCode.LOW_CONFIDENCE,
                f"topic {topic!r}: confidence interval {width:g} wide, allowed {allowed:g}",
            )

    def _price(self, observation: Observation, symbol: str) -> float:
        """A finite positive price whose candle (when the observation has one) is recent."""
        price = usable_price(observation.prices, symbol)
        window = observation.candles.get(symbol)
        if window is not None and len(window):
            age = observation.time_ms - int(window.close_ts[-1])
            max_age = self.limits.max_price_age_ms or window.period_ms
            if not 0 <= age <= max_age:
                raise Refusal(
                    ReasonCode.STALE_PRICE,
                    f"{symbol}: last candle closed {age / 1000:g}s ago, allowed 0-"
                    f"{max_age / 1000:g}s",
                )
        return price

    def _in_quote(self, observation: Observation, asset: str) -> float:
        """Value of one unit of `asset` in the portfolio's quote currency."""
        quote = observation.portfolio.quote
        return 1.0 if asset == quote else self._price(observation, f"{asset}/{quote}")

    # -- sizing: amounts, balances, leverage, slippage, health factor -------------------------

    def _size(self, intent: Trade, observation: Observation, book: _Book) -> tuple[Intent, float]:
        match intent:
            case PlaceOrder():
                return self._order(intent, observation, book)
            case Swap():
                return self._swap(intent, observation, book)
            case OpenLPRange():
                return self._open_lp(intent, observation, book)
            case CloseLPRange():
                return self._close_lp(intent, observation, book)
            case Supply() | Withdraw() | Borrow() | Repay():
                return self._lending(intent, observation, book)
            case _:
                assert_never(intent)

    def _order(
        self, intent: PlaceOrder, observation: Observation, book: _Book
    ) -> tuple[Intent, float]:
        base, quote, settle = market_assets(intent.symbol)
        market = self._price(observation, intent.symbol)
        order = resolve_amounts(intent, observation.portfolio, {intent.symbol: market})
        amount = order.resolved_amount
        fill_price = order.stated_price or market
        notional = amount * max(market, fill_price) * self._in_quote(observation, quote)
        max_leverage = self.limits.max_leverage
        if order.leverage is not None and not order.leverage <= max_leverage:
            raise Refusal(
                ReasonCode.MAX_LEVERAGE, f"leverage {order.leverage:g}x, allowed {max_leverage:g}x"
            )
        if settle is None and order.side == "buy":
            book.spend(quote, amount * fill_price)
        elif settle is None:
            book.spend(base, amount)
        elif order.reduce_only:
            self._reduce(order, observation.portfolio, book, amount)
        else:
            book.spend(settle, amount * fill_price / (order.leverage or 1.0))
            self._check_account_leverage(observation, book, notional)
        return order, notional

    def _reduce(self, order: PlaceOrder, portfolio: Portfolio, book: _Book, amount: float) -> None:
        closing = "long" if order.side == "sell" else "short"
        position = portfolio.position(order.symbol)
        held = position.contracts if position is not None and position.side == closing else 0.0
        left = held - book.reducing.get(order.symbol, 0.0)
        if not _within(amount, left):
            raise Refusal(
                ReasonCode.INSUFFICIENT_BALANCE,
                f"reduce-only {amount:g} exceeds the {closing} {order.symbol} position left "
                f"({left:g})",
            )
        book.reducing[order.symbol] = book.reducing.get(order.symbol, 0.0) + amount

    def _check_account_leverage(
        self, observation: Observation, book: _Book, notional: float
    ) -> None:
        """Gross derivative exposure over equity, after this order and the batch's earlier ones."""
        existing = 0.0
        for position in observation.portfolio.positions:
            _, quote, _ = market_assets(position.symbol)
            existing += abs(position.notional) * self._in_quote(observation, quote)
        exposure = existing + book.added_exposure + notional
        equity = observation.portfolio.equity
        if not exposure <= self.limits.max_leverage * equity:
            raise Refusal(
                ReasonCode.MAX_LEVERAGE,
                f"derivative exposure {exposure:,.2f} on equity {equity:,.2f} exceeds "
                f"{self.limits.max_leverage:g}x",
            )
        book.added_exposure += notional

    def _swap(self, intent: Swap, observation: Observation, book: _Book) -> tuple[Intent, float]:
        _, quote, _ = market_assets(intent.pair)
        price = self._price(observation, intent.pair)
        swap = resolve_amounts(intent, observation.portfolio, {intent.pair: price})
        amount_in = swap.resolved_amount
        if not swap.min_amount_out:
            raise Refusal(
                ReasonCode.ZERO_MIN_OUTPUT,
                "a swap with no minimum output can be sandwiched for all of it: give "
                "min_amount_out or max_slippage",
            )
        limit = self.limits.max_slippage
        if swap.max_slippage is not None and not swap.max_slippage <= limit:
            raise Refusal(
                ReasonCode.MAX_SLIPPAGE,
                f"max_slippage {swap.max_slippage:.2%}, allowed {limit:.2%}",
            )
        expected = swap.output_at(price)
        if not (math.isfinite(expected) and expected > 0):
            raise Refusal(ReasonCode.NON_FINITE_INPUT, f"expected output is {expected!r}")
        if not _within(expected * (1 - limit), swap.min_amount_out):
            raise Refusal(
                ReasonCode.MAX_SLIPPAGE,
                f"min_amount_out {swap.min_amount_out:g} tolerates "
                f"{1 - swap.min_amount_out / expected:.2%} below the expected {expected:g}, "
                f"allowed {limit:.2%}",
            )
        book.spend(swap.sold, amount_in)
        in_quote = amount_in * price if swap.side == "sell" else amount_in
        return swap, in_quote * self._in_quote(observation, quote)

    def _open_lp(
        self, intent: OpenLPRange, observation: Observation, book: _Book
    ) -> tuple[Intent, float]:
        """Funded from the free quote first, the rest from the base at the observed price."""
        base, quote, _ = market_assets(intent.pair)
        price = self._price(observation, intent.pair)
        from_quote = min(intent.capital, book.available(quote))
        book.spend(quote, from_quote)
        if from_quote < intent.capital:
            book.spend(base, (intent.capital - from_quote) / price)
        return intent, intent.capital * self._in_quote(observation, quote)

    def _close_lp(
        self, intent: CloseLPRange, observation: Observation, book: _Book
    ) -> tuple[Intent, float]:
        position = observation.portfolio.lp_position(intent.position_id)
        if position is None or intent.position_id in book.closing:
            raise Refusal(
                ReasonCode.INVALID_INTENT,
                f"no open LP position {intent.position_id} (or an earlier intent closes it)",
            )
        if not (math.isfinite(position.value) and position.value >= 0):
            raise Refusal(ReasonCode.NON_FINITE_INPUT, f"LP position value is {position.value!r}")
        book.closing |= {intent.position_id}
        return intent, position.value

    def _lending(
        self, intent: LendingAction, observation: Observation, book: _Book
    ) -> tuple[Intent, float]:
        asset = intent.asset
        reserve = book.lending.reserves.get(asset)
        if reserve is None:
            raise Refusal(ReasonCode.UNKNOWN_SYMBOL, f"the lending market lists no {asset} reserve")
        price = usable_price({asset: reserve.price}, asset)
        before = account_summary(book.lending)
        action = resolve_amounts(intent, observation.portfolio)
        amount = action.resolved_amount
        match action:
            case Supply():
                book.spend(asset, amount)
                after = book.lending.with_change(asset, supplied=amount)
            case Repay():
                if not _within(amount, reserve.debt):
                    raise Refusal(
                        ReasonCode.INSUFFICIENT_BALANCE,
                        f"repays {amount:g} {asset}, the debt is {reserve.debt:g}",
                    )
                book.spend(asset, amount)
                after = book.lending.with_change(asset, debt=-min(amount, reserve.debt))
            case Withdraw():
                if not _within(amount, reserve.supplied):
                    raise Refusal(
                        ReasonCode.INSUFFICIENT_BALANCE,
                        f"withdraws {amount:g} {asset}, {reserve.supplied:g} supplied",
                    )
                after = book.lending.with_change(asset, supplied=-min(amount, reserve.supplied))
            case Borrow():
                if not _within(amount * price, before.available_borrows):
                    raise Refusal(
                        ReasonCode.INSUFFICIENT_BALANCE,
                        f"borrows {amount * price:,.2f} of value, borrowing power is "
                        f"{before.available_borrows:,.2f}",
                    )
                after = book.lending.with_change(asset, debt=amount)
            case _:
                assert_never(action)
        if isinstance(action, Withdraw | Borrow):
            self._check_health(action, before.health_factor, after)
        book.lending = after
        return action, amount * price

    def _check_health(
        self, action: Withdraw | Borrow, before: float, after: LendingAccount
    ) -> None:
        """A borrow or a withdrawal must leave the simulated health factor above the floor."""
        health = account_summary(after).health_factor
        floor = self.limits.min_health_factor
        if not health >= floor:
            raise Refusal(
                ReasonCode.MIN_HEALTH_FACTOR,
                f"health factor after this {action.kind} would be {health:.3f} (now "
                f"{before:.3f}), below the floor {floor:g}",
            )

    # -- notional and approval ----------------------------------------------------------------

    def _check_notional(self, notional: float, book: _Book, quote: str) -> None:
        """Both caps bound the exposure an agent can ADD; taking risk off is never capped."""
        per_order = self.limits.max_notional_per_order
        if not notional <= per_order:
            raise Refusal(
                ReasonCode.MAX_NOTIONAL_ORDER,
                f"notional {notional:,.2f} {quote} exceeds {per_order:,.2f} per order",
            )
        per_day = self.limits.max_notional_per_day
        if not book.notional_today + notional <= per_day:
            raise Refusal(
                ReasonCode.MAX_NOTIONAL_DAY,
                f"notional {notional:,.2f} {quote} on top of {book.notional_today:,.2f} today "
                f"exceeds {per_day:,.2f} per UTC day",
            )
        book.notional_today += notional

    def _check_approval(self, intent: Intent, notional: float, observation: Observation) -> None:
        threshold = self.limits.approval_threshold_notional
        if threshold is None or notional <= threshold:
            return
        if self._approve is None:
            raise Refusal(
                ReasonCode.APPROVAL_DENIED,
                f"notional {notional:,.2f} needs human approval above {threshold:,.2f} and no "
                "approver is configured",
            )
        try:
            granted = self._approve(intent, observation) is True
        except Exception as exc:  # the approver is user code: its failure is a "no"
            raise Refusal(ReasonCode.APPROVAL_DENIED, f"the approver failed: {exc!r}") from None
        if not granted:
            raise Refusal(ReasonCode.APPROVAL_DENIED, "the approver said no")
