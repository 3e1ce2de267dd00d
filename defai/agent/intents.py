"""Intents: the only actions a policy can ask for, as validated, frozen, venue-agnostic values.

A policy (strategy code or an LLM) proposes intents; the RiskGuard reviews them; venues execute
only what the guard approved. Amounts are computed by code, never by the policy: a policy may say
"half" (`amount_fraction=0.5`) and `resolve_amounts` takes that half of the balance of the asset
that LEAVES the account (an Eliza agent once swapped "half my USDC" as half its ETH balance).

The models forbid unknown fields and there is no transfer intent, so a model's JSON asking to
"send funds to 0x..." can only fail validation. `parse_intents` turns any untrusted payload into
intents and INVALID_INTENT verdicts with readable messages, and never raises.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from defai.agent.observation import LendingAccount, Portfolio
from defai.defi.lending import AccountData
from defai.defi.uniswap_v3 import FEE_TIER_TICK_SPACING
from defai.errors import ProtocolMathError, RiskError


class ReasonCode(StrEnum):
    """Why the guard let an intent through or not; stable strings for journals and dashboards."""

    APPROVED = "APPROVED"
    INVALID_INTENT = "INVALID_INTENT"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    UNKNOWN_POOL = "UNKNOWN_POOL"
    MAX_NOTIONAL_ORDER = "MAX_NOTIONAL_ORDER"
    MAX_NOTIONAL_DAY = "MAX_NOTIONAL_DAY"
    MAX_LEVERAGE = "MAX_LEVERAGE"
    MIN_HEALTH_FACTOR = "MIN_HEALTH_FACTOR"
    MAX_SLIPPAGE = "MAX_SLIPPAGE"
    ZERO_MIN_OUTPUT = "ZERO_MIN_OUTPUT"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    STALE_INFERENCE = "STALE_INFERENCE"
    MISSING_INFERENCE = "MISSING_INFERENCE"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    STALE_PRICE = "STALE_PRICE"
    HALTED = "HALTED"
    KILL_SWITCH = "KILL_SWITCH"
    APPROVAL_DENIED = "APPROVAL_DENIED"
    NON_FINITE_INPUT = "NON_FINITE_INPUT"


class Refusal(RiskError):
    """An intent cannot go ahead, with the reason code the guard reports it under."""

    def __init__(self, code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- field types -------------------------------------------------------------------------------

_TICKER = r"[A-Za-z0-9._-]{1,20}"  # a ticker, never a 42-character contract address

Asset = Annotated[
    str, Field(pattern=rf"^{_TICKER}$", description="Asset ticker as the venue names it: 'USDC'.")
]
Pair = Annotated[
    str, Field(pattern=rf"^{_TICKER}/{_TICKER}$", description="Spot pair BASE/QUOTE: 'ETH/USDC'.")
]
Symbol = Annotated[
    str,
    Field(
        pattern=rf"^{_TICKER}/{_TICKER}(:{_TICKER})?$",
        description="ccxt symbol: 'ETH/USDT' (spot) or 'ETH/USDT:USDT' (linear perpetual).",
    ),
]
Amount = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
Fraction = Annotated[
    float,
    Field(
        strict=True,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="Share (0, 1] of the balance of the asset that leaves the account.",
    ),
]
Slippage = Annotated[float, Field(strict=True, gt=0, lt=1, allow_inf_nan=False)]
Leverage = Annotated[float, Field(strict=True, ge=1, le=125, allow_inf_nan=False)]
OrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_:.-]{1,64}$")]
ClientOrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,36}$")]
Topic = Annotated[str, Field(min_length=1, max_length=200)]


def market_assets(symbol: str) -> tuple[str, str, str | None]:
    """'ETH/USDT:USDT' -> ('ETH', 'USDT', 'USDT'); spot symbols have no settle currency."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return base, quote, settle or None


def _exactly_one(model: BaseModel, first: str, second: str) -> None:
    given = (getattr(model, first) is not None) + (getattr(model, second) is not None)
    if given != 1:
        raise ValueError(f"give exactly one of {first} and {second}")


def _unresolved(intent: BaseModel) -> RiskError:
    """Executing a fraction would let the venue do the arithmetic: resolve_amounts first."""
    return RiskError(f"{type(intent).__name__}: amount_fraction is not resolved into an amount")


# --- intents -----------------------------------------------------------------------------------


class BaseIntent(BaseModel):
    """What every intent carries. Frozen, no unknown fields, revalidated whenever it is parsed
    again (the guard re-parses everything, so a tampered instance fails there)."""

    model_config = ConfigDict(frozen=True, extra="forbid", revalidate_instances="always")

    reason: str = Field(default="", max_length=2000, description="The policy's why, journaled.")
    topics: tuple[Topic, ...] = Field(
        default=(),
        max_length=16,
        description="Network topics the intent relies on; each must be fresh and confident.",
    )


class PlaceOrder(BaseIntent):
    """An exchange order. `amount` is in base units (contracts of one base unit for linear
    perpetuals); a fraction is of the quote balance for a spot buy, of the base balance for a
    spot sell, of the settle balance as margin (times leverage) for a derivative, and of the
    open position for a reduce-only order."""

    kind: Literal["place_order"] = "place_order"
    symbol: Symbol
    side: Literal["buy", "sell"]
    order_type: Literal["market", "limit", "stop"] = "market"
    amount: Amount | None = None
    amount_fraction: Fraction | None = None
    price: Amount | None = Field(default=None, description="Limit price (limit, stop-limit).")
    trigger_price: Amount | None = Field(default=None, description="Stop orders' trigger.")
    stop_loss: Amount | None = None
    take_profit: Amount | None = None
    reduce_only: bool = Field(default=False, strict=True)
    leverage: Leverage | None = None
    client_order_id: ClientOrderId | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PlaceOrder:
        _exactly_one(self, "amount", "amount_fraction")
        if self.order_type == "limit" and self.price is None:
            raise ValueError("a limit order needs a price")
        if self.order_type == "market" and self.price is not None:
            raise ValueError("a market order takes no price: use order_type 'limit'")
        if (self.order_type == "stop") != (self.trigger_price is not None):
            raise ValueError("trigger_price is required by, and only by, stop orders")
        _, quote, settle = market_assets(self.symbol)
        if settle is None and (self.leverage is not None or self.reduce_only):
            raise ValueError("leverage and reduce_only apply to derivatives (BASE/QUOTE:SETTLE)")
        if settle is not None and settle != quote:
            raise ValueError(f"only linear derivatives (settled in {quote}) are supported")
        if self.stop_loss is not None and self.take_profit is not None:
            low, high = (
                (self.stop_loss, self.take_profit)
                if self.side == "buy"
                else (self.take_profit, self.stop_loss)
            )
            if not low < high:
                raise ValueError(f"{self.side}: stop_loss and take_profit are the wrong way round")
        return self

    @property
    def derivative(self) -> bool:
        return ":" in self.symbol

    @property
    def stated_price(self) -> float | None:
        """The price the order names (limit, else trigger); None for a market order."""
        return self.price if self.price is not None else self.trigger_price

    @property
    def resolved_amount(self) -> float:
        if self.amount is None:
            raise _unresolved(self)
        return self.amount


class CancelOrder(BaseIntent):
    """Cancel one open order, by the exchange's id or by our client order id."""

    kind: Literal["cancel_order"] = "cancel_order"
    symbol: Symbol
    order_id: OrderId | None = None
    client_order_id: ClientOrderId | None = None

    @model_validator(mode="after")
    def _one_id(self) -> CancelOrder:
        _exactly_one(self, "order_id", "client_order_id")
        return self


class Swap(BaseIntent):
    """An AMM swap on `pair`: 'sell' sells `amount_in` of base, 'buy' sells `amount_in` of quote.

    Give `min_amount_out`, or `max_slippage` and let code derive the floor from the
    observation's price; a swap with neither (or a floor of 0) is refused."""

    kind: Literal["swap"] = "swap"
    pair: Pair
    side: Literal["buy", "sell"]
    amount_in: Amount | None = None
    amount_fraction: Fraction | None = None
    min_amount_out: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)] | None = None
    max_slippage: Slippage | None = None

    @model_validator(mode="after")
    def _one_size(self) -> Swap:
        _exactly_one(self, "amount_in", "amount_fraction")
        return self

    @property
    def sold(self) -> str:
        base, quote, _ = market_assets(self.pair)
        return base if self.side == "sell" else quote

    @property
    def bought(self) -> str:
        base, quote, _ = market_assets(self.pair)
        return quote if self.side == "sell" else base

    @property
    def resolved_amount(self) -> float:
        if self.amount_in is None:
            raise _unresolved(self)
        return self.amount_in

    def output_at(self, price: float) -> float:
        """What the swap returns at `price` (quote per base) before fees and price impact."""
        amount_in = self.resolved_amount
        return amount_in * price if self.side == "sell" else amount_in / price


class OpenLPRange(BaseIntent):
    """Provide liquidity between two prices (quote per base) with `capital` worth of quote."""

    kind: Literal["open_lp_range"] = "open_lp_range"
    pair: Pair
    fee_tier: int = Field(strict=True, description="Uniswap v3 fee in pips: 100, 500, 3000...")
    lower_price: Amount
    upper_price: Amount
    capital: Amount

    @model_validator(mode="after")
    def _range(self) -> OpenLPRange:
        if self.fee_tier not in FEE_TIER_TICK_SPACING:
            raise ValueError(f"fee_tier must be one of {sorted(FEE_TIER_TICK_SPACING)}")
        if not self.lower_price < self.upper_price:
            raise ValueError("lower_price must be below upper_price")
        return self

    @property
    def pool(self) -> str:
        """The pool's name in allow-lists: 'ETH/USDC@500'."""
        return f"{self.pair}@{self.fee_tier}"


class CloseLPRange(BaseIntent):
    """Withdraw all the liquidity of one position (and its fees)."""

    kind: Literal["close_lp_range"] = "close_lp_range"
    position_id: int = Field(strict=True, ge=0)


class LendingIntent(BaseIntent):
    """An action on one reserve of the lending market, in tokens of `asset`.

    A fraction is of the free wallet balance (supply), of what is supplied (withdraw), of the
    borrowing power (borrow) or of the debt (repay): always of what the action moves."""

    asset: Asset
    amount: Amount | None = None
    amount_fraction: Fraction | None = None

    @model_validator(mode="after")
    def _one_size(self) -> LendingIntent:
        _exactly_one(self, "amount", "amount_fraction")
        return self

    @property
    def resolved_amount(self) -> float:
        if self.amount is None:
            raise _unresolved(self)
        return self.amount


class Supply(LendingIntent):
    kind: Literal["supply"] = "supply"


class Withdraw(LendingIntent):
    kind: Literal["withdraw"] = "withdraw"


class Borrow(LendingIntent):
    kind: Literal["borrow"] = "borrow"


class Repay(LendingIntent):
    kind: Literal["repay"] = "repay"


class Hold(BaseIntent):
    """Deliberately do nothing this tick (journaled with its reason)."""

    kind: Literal["hold"] = "hold"


Intent: TypeAlias = Annotated[
    PlaceOrder
    | CancelOrder
    | Swap
    | OpenLPRange
    | CloseLPRange
    | Supply
    | Withdraw
    | Borrow
    | Repay
    | Hold,
    Field(discriminator="kind"),
]
IntentT = TypeVar("IntentT", bound=BaseIntent)

_INTENT = TypeAdapter[Intent](Intent)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard's answer to one proposal: `proposal` as given, `intent` as validated (None when
    it never validated; amounts resolved when approved)."""

    proposal: object
    code: ReasonCode
    message: str
    intent: Intent | None = None

    @property
    def approved(self) -> bool:
        return self.code is ReasonCode.APPROVED


# --- parsing untrusted payloads ----------------------------------------------------------------


def _describe(error: ValidationError) -> str:
    """Every broken rule with where it is, short enough for a model to read and fix."""
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if where and item["type"] != "missing":
            message += f" (got {repr(item['input'])[:60]})"
        problems.append(f"{where}: {message}" if where else message)
    return "invalid intent: " + "; ".join(problems)


EXCHANGE = "exchange"
WALLET = "wallet"


def account_of(intent: BaseIntent) -> str:
    """The account an intent spends from: orders from the exchange, the rest on-chain."""
    return EXCHANGE if isinstance(intent, PlaceOrder | CancelOrder) else WALLET


def parse_intent(proposal: object) -> Intent | Verdict:
    """One proposal (an intent, or a JSON object as a dict) validated afresh, or why not."""
    try:
        return _INTENT.validate_python(proposal)
    except ValidationError as error:
        return Verdict(proposal, ReasonCode.INVALID_INTENT, _describe(error))


def parse_intents(payload: object) -> tuple[list[Intent], list[Verdict]]:
    """A JSON text, a list of objects or one object -> (intents, INVALID_INTENT verdicts).

    Each item stands alone: one malformed intent does not sink the others. Never raises.
    """
    if isinstance(payload, str | bytes | bytearray):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            return [], [Verdict(payload, ReasonCode.INVALID_INTENT, f"not JSON: {exc}")]
    items = payload if isinstance(payload, list | tuple) else [payload]
    intents: list[Intent] = []
    rejected: list[Verdict] = []
    for item in items:
        parsed = parse_intent(item)
        if isinstance(parsed, Verdict):
            rejected.append(parsed)
        else:
            intents.append(parsed)
    return intents, rejected


# --- amounts -----------------------------------------------------------------------------------


def usable_price(prices: Mapping[str, float], symbol: str) -> float:
    """The price of `symbol`, refused unless finite and > 0: nothing is sized on a NaN."""
    price = prices.get(symbol)
    if price is None:
        raise Refusal(ReasonCode.NON_FINITE_INPUT, f"no price for {symbol} in the observation")
    if not (math.isfinite(price) and price > 0):
        raise Refusal(ReasonCode.NON_FINITE_INPUT, f"{symbol}: price {price!r} is not usable")
    return price


def account_summary(account: LendingAccount) -> AccountData:
    """The lending account's totals and health factor, refused when its data is malformed."""
    try:
        return account.summary()
    except ProtocolMathError as exc:
        raise Refusal(ReasonCode.NON_FINITE_INPUT, f"lending account unusable: {exc}") from None


def _share(fraction: float, available: float, what: str) -> float:
    if not (math.isfinite(available) and available >= 0):
        raise Refusal(ReasonCode.NON_FINITE_INPUT, f"{what} is {available!r}: nothing to size from")
    amount = fraction * available
    if not amount > 0:
        raise Refusal(
            ReasonCode.INSUFFICIENT_BALANCE, f"{fraction:g} of {what} ({available:g}) is nothing"
        )
    return amount


def _fraction_base(
    intent: PlaceOrder | LendingIntent, portfolio: Portfolio, prices: Mapping[str, float]
) -> tuple[float, str]:
    """What a fraction is OF, in the units of the intent's amount, and how to say so."""
    if isinstance(intent, LendingIntent):
        return _lending_base(intent, portfolio)
    base, quote, settle = market_assets(intent.symbol)
    if intent.reduce_only:
        closing = "long" if intent.side == "sell" else "short"
        position = portfolio.position(intent.symbol)
        held = position.contracts if position is not None and position.side == closing else 0.0
        return held, f"the {closing} {intent.symbol} position"
    if intent.side == "sell" and settle is None:
        return portfolio.free(base, EXCHANGE), f"the free {base} balance"
    price = intent.stated_price or usable_price(prices, intent.symbol)
    if settle is None:
        return portfolio.free(
            quote, EXCHANGE
        ) / price, f"the free {quote} balance (in {base} at {price:g})"
    leverage = intent.leverage or 1.0
    return (
        portfolio.free(settle, EXCHANGE) * leverage / price,
        f"the free {settle} margin x{leverage:g} (in {base} at {price:g})",
    )


def _lending_base(intent: LendingIntent, portfolio: Portfolio) -> tuple[float, str]:
    if isinstance(intent, Supply):
        return portfolio.free(intent.asset, WALLET), f"the free {intent.asset} balance"
    lending = portfolio.lending
    reserve = lending.reserves.get(intent.asset)
    if reserve is None:
        raise Refusal(
            ReasonCode.UNKNOWN_SYMBOL, f"the lending market lists no {intent.asset} reserve"
        )
    if isinstance(intent, Withdraw):
        return reserve.supplied, f"the supplied {intent.asset}"
    if isinstance(intent, Repay):
        return reserve.debt, f"the {intent.asset} debt"
    available = account_summary(lending).available_borrows
    price = usable_price({intent.asset: reserve.price}, intent.asset)
    return available / price, f"the borrowing power (in {intent.asset} at {price:g})"


def _with(intent: IntentT, **changes: float | None) -> IntentT:
    try:
        return intent.model_validate({**intent.model_dump(), **changes})
    except ValidationError as error:
        raise Refusal(
            ReasonCode.NON_FINITE_INPUT, f"computed amounts out of range: {_describe(error)}"
        ) from None


def resolve_amounts(
    intent: IntentT, portfolio: Portfolio, prices: Mapping[str, float] | None = None
) -> IntentT:
    """Fractions -> absolute amounts from the balance of what leaves the account, and a swap's
    minimum output from its slippage tolerance at the observed price. Code does this arithmetic,
    never the policy. `prices` (symbol -> last price) is needed to size a buy by a fraction of
    the quote and to derive a swap's floor. Raises Refusal when there is nothing to size from.
    """
    prices = prices or {}
    if isinstance(intent, Swap):
        changes: dict[str, float | None] = {}
        if intent.amount_fraction is not None:
            sold = f"the free {intent.sold} balance"
            changes = {
                "amount_in": _share(
                    intent.amount_fraction, portfolio.free(intent.sold, WALLET), sold
                ),
                "amount_fraction": None,
            }
        swap = _with(intent, **changes)
        if swap.min_amount_out is None and swap.max_slippage is not None:
            expected = swap.output_at(usable_price(prices, swap.pair))
            swap = _with(swap, min_amount_out=expected * (1 - swap.max_slippage))
        return swap
    if isinstance(intent, PlaceOrder | LendingIntent) and intent.amount_fraction is not None:
        available, what = _fraction_base(intent, portfolio, prices)
        amount = _share(intent.amount_fraction, available, what)
        return _with(intent, amount=amount, amount_fraction=None)
    return intent
