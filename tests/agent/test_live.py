"""The live schedule on a simulated wall clock: when it ticks, what it survives, how it stops."""

from __future__ import annotations

import pytest
from live_support import START, SimWall
from loopback_binance import HOUR

from defai.agent.guard import RiskLimits
from defai.agent.live import NAP_S, SETTLE_MS, STALE_AFTER_MS, LiveLoop, live_limits
from defai.errors import DefaiError, FeedError


def loop(clock: SimWall, tick, stopped=lambda: False) -> LiveLoop:
    return LiveLoop(tick, clock, HOUR, stopped, clock.sleep)


def test_ticks_once_per_candle_close_after_the_settle_delay() -> None:
    clock = SimWall()
    times: list[int] = []
    assert loop(clock, lambda: times.append(clock.now)).run(max_ticks=3) == 3
    first = START - START % HOUR + HOUR + SETTLE_MS
    assert times == [first, first + HOUR, first + 2 * HOUR]
    assert max(clock.slept) <= NAP_S


def test_a_slow_tick_skips_the_closes_it_overran() -> None:
    clock = SimWall()
    times: list[int] = []

    def slow() -> None:
        times.append(clock.now)
        clock.now += 90 * 60_000  # the tick takes 1.5 h

    loop(clock, slow).run(max_ticks=2)
    assert times[1] - times[0] == 2 * HOUR


def test_missing_data_holds_the_tick_and_the_loop_goes_on() -> None:
    clock = SimWall()
    calls: list[int] = []

    def tick() -> None:
        calls.append(clock.now)
        if len(calls) == 1:
            raise FeedError("binance returned no 1h candles")

    assert loop(clock, tick).run(max_ticks=2) == 2 and len(calls) == 2


def test_other_errors_end_the_loop() -> None:
    def broken() -> None:
        raise DefaiError("a bug")

    with pytest.raises(DefaiError, match="a bug"):
        loop(SimWall(), broken).run()


def test_a_stop_during_the_wait_ends_it_within_one_nap() -> None:
    clock = SimWall()
    stop_at = START + 5_000
    ticks = loop(clock, lambda: None, stopped=lambda: clock.now >= stop_at).run()
    assert ticks == 0 and clock.now - stop_at < NAP_S * 1000


def test_live_limits_refuse_prices_older_than_the_candle_just_closed() -> None:
    limits = live_limits(RiskLimits(max_notional_per_order=50))
    assert limits.max_price_age_ms == STALE_AFTER_MS < HOUR
    assert limits.max_notional_per_order == 50
