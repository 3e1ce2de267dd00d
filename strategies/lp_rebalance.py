"""LPRebalance: keep one Uniswap v3 range where the network expects the price to stay.

Each tick the `lp_range` tool sizes the range for the target in-range probability from the
24h return and volatility forecasts. With no range on the pool, the strategy swaps the wallet
to the token ratio that range needs (MEV-checked) and, once the wallet holds it, opens the
range. A range the price has left, or whose centre is more than `recentre_sigmas` forecast
sigmas from the one the tool recommends now, is closed; the next tick opens the new one.

One step per tick, by design: the RiskGuard reviews a batch against this tick's balances, and the
tokens a close or a swap returns are not spendable until the venue has paid them. Everything is
derived from the portfolio, so a restarted agent resumes where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from defai.agent.intents import WALLET, CloseLPRange, Hold, OpenLPRange
from defai.agent.observation import LPPosition, Observation, Portfolio
from defai.agent.toolbox import ToolBox, ToolCallError
from defai.defi.uniswap_v3 import FEE_TIER_TICK_SPACING
from defai.network.local import topic_name
from strategies._common import SwapRules, call_tool, guarded_swap, require, topics_of
from tools.lp_range import LpRangeResult


@dataclass(frozen=True, slots=True)
class LPRebalance:
    """A forecast-sized Uniswap v3 range on one pool, re-centred when the forecast moves on."""

    name: ClassVar[str] = "lp_rebalance"
    venues: ClassVar[tuple[str, ...]] = ("amm",)
    """The venues it trades on: a backtest funds only these."""

    pair: str = "ETH/USDT"
    """Pool pair BASE/QUOTE; the base is the pool's token0 (the paper AMM's convention)."""
    fee_tier: int = 3000
    """Pool fee in pips; swaps to the range's token ratio go through the same pool."""
    horizon: str = "24h"
    """Forecast horizon the range is sized for (the network serves 24h return and volatility)."""
    target_probability: float = 0.8
    """Wanted probability that the price is still inside the range at the horizon."""
    capital_fraction: float = 0.9
    """Share of (free base + free quote + open ranges) to provide; the rest pays gas and fees,
    and keeps one token in surplus so one swap reaches the range's ratio."""
    min_capital: float = 100.0
    """Quote value below which no range is opened: the gas would eat the fees."""
    recentre_sigmas: float = 1.0
    """Re-centre when the recommended centre moved more than this many horizon sigmas of the
    forecast log-return from the open range's centre (geometric means of the bounds)."""
    ratio_tolerance: float = 0.02
    """Open once the wallet funds at least (1 - this) of the capital at the range's ratio; a
    swap leaves the wallet short by its fee, which must not trigger another swap."""
    fee_apr: float = 0.2
    """The lp_range tool's fee assumption (yearly fees while in range / capital): it sets the
    expected fee income the strategy reports, not the range."""
    base_decimals: int = 18
    """Decimals of the base token: ticks are rounded as the pool rounds them."""
    quote_decimals: int = 6
    """Decimals of the quote token."""
    swaps: SwapRules = field(default_factory=SwapRules)
    """Slippage and pool model for the MEV-checked swaps."""

    def __post_init__(self) -> None:
        require(self, self.fee_tier in FEE_TIER_TICK_SPACING, "fee_tier must be a v3 fee tier")
        require(self, 0 < self.target_probability < 1, "target_probability must be in (0, 1)")
        # at most 1: then one token is always in surplus and one swap reaches the ratio
        require(self, 0 < self.capital_fraction <= 1, "capital_fraction must be in (0, 1]")
        require(self, self.recentre_sigmas > 0, "recentre_sigmas must be > 0")
        require(self, 0 <= self.ratio_tolerance < 1, "ratio_tolerance must be in [0, 1)")

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.pair,)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(topic_name(self.pair, t, self.horizon) for t in ("log_return", "volatility"))

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        price = observation.prices.get(self.pair, math.nan)
        if not (math.isfinite(price) and price > 0):
            return [Hold(reason=f"no usable {self.pair} price ({price!r}): nothing to size")]
        portfolio = observation.portfolio
        ranges = [
            p for p in portfolio.lp_positions if p.pair == self.pair and p.fee_tier == self.fee_tier
        ]
        base, quote = self.pair.split("/")
        wallet = portfolio.free(base, WALLET) * price + portfolio.free(quote, WALLET)
        capital = self.capital_fraction * (wallet + sum(p.value for p in ranges))
        if capital < self.min_capital:
            return [Hold(reason=f"{capital:,.2f} {quote} to provide, below {self.min_capital:g}")]
        try:
            plan = call_tool(toolbox, "lp_range", self._range_args(capital), LpRangeResult)
        except ToolCallError as exc:
            return [Hold(reason=f"no range without a forecast: {exc}")]
        if ranges:
            return self._recentre(ranges, price, plan)
        if not plan.price_lower <= price < plan.price_upper:
            # a range the price is not in earns no fee and would be closed next tick
            bounds = f"[{plan.price_lower:,.2f}, {plan.price_upper:,.2f}]"
            return [
                Hold(
                    reason=f"the forecast's range {bounds} does not hold the price {price:,.2f}",
                    topics=topics_of(plan.inferences),
                )
            ]
        return self._open(portfolio, price, capital, plan, toolbox)

    def _range_args(self, capital: float) -> dict[str, object]:
        return {
            "symbol": self.pair,
            "fee_tier": self.fee_tier,
            "capital": capital,
            "horizon": self.horizon,
            "target_probability": self.target_probability,
            "token0_decimals": self.base_decimals,
            "token1_decimals": self.quote_decimals,
            "fee_apr": self.fee_apr,
        }

    def _recentre(
        self, ranges: list[LPPosition], price: float, plan: LpRangeResult
    ) -> list[object]:
        """Close every range the price left or the forecast moved away from; else hold."""
        topics = topics_of(plan.inferences)
        wanted = _centre(plan.price_lower, plan.price_upper)
        closes: list[object] = []
        notes = []
        for position in ranges:
            bounds = f"[{position.lower_price:,.2f}, {position.upper_price:,.2f}]"
            centre = _centre(position.lower_price, position.upper_price)
            shift = abs(math.log(wanted / centre)) / plan.sigma_log_return
            if not position.lower_price <= price < position.upper_price:
                why = f"price {price:,.2f} left range {position.id} {bounds}"
            elif shift > self.recentre_sigmas:
                why = (
                    f"forecast centre {wanted:,.2f} is {shift:.2f} sigma from range "
                    f"{position.id} {bounds} (limit {self.recentre_sigmas:g})"
                )
            else:
                notes.append(f"range {position.id} {bounds} holds {price:,.2f}, {shift:.2f} sigma")
                continue
            closes.append(CloseLPRange(position_id=position.id, reason=why, topics=topics))
        return closes or [Hold(reason="; ".join(notes), topics=topics)]

    def _open(
        self,
        portfolio: Portfolio,
        price: float,
        capital: float,
        plan: LpRangeResult,
        toolbox: ToolBox,
    ) -> list[object]:
        """Open the planned range if the wallet funds it at its token ratio, else swap toward
        that ratio: whichever token is short, the other (the surplus) pays for it."""
        topics = topics_of(plan.inferences)
        base, quote = self.pair.split("/")
        have_base, have_quote = portfolio.free(base, WALLET), portfolio.free(quote, WALLET)
        need_base, need_quote = plan.amount0, plan.amount1
        funded = capital * min(
            have_base / need_base if need_base > 0 else math.inf,
            have_quote / need_quote if need_quote > 0 else math.inf,
            1.0,
        )
        bounds = f"[{plan.price_lower:,.2f}, {plan.price_upper:,.2f}]"
        if funded >= (1 - self.ratio_tolerance) * capital:
            reason = (
                f"no {self.pair} range: open {bounds} with {funded:,.2f} {quote}, "
                f"P(in range at {plan.horizon}) {plan.in_range_probability:.0%}, expected net "
                f"return {plan.expected_net_return:+.3%} (fees at fee_apr {self.fee_apr:g})"
            )
            return [
                OpenLPRange(
                    pair=self.pair,
                    fee_tier=self.fee_tier,
                    lower_price=plan.price_lower,
                    upper_price=plan.price_upper,
                    capital=funded,
                    reason=reason,
                    topics=topics,
                )
            ]
        side: Literal["buy", "sell"]
        if have_base < need_base:
            short, side, amount_in = base, "buy", (need_base - have_base) * price
        else:
            short, side, amount_in = quote, "sell", (need_quote - have_quote) / price
        reason = (
            f"range {bounds} needs {need_base:.6g} {base} + {need_quote:,.2f} {quote}; "
            f"the wallet is short of {short}"
        )
        return guarded_swap(
            toolbox,
            self.swaps,
            pair=self.pair,
            side=side,
            amount_in=amount_in,
            price=price,
            fee_tier=self.fee_tier,
            reason=reason,
            topics=topics,
        )


def _centre(lower: float, upper: float) -> float:
    """A range's centre in log-price (the geometric mean of its bounds)."""
    return math.sqrt(lower * upper)
