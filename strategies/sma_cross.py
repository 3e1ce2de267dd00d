"""SmaCross: the textbook moving-average crossover, long only, all in, with no network at all.

The plain baseline a framework is compared on (tests/benchmarks/bench_vs_backtesting_py.py runs
it beside backtesting.py's own SmaCross). On each new candle of `symbol` it compares the simple
moving averages of the last `fast` and `slow` closes with the same averages one candle earlier:

- the fast average crosses ABOVE the slow one (fast < slow on the previous candle, fast > slow
  on this one, both strict: backtesting.lib.crossover's rule) and nothing is held -> a market buy;
- it crosses BELOW (fast > slow, then fast < slow) and base is held -> sell the whole holding;
- anything else -> Hold.

Sizing rule (what the peer comparison reproduces unit for unit): the buy amount is
`floor(fraction * free_quote / last_close * 10**decimals) / 10**decimals` base units, where
`free_quote` is the exchange account's free quote balance and `last_close` the close the signal
was computed on. The market order fills at the next bar's open, so the part of the quote that is
not spent (1 - `fraction`) pays the taker fee and any gap between that close and the open (and
the paper exchange's reservation of `max_slippage` on top of the close).

Point in time: only `observation.candles[symbol]` is read, and a crossover is acted on at the
first tick after the candle that made it closed (a tick with no new candle, e.g. during a data
outage, holds). While an order is working (part of the base or quote balance is reserved), the
strategy holds: it never stacks a second order on one that has not filled yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from defai.agent.intents import EXCHANGE, Hold, PlaceOrder, market_assets
from defai.agent.observation import Observation, Portfolio
from defai.agent.toolbox import ToolBox
from defai.types import FloatArray
from strategies._common import require

_RESERVED = 1e-9  # relative: total above free by more than this means an order holds funds


@dataclass(frozen=True, slots=True)
class SmaCross:
    """Buy (nearly) all in when SMA(fast) crosses above SMA(slow); sell everything on the way
    down. No topics, no tools: decisions come from the candles alone."""

    name: ClassVar[str] = "sma_cross"
    venues: ClassVar[tuple[str, ...]] = ("exchange",)
    """The venues it trades on: a backtest funds only these."""

    symbol: str = "ETH/USDT"
    """Spot pair BASE/QUOTE traded on the exchange account."""
    fast: int = 10
    """Candles in the fast simple moving average of closes."""
    slow: int = 30
    """Candles in the slow simple moving average of closes (more than `fast`)."""
    fraction: float = 0.98
    """Share of the free quote a buy spends at the signal's close; the rest pays the fee and
    absorbs a gap up to the next bar's open (0.98 covers the paper exchange's defaults: 0.05%
    taker fee, a 1% slippage reservation, and a gap of about 1%)."""
    decimals: int = 6
    """Buy amounts are floored to this many decimals of the base (1e-6 ETH at 6), so they sit
    on a fixed grid another engine can reproduce; the exchange may truncate further."""

    def __post_init__(self) -> None:
        require(
            self, ":" not in self.symbol and "/" in self.symbol, "symbol must be spot BASE/QUOTE"
        )
        require(self, 1 <= self.fast < self.slow, "need 1 <= fast < slow")
        require(self, 0 < self.fraction <= 1, "fraction must be in (0, 1]")
        require(self, 0 <= self.decimals <= 12, "decimals must be in [0, 12]")

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.symbol,)

    @property
    def topics(self) -> tuple[str, ...]:
        return ()

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        window = observation.candles.get(self.symbol)
        if window is None or len(window) < self.slow + 1:
            have = 0 if window is None else len(window)
            return [Hold(reason=f"{have} closed candles of {self.symbol}, need {self.slow + 1}")]
        age = observation.time_ms - int(window.close_ts[-1])
        if not 0 <= age < window.period_ms:
            return [Hold(reason=f"no new {self.symbol} candle since the last decision")]
        closes = window.close
        fast_now, fast_before = _sma(closes, self.fast, 0), _sma(closes, self.fast, 1)
        slow_now, slow_before = _sma(closes, self.slow, 0), _sma(closes, self.slow, 1)
        portfolio = observation.portfolio
        base, quote, _ = market_assets(self.symbol)
        if _reserved(portfolio, base) or _reserved(portfolio, quote):
            return [Hold(reason="an order is still working: waiting for its fill")]
        why = f"SMA{self.fast} {fast_now:.6g} vs SMA{self.slow} {slow_now:.6g}"
        held = _total(portfolio, base)
        if fast_before < slow_before and fast_now > slow_now:
            if held > 0:
                return [Hold(reason=f"{why}: crossed above, already long")]
            return [self._buy(portfolio, quote, float(closes[-1]), why)]
        if fast_before > slow_before and fast_now < slow_now:
            amount = portfolio.free(base, EXCHANGE)
            if not amount > 0:
                return [Hold(reason=f"{why}: crossed below, nothing to sell")]
            return [
                PlaceOrder(
                    symbol=self.symbol,
                    side="sell",
                    amount=amount,
                    reason=f"{why}: crossed below, sell all {amount:.8g} {base}",
                )
            ]
        return [Hold(reason=f"{why}: no crossover")]

    def units(self, free_quote: float, price: float) -> float:
        """The buy amount of the sizing rule: `fraction` of the free quote at `price`, floored
        to `decimals` (0 when that is less than one grid step)."""
        scale = 10.0**self.decimals
        return math.floor(self.fraction * free_quote / price * scale) / scale

    def _buy(self, portfolio: Portfolio, quote: str, price: float, why: str) -> object:
        free = portfolio.free(quote, EXCHANGE)
        if not (math.isfinite(price) and price > 0 and math.isfinite(free)):
            return Hold(reason=f"{why}: crossed above, but price {price!r}, free {free!r}")
        amount = self.units(free, price)
        if not amount > 0:
            return Hold(reason=f"{why}: crossed above, but no free {quote} to buy with")
        return PlaceOrder(
            symbol=self.symbol,
            side="buy",
            amount=amount,
            reason=f"{why}: crossed above, buy {amount:.8g} with {self.fraction:.0%} of {quote}",
        )


def _sma(closes: FloatArray, n: int, back: int) -> float:
    """Mean of the n closes ending `back` candles before the last one."""
    stop = len(closes) - back
    return float(np.add.reduce(closes[stop - n : stop])) / n  # np.mean's sum, without its overhead


def _total(portfolio: Portfolio, asset: str) -> float:
    balance = portfolio.accounts.get(EXCHANGE, portfolio.balances).get(asset)
    return 0.0 if balance is None else balance.total


def _reserved(portfolio: Portfolio, asset: str) -> bool:
    balance = portfolio.accounts.get(EXCHANGE, portfolio.balances).get(asset)
    return balance is not None and balance.total - balance.free > _RESERVED * abs(balance.total)
