"""PaperExchange's answers pass ccxt's own structure validators (ccxt.test.exchange.base).

The validators take a ccxt Exchange for its helpers and its `markets`/`currencies`; a plain
`ccxt.Exchange()` loaded with PaperExchange's markets is exactly that.
"""

from __future__ import annotations

from typing import Any

import ccxt
import pytest
from ccxt.test.exchange.base.test_balance import test_balance as check_balance
from ccxt.test.exchange.base.test_market import test_market as check_market
from ccxt.test.exchange.base.test_order import test_order as check_order
from ccxt.test.exchange.base.test_position import test_position as check_position
from ccxt.test.exchange.base.test_ticker import test_ticker as check_ticker
from ccxt.test.exchange.base.test_trade import test_trade as check_trade

from defai.execution.paper import PaperExchange
from defai.market.synthetic import SyntheticFeed

HOUR = 3_600_000
SKIPPED: dict[str, Any] = {}


@pytest.fixture(scope="module")
def traded() -> tuple[PaperExchange, ccxt.Exchange, list[str]]:
    """An exchange with open, closed, canceled and stop orders, spot holdings, a long and a
    short perp; and the ccxt Exchange the validators read markets and currencies from."""
    ex = PaperExchange(SyntheticFeed(seed=5, days=3), balances={"USDT": 100_000.0})
    ex.advance(ex.now + 5 * HOUR)
    ex.set_leverage(5.0, "ETH/USDT:USDT")
    ex.set_leverage(5.0, "BTC/USDT:USDT")
    eth = ex.fetch_ticker("ETH/USDT")["last"]
    ids = [
        ex.create_order("ETH/USDT:USDT", "market", "buy", 2.0)["id"],
        ex.create_order("BTC/USDT:USDT", "market", "sell", 0.1)["id"],
        ex.create_order("ETH/USDT", "market", "buy", 1.0, None, {"clientOrderId": "a1"})["id"],
        ex.create_order("ETH/USDT", "limit", "buy", 1.0, round(eth * 0.5, 2))["id"],
    ]
    to_cancel = ex.create_order("ETH/USDT", "limit", "buy", 0.5, round(eth * 0.6, 2))
    ex.advance(ex.now + HOUR)
    ex.cancel_order(to_cancel["id"])
    ids.append(to_cancel["id"])
    stop = {"stopLossPrice": round(eth * 0.95, 2)}
    ids.append(ex.create_order("ETH/USDT:USDT", "market", "sell", 2.0, None, stop)["id"])
    validator = ccxt.Exchange()
    validator.set_markets(ex.load_markets())
    return ex, validator, ids


def test_markets(traded: tuple[PaperExchange, ccxt.Exchange, list[str]]) -> None:
    ex, validator, _ = traded
    markets = ex.load_markets()
    assert {"ETH/USDT", "ETH/USDT:USDT", "BTC/USDT", "SOL/USDT:USDT"} <= set(markets)
    for market in markets.values():
        check_market(validator, SKIPPED, "loadMarkets", market)


def test_balance(traded: tuple[PaperExchange, ccxt.Exchange, list[str]]) -> None:
    ex, validator, _ = traded
    balance = ex.fetch_balance()
    check_balance(validator, SKIPPED, "fetchBalance", balance)
    assert balance["ETH"]["total"] == 1.0 and balance["used"]["USDT"] > 0


def test_tickers(traded: tuple[PaperExchange, ccxt.Exchange, list[str]]) -> None:
    ex, validator, _ = traded
    for symbol in ex.load_markets():
        check_ticker(validator, SKIPPED, "fetchTicker", ex.fetch_ticker(symbol), symbol)


def test_orders(traded: tuple[PaperExchange, ccxt.Exchange, list[str]]) -> None:
    ex, validator, ids = traded
    orders = [ex.fetch_order(i) for i in ids]
    assert {o["status"] for o in orders} == {"open", "closed", "canceled"}
    for order in orders + ex.fetch_open_orders():
        check_order(validator, SKIPPED, "fetchOrder", order, order["symbol"], ex.now)


def test_trades(traded: tuple[PaperExchange, ccxt.Exchange, list[str]]) -> None:
    ex, validator, _ = traded
    trades = ex.fetch_my_trades()
    assert {t["symbol"] for t in trades} == {"ETH/USDT", "ETH/USDT:USDT", "BTC/USDT:USDT"}
    for trade in trades:
        check_trade(validator, SKIPPED, "fetchMyTrades", trade, trade["symbol"], ex.now, False)


def test_positions(traded: tuple[PaperExchange, ccxt.Exchange, list[str]]) -> None:
    ex, validator, _ = traded
    positions = ex.fetch_positions()
    assert [(p["symbol"], p["side"]) for p in positions] == [
        ("BTC/USDT:USDT", "short"),
        ("ETH/USDT:USDT", "long"),
    ]
    for position in positions:
        check_position(validator, SKIPPED, "fetchPositions", position, position["symbol"], ex.now)
