"""leverage_advisor: how much to lever a supply/borrow loop, from the forecast and a HF floor.

Fractional Kelly (Merton: (mu - r_borrow) / sigma^2 times a fraction) on the network's return
distribution (see `ReturnDistribution`), with mu the forecast's arithmetic drift plus the
collateral's supply and staking yield, then capped by the health-factor floor (L = HF/(HF - LT))
and, when an LTV is given, by the most that looping can reach (1/(1 - LTV)). A loop cannot go
short, so a Kelly below 1 means: do not borrow. The forecast's mean is annualised from the
horizon, so a short horizon's small edge becomes a large yearly drift: the caps usually bind.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, model_validator

from defai.defi.lending import liquidation_drop, liquidation_probability_gbm
from defai.defi.sizing import (
    carry_return,
    fractional_kelly,
    health_factor_at_leverage,
    kelly_leverage,
    leverage_for_health_factor,
    log_growth_rate,
    max_loop_leverage,
)
from tools._base import DefaiTool, Horizon, InferenceSummary, Symbol

Rate = Annotated[float, Field(ge=-1, le=10, description="Yearly rate as a fraction (0.03 = 3%).")]


class LeverageAdvisorArgs(BaseModel):
    symbol: Symbol = Field(description="Collateral's market symbol, e.g. 'ETH/USDT'.")
    liquidation_threshold: float = Field(
        gt=0, le=1, description="Collateral's liquidation threshold as a fraction (0.825)."
    )
    horizon: Horizon = "24h"
    min_health_factor: float = Field(
        default=1.5, gt=1, le=100, description="Health-factor floor the leverage must respect."
    )
    kelly_fraction: float = Field(
        default=0.5, gt=0, le=1, description="Share of full Kelly to take (0.5 = half Kelly)."
    )
    supply_rate: Rate
    borrow_rate: Rate
    staking_rate: float = Field(
        default=0.0, ge=-1, le=10, description="Collateral's own yearly yield (LSTs), fraction."
    )
    ltv: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Optional LTV: caps leverage at the loop limit 1/(1-LTV).",
    )

    @model_validator(mode="after")
    def _ltv_below_threshold(self) -> Self:
        if self.ltv is not None and self.ltv >= self.liquidation_threshold:
            raise ValueError("ltv must be below the liquidation threshold")
        return self


class LeverageAdvisorResult(BaseModel):
    symbol: str
    horizon: str
    expected_return: float = Field(description="Yearly arithmetic drift incl. yields.")
    volatility: float = Field(description="Yearly sigma of the forecast distribution.")
    kelly_leverage: float = Field(description="Full Kelly; below 1 means do not borrow.")
    fractional_kelly: float
    health_factor_cap: float = Field(description="Most leverage the HF floor allows.")
    ltv_cap: float | None = Field(description="Loop limit 1/(1-LTV) when ltv is given.")
    target_leverage: float = Field(description="Collateral / equity to hold (1 = no debt).")
    binding: Literal["kelly", "health_factor", "ltv", "no_leverage"] = Field(
        description="What sets target_leverage."
    )
    health_factor: float | None = Field(description="HF at the target (null: no debt).")
    drop_to_liquidation_pct: float
    liquidation_probability: float = Field(
        description="P(liquidated within the horizon) at the target, driftless GBM."
    )
    carry_return: float = Field(description="Yearly return on equity from rates alone.")
    expected_log_growth: float = Field(description="Yearly expected log growth of equity.")
    inferences: list[InferenceSummary]


class LeverageAdvisorTool(DefaiTool[LeverageAdvisorArgs, LeverageAdvisorResult]):
    name: str = "leverage_advisor"
    description: str = (
        "Recommends the leverage of a supply/borrow loop on a collateral: fractional Kelly "
        "from the network's return and volatility forecasts, capped by a health-factor floor "
        "(and the LTV loop limit), with the resulting health factor, liquidation probability "
        "over the horizon, carry from supply/borrow rates, and which cap binds. Read-only."
    )
    args_schema: type[BaseModel] = LeverageAdvisorArgs

    def _answer(self, args: LeverageAdvisorArgs) -> LeverageAdvisorResult:
        self.market.last_price(args.symbol)  # an unknown symbol or unusable price stops here
        distribution = self.return_distribution(args.symbol, args.horizon)
        forecast = distribution.forecast
        mu = forecast.expected_return + args.supply_rate + args.staking_rate
        sigma = forecast.volatility
        kelly = kelly_leverage(mu, sigma, args.borrow_rate)
        hf_cap = leverage_for_health_factor(args.min_health_factor, args.liquidation_threshold)
        ltv_cap = None if args.ltv is None else max_loop_leverage(args.ltv)
        cap = min(hf_cap, ltv_cap or math.inf)
        wanted = args.kelly_fraction * kelly
        leverage = max(1.0, fractional_kelly(kelly, args.kelly_fraction, cap))
        binding: Literal["kelly", "health_factor", "ltv", "no_leverage"]
        if wanted <= 1:
            binding = "no_leverage"
        elif wanted <= cap:
            binding = "kelly"
        else:
            binding = "health_factor" if cap == hf_cap else "ltv"
        hf = health_factor_at_leverage(leverage, args.liquidation_threshold)
        drop = liquidation_drop([leverage], [args.liquidation_threshold], leverage - 1, [True])
        return LeverageAdvisorResult(
            symbol=args.symbol,
            horizon=args.horizon,
            expected_return=mu,
            volatility=sigma,
            kelly_leverage=kelly,
            fractional_kelly=wanted,
            health_factor_cap=hf_cap,
            ltv_cap=ltv_cap,
            target_leverage=leverage,
            binding=binding,
            health_factor=hf if math.isfinite(hf) else None,
            drop_to_liquidation_pct=100 * drop,
            liquidation_probability=liquidation_probability_gbm(hf, sigma, forecast.horizon_years),
            carry_return=carry_return(
                leverage, args.supply_rate, args.borrow_rate, args.staking_rate
            ),
            expected_log_growth=log_growth_rate(leverage, mu, sigma, args.borrow_rate),
            inferences=distribution.inferences,
        )
