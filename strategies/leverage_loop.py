"""LeverageLoop: an Aave-style supply/borrow loop on one collateral, levered as the forecast allows.

Supply the collateral, borrow the debt asset, swap it into more collateral, supply that, and so
on, up to the leverage `leverage_advisor` recommends (fractional Kelly capped by the health-factor
floor and the LTV loop limit), capped again by `max_leverage`. It unwinds (withdraw collateral,
swap it into the debt asset, repay) when `liquidation_risk` puts the probability of liquidation
within the horizon above `max_liquidation_probability`, when the health factor falls below
`health_factor_floor`, or when the recommended leverage falls below the current one.

One step per tick, by design: the RiskGuard reviews a batch against this tick's balances (a
borrowed or withdrawn token is not spendable until the venue has paid it), and each step's size
depends on the previous fill. The state is read from the portfolio each tick, never remembered:
free debt-asset cash (up to the debt) is borrowed money on its way to a swap or a repayment, free
collateral is on its way to the pool or to a sale. The health-factor floor needs no forecast, so
a stale network blocks building, never unwinding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from scipy.optimize import brentq

from defai.agent.intents import (
    WALLET,
    Borrow,
    Hold,
    Refusal,
    Repay,
    Supply,
    Withdraw,
    account_summary,
)
from defai.agent.observation import Observation, Reserve
from defai.agent.toolbox import ToolBox, ToolCallError
from defai.defi.lending import liquidation_probability_gbm
from defai.defi.sizing import leverage_for_health_factor
from defai.execution.lending import DEFAULT_RESERVES
from defai.network.local import topic_name
from strategies._common import (
    SwapRules,
    call_tool,
    guarded_swap,
    horizon_years,
    require,
    topics_of,
)
from tools.leverage import LeverageAdvisorResult
from tools.liquidation import LiquidationRiskResult


@dataclass(frozen=True, slots=True)
class _Loop:
    """The loop as the portfolio shows it, values in the quote. `cash` (free debt asset, at most
    the debt) and `loose` (free collateral) are in flight between the pool and the wallet."""

    collateral: Reserve
    debt: Reserve
    cash: float  # debt-asset tokens
    loose: float  # collateral tokens
    health_factor: float
    available_borrows: float

    @property
    def exposure(self) -> float:
        return (self.collateral.supplied + self.loose) * self.collateral.price

    @property
    def net_debt(self) -> float:
        return (self.debt.debt - self.cash) * self.debt.price

    @property
    def equity(self) -> float:
        return self.exposure - self.net_debt

    @property
    def leverage(self) -> float:
        return self.exposure / self.equity


@dataclass(frozen=True, slots=True)
class LeverageLoop:
    """A supply/borrow/swap loop at the advised leverage, unwound when liquidation risk rises."""

    name: ClassVar[str] = "leverage_loop"
    venues: ClassVar[tuple[str, ...]] = ("amm", "lending")
    """The venues it trades on: a backtest funds only these."""

    collateral: str = "ETH"
    """Asset supplied; all of the wallet's free balance of it is the loop's capital."""
    debt_asset: str = "USDT"
    """Asset borrowed and swapped into collateral on the COLLATERAL/DEBT pool."""
    horizon: str = "24h"
    """Horizon of the forecasts and of the liquidation probability."""
    kelly_fraction: float = 0.5
    """Share of full Kelly the advisor aims for (before its caps)."""
    max_leverage: float = 2.0
    """Hard cap on collateral / equity, whatever the advisor says."""
    min_health_factor: float = 1.8
    """The loop is built no lower: the advisor's floor, each borrow's bound, the unwind target."""
    health_factor_floor: float = 1.6
    """Unwind below this health factor, forecast or not."""
    max_liquidation_probability: float = 0.01
    """Unwind when liquidation_risk's P(liquidated within the horizon) exceeds this."""
    withdraw_health_factor: float = 1.5
    """Lowest health factor an unwinding withdrawal may leave: keep it at or above the
    RiskGuard's min_health_factor (1.5 by default), which refuses any withdrawal below it."""
    leverage_band: float = 0.1
    """Rebuild or unwind only when the leverage is this far from the target (no churning)."""
    min_trade_value: float = 10.0
    """Steps worth less than this (quote) are dust, not worth their gas."""
    gas_reserve: float = 10.0
    """Debt-asset tokens left in the wallet to pay gas (the paper AMM charges 5 quote per
    action): borrowed cash is swapped or repaid only above it."""
    supply_rate: float = DEFAULT_RESERVES["ETH"].supply_rate
    """Collateral's supply APR; the observation carries no rates (paper venue's ETH rate)."""
    borrow_rate: float = DEFAULT_RESERVES["USDT"].borrow_rate
    """Debt asset's borrow APR (paper venue's USDT rate)."""
    staking_rate: float = 0.0
    """Collateral's own yield (liquid staking tokens)."""
    swap_fee_tier: int = 3000
    """Fee tier (pips) of the pool the loop swaps on."""
    swaps: SwapRules = field(default_factory=SwapRules)
    """Slippage and pool model for the MEV-checked swaps."""

    def __post_init__(self) -> None:
        require(
            self,
            1 < self.withdraw_health_factor < self.health_factor_floor < self.min_health_factor,
            "need 1 < withdraw_health_factor < health_factor_floor < min_health_factor, or the "
            "unwind could not withdraw or would never stop",
        )
        require(self, self.max_leverage >= 1, "max_leverage must be >= 1")
        require(self, 0 < self.kelly_fraction <= 1, "kelly_fraction must be in (0, 1]")
        require(self, 0 < self.max_liquidation_probability < 1, "the bound must be in (0, 1)")
        require(self, self.leverage_band > 0, "leverage_band must be > 0")
        require(self, self.gas_reserve >= 0, "gas_reserve must be >= 0")

    @property
    def pair(self) -> str:
        return f"{self.collateral}/{self.debt_asset}"

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.pair,)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(topic_name(self.pair, t, self.horizon) for t in ("log_return", "volatility"))

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        reserves = observation.portfolio.lending.reserves
        collateral, debt = reserves.get(self.collateral), reserves.get(self.debt_asset)
        if collateral is None or debt is None:
            return [Hold(reason=f"the lending market lists no {self.pair} reserves")]
        try:
            summary = account_summary(observation.portfolio.lending)
        except Refusal as unusable:
            return [Hold(reason=unusable.message)]
        portfolio = observation.portfolio
        loop = _Loop(
            collateral,
            debt,
            cash=max(
                0.0, min(portfolio.free(self.debt_asset, WALLET) - self.gas_reserve, debt.debt)
            ),
            loose=portfolio.free(self.collateral, WALLET),
            health_factor=summary.health_factor,
            available_borrows=summary.available_borrows,
        )
        if not loop.equity > 0:
            return [Hold(reason=f"nothing to loop: {self.collateral} equity {loop.equity:g}")]
        price = observation.prices.get(self.pair, math.nan)
        if not (math.isfinite(price) and price > 0):
            return [Hold(reason=f"no usable {self.pair} price ({price!r}): nothing to size")]

        risk: LiquidationRiskResult | None = None
        refusal = ""
        if collateral.supplied > 0 and debt.debt > 0:
            try:
                risk = call_tool(
                    toolbox, "liquidation_risk", self._risk_args(loop), LiquidationRiskResult
                )
            except ToolCallError as exc:
                refusal = str(exc)
        if loop.health_factor < self.health_factor_floor or (
            risk is not None and risk.liquidation_probability > self.max_liquidation_probability
        ):
            return self._unwind_for_risk(loop, risk, price, toolbox)
        if debt.debt > 0 and risk is None:
            return [Hold(reason=f"loan unchecked, HF {loop.health_factor:.3f}: {refusal}")]

        try:
            advice = call_tool(
                toolbox, "leverage_advisor", self._advice_args(loop), LeverageAdvisorResult
            )
        except ToolCallError as exc:
            return [Hold(reason=f"no leverage without a forecast: {exc}")]
        topics = topics_of(advice.inferences, risk.inferences if risk else ())
        target = min(advice.target_leverage, self.max_leverage)
        why = (
            f"advised leverage {advice.target_leverage:.2f} ({advice.binding}), target {target:.2f}"
        )
        if loop.leverage > target + self.leverage_band:
            return self._unwind(loop, target, price, toolbox, why, topics)
        return self._build(loop, target, price, toolbox, why, topics)

    # -- arguments

    def _risk_args(self, loop: _Loop) -> dict[str, object]:
        return {
            "symbol": self.pair,
            "collateral_amount": loop.collateral.supplied,
            "debt": loop.debt.debt * loop.debt.price,
            "liquidation_threshold": loop.collateral.liquidation_threshold,
            "horizon": self.horizon,
            "target_health_factor": self.min_health_factor,
        }

    def _advice_args(self, loop: _Loop) -> dict[str, object]:
        return {
            "symbol": self.pair,
            "liquidation_threshold": loop.collateral.liquidation_threshold,
            "ltv": loop.collateral.ltv,
            "horizon": self.horizon,
            "min_health_factor": self.min_health_factor,
            "kelly_fraction": self.kelly_fraction,
            "supply_rate": self.supply_rate,
            "borrow_rate": self.borrow_rate,
            "staking_rate": self.staking_rate,
        }

    # -- steps

    def _unwind_for_risk(
        self, loop: _Loop, risk: LiquidationRiskResult | None, price: float, toolbox: ToolBox
    ) -> list[object]:
        """Unwind to the leverage whose health factor keeps the liquidation probability within
        the bound (and at least min_health_factor); without a forecast, to min_health_factor."""
        safe = self.min_health_factor
        if risk is not None:
            safe = max(safe, self._health_factor_for_bound(risk.annualised_volatility))
        threshold = loop.collateral.liquidation_threshold
        target = 1.0 if math.isinf(safe) else leverage_for_health_factor(safe, threshold)
        target = min(target, self.max_leverage)
        if risk is None:
            why = f"HF {loop.health_factor:.3f} below the floor {self.health_factor_floor:g}"
        else:
            why = (
                f"HF {loop.health_factor:.3f}, P(liquidation within {self.horizon}) "
                f"{risk.liquidation_probability:.2%} (bound {self.max_liquidation_probability:.2%},"
                f" floor HF {self.health_factor_floor:g}); unwind to HF {safe:.3f}"
            )
        topics = topics_of(risk.inferences) if risk is not None else ()
        return self._unwind(loop, target, price, toolbox, why, topics)

    def _health_factor_for_bound(self, volatility: float) -> float:
        """The health factor at which P(liquidation within the horizon) equals the bound."""
        years = horizon_years(self.horizon)

        def excess(health_factor: float) -> float:
            probability = liquidation_probability_gbm(health_factor, volatility, years)
            return probability - self.max_liquidation_probability

        high = 2.0
        while excess(high) > 0:
            high *= 2
            if high > 1e6:
                return math.inf
        return float(brentq(excess, 1.0, high, xtol=1e-6))

    def _unwind(
        self,
        loop: _Loop,
        target: float,
        price: float,
        toolbox: ToolBox,
        why: str,
        topics: tuple[str, ...],
    ) -> list[object]:
        """Repay with cash in hand, else sell loose collateral, else withdraw collateral."""
        excess = loop.exposure - target * loop.equity  # collateral value to sell and repay
        if loop.cash * loop.debt.price >= self.min_trade_value:
            reason = f"{why}: repay {loop.cash:,.2f} {self.debt_asset} in hand"
            return [Repay(asset=self.debt_asset, amount=loop.cash, reason=reason, topics=topics)]
        if excess < self.min_trade_value:
            return [Hold(reason=f"{why}: unwound ({excess:,.2f} left is dust)", topics=topics)]
        sell = min(loop.loose, excess / loop.collateral.price)
        if sell * loop.collateral.price >= self.min_trade_value:
            reason = f"{why}: sell {sell:.6g} {self.collateral} to repay"
            return guarded_swap(
                toolbox,
                self.swaps,
                pair=self.pair,
                side="sell",
                amount_in=sell,
                price=price,
                fee_tier=self.swap_fee_tier,
                reason=reason,
                topics=topics,
            )
        threshold = loop.collateral.liquidation_threshold
        debt_value = loop.debt.debt * loop.debt.price
        withdrawable = (
            loop.collateral.supplied * loop.collateral.price
            - self.withdraw_health_factor * debt_value / threshold
        )
        amount = min(excess, withdrawable) / loop.collateral.price
        if amount * loop.collateral.price < self.min_trade_value:
            return [
                Hold(
                    reason=f"{why}, but no withdrawal keeps HF >= {self.withdraw_health_factor:g} "
                    f"(leverage {loop.leverage:.2f}, {excess:,.2f} to unwind): repay from "
                    f"outside funds",
                    topics=topics,
                )
            ]
        reason = (
            f"{why}: withdraw {amount:.6g} {self.collateral} to sell (leverage {loop.leverage:.2f})"
        )
        return [Withdraw(asset=self.collateral, amount=amount, reason=reason, topics=topics)]

    def _build(
        self,
        loop: _Loop,
        target: float,
        price: float,
        toolbox: ToolBox,
        why: str,
        topics: tuple[str, ...],
    ) -> list[object]:
        """Swap borrowed cash into collateral, else supply loose collateral, else borrow."""
        if loop.cash * loop.debt.price >= self.min_trade_value:
            return guarded_swap(
                toolbox,
                self.swaps,
                pair=self.pair,
                side="buy",
                amount_in=loop.cash,
                price=price,
                fee_tier=self.swap_fee_tier,
                reason=f"{why}: swap {loop.cash:,.2f} borrowed {self.debt_asset} into collateral",
                topics=topics,
            )
        if loop.loose * loop.collateral.price >= self.min_trade_value:
            reason = f"{why}: supply {loop.loose:.6g} {self.collateral}"
            return [Supply(asset=self.collateral, amount=loop.loose, reason=reason, topics=topics)]
        if loop.leverage >= target - self.leverage_band:
            return [Hold(reason=f"{why}, leverage {loop.leverage:.2f}: within band", topics=topics)]
        collateral_value = loop.collateral.supplied * loop.collateral.price
        debt_value = loop.debt.debt * loop.debt.price
        threshold = loop.collateral.liquidation_threshold
        value = min(
            (target - 1) * loop.equity - loop.net_debt,  # the debt the target leverage carries
            collateral_value * threshold / self.min_health_factor - debt_value,  # HF bound
            loop.available_borrows,  # LTV bound
        )
        if value < self.min_trade_value:
            return [Hold(reason=f"{why}, but only {value:,.2f} can be borrowed", topics=topics)]
        amount = value / loop.debt.price
        reason = f"{why}, leverage {loop.leverage:.2f}: borrow {amount:,.2f} {self.debt_asset}"
        return [Borrow(asset=self.debt_asset, amount=amount, reason=reason, topics=topics)]
