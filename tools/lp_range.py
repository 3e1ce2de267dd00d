"""lp_range: a Uniswap v3 range sized from the network's forecast, with its fees against its IL.

The horizon's log-return R is taken as normal (see `ReturnDistribution`): mean from the
log-return topic, variance = volatility topic^2 + (std fitted to the log-return CI)^2. The range
is R's equal-tailed `target_probability` interval around the current price, rounded outward to
the fee tier's tick spacing, so the achieved probability is at least the target. Fees accrue
only while the price is inside: their expectation uses the expected share of the horizon spent
inside (Brownian path), IL uses the distribution of the price at the horizon.
"""

from __future__ import annotations

import math
from typing import Literal, Self

from pydantic import BaseModel, Field, model_validator
from scipy.special import ndtr, ndtri

from defai.defi.uniswap_v3 import (
    FEE_PIPS_DENOMINATOR,
    FEE_TIER_TICK_SPACING,
    price_range_to_ticks,
    tick_to_price,
)
from defai.defi.uniswap_v3_lp import impermanent_loss_range, range_amounts
from defai.types import timeframe_ms
from tools._base import DAY_MS, DefaiTool, Horizon, InferenceSummary, Symbol, horizon_years
from tools._quadrature import normal_expectation, occupation_fraction


class LpRangeArgs(BaseModel):
    symbol: Symbol
    fee_tier: Literal[100, 500, 3000, 10000] = Field(
        description="Pool fee in pips: 100 = 0.01%, 500 = 0.05%, 3000 = 0.3%, 10000 = 1%."
    )
    capital: float = Field(
        gt=0, description="Capital to deposit, in quote units (USDT for ETH/USDT)."
    )
    horizon: Horizon = "24h"
    target_probability: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="Wanted probability that the price is inside the range at the horizon.",
    )
    token0_decimals: int = Field(
        default=18, ge=0, le=36, description="Decimals of the pool's token0."
    )
    token1_decimals: int = Field(
        default=6, ge=0, le=36, description="Decimals of the pool's token1."
    )
    inverted: bool = Field(
        default=False,
        description="False if the pool's token0 is the pair's base (pool price = quote per "
        "base, e.g. WETH/USDT); true if token0 is the quote (e.g. USDC/WETH).",
    )
    fee_apr: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Fee assumption A: yearly fees this range earns while in range, as a "
        "fraction of its capital (0.25 = 25%). Give this, or daily_volume and pool_liquidity.",
    )
    daily_volume: float | None = Field(
        default=None, gt=0, description="Fee assumption B: pool volume per day in quote units."
    )
    pool_liquidity: float | None = Field(
        default=None,
        gt=0,
        description="Fee assumption B: the pool's active liquidity L in raw units (as the "
        "pool contract's liquidity() returns), assumed the same across the range.",
    )

    @model_validator(mode="after")
    def _one_fee_assumption(self) -> Self:
        apr = self.fee_apr is not None
        volume = (self.daily_volume is not None, self.pool_liquidity is not None)
        if not ((apr and not any(volume)) or (not apr and all(volume))):
            raise ValueError(
                "give exactly one fee assumption: fee_apr, or both daily_volume and pool_liquidity"
            )
        return self


class LpRangeResult(BaseModel):
    symbol: str
    horizon: str
    fee_tier: int
    tick_spacing: int
    price: float = Field(description="Current price, quote per base (assumed the pool's too).")
    mean_log_return: float
    sigma_log_return: float = Field(description="Total spread of the horizon log-return.")
    network_volatility: float = Field(description="The volatility topic's forecast.")
    model_disagreement: float = Field(description="Std fitted to the log-return topic's CI.")
    tick_lower: int
    tick_upper: int
    price_lower: float = Field(description="Range bound after rounding, quote per base.")
    price_upper: float
    price_in_range: bool
    target_probability: float
    in_range_probability: float = Field(description="P(price inside at the horizon), rounded.")
    expected_time_in_range: float = Field(description="Expected share of the horizon inside.")
    fee_assumption: str
    expected_fee_return: float = Field(description="Fees over the horizon / capital.")
    expected_fee_income: float = Field(description="Quote units.")
    expected_impermanent_loss: float = Field(
        description="E[IL] at the horizon vs holding the deposited tokens (<= 0), fraction."
    )
    expected_il_quote: float = Field(description="capital * expected_impermanent_loss.")
    expected_net_return: float = Field(description="expected_fee_return + E[IL].")
    token0: str
    token1: str
    amount0: float = Field(description="token0 to deposit, whole tokens.")
    amount1: float = Field(description="token1 to deposit, whole tokens.")
    liquidity: float = Field(description="The position's liquidity L in raw units.")
    inferences: list[InferenceSummary]


class LpRangeTool(DefaiTool[LpRangeArgs, LpRangeResult]):
    name: str = "lp_range"
    description: str = (
        "Sizes a Uniswap v3 LP range for a pair and fee tier from the network's return and "
        "volatility forecasts so the price stays inside with a target probability: tick "
        "bounds, achieved probability, expected fees against expected impermanent loss, and "
        "the token amounts to deposit for a capital. Needs one explicit fee assumption. "
        "Read-only: it opens nothing."
    )
    args_schema: type[BaseModel] = LpRangeArgs

    def _answer(self, args: LpRangeArgs) -> LpRangeResult:
        price = self.market.last_price(args.symbol)
        distribution = self.return_distribution(args.symbol, args.horizon)
        mean, std = distribution.forecast.mean, distribution.forecast.std
        half_width = std * float(ndtri((1 + args.target_probability) / 2))
        wanted = (price * math.exp(mean - half_width), price * math.exp(mean + half_width))
        tick_lower, tick_upper, lower, upper = _usable_range(args, *wanted)
        log_lower, log_upper = math.log(lower / price), math.log(upper / price)

        expected_il = normal_expectation(
            lambda r: impermanent_loss_range(price, price * math.exp(r), lower, upper),
            mean,
            std,
            kinks=(log_lower, log_upper),
        )
        time_in_range = occupation_fraction(log_lower, log_upper, mean, std)

        # Pair orientation (base, quote) is the pool's own curve with the tokens relabelled.
        unit_base, unit_quote = range_amounts(1.0, price, lower, upper)
        scale = args.capital / (unit_base * price + unit_quote)
        base_amount, quote_amount = scale * unit_base, scale * unit_quote
        # human L -> raw: sqrt(10^d0 * 10^d1)
        liquidity = scale * 10 ** ((args.token0_decimals + args.token1_decimals) / 2)
        fee_return, assumption = _expected_fee_return(args, liquidity, time_in_range)

        base, quote = args.symbol.split("/")
        pool_tokens = (quote, base) if args.inverted else (base, quote)
        pool_amounts = (quote_amount, base_amount) if args.inverted else (base_amount, quote_amount)
        return LpRangeResult(
            symbol=args.symbol,
            horizon=args.horizon,
            fee_tier=args.fee_tier,
            tick_spacing=FEE_TIER_TICK_SPACING[args.fee_tier],
            price=price,
            mean_log_return=mean,
            sigma_log_return=std,
            network_volatility=distribution.volatility,
            model_disagreement=distribution.disagreement,
            tick_lower=tick_lower,
            tick_upper=tick_upper,
            price_lower=lower,
            price_upper=upper,
            price_in_range=lower < price < upper,
            target_probability=args.target_probability,
            in_range_probability=float(
                ndtr((log_upper - mean) / std) - ndtr((log_lower - mean) / std)
            ),
            expected_time_in_range=time_in_range,
            fee_assumption=assumption,
            expected_fee_return=fee_return,
            expected_fee_income=fee_return * args.capital,
            expected_impermanent_loss=expected_il,
            expected_il_quote=expected_il * args.capital,
            expected_net_return=fee_return + expected_il,
            token0=pool_tokens[0],
            token1=pool_tokens[1],
            amount0=pool_amounts[0],
            amount1=pool_amounts[1],
            liquidity=liquidity,
            inferences=distribution.inferences,
        )


def _usable_range(args: LpRangeArgs, low: float, high: float) -> tuple[int, int, float, float]:
    """(tick_lower, tick_upper, price_lower, price_upper): the smallest usable tick range that
    contains the pair-price interval [low, high], and its bounds as pair prices."""
    spacing = FEE_TIER_TICK_SPACING[args.fee_tier]
    decimals = (args.token0_decimals, args.token1_decimals)
    if args.inverted:  # pool price is base per quote: the low pair price is the upper tick
        tick_lower, tick_upper = price_range_to_ticks(1 / high, 1 / low, spacing, *decimals)
        return (
            tick_lower,
            tick_upper,
            1 / tick_to_price(tick_upper, *decimals),
            1 / tick_to_price(tick_lower, *decimals),
        )
    tick_lower, tick_upper = price_range_to_ticks(low, high, spacing, *decimals)
    return (
        tick_lower,
        tick_upper,
        tick_to_price(tick_lower, *decimals),
        tick_to_price(tick_upper, *decimals),
    )


def _expected_fee_return(
    args: LpRangeArgs, liquidity: float, time_in_range: float
) -> tuple[float, str]:
    """Fees over the horizon as a fraction of capital, under the caller's fee assumption, and
    that assumption in words. Fees accrue only for the expected time in range."""
    if args.fee_apr is not None:
        return (
            args.fee_apr * horizon_years(args.horizon) * time_in_range,
            f"fee_apr {args.fee_apr:g} of capital per year while in range",
        )
    assert args.daily_volume is not None and args.pool_liquidity is not None  # the validator
    share = liquidity / (args.pool_liquidity + liquidity)
    days = timeframe_ms(args.horizon) / DAY_MS
    fee_rate = args.fee_tier / FEE_PIPS_DENOMINATOR
    income = fee_rate * args.daily_volume * days * share * time_in_range
    return income / args.capital, (
        f"daily_volume {args.daily_volume:g} at fee {args.fee_tier} pips, position share "
        f"{share:.4g} of the active liquidity while in range"
    )
