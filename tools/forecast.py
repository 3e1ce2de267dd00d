"""price_forecast and volatility_forecast: the network's answer with its uncertainty and age.

Integrations usually hand a model one number; these return the confidence interval, how many
workers stand behind it and how concentrated their weights are, and whether it is stale, so
the model can tell a confident, fresh consensus from one worker's guess of an hour ago.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from tools._base import DefaiTool, Horizon, InferenceSummary, Symbol, horizon_years


class PriceForecastArgs(BaseModel):
    symbol: Symbol
    horizon: Horizon = "1h"
    target: Literal["log_return", "price"] = Field(
        default="log_return",
        description="Which topic to read: the predicted log-return (default) or price.",
    )


class PriceForecastResult(BaseModel):
    symbol: str
    horizon: str
    target: str
    inference: InferenceSummary
    last_price: float = Field(description="Last closed candle's close, quote per base.")
    expected_price: float = Field(description="Price the forecast's central value implies.")
    ci_prices: list[float] = Field(description="Price at each CI percentile of the inference.")
    price_low: float | None = Field(description="Price at the lowest CI percentile.")
    price_high: float | None = Field(description="Price at the highest CI percentile.")


class VolatilityForecastArgs(BaseModel):
    symbol: Symbol
    horizon: Horizon = "24h"


class VolatilityForecastResult(BaseModel):
    symbol: str
    horizon: str
    inference: InferenceSummary
    horizon_volatility: float = Field(
        description="Predicted realised volatility over the horizon (sqrt of the sum of "
        "squared candle log-returns), not annualised."
    )
    annualised_volatility: float = Field(description="horizon_volatility / sqrt(horizon in years).")


class PriceForecastTool(DefaiTool[PriceForecastArgs, PriceForecastResult]):
    name: str = "price_forecast"
    description: str = (
        "The inference network's forecast of a symbol's price over a horizon: expected price, "
        "price range implied by the confidence interval, how many workers agree and how "
        "concentrated their weights are, and whether the forecast is stale (do not act on a "
        "stale one). Read-only."
    )
    args_schema: type[BaseModel] = PriceForecastArgs

    def _answer(self, args: PriceForecastArgs) -> PriceForecastResult:
        last_price = self.market.last_price(args.symbol)
        reading = self.read(args.symbol, args.target, args.horizon)
        inference = reading.inference
        if args.target == "log_return":
            expected_price = last_price * math.exp(inference.value)
            ci_prices = [last_price * math.exp(v) for v in inference.ci_values]
        else:
            expected_price = inference.value
            ci_prices = list(inference.ci_values)
        return PriceForecastResult(
            symbol=args.symbol,
            horizon=args.horizon,
            target=args.target,
            inference=InferenceSummary.of(reading),
            last_price=last_price,
            expected_price=expected_price,
            ci_prices=ci_prices,
            price_low=min(ci_prices, default=None),
            price_high=max(ci_prices, default=None),
        )


class VolatilityForecastTool(DefaiTool[VolatilityForecastArgs, VolatilityForecastResult]):
    name: str = "volatility_forecast"
    description: str = (
        "The inference network's forecast of a symbol's realised volatility over a horizon, "
        "also annualised, with its confidence interval, worker concentration and staleness. "
        "Read-only."
    )
    args_schema: type[BaseModel] = VolatilityForecastArgs

    def _answer(self, args: VolatilityForecastArgs) -> VolatilityForecastResult:
        reading = self.read(args.symbol, "volatility", args.horizon)
        value = reading.inference.value
        return VolatilityForecastResult(
            symbol=args.symbol,
            horizon=args.horizon,
            inference=InferenceSummary.of(reading),
            horizon_volatility=value,
            annualised_volatility=value / math.sqrt(horizon_years(args.horizon)),
        )
