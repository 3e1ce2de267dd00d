"""Metrics against small cases computed by hand."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from defai.backtest import metrics as m

EQUITY = np.array([100.0, 110.0, 99.0, 120.0])
RETURNS = [0.1, -0.1, 120 / 99 - 1]


def test_total_return_and_drawdown() -> None:
    assert m.total_return(EQUITY) == pytest.approx(0.2)
    assert m.drawdown(EQUITY) == pytest.approx([0.0, 0.0, 0.1, 0.0])
    assert m.max_drawdown(EQUITY) == pytest.approx(0.1)


def test_cagr_of_a_doubling_in_two_years() -> None:
    assert m.cagr(np.array([1.0, 2.0]), 2.0) == pytest.approx(math.sqrt(2) - 1)
    assert m.cagr(np.array([1.0, 0.0]), 1.0) == -1.0  # ruined


def test_sharpe_and_sortino_annualised() -> None:
    mean = sum(RETURNS) / 3
    sd = statistics.stdev(RETURNS)
    downside = math.sqrt(0.1**2 / 3)  # one negative return of three
    assert m.sharpe(EQUITY, 365) == pytest.approx(mean / sd * math.sqrt(365))
    assert m.sortino(EQUITY, 365) == pytest.approx(mean / downside * math.sqrt(365))


def test_undefined_ratios_are_nan_not_infinite() -> None:
    flat = np.array([100.0, 100.0, 100.0])
    assert math.isnan(m.sharpe(flat, 365))
    assert math.isnan(m.sortino(np.array([100.0, 101.0, 102.0]), 365))  # no downside
    assert math.isnan(m.calmar(0.3, 0.0))
    assert m.calmar(0.3, 0.15) == pytest.approx(2.0)


def test_round_trip_long_with_fees() -> None:
    trips = m.round_trips(["X", "X"], [1, 2], [1.0, -1.0], [100.0, 110.0], [0.1, 0.11])
    assert len(trips) == 1
    assert trips[0].pnl == pytest.approx(110 - 100 - 0.21)
    assert (trips[0].opened_ms, trips[0].closed_ms, trips[0].side) == (1, 2, "long")


def test_a_flip_closes_one_trip_and_opens_the_next() -> None:
    # long 1 @100, sell 3 @90 (fee 0.3: a third closes the long), buy 2 @80 closes the short
    trips = m.round_trips(
        ["X"] * 3, [1, 2, 3], [1.0, -3.0, 2.0], [100.0, 90.0, 80.0], [0.0, 0.3, 0.0]
    )
    assert [t.side for t in trips] == ["long", "short"]
    assert trips[0].pnl == pytest.approx(-100 + 90 - 0.1)
    assert trips[1].pnl == pytest.approx(2 * 90 - 0.2 - 2 * 80)
    assert (trips[1].opened_ms, trips[1].closed_ms) == (2, 3)
    pnls = [t.pnl for t in trips]
    assert m.win_rate(pnls) == 0.5
    assert m.profit_factor(pnls) == pytest.approx(19.8 / 10.1)


def test_scaling_in_and_out_is_one_trip_and_dust_counts_as_flat() -> None:
    trips = m.round_trips(
        ["X"] * 4,
        [1, 2, 3, 4],
        [0.5, 0.5, -0.6, -0.4 + 1e-12],
        [10.0, 12.0, 11.0, 13.0],
        [0.0] * 4,
    )
    assert len(trips) == 1
    assert trips[0].pnl == pytest.approx(-5 - 6 + 6.6 + 13 * (0.4 - 1e-12))


def test_symbols_are_tracked_apart_and_open_positions_are_no_trip() -> None:
    trips = m.round_trips(
        ["A", "B", "A"], [1, 2, 3], [1.0, 2.0, -1.0], [10.0, 5.0, 12.0], [0.0, 0.0, 0.0]
    )
    assert [(t.symbol, t.pnl) for t in trips] == [("A", pytest.approx(2.0))]
    assert math.isnan(m.win_rate([]))
    assert m.profit_factor([1.0]) == math.inf
