"""A small strategy for tests of the agent loop: loadable by path from `defai run` too."""

from __future__ import annotations

from defai.agent.intents import Borrow, Hold, PlaceOrder, Supply
from defai.agent.observation import Observation
from defai.agent.toolbox import ToolBox, ToolCallError

RETURN_24H = "ETH/USDT log_return 24h"


class BuyThenBorrow:
    """Buys ETH on the exchange when the 24h forecast is up; supplies wallet ETH and borrows."""

    name = "buy-then-borrow"
    symbols = ("ETH/USDT",)
    topics = (RETURN_24H, "ETH/USDT volatility 24h")

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        try:
            forecast = toolbox.call("price_forecast", {"symbol": "ETH/USDT", "horizon": "24h"})
        except ToolCallError as exc:
            return [Hold(reason=str(exc))]
        intents: list[object] = []
        if (
            forecast.expected_price > forecast.last_price
            and observation.portfolio.free("USDT") > 100
        ):
            intents.append(
                PlaceOrder(
                    symbol="ETH/USDT",
                    side="buy",
                    amount_fraction=0.05,
                    reason="forecast up",
                    topics=(RETURN_24H,),
                )
            )
        reserves = observation.portfolio.lending.reserves
        if reserves["ETH"].supplied == 0:
            intents.append(Supply(asset="ETH", amount=1.0, reason="collateral"))
        elif reserves["USDT"].debt == 0:
            intents.append(Borrow(asset="USDT", amount=100.0, reason="carry"))
        return intents
