"""Funds are not fungible between venues: the guard checks the account an intent spends from."""

from __future__ import annotations

import pytest

from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import EXCHANGE, WALLET, PlaceOrder, Swap
from defai.agent.observation import Balance, Observation, Portfolio

PRICE = 2_000.0


def observation() -> Observation:
    """200 USDT on the exchange; 5,000 USDT and 1 ETH in the on-chain wallet."""
    exchange = {"USDT": Balance(200.0, 200.0)}
    wallet = {"USDT": Balance(5_000.0, 5_000.0), "ETH": Balance(1.0, 1.0)}
    merged = {"USDT": Balance(5_200.0, 5_200.0), "ETH": Balance(1.0, 1.0)}
    portfolio = Portfolio(
        quote="USDT",
        equity=7_200.0,
        peak_equity=7_200.0,
        balances=merged,
        accounts={EXCHANGE: exchange, WALLET: wallet},
    )
    return Observation(time_ms=0, prices={"ETH/USDT": PRICE}, portfolio=portfolio)


def test_an_order_the_exchange_cannot_fund_is_refused_even_if_the_wallet_could() -> None:
    guard = RiskGuard(RiskLimits(max_notional_per_order=10_000))
    order = PlaceOrder(symbol="ETH/USDT", side="buy", amount=1.0, reason="too big for the exchange")
    (verdict,) = guard.review([order], observation()).verdicts
    assert str(verdict.code) == "INSUFFICIENT_BALANCE"
    assert "200" in verdict.message


def test_fractions_come_from_the_account_that_pays() -> None:
    guard = RiskGuard(RiskLimits(max_notional_per_order=10_000))
    buy = PlaceOrder(symbol="ETH/USDT", side="buy", amount_fraction=0.5, reason="half my USDT")
    swap = Swap(
        pair="ETH/USDT",
        side="buy",
        amount_fraction=0.5,
        max_slippage=0.01,
        reason="half my USDT, on-chain",
    )
    review = guard.review([buy, swap], observation())
    assert [str(v.code) for v in review.verdicts] == ["APPROVED", "APPROVED"]
    order, on_chain = (a.intent for a in review.approved)
    assert isinstance(order, PlaceOrder) and isinstance(on_chain, Swap)
    assert order.amount is not None and order.amount * PRICE == pytest.approx(100.0, rel=0.02)
    assert on_chain.amount_in == pytest.approx(2_500.0)
