"""The live schedule: one agent tick per closed candle, on the wall clock.

A candle is final only once it has closed, and an exchange publishes it a moment later; so the
loop sleeps until the next close plus a settle delay, then ticks. It never ticks a candle twice
and never catches up on candles it slept through: a tick acts on the market as it is now. The
clock and the sleep are injected, so tests run hours of schedule in milliseconds, and the sleep
is cut into short naps so that a stop request (SIGINT/SIGTERM) ends even a long wait promptly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import ccxt

from defai.agent.guard import RiskLimits
from defai.errors import DataError
from defai.market.view import Clock

log = logging.getLogger(__name__)

SETTLE_MS = 10_000  # after a close, before the tick: the exchange publishes the closed candle
STALE_AFTER_MS = 300_000  # a price whose candle closed longer ago than this is not traded on
NAP_S = 1.0  # the longest uninterrupted sleep: how long a stop request may wait


def live_limits(limits: RiskLimits) -> RiskLimits:
    """The guard's limits for live trading: a price older than the candle that just closed (the
    exchange lagging, the feed failing) is stale, however the limits were set otherwise."""
    return limits.model_copy(update={"max_price_age_ms": STALE_AFTER_MS})


@dataclass
class LiveLoop:
    """Calls `tick` at every candle close (+ `settle_ms`) until `stopped()` or `max_ticks`.

    A tick that fails on data or on the exchange's availability (a missing candle, an outage
    outlasting the retries) is logged and the loop waits for the next candle: a bot must outlive
    an outage. Any other error (a rejected key, a bug) ends the loop.
    """

    tick: Callable[[], object]
    clock: Clock
    period_ms: int
    stopped: Callable[[], bool]
    sleep: Callable[[float], None] = time.sleep
    settle_ms: int = SETTLE_MS

    def next_tick_ms(self, now_ms: int) -> int:
        """The first candle close + settle delay strictly after `now_ms`."""
        return ((now_ms - self.settle_ms) // self.period_ms + 1) * self.period_ms + self.settle_ms

    def run(self, max_ticks: int | None = None) -> int:
        """Tick until stopped; return how many ticks were attempted."""
        ticks = 0
        while max_ticks is None or ticks < max_ticks:
            if not self._wait_until(self.next_tick_ms(self.clock.now_ms())):
                break
            ticks += 1
            try:
                self.tick()
            except (DataError, ccxt.NetworkError) as exc:
                log.error("tick at %d held: %s", self.clock.now_ms(), exc)
        return ticks

    def _wait_until(self, due_ms: int) -> bool:
        """Sleep until `due_ms` in naps; False if a stop was requested first."""
        while not self.stopped():
            left_ms = due_ms - self.clock.now_ms()
            if left_ms <= 0:
                return True
            self.sleep(min(left_ms / 1000, NAP_S))
        return False
