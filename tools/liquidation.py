"""liquidation_risk: how close an Aave-style loan is to liquidation, and what would fix it.

One volatile collateral against debt in the pair's quote currency (a stablecoin at 1). The
probability of liquidation is the first passage of a driftless GBM through the liquidation price
within the horizon (FORMULAS.md C3), with sigma the network's volatility forecast: driftless on
purpose, a bullish forecast should not talk a model out of protecting a loan. Interest accrual
over the horizon is ignored (negligible for hours or days).
"""

from __future__ import annotations

import math
from typing import Self

from pydantic import BaseModel, Field, model_validator

from defai.defi.lending import (
    borrowing_power,
    health_factor,
    liquidation_drop,
    liquidation_price,
    liquidation_probability_gbm,
)
from defai.errors import NetworkError
from tools._base import DefaiTool, Horizon, InferenceSummary, Symbol, horizon_years


class LiquidationRiskArgs(BaseModel):
    symbol: Symbol = Field(
        description="Collateral's market symbol, priced in the debt's currency: 'ETH/USDT' "
        "for ETH collateral against USDT debt."
    )
    collateral_amount: float = Field(gt=0, description="Collateral held, whole tokens.")
    debt: float = Field(gt=0, description="Debt outstanding, quote units.")
    liquidation_threshold: float = Field(
        gt=0, le=1, description="Collateral's liquidation threshold as a fraction (0.825)."
    )
    ltv: float | None = Field(
        default=None, ge=0, lt=1, description="Optional max loan-to-value, below the threshold."
    )
    horizon: Horizon = "24h"
    target_health_factor: float = Field(
        default=1.5, gt=1, le=100, description="Health factor the repay suggestions aim for."
    )

    @model_validator(mode="after")
    def _ltv_below_threshold(self) -> Self:
        if self.ltv is not None and self.ltv >= self.liquidation_threshold:
            raise ValueError(
                f"ltv {self.ltv} must be below the liquidation threshold "
                f"{self.liquidation_threshold}"
            )
        return self


class LiquidationRiskResult(BaseModel):
    symbol: str
    price: float = Field(description="Collateral price now (last closed candle).")
    collateral_value: float
    debt: float
    health_factor: float
    liquidatable: bool = Field(description="Health factor below 1 now.")
    liquidation_price: float = Field(description="Collateral price at which HF reaches 1.")
    drop_to_liquidation_pct: float = Field(
        description="Price fall to liquidation, percent (negative: already liquidatable)."
    )
    current_ltv: float = Field(description="debt / collateral_value.")
    available_borrows: float | None = Field(description="Borrowing power left (needs ltv).")
    horizon: str
    horizon_volatility: float = Field(description="Network forecast over the horizon.")
    annualised_volatility: float
    liquidation_probability: float = Field(
        description="P(price touches the liquidation price within the horizon), driftless GBM."
    )
    target_health_factor: float
    repay_to_target: float = Field(description="Debt to repay (quote) to reach the target HF.")
    sell_to_target: float | None = Field(
        description="Alternatively: collateral to sell (tokens) and repay with; null when "
        "selling collateral cannot raise the HF (collateral worth no more than the debt)."
    )
    sell_to_target_value: float | None = Field(description="sell_to_target in quote units.")
    inferences: list[InferenceSummary]


class LiquidationRiskTool(DefaiTool[LiquidationRiskArgs, LiquidationRiskResult]):
    name: str = "liquidation_risk"
    description: str = (
        "Liquidation risk of a lending position (one collateral, debt in the quote currency): "
        "health factor at the current price, liquidation price and the drop to it, the "
        "probability of liquidation within the horizon from the network's volatility "
        "forecast, and the repayment (or collateral sale) that restores a target health "
        "factor. Read-only."
    )
    args_schema: type[BaseModel] = LiquidationRiskArgs

    def _answer(self, args: LiquidationRiskArgs) -> LiquidationRiskResult:
        price = self.market.last_price(args.symbol)
        reading = self.read_fresh(args.symbol, "volatility", args.horizon)
        volatility = reading.inference.value
        if not volatility > 0:
            raise NetworkError(
                f"topic {reading.topic!r} forecasts zero volatility: no liquidation probability "
                "can be derived from it"
            )
        value = args.collateral_amount * price
        collateral, thresholds = [value], [args.liquidation_threshold]
        hf = health_factor(collateral, thresholds, args.debt)
        years = horizon_years(args.horizon)
        annual = volatility / math.sqrt(years)
        target = args.target_health_factor
        weighted = value * args.liquidation_threshold
        # HF = weighted / debt: repaying R gives weighted / (debt - R); selling X of collateral
        # to repay X gives (weighted - X * LT) / (debt - X). Both solved for HF = target.
        repay = max(0.0, args.debt - weighted / target)
        sell_value: float | None = None
        if hf >= target:
            sell_value = 0.0
        elif value > args.debt:
            sell_value = (target * args.debt - weighted) / (target - args.liquidation_threshold)
        return LiquidationRiskResult(
            symbol=args.symbol,
            price=price,
            collateral_value=value,
            debt=args.debt,
            health_factor=hf,
            liquidatable=hf < 1,
            liquidation_price=liquidation_price(price, collateral, thresholds, args.debt, 0),
            drop_to_liquidation_pct=100
            * liquidation_drop(collateral, thresholds, args.debt, [True]),
            current_ltv=args.debt / value,
            available_borrows=None
            if args.ltv is None
            else borrowing_power(collateral, [args.ltv], args.debt),
            horizon=args.horizon,
            horizon_volatility=volatility,
            annualised_volatility=annual,
            liquidation_probability=liquidation_probability_gbm(hf, annual, years),
            target_health_factor=target,
            repay_to_target=repay,
            sell_to_target=None if sell_value is None else sell_value / price,
            sell_to_target_value=sell_value,
            inferences=[InferenceSummary.of(reading)],
        )
