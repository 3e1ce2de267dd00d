"""Properties of PaperExchange's books over random order sequences on the synthetic market.

Balances never go negative, and no money appears or vanishes: equity always equals the deposit
(at the last close) plus every trade's PnL marked at the last close, minus fees, plus what the
venue's insurance absorbed (losses beyond an isolated position's margin).
"""

from __future__ import annotations

from typing import Any

import ccxt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defai.execution.paper import PaperExchange
from defai.market.synthetic import SyntheticFeed

HOUR = 3_600_000
DEPOSIT = 10_000.0  # USDT, beside some coins so that spot sells happen from the start
COINS = {"ETH": 2.0, "BTC": 0.1}
FEED = SyntheticFeed(seed=11, days=5, symbols=["BTC/USDT", "ETH/USDT"])
SYMBOLS = ["ETH/USDT", "BTC/USDT", "ETH/USDT:USDT", "BTC/USDT:USDT"]

actions = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.sampled_from(["market", "limit", "triggerPrice", "stopLossPrice", "takeProfitPrice"]),
        st.sampled_from(["buy", "sell"]),
        st.floats(0.02, 1.5),  # notional as a share of the deposit
        st.floats(-0.006, 0.006),  # price / trigger offset from the last close
        st.integers(0, 5),  # bars to advance after the order
        st.booleans(),  # cancel the oldest open order first
    ),
    min_size=1,
    max_size=20,
)


def place(ex: PaperExchange, action: tuple[Any, ...]) -> None:
    symbol, kind, side, share, offset, _, _ = action
    last = ex.fetch_ticker(symbol)["last"]
    amount = share * DEPOSIT / last
    price = last * (1 + offset)
    try:
        if kind == "market":
            ex.create_order(symbol, "market", side, amount)
        elif kind == "limit":
            ex.create_order(symbol, "limit", side, amount, price)
        else:
            ex.create_order(symbol, "market", side, amount, None, {kind: price})
    except (ccxt.InsufficientFunds, ccxt.InvalidOrder):
        pass  # refusals are part of the game; anything else is a bug


def check_books(ex: PaperExchange) -> None:
    balance = ex.fetch_balance()
    for part in ("free", "used", "total"):
        assert all(v >= 0 for v in balance[part].values()), balance
    marks = {s: ex.fetch_ticker(s)["last"] for s in SYMBOLS}
    expected = DEPOSIT + sum(held * marks[f"{code}/USDT"] for code, held in COINS.items())
    for t in ex.fetch_my_trades():
        signed = t["amount"] if t["side"] == "buy" else -t["amount"]
        expected += signed * (marks[t["symbol"]] - t["price"])
        expected += t["info"]["insurance"] - t["fee"]["cost"]
    assert ex.equity() == pytest.approx(expected, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(actions, st.sampled_from([1.0, 5.0, 20.0]))
def test_balances_stay_non_negative_and_equity_is_conserved(
    steps: list[tuple[Any, ...]], leverage: float
) -> None:
    ex = PaperExchange(FEED, balances={"USDT": DEPOSIT, **COINS}, max_volume_share=0.0005)
    ex.advance(ex.now + 2 * HOUR)
    for symbol in ("ETH/USDT:USDT", "BTC/USDT:USDT"):
        ex.set_leverage(leverage, symbol)
    for action in steps:
        if action[6] and ex.fetch_open_orders():
            ex.cancel_order(ex.fetch_open_orders()[0]["id"])
        place(ex, action)
        ex.advance(ex.now + action[5] * HOUR)
        check_books(ex)
