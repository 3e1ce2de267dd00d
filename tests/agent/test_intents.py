"""Intents: untrusted payloads validated, amounts computed by code from the right balance."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from defai.agent.intents import (
    Borrow,
    CancelOrder,
    CloseLPRange,
    Hold,
    OpenLPRange,
    PlaceOrder,
    ReasonCode,
    Refusal,
    Repay,
    Supply,
    Swap,
    Withdraw,
    parse_intents,
    resolve_amounts,
)
from defai.agent.observation import (
    Balance,
    LendingAccount,
    Observation,
    Portfolio,
    Position,
    Reserve,
)
from defai.errors import RiskError

ADDRESS = "0x" + "ab" * 20
PRICES = {"ETH/USDC": 2000.0, "ETH/USDC:USDC": 2000.0}


def wallet() -> Portfolio:
    """5,000 USDC and 2 ETH in the wallet; 5 ETH supplied and 1,000 USDC borrowed on Aave."""
    return Portfolio(
        quote="USDC",
        equity=18_000.0,
        peak_equity=18_000.0,
        balances={"USDC": Balance(5_000.0, 5_000.0), "ETH": Balance(2.0, 2.0)},
        positions=(Position("ETH/USDC:USDC", "long", 3.0, 1900.0, 2000.0, 2.0, 1000.0, 6000.0),),
        lending=LendingAccount(
            {
                "ETH": Reserve(
                    supplied=5.0, debt=0.0, price=2000.0, ltv=0.8, liquidation_threshold=0.825
                ),
                "USDC": Reserve(
                    supplied=0.0, debt=1000.0, price=1.0, ltv=0.75, liquidation_threshold=0.78
                ),
            }
        ),
    )


VALID = [
    {"kind": "place_order", "symbol": "ETH/USDC", "side": "buy", "amount": 0.5},
    {
        "kind": "place_order",
        "symbol": "ETH/USDC:USDC",
        "side": "sell",
        "order_type": "stop",
        "amount_fraction": 1,
        "trigger_price": 1800,
        "reduce_only": True,
        "leverage": 2,
        "client_order_id": "exit-1",
    },
    {"kind": "cancel_order", "symbol": "ETH/USDC", "order_id": "12345"},
    {"kind": "swap", "pair": "ETH/USDC", "side": "sell", "amount_in": 1, "min_amount_out": 1900},
    {
        "kind": "open_lp_range",
        "pair": "ETH/USDC",
        "fee_tier": 500,
        "lower_price": 1800,
        "upper_price": 2200,
        "capital": 1000,
        "topics": ["ETH/USDC volatility 24h"],
    },
    {"kind": "close_lp_range", "position_id": 7},
    {"kind": "supply", "asset": "ETH", "amount": 1},
    {"kind": "withdraw", "asset": "ETH", "amount_fraction": 0.25},
    {"kind": "borrow", "asset": "USDC", "amount": 100},
    {"kind": "repay", "asset": "USDC", "amount_fraction": 1},
    {"kind": "hold", "reason": "nothing to do"},
]
TYPES = [PlaceOrder, PlaceOrder, CancelOrder, Swap, OpenLPRange, CloseLPRange]
TYPES += [Supply, Withdraw, Borrow, Repay, Hold]


@pytest.mark.parametrize(("payload", "kind"), list(zip(VALID, TYPES, strict=True)))
def test_every_intent_type_parses_from_json(payload: dict[str, Any], kind: type) -> None:
    intents, rejected = parse_intents(json.dumps(payload))
    assert rejected == []
    assert [type(intent) for intent in intents] == [kind]
    assert intents[0].model_dump(exclude_defaults=True) == {
        k: tuple(v) if isinstance(v, list) else v for k, v in payload.items() if k != "kind"
    }


ORDER = {"kind": "place_order", "symbol": "ETH/USDC", "side": "buy"}
INVALID = {
    "both amounts": ({**ORDER, "amount": 1, "amount_fraction": 0.5}, "exactly one of amount"),
    "no amount": (ORDER, "exactly one of amount"),
    "zero fraction": ({**ORDER, "amount_fraction": 0}, "amount_fraction"),
    "fraction above 1": ({**ORDER, "amount_fraction": 1.5}, "less than or equal to 1"),
    "NaN amount": ({**ORDER, "amount": math.nan}, "finite"),
    "negative amount": ({**ORDER, "amount": -1}, "greater than 0"),
    "amount as a string": ({**ORDER, "amount": "1"}, "valid number"),
    "amount as a bool": ({**ORDER, "amount": True}, "valid number"),
    "limit without price": ({**ORDER, "amount": 1, "order_type": "limit"}, "needs a price"),
    "market with a price": ({**ORDER, "amount": 1, "price": 1900}, "takes no price"),
    "stop without trigger": ({**ORDER, "amount": 1, "order_type": "stop"}, "trigger_price"),
    "leverage on spot": ({**ORDER, "amount": 1, "leverage": 3}, "derivatives"),
    "inverse derivative": (
        {**ORDER, "symbol": "BTC/USD:BTC", "amount": 1},
        "only linear derivatives",
    ),
    "stop above take-profit": (
        {**ORDER, "amount": 1, "stop_loss": 2100, "take_profit": 2000},
        "wrong way round",
    ),
    "unknown side": ({**ORDER, "amount": 1, "side": "short"}, "side"),
    "swap without size": (
        {"kind": "swap", "pair": "ETH/USDC", "side": "buy", "min_amount_out": 1},
        "exactly one of amount_in",
    ),
    "lp range upside down": (
        {"kind": "open_lp_range", "pair": "ETH/USDC", "fee_tier": 500, "lower_price": 2200}
        | {"upper_price": 1800, "capital": 100},
        "lower_price must be below",
    ),
    "unknown fee tier": (
        {"kind": "open_lp_range", "pair": "ETH/USDC", "fee_tier": 2500, "lower_price": 1800}
        | {"upper_price": 2200, "capital": 100},
        "fee_tier",
    ),
    "cancel without id": ({"kind": "cancel_order", "symbol": "ETH/USDC"}, "exactly one"),
    "no kind": ({"asset": "ETH", "amount": 1}, "discriminator"),
    "not an object": ("swap everything", "valid dictionary"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_payloads_become_readable_rejections(case: str) -> None:
    payload, expected = INVALID[case]
    intents, rejected = parse_intents([payload])
    assert intents == []
    [verdict] = rejected
    assert verdict.code is ReasonCode.INVALID_INTENT
    assert verdict.proposal == payload
    assert verdict.intent is None
    assert expected in verdict.message
    assert verdict.message.startswith("invalid intent: ")


@pytest.mark.parametrize(
    "hostile",
    [
        {"kind": "transfer", "asset": "USDC", "amount": 1000, "to": ADDRESS},
        {"kind": "withdraw", "asset": "USDC", "amount": 1000, "to": ADDRESS},
        {"kind": "swap", "pair": "ETH/USDC", "side": "sell", "amount_in": 1}
        | {"recipient": ADDRESS},
        {"kind": "supply", "asset": ADDRESS, "amount": 1},
        {"kind": "place_order", "symbol": f"ETH/{ADDRESS}", "side": "buy", "amount": 1},
    ],
)
def test_sending_funds_to_an_address_cannot_be_expressed(hostile: dict[str, Any]) -> None:
    """There is no transfer intent and no field takes an address: "send funds to 0x..." from a
    prompt-injected model fails validation, whatever shape it takes."""
    intents, [verdict] = parse_intents(json.dumps(hostile))
    assert intents == []
    assert verdict.code is ReasonCode.INVALID_INTENT


def test_parse_intents_never_raises_and_keeps_the_good_items() -> None:
    _, [verdict] = parse_intents("sell everything now!!")
    assert verdict.code is ReasonCode.INVALID_INTENT
    assert verdict.message.startswith("not JSON")
    _, [deep] = parse_intents("[" * 100_000 + "]" * 100_000)
    assert deep.code is ReasonCode.INVALID_INTENT
    intents, rejected = parse_intents([VALID[0], {"kind": "transfer"}, VALID[-1]])
    assert [type(i) for i in intents] == [PlaceOrder, Hold]
    assert len(rejected) == 1
    single, _ = parse_intents(VALID[3])
    assert isinstance(single[0], Swap)


def test_intents_are_frozen() -> None:
    order = PlaceOrder(symbol="ETH/USDC", side="buy", amount=1.0)
    with pytest.raises(ValidationError):
        order.amount = 100.0


# --- amounts are computed by code, from the balance of what leaves the account ----------------


def test_half_my_usdc_for_eth_is_half_the_usdc_balance() -> None:
    """The Eliza bug: "swap half my USDC for ETH" once sold half the ETH balance. Buying ETH on
    ETH/USDC sells USDC, so the fraction is of the 5,000 USDC: 2,500 USDC in, never 1 ETH."""
    [intent], _ = parse_intents(
        '{"kind": "swap", "pair": "ETH/USDC", "side": "buy", "amount_fraction": 0.5,'
        ' "max_slippage": 0.01, "reason": "swap half my USDC for ETH"}'
    )
    swap = resolve_amounts(intent, wallet(), PRICES)
    assert isinstance(swap, Swap)
    assert swap.sold == "USDC"
    assert swap.amount_in == 2_500.0
    assert swap.amount_fraction is None
    assert swap.min_amount_out == pytest.approx(2_500.0 / 2000.0 * 0.99)
    sell = Swap(pair="ETH/USDC", side="sell", amount_fraction=0.5, min_amount_out=1.0)
    assert resolve_amounts(sell, wallet()).amount_in == 1.0  # half of the 2 ETH


@pytest.mark.parametrize(
    ("intent", "amount"),
    [
        (PlaceOrder(symbol="ETH/USDC", side="buy", amount_fraction=0.5), 2_500.0 / 2000.0),
        (
            PlaceOrder(
                symbol="ETH/USDC", side="buy", order_type="limit", price=1000.0, amount_fraction=0.5
            ),
            2.5,
        ),
        (PlaceOrder(symbol="ETH/USDC", side="sell", amount_fraction=0.25), 0.5),
        (
            PlaceOrder(symbol="ETH/USDC:USDC", side="sell", amount_fraction=0.5, reduce_only=True),
            1.5,
        ),
        (
            PlaceOrder(symbol="ETH/USDC:USDC", side="buy", amount_fraction=0.2, leverage=2.0),
            5_000.0 * 0.2 * 2 / 2000.0,
        ),
        (Supply(asset="ETH", amount_fraction=0.5), 1.0),
        (Withdraw(asset="ETH", amount_fraction=0.5), 2.5),
        (Repay(asset="USDC", amount_fraction=0.5), 500.0),
        (Borrow(asset="USDC", amount_fraction=0.5), (5 * 2000 * 0.8 - 1000) / 2),
    ],
    ids=[
        "buy: of the quote at market",
        "limit buy: of the quote at the limit",
        "sell: of the base",
        "reduce-only: of the position",
        "perp: of the margin x leverage",
        "supply: of the wallet",
        "withdraw: of what is supplied",
        "repay: of the debt",
        "borrow: of the borrowing power",
    ],
)
def test_fractions_are_of_the_asset_that_leaves_the_account(
    intent: PlaceOrder | Supply | Withdraw | Repay | Borrow, amount: float
) -> None:
    resolved = resolve_amounts(intent, wallet(), PRICES)
    assert resolved.resolved_amount == pytest.approx(amount)
    assert resolved.amount_fraction is None
    assert resolved.model_dump(exclude={"amount", "amount_fraction"}) == intent.model_dump(
        exclude={"amount", "amount_fraction"}
    )


def test_a_fraction_of_nothing_or_of_nan_is_refused() -> None:
    empty = Portfolio("USDC", 0.0, 0.0, {"USDC": Balance(0.0, 0.0), "ETH": Balance(math.nan, 1)})
    with pytest.raises(Refusal) as zero:
        resolve_amounts(Supply(asset="USDC", amount_fraction=1.0), empty)
    assert zero.value.code is ReasonCode.INSUFFICIENT_BALANCE
    with pytest.raises(Refusal) as nan:
        resolve_amounts(Supply(asset="ETH", amount_fraction=1.0), empty)
    assert nan.value.code is ReasonCode.NON_FINITE_INPUT
    with pytest.raises(Refusal) as no_price:
        resolve_amounts(PlaceOrder(symbol="ETH/USDC", side="buy", amount_fraction=1.0), wallet())
    assert no_price.value.code is ReasonCode.NON_FINITE_INPUT
    with pytest.raises(Refusal) as unlisted:
        resolve_amounts(Borrow(asset="DOGE", amount_fraction=1.0), wallet())
    assert unlisted.value.code is ReasonCode.UNKNOWN_SYMBOL


def test_absolute_amounts_pass_through_and_fractions_cannot_be_executed() -> None:
    order = PlaceOrder(symbol="ETH/USDC", side="buy", amount=0.1)
    assert resolve_amounts(order, wallet()) is order
    with pytest.raises(RiskError, match="not resolved"):
        _ = PlaceOrder(symbol="ETH/USDC", side="buy", amount_fraction=0.5).resolved_amount


def test_observation_cannot_be_edited_by_a_policy() -> None:
    """The policy gets the very observation the guard reviews: its mappings are read-only."""
    observation = Observation(0, dict(PRICES), wallet())
    with pytest.raises(TypeError):
        observation.prices["ETH/USDC"] = 1e-9  # type: ignore[index]
    with pytest.raises(TypeError):
        observation.portfolio.balances["USDC"] = Balance(1e12, 1e12)  # type: ignore[index]
    assert observation.portfolio.lending.health_factor == pytest.approx(5 * 2000 * 0.825 / 1000)
