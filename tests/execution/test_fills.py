"""The fill maths, one assumption per test, on hand-made bars and books."""

from __future__ import annotations

import math

import pytest

from defai.execution import fills
from defai.execution.fills import Bar, Hit

BAR = Bar(open=100.0, high=106.0, low=94.0, close=101.0, volume=1_000.0)


def test_slippage_is_half_spread_plus_square_root_impact() -> None:
    # 10 bps spread -> 5 bps half; 0.1 * sqrt(10 / 1000) = 1 %
    assert fills.slippage(10.0, 1_000.0, 10.0, 0.1, 0.05) == pytest.approx(0.0005 + 0.01)
    # four times the size, twice the impact
    assert fills.slippage(40.0, 1_000.0, 0.0, 0.1, 0.05) == pytest.approx(0.02)


def test_slippage_is_capped_and_maximal_on_an_empty_bar() -> None:
    assert fills.slippage(1_000.0, 1_000.0, 10.0, 0.1, 0.03) == 0.03
    assert fills.slippage(1.0, 0.0, 0.0, 0.0, 0.03) == 0.03


def test_taker_price_moves_against_the_taker() -> None:
    assert fills.taker_price(100.0, "buy", 0.01) == pytest.approx(101.0)
    assert fills.taker_price(100.0, "sell", 0.01) == pytest.approx(99.0)


def test_walk_book_averages_the_levels_it_takes() -> None:
    asks = [(100.0, 1.0), (101.0, 1.0), (102.0, 5.0)]
    taken = fills.walk_book(asks, 3.0, "buy", worst_price=110.0)
    assert taken.amount == 3.0
    assert taken.average == pytest.approx((100.0 + 101.0 + 102.0) / 3)


def test_walk_book_stops_at_the_worst_price_allowed() -> None:
    bids = [(100.0, 1.0), (99.5, 1.0), (98.0, 10.0)]
    taken = fills.walk_book(bids, 5.0, "sell", worst_price=99.0)  # 1 % below a mid of 100
    assert taken.amount == 2.0
    assert taken.average == pytest.approx(99.75)
    assert math.isnan(fills.walk_book(bids, 1.0, "sell", worst_price=101.0).average)


def test_resting_limit_buy_fills_at_its_price_only_when_the_low_reaches_it() -> None:
    assert fills.limit_fill_price("buy", 95.0, BAR) == 95.0
    assert fills.limit_fill_price("buy", 94.0, BAR) == 94.0  # a touch is enough
    assert fills.limit_fill_price("buy", 93.99, BAR) is None


def test_resting_limit_fills_at_the_open_when_the_bar_opens_through_it() -> None:
    assert fills.limit_fill_price("buy", 102.0, BAR) == 100.0
    assert fills.limit_fill_price("sell", 98.0, BAR) == 100.0
    assert fills.limit_fill_price("sell", 106.0, BAR) == 106.0
    assert fills.limit_fill_price("sell", 106.5, BAR) is None


def test_trigger_fires_at_the_trigger_or_at_the_open_on_a_gap() -> None:
    assert fills.trigger_fill_price("down", 95.0, BAR) == 95.0
    assert fills.trigger_fill_price("down", 101.0, BAR) == 100.0  # opened below the trigger
    assert fills.trigger_fill_price("down", 93.0, BAR) is None
    assert fills.trigger_fill_price("up", 105.0, BAR) == 105.0
    assert fills.trigger_fill_price("up", 99.0, BAR) == 100.0
    assert fills.trigger_fill_price("up", 107.0, BAR) is None


@pytest.mark.parametrize(
    ("side", "kind", "trigger", "expected"),
    [
        ("sell", "stopLoss", 95.0, "down"),
        ("buy", "stopLoss", 105.0, "up"),
        ("sell", "takeProfit", 105.0, "up"),
        ("buy", "takeProfit", 95.0, "down"),
        ("buy", "stop", 105.0, "up"),
        ("buy", "stop", 95.0, "down"),
        ("buy", "stop", 100.0, "up"),
        ("sell", "stop", 100.0, "down"),
    ],
)
def test_trigger_direction(
    side: fills.Side, kind: fills.TriggerKind, trigger: float, expected: str
) -> None:
    assert fills.trigger_direction(side, kind, trigger, reference=100.0) == expected


def test_pessimistic_path_puts_the_stop_loss_before_the_take_profit() -> None:
    # a long: the path goes to the low first
    assert fills.path_distance(95.0, BAR, low_first=True) < fills.path_distance(
        105.0, BAR, low_first=True
    )
    # a short: to the high first
    assert fills.path_distance(105.0, BAR, low_first=False) < fills.path_distance(
        95.0, BAR, low_first=False
    )
    assert fills.path_distance(100.0, BAR, low_first=True) == 0.0


def test_market_order_takes_at_the_open() -> None:
    assert fills.order_hit("buy", None, None, None, False, False, BAR, True) == Hit(
        100.0, True, 0.0
    )


def test_marketable_limit_takes_at_the_open_if_still_within_its_limit() -> None:
    assert fills.order_hit("buy", 101.0, None, None, False, True, BAR, True) == Hit(
        100.0, True, 0.0
    )
    # the price ran away before the open: the order rests and fills as a maker on the way back
    assert fills.order_hit("buy", 99.0, None, None, False, True, BAR, True) == Hit(99.0, False, 1.0)


def test_stop_limit_gapping_past_its_limit_rests_then_fills_as_maker_in_the_same_bar() -> None:
    gap = Bar(open=90.0, high=99.0, low=89.0, close=95.0, volume=1.0)
    hit = fills.order_hit("sell", 97.0, 98.0, "down", False, False, gap, True)
    assert hit is not None and hit.price == 97.0 and not hit.taker


def test_stop_limit_triggered_intrabar_beyond_its_limit_waits_for_the_next_bar() -> None:
    # sell stop 96 fires at 96 intrabar; its limit 97 is above: what follows is unknown
    hit = fills.order_hit("sell", 97.0, 96.0, "down", False, False, BAR, True)
    assert hit is not None and hit.price is None


def test_untouched_stop_does_nothing() -> None:
    assert fills.order_hit("sell", None, 90.0, "down", False, False, BAR, True) is None


def test_volume_capacity_is_a_share_of_the_bar() -> None:
    assert fills.volume_capacity(1_000.0, 0.1) == pytest.approx(100.0)
    assert fills.volume_capacity(-1.0, 0.1) == 0.0


def test_affordable_amount_counts_released_funds_and_covered_units() -> None:
    assert fills.affordable_amount(100.0, 10.0, 0.0, 0.0) == pytest.approx(10.0)
    assert fills.affordable_amount(0.0, 10.0, 10.0, 0.0) == math.inf
    assert fills.affordable_amount(100.0, 10.0, 5.0, 0.0) == pytest.approx(20.0)
    assert fills.affordable_amount(0.0, 10.0, 0.0, 3.0) == pytest.approx(3.0)


def test_liquidation_price_leaves_exactly_the_maintenance_margin() -> None:
    mmr = 0.005
    long = fills.liquidation_price("long", 100.0, 2.0, 20.0, mmr)  # 10x
    short = fills.liquidation_price("short", 100.0, 2.0, 20.0, mmr)
    assert long is not None and short is not None
    assert long == pytest.approx((200.0 - 20.0) / (2.0 * (1 - mmr)))
    assert 20.0 + fills.position_pnl("long", 100.0, long, 2.0) == pytest.approx(mmr * long * 2.0)
    assert 20.0 + fills.position_pnl("short", 100.0, short, 2.0) == pytest.approx(mmr * short * 2.0)
    assert fills.liquidation_price("long", 100.0, 1.0, 100.0, mmr) is None  # 1x long


def test_liquidation_hit_on_the_bars_range() -> None:
    assert fills.liquidation_hit("long", 95.0, BAR, True) == Hit(95.0, True, 5.0)
    assert fills.liquidation_hit("short", 107.0, BAR, False) is None
    assert fills.liquidation_hit("long", None, BAR, True) is None
