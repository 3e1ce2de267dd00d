"""What live-run tests share: a simulated wall clock, ccxt's binance on it, a trading strategy."""

from __future__ import annotations

from collections.abc import Callable

import ccxt
from loopback_binance import HOUR, T0

from defai.agent.intents import PlaceOrder, Supply
from defai.agent.observation import Observation
from defai.agent.toolbox import ToolBox

START = T0 + 300 * HOUR + 30 * 60_000  # half an hour after the close of candle 299


class SimWall:
    """A wall clock that moves only when slept on: hours of schedule in milliseconds."""

    def __init__(self, now_ms: int = START) -> None:
        self.now = now_ms
        self.slept: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def now_ms(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += round(seconds * 1000)
        self.on_sleep()


def binance_on(
    make_binance: Callable[[str, int], ccxt.binance], url: str, clock: SimWall
) -> ccxt.binance:
    """ccxt's binance client on the loopback server, its clock the simulated one."""
    exchange = make_binance(url, clock.now)
    exchange.milliseconds = clock.now_ms
    return exchange


class BuyEachTick:
    """Buys 0.01 ETH at market every tick, and asks for a lending venue the live run lacks."""

    name = "buy-each-tick"
    symbols = ("ETH/USDT",)
    topics = ()

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        return [
            PlaceOrder(symbol="ETH/USDT", side="buy", amount=0.01, reason="accumulate"),
            Supply(asset="ETH", amount=0.01, reason="needs an on-chain venue"),
        ]
