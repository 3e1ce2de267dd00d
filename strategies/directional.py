"""ForecastDirectional: hold the share of equity in one market that fractional Kelly gives.

`leverage_advisor` turns the network's return forecast and its confidence interval into one
normal distribution of the horizon's log-return (volatility topic plus model disagreement) and
its Kelly fraction (mu - carry) / sigma^2; the strategy holds `kelly_fraction` of it as exposure
/ equity, clipped to [-max_exposure, max_exposure] (never short when long-only or spot). It
trades only when the target differs from the position by more than `rebalance_threshold` of
equity, and every order that adds exposure carries a stop-loss `stop_sigmas` forecast sigmas
away. A perpetual that must flip side is closed first; the next tick opens the other side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from defai.agent.intents import EXCHANGE, Hold, PlaceOrder, market_assets
from defai.agent.observation import Observation, Portfolio
from defai.agent.toolbox import ToolBox, ToolCallError
from defai.network.local import topic_name
from strategies._common import call_tool, horizon_years, require, topics_of
from tools.leverage import LeverageAdvisorResult


@dataclass(frozen=True, slots=True)
class ForecastDirectional:
    """A spot or linear-perpetual position sized by fractional Kelly, with a k-sigma stop."""

    name: ClassVar[str] = "directional"
    venues: ClassVar[tuple[str, ...]] = ("exchange",)
    """The venues it trades on: a backtest funds only these."""

    symbol: str = "ETH/USDT"
    """Spot pair BASE/QUOTE, or a linear perpetual BASE/QUOTE:QUOTE; forecasts are the pair's."""
    horizon: str = "24h"
    """Forecast horizon the size and the stop distance come from."""
    kelly_fraction: float = 0.5
    """Share of full Kelly to hold (half Kelly: most of the growth, far less drawdown)."""
    max_exposure: float = 1.0
    """Largest |position value| / equity; spot cannot exceed 1 (no borrowing on spot)."""
    long_only: bool = True
    """Never short a perpetual (a spot position is long-only anyway)."""
    rebalance_threshold: float = 0.1
    """Trade only when the target exposure differs from the current one by more than this."""
    max_order_fraction: float | None = 0.04
    """Largest single order as a share of equity: the position walks toward its target in steps
    (one per tick), each small enough for the risk guard's per-order limit and the market;
    None trades to the target at once."""
    stop_sigmas: float = 2.0
    """Stop-loss distance in sigmas of the horizon's forecast log-return."""
    carry_rate: float = 0.0
    """Yearly return the quote earns when idle, or the funding a perpetual long pays: the
    forecast's drift must beat it to justify a long."""
    leverage: float = 1.0
    """Margin leverage of perpetual orders: sets the margin posted, not the exposure."""

    def __post_init__(self) -> None:
        require(self, 0 < self.kelly_fraction <= 1, "kelly_fraction must be in (0, 1]")
        require(self, self.max_exposure > 0, "max_exposure must be > 0")
        require(self, self.rebalance_threshold >= 0, "rebalance_threshold must be >= 0")
        require(
            self,
            self.max_order_fraction is None or self.max_order_fraction > 0,
            "max_order_fraction must be > 0 (or None)",
        )
        require(self, self.stop_sigmas > 0, "stop_sigmas must be > 0")
        require(
            self,
            not self.perpetual or self.leverage >= self.max_exposure,
            "a perpetual's margin leverage must cover max_exposure, or its margin exceeds equity",
        )

    @property
    def pair(self) -> str:
        return self.symbol.partition(":")[0]

    @property
    def perpetual(self) -> bool:
        return ":" in self.symbol

    @property
    def symbols(self) -> tuple[str, ...]:
        return (self.symbol,)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(topic_name(self.pair, t, self.horizon) for t in ("log_return", "volatility"))

    def decide(self, observation: Observation, toolbox: ToolBox) -> list[object]:
        price = observation.prices.get(self.symbol, math.nan)
        equity = observation.portfolio.equity
        if not (math.isfinite(price) and price > 0 and math.isfinite(equity) and equity > 0):
            return [Hold(reason=f"{self.symbol} price {price!r}, equity {equity!r}: no sizing")]
        try:
            advice = call_tool(
                toolbox, "leverage_advisor", self._advice_args(), LeverageAdvisorResult
            )
        except ToolCallError as exc:
            return [Hold(reason=f"no position change without a forecast: {exc}")]
        topics = topics_of(advice.inferences)
        short_allowed = self.perpetual and not self.long_only
        cap = self.max_exposure if self.perpetual else min(self.max_exposure, 1.0)
        target = max(-cap if short_allowed else 0.0, min(advice.fractional_kelly, cap))
        held = self._held(observation.portfolio)  # base units, negative when short
        current = held * price / equity
        why = (
            f"Kelly {advice.kelly_leverage:.2f} x {self.kelly_fraction:g} -> target exposure "
            f"{target:+.2f} of equity, now {current:+.2f}"
        )
        if abs(target - current) <= self.rebalance_threshold:
            return [Hold(reason=f"{why}: within {self.rebalance_threshold:g}", topics=topics)]
        sigma = advice.volatility * math.sqrt(horizon_years(self.horizon))
        wanted = target * equity / price
        if self.max_order_fraction is not None:
            step = self.max_order_fraction * equity / price
            wanted = held + max(-step, min(step, wanted - held))
        if self.perpetual:
            return [self._perpetual_order(held, wanted, price, sigma, why, topics)]
        return [self._spot_order(observation.portfolio, held, wanted, price, sigma, why, topics)]

    def _advice_args(self) -> dict[str, object]:
        return {
            "symbol": self.pair,
            # A spot or perpetual position has no lending health factor: only the advisor's
            # Kelly is read, so its loop caps are given their loosest (LT 1, no LTV).
            "liquidation_threshold": 1.0,
            "horizon": self.horizon,
            "kelly_fraction": self.kelly_fraction,
            "supply_rate": 0.0,
            "borrow_rate": self.carry_rate,
        }

    def _held(self, portfolio: Portfolio) -> float:
        if self.perpetual:
            position = portfolio.position(self.symbol)
            if position is None:
                return 0.0
            return position.contracts if position.side == "long" else -position.contracts
        held = portfolio.accounts.get(EXCHANGE, portfolio.balances)
        balance = held.get(market_assets(self.symbol)[0])
        return 0.0 if balance is None else balance.total

    def _stop(self, side: Literal["buy", "sell"], price: float, sigma: float) -> float:
        """k sigma below a long's price, above a short's."""
        direction = -1 if side == "buy" else 1
        return price * math.exp(direction * self.stop_sigmas * sigma)

    def _spot_order(
        self,
        portfolio: Portfolio,
        held: float,
        wanted: float,
        price: float,
        sigma: float,
        why: str,
        topics: tuple[str, ...],
    ) -> object:
        base, quote, _ = market_assets(self.symbol)
        if wanted > held:
            amount = min(wanted - held, portfolio.free(quote, EXCHANGE) / price)
            if not amount > 0:
                return Hold(reason=f"{why}, but no free {quote} to buy with", topics=topics)
            return PlaceOrder(
                symbol=self.symbol,
                side="buy",
                amount=amount,
                stop_loss=self._stop("buy", price, sigma),
                reason=f"{why}: buy {amount:.6g} {base}, stop {self.stop_sigmas:g} sigma below",
                topics=topics,
            )
        amount = min(held - wanted, portfolio.free(base, EXCHANGE))
        if not amount > 0:
            return Hold(reason=f"{why}, but no free {base} to sell", topics=topics)
        return PlaceOrder(
            symbol=self.symbol,
            side="sell",
            amount=amount,
            reason=f"{why}: sell {amount:.6g} {base}",
            topics=topics,
        )

    def _perpetual_order(
        self,
        held: float,
        wanted: float,
        price: float,
        sigma: float,
        why: str,
        topics: tuple[str, ...],
    ) -> PlaceOrder:
        """Close a position the target no longer points the same way; else add or reduce."""
        if held != 0 and (wanted == 0 or (wanted > 0) != (held > 0)):
            return PlaceOrder(
                symbol=self.symbol,
                side="sell" if held > 0 else "buy",
                amount=abs(held),
                reduce_only=True,
                reason=f"{why}: close the {'long' if held > 0 else 'short'} first",
                topics=topics,
            )
        side: Literal["buy", "sell"] = "buy" if wanted > held else "sell"
        if abs(wanted) < abs(held):
            return PlaceOrder(
                symbol=self.symbol,
                side=side,
                amount=abs(held - wanted),
                reduce_only=True,
                reason=f"{why}: reduce by {abs(held - wanted):.6g} contracts",
                topics=topics,
            )
        added = abs(wanted - held)
        return PlaceOrder(
            symbol=self.symbol,
            side=side,
            amount=added,
            leverage=self.leverage,
            stop_loss=self._stop(side, price, sigma),
            reason=f"{why}: add {added:.6g} contracts, stop {self.stop_sigmas:g} sigma away",
            topics=topics,
        )
