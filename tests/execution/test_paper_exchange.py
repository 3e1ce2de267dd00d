"""PaperExchange fill realism, one behaviour per test, on hand-made candles.

The clock starts at the close of bar 0, so an order placed then meets bar 1 first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ccxt
import pytest
from paper_support import EXACT, HOUR, T0, Ohlcv, candle_feed, close_of, paper

from defai.errors import ConfigError, ExecutionError
from defai.execution.broker import Broker
from defai.execution.paper import PaperExchange
from defai.market.feed import StoreFeed
from defai.types import Candles

PERP = "ETH/USDT:USDT"
FLAT = (100.0, 101.0, 99.0, 100.0, 1_000.0)


def test_is_a_broker() -> None:
    assert isinstance(paper([FLAT, FLAT]), Broker)


def test_market_order_fills_at_the_next_open_plus_slippage_at_the_taker_fee() -> None:
    ex = paper(
        [FLAT, (102.0, 103.0, 101.0, 102.0, 1_000.0)],
        spread_bps=10.0,
        impact=0.1,
        max_slippage=0.05,
        max_volume_share=1.0,
    )
    order = ex.create_order("ETH/USDT", "market", "buy", 10.0)
    assert order["status"] == "open" and ex.fetch_my_trades() == []
    (trade,) = ex.advance(close_of(1))
    slip = 0.0005 + 0.1 * (10.0 / 1_000.0) ** 0.5  # half of 10 bps + sqrt impact
    assert trade["price"] == pytest.approx(102.0 * (1 + slip))  # bar 1's open, not bar 0's close
    assert trade["takerOrMaker"] == "taker"
    assert trade["fee"]["cost"] == pytest.approx(0.0005 * 10.0 * trade["price"])
    assert ex.fetch_order(order["id"])["status"] == "closed"


def test_order_never_meets_a_bar_that_opened_before_it() -> None:
    ex = paper([FLAT, (101.0, 102.0, 100.0, 101.0, 1e3), (103.0, 104, 102, 103, 1e3)], **EXACT)
    ex.advance(close_of(0) + HOUR // 2)  # mid-bar 1
    ex.create_order("ETH/USDT", "market", "buy", 1.0)
    assert ex.advance(close_of(1)) == []
    (trade,) = ex.advance(close_of(2))
    assert trade["price"] == 103.0


def test_limit_buy_fills_only_when_the_low_reaches_it_at_the_maker_fee() -> None:
    bars = [FLAT, (100.0, 101.0, 96.0, 99.0, 1e3), (99.0, 100.0, 95.0, 97.0, 1e3)]
    ex = paper(bars, **EXACT)
    order = ex.create_order("ETH/USDT", "limit", "buy", 2.0, 95.0)
    assert ex.advance(close_of(1)) == []  # low 96 never reached 95
    (trade,) = ex.advance(close_of(2))
    assert trade["price"] == 95.0
    assert trade["takerOrMaker"] == "maker"
    assert trade["fee"]["cost"] == pytest.approx(0.0002 * 2.0 * 95.0)
    assert ex.fetch_order(order["id"])["status"] == "closed"


def test_limit_buy_fills_at_the_open_when_the_bar_opens_through_it() -> None:
    ex = paper([FLAT, (94.0, 96.0, 93.0, 95.0, 1e3)], **EXACT)
    ex.create_order("ETH/USDT", "limit", "buy", 1.0, 97.0)
    (trade,) = ex.advance(close_of(1))
    assert (trade["price"], trade["takerOrMaker"]) == (94.0, "maker")


def test_marketable_limit_fills_as_taker_at_the_next_open_no_worse_than_its_limit() -> None:
    bars = [FLAT, (100.5, 102.0, 100.0, 101.0, 1e3)]
    ex = paper(bars, **EXACT)
    ex.create_order("ETH/USDT", "limit", "buy", 1.0, 101.0)  # above the ask of 100
    (trade,) = ex.advance(close_of(1))
    assert (trade["price"], trade["takerOrMaker"]) == (100.5, "taker")
    assert trade["fee"]["cost"] == pytest.approx(0.0005 * 100.5)

    slippy = paper(bars, impact=0.1, spread_bps=0.0, max_volume_share=1.0)
    slippy.create_order("ETH/USDT", "limit", "buy", 10.0, 101.0)  # 1 % impact -> 101.505
    (trade,) = slippy.advance(close_of(1))
    assert trade["price"] == 101.0


def test_market_order_walks_the_order_book_capped_at_max_slippage() -> None:
    book = {"bids": [[99.9, 5.0]], "asks": [[100.0, 1.0], [100.5, 1.0], [101.5, 5.0]]}
    seen: list[tuple[str, int]] = []

    def order_books(symbol: str, ts: int) -> dict[str, Any]:
        seen.append((symbol, ts))
        return book

    ex = paper([FLAT, FLAT, FLAT], **EXACT, max_slippage=0.01, order_books=order_books)
    order = ex.create_order("ETH/USDT", "market", "buy", 3.0)
    (trade,) = ex.advance(close_of(1))
    mid = (99.9 + 100.0) / 2
    assert trade["amount"] == 2.0  # 101.5 is beyond mid * 1.01
    assert trade["price"] == pytest.approx(100.25)
    assert trade["price"] <= mid * 1.01
    assert ex.fetch_order(order["id"])["remaining"] == 1.0
    (rest,) = ex.advance(close_of(2))  # the rest meets the next bar's book
    assert (rest["amount"], rest["price"]) == (1.0, 100.0)
    assert seen == [("ETH/USDT", T0 + HOUR), ("ETH/USDT", T0 + 2 * HOUR)]


def test_stop_the_bar_gaps_through_fills_at_the_open() -> None:
    ex = paper([FLAT, (90.0, 92.0, 88.0, 91.0, 1e3)], balances={"ETH": 5.0}, **EXACT)
    ex.create_order("ETH/USDT", "market", "sell", 5.0, None, {"triggerPrice": 95.0})
    (trade,) = ex.advance(close_of(1))
    assert (trade["price"], trade["takerOrMaker"]) == (90.0, "taker")


def test_stop_fills_at_its_trigger_when_the_range_reaches_it() -> None:
    ex = paper([FLAT, (99.0, 100.0, 94.0, 96.0, 1e3)], balances={"ETH": 5.0}, **EXACT)
    ex.create_order("ETH/USDT", "market", "sell", 5.0, None, {"stopLossPrice": 95.0})
    (trade,) = ex.advance(close_of(1))
    assert trade["price"] == 95.0


def _long(bars: Sequence[Ohlcv], leverage: float = 1.0, **settings: Any) -> PaperExchange:
    """An exchange holding a 1 ETH perp long opened at bar 1's open."""
    ex = paper(bars, **{**EXACT, **settings})
    ex.set_leverage(leverage, PERP)
    ex.create_order(PERP, "market", "buy", 1.0)
    ex.advance(close_of(1))
    return ex


def test_stop_loss_and_take_profit_in_one_bar_resolve_to_the_stop_loss() -> None:
    ex = _long([FLAT, FLAT, (100.0, 106.0, 94.0, 101.0, 1e3)])
    take_profit = ex.create_order(PERP, "market", "sell", 1.0, None, {"takeProfitPrice": 105.0})
    ex.create_order(PERP, "market", "sell", 1.0, None, {"stopLossPrice": 95.0})
    (trade,) = ex.advance(close_of(2))
    assert trade["price"] == 95.0
    assert ex.fetch_positions() == []
    # reduce-only: nothing left to reduce
    assert ex.fetch_order(take_profit["id"])["status"] == "canceled"


def test_a_bar_opening_through_the_take_profit_takes_profit_first() -> None:
    ex = _long([FLAT, FLAT, (106.0, 107.0, 94.0, 101.0, 1e3)])
    ex.create_order(PERP, "market", "sell", 1.0, None, {"stopLossPrice": 95.0})
    ex.create_order(PERP, "market", "sell", 1.0, None, {"takeProfitPrice": 105.0})
    (trade,) = ex.advance(close_of(2))
    assert trade["price"] == 106.0


def test_partial_fills_over_several_bars_bounded_by_the_volume_share() -> None:
    thin = (100.0, 101.0, 99.0, 100.0, 10.0)
    ex = paper([thin] * 4, spread_bps=0.0, impact=0.0, max_volume_share=0.1)
    order = ex.create_order("ETH/USDT", "market", "buy", 2.5)
    amounts = [[t["amount"] for t in ex.advance(close_of(bar))] for bar in (1, 2, 3)]
    assert amounts == [[1.0], [1.0], [0.5]]
    final = ex.fetch_order(order["id"])
    assert final["status"] == "closed" and len(final["trades"]) == 3


def test_volume_share_is_shared_by_the_orders_of_a_market() -> None:
    thin = (100.0, 101.0, 99.0, 100.0, 10.0)
    ex = paper([thin] * 2, spread_bps=0.0, impact=0.0, max_volume_share=0.1)
    first = ex.create_order("ETH/USDT", "market", "buy", 0.7)
    second = ex.create_order("ETH/USDT", "market", "buy", 0.7)
    ex.advance(close_of(1))
    assert ex.fetch_order(first["id"])["filled"] == 0.7
    assert ex.fetch_order(second["id"])["filled"] == 0.3


def test_maker_and_taker_fees_are_charged_on_the_balance() -> None:
    ex = paper([FLAT, FLAT, (100.0, 110.0, 99.0, 105.0, 1e3)], **EXACT)
    ex.create_order("ETH/USDT", "market", "buy", 1.0)
    ex.advance(close_of(1))
    ex.create_order("ETH/USDT", "limit", "sell", 1.0, 110.0)
    ex.advance(close_of(2))
    expected = 10_000.0 - 100.0 * (1 + 0.0005) + 110.0 * (1 - 0.0002)
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(expected, abs=1e-8)
    assert ex.fetch_balance()["ETH"]["total"] == 0.0


def test_isolated_long_is_liquidated_when_the_low_reaches_its_liquidation_price() -> None:
    bars = [FLAT, FLAT, (99.0, 100.0, 90.5, 95.0, 1e3), (95.0, 96.0, 90.0, 92.0, 1e3)]
    ex = _long(bars, leverage=10.0)
    (position,) = ex.fetch_positions()
    liquidation = (100.0 - 10.0) / (1 - 0.005)
    assert position["liquidationPrice"] == pytest.approx(liquidation)
    assert ex.advance(close_of(2)) == []  # low 90.5 stays above 90.45
    (trade,) = ex.advance(close_of(3))
    assert trade["price"] == pytest.approx(liquidation)
    assert trade["info"]["reason"] == "liquidation"
    assert ex.fetch_positions() == []
    # the whole margin (10) is gone: PnL plus the liquidation fee, which takes what was left
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(10_000.0 - 0.05 - 10.0)


def test_isolated_short_is_liquidated_when_the_high_reaches_its_liquidation_price() -> None:
    bars = [FLAT, FLAT, (101.0, 109.4, 100.0, 105.0, 1e3), (105.0, 110.0, 104.0, 108.0, 1e3)]
    ex = paper(bars, **EXACT)
    ex.set_leverage(10.0, PERP)
    ex.create_order(PERP, "market", "sell", 1.0)
    ex.advance(close_of(1))
    liquidation = (100.0 + 10.0) / (1 + 0.005)
    assert ex.fetch_positions()[0]["liquidationPrice"] == pytest.approx(liquidation)
    assert ex.advance(close_of(2)) == []
    (trade,) = ex.advance(close_of(3))
    assert (trade["side"], trade["price"]) == ("buy", pytest.approx(liquidation))


def test_a_gap_through_bankruptcy_costs_the_margin_and_no_more() -> None:
    ex = _long([FLAT, FLAT, (80.0, 81.0, 79.0, 80.0, 1e3)], leverage=10.0)
    (trade,) = ex.advance(close_of(2))
    assert trade["price"] == 80.0  # liquidated at the open
    assert trade["info"]["insurance"] == pytest.approx(10.0)  # 20 lost, 10 of it not ours
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(10_000.0 - 0.05 - 10.0)


def test_a_stop_beyond_the_liquidation_price_is_refused() -> None:
    ex = _long([FLAT, FLAT], leverage=10.0)  # liquidation at 90.45
    with pytest.raises(ccxt.InvalidOrder, match="liquidation price"):
        ex.create_order(PERP, "market", "sell", 1.0, None, {"stopLossPrice": 90.0})
    with pytest.raises(ccxt.InvalidOrder, match="liquidation price"):
        ex.create_order(PERP, "market", "sell", 1.0, None, {"triggerPrice": 90.4})
    assert ex.create_order(PERP, "market", "sell", 1.0, None, {"stopLossPrice": 91.0})


def test_a_repeated_client_order_id_returns_the_existing_order() -> None:
    ex = paper([FLAT, FLAT], **EXACT)
    params = {"clientOrderId": "grid-1"}
    first = ex.create_order("ETH/USDT", "limit", "buy", 1.0, 90.0, params)
    used = ex.fetch_balance()["used"]["USDT"]
    again = ex.create_order("ETH/USDT", "limit", "buy", 1.0, 90.0, params)
    assert again["id"] == first["id"] and again["clientOrderId"] == "grid-1"
    assert len(ex.fetch_open_orders()) == 1
    assert ex.fetch_balance()["used"]["USDT"] == used


def test_insufficient_funds_are_refused() -> None:
    ex = paper([FLAT, FLAT], **EXACT)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("ETH/USDT", "market", "buy", 100.0)  # 10,000 + slippage + fee
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("ETH/USDT", "limit", "sell", 1.0, 100.0)  # no ETH
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(PERP, "market", "sell", 100.0)  # 1x margin
    ex.set_leverage(10.0, PERP)
    assert ex.create_order(PERP, "market", "sell", 90.0)["status"] == "open"
    # margin + fee reserved at the reference price plus the 1 % max slippage
    assert ex.fetch_balance()["used"]["USDT"] == pytest.approx(90 * 101.0 * (0.1 + 0.0005))


def test_a_market_buy_gapping_beyond_its_reservation_fills_what_the_account_affords() -> None:
    ex = paper([FLAT, (150.0, 151.0, 149.0, 150.0, 1e3)], **EXACT)
    order = ex.create_order("ETH/USDT", "market", "buy", 95.0)
    (trade,) = ex.advance(close_of(1))
    assert trade["amount"] * 150.0 * 1.0005 <= 10_000.0
    final = ex.fetch_order(order["id"])
    assert final["status"] == "canceled" and final["info"]["reason"] == "insufficient funds at fill"
    assert ex.fetch_balance()["free"]["USDT"] >= 0.0


def test_cancel_releases_the_reservation() -> None:
    ex = paper([FLAT, FLAT], **EXACT)
    order = ex.create_order("ETH/USDT", "limit", "buy", 10.0, 90.0)
    assert ex.fetch_balance()["used"]["USDT"] == pytest.approx(900.0 * 1.0005)
    assert ex.cancel_order(order["id"], "ETH/USDT")["status"] == "canceled"
    assert ex.fetch_balance()["used"]["USDT"] == 0.0
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(order["id"])


def test_stop_limit_rests_as_a_limit_once_triggered() -> None:
    bars = [FLAT, (99.0, 100.0, 95.0, 96.0, 1e3), (96.0, 97.5, 95.0, 97.0, 1e3)]
    ex = paper(bars, balances={"ETH": 1.0}, **EXACT)
    order = ex.create_order("ETH/USDT", "limit", "sell", 1.0, 97.0, {"triggerPrice": 96.0})
    assert ex.advance(close_of(1)) == []  # fired at 96, below its 97 limit
    assert ex.fetch_order(order["id"])["info"]["triggered"]
    (trade,) = ex.advance(close_of(2))
    assert (trade["price"], trade["takerOrMaker"]) == (97.0, "maker")


def test_post_only_limit_that_would_take_is_refused() -> None:
    ex = paper([FLAT, FLAT], **EXACT)
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        ex.create_order("ETH/USDT", "limit", "buy", 1.0, 101.0, {"postOnly": True})
    assert ex.create_order("ETH/USDT", "limit", "buy", 1.0, 99.0, {"timeInForce": "PO"})


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("BTC/USDT", "market", "buy", 1.0), ccxt.BadSymbol),
        (("ETH/USDT", "limit", "buy", 1.0), ccxt.InvalidOrder),  # no price
        (("ETH/USDT", "limit", "buy", 1.0, -5.0), ccxt.InvalidOrder),
        (("ETH/USDT", "market", "buy", 0.0004), ccxt.InvalidOrder),  # below the 0.001 step
        (("ETH/USDT", "limit", "buy", 0.005, 100.0), ccxt.InvalidOrder),  # 0.5 < min cost 1
        (("ETH/USDT", "stop", "buy", 1.0), ccxt.InvalidOrder),
        (("ETH/USDT", "market", "hold", 1.0), ccxt.InvalidOrder),
        (("ETH/USDT", "market", "buy", 1.0, None, {"stopLoss": {}}), ccxt.NotSupported),
        (("ETH/USDT", "market", "sell", 1.0, None, {"reduceOnly": True}), ccxt.InvalidOrder),
        ((PERP, "market", "sell", 1.0, None, {"reduceOnly": True}), ccxt.InvalidOrder),
    ],
)
def test_bad_orders_raise_ccxt_errors(args: tuple[Any, ...], error: type[Exception]) -> None:
    ex = paper([FLAT, FLAT], **EXACT)
    with pytest.raises(error):
        ex.create_order(*args)
    assert ex.fetch_open_orders() == []


def test_unknown_orders_are_not_found() -> None:
    ex = paper([FLAT, FLAT], **EXACT)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("42")
    order = ex.create_order("ETH/USDT", "limit", "buy", 1.0, 90.0)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order(order["id"], PERP)


def test_leverage_changes_only_without_position_or_order() -> None:
    ex = _long([FLAT, FLAT], leverage=3.0)
    assert ex.fetch_positions()[0]["leverage"] == 3.0
    with pytest.raises(ccxt.BadRequest):
        ex.set_leverage(5.0, PERP)
    with pytest.raises(ccxt.BadRequest):
        paper([FLAT]).set_leverage(50.0, PERP)  # above max_leverage


def test_equity_at_or_below_the_floor_closes_everything_and_halts() -> None:
    bars = [FLAT, FLAT, (100.0, 100.0, 98.0, 98.0, 1e3)]
    ex = _long(bars, leverage=5.0, min_equity=9_998.0)  # equity 9,999.95 at bar 1's close
    resting = ex.create_order("ETH/USDT", "limit", "buy", 1.0, 50.0)
    (close,) = ex.advance(close_of(2))  # 9,999.95 - 2 <= 9,998
    assert close["info"]["reason"] == "halt" and close["price"] == 98.0
    assert ex.halted and ex.fetch_positions() == []
    assert ex.fetch_order(resting["id"])["status"] == "canceled"
    with pytest.raises(ccxt.InsufficientFunds, match="halted"):
        ex.create_order("ETH/USDT", "market", "buy", 1.0)


def test_clock_never_goes_back() -> None:
    ex = paper([FLAT, FLAT])
    with pytest.raises(ExecutionError):
        ex.advance(T0)


class _Horizon(StoreFeed):
    """A feed that fails any read beyond the horizon the test allows."""

    horizon = 0

    def candles(
        self,
        symbol: str,
        timeframe: str,
        as_of: int,
        limit: int | None = None,
        since: int | None = None,
    ) -> Candles:
        assert as_of <= self.horizon, f"read as of {as_of} beyond {self.horizon}"
        return super().candles(symbol, timeframe, as_of, limit, since)


def test_the_exchange_never_reads_candles_after_its_clock() -> None:
    bars = [FLAT] + [(100.0 + i, 102.0 + i, 98.0 + i, 101.0 + i, 1e3) for i in range(6)]
    feed = _Horizon(candle_feed(bars).store)
    feed.horizon = close_of(0)
    ex = PaperExchange(feed, balances={"USDT": 10_000.0}, markets=None)
    ex.create_order("ETH/USDT", "limit", "buy", 1.0, 99.0)
    ex.create_order(PERP, "market", "buy", 1.0)
    for bar in range(1, 7):
        feed.horizon = close_of(bar)
        ex.advance(close_of(bar))
        ex.fetch_ticker("ETH/USDT")
        ex.fetch_positions()


def test_restart_with_other_settings_is_refused(tmp_path: Any) -> None:
    db = tmp_path / "paper.sqlite"
    paper([FLAT, FLAT], db=db).close()
    with pytest.raises(ConfigError, match="taker"):
        paper([FLAT, FLAT], db=db, taker=0.001)


def test_trades_and_orders_filter_by_symbol_since_and_limit_as_ccxt() -> None:
    ex = paper([FLAT] * 4, **EXACT)
    for bar in (1, 2, 3):
        ex.create_order("ETH/USDT", "market", "buy", 1.0)
        ex.create_order(PERP, "market", "buy", 1.0)
        ex.advance(close_of(bar))
    spot = ex.fetch_my_trades("ETH/USDT")
    assert [t["timestamp"] for t in spot] == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert ex.fetch_my_trades("ETH/USDT", limit=1) == spot[-1:]  # no since: the latest
    assert ex.fetch_my_trades("ETH/USDT", since=T0 + 2 * HOUR, limit=1) == spot[1:2]
    assert len(ex.fetch_my_trades()) == 6
