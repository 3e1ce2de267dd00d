"""PaperLending: an Aave v3-style money market on paper, priced by a market feed.

One account supplies, withdraws, borrows and repays; interest accrues with the clock at the
rates the reserve's interest-rate model gives at an assumed utilisation (compounded for debt,
linear for supply between updates, as Aave's indexes); a liquidator acts on every bar in which
the health factor at the bar's worst prices (collateral at its low, feed-priced debt at its
high) falls below 1, with the v3.3 close factor (or v3.0-3.2) and the collateral's liquidation
bonus and protocol fee. All the maths is `defai.defi.lending`; docs/defi_venues.md lists the
assumptions. Tokens come from and go to the caller's wallet, outside the venue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import pandas as pd

import defai.defi.lending as aave
from defai.errors import ExecutionError, ProtocolMathError
from defai.execution.venue import (
    BarClock,
    InsufficientBalanceError,
    VenueInputError,
    VenueStore,
    check_amount,
)
from defai.market.feed import Feed
from defai.types import Candles

CloseFactorRule = Literal["v3.3", "v3.2"]

VOLATILE_RATE_MODEL = aave.InterestRateModel(
    optimal_utilization=0.45, base_rate=0.0, slope1=0.07, slope2=3.0
)
"""aave-v3-deploy's rateStrategyVolatileOne (WETH, WBTC, LINK at deployment)."""

STABLE_RATE_MODEL = aave.InterestRateModel(
    optimal_utilization=0.90, base_rate=0.0, slope1=0.04, slope2=0.60
)
"""aave-v3-deploy's rateStrategyStableOne (USDC, USDT at deployment)."""

_CAPACITY_TOLERANCE = 1e-12
"""Relative slack on the borrowing capacity, so float round-off in price conversions cannot
refuse a borrow of exactly the capacity `account()` reports."""


class HealthFactorError(ExecutionError):
    """A borrow or withdrawal would leave the account liquidatable or past its borrowing power."""

    def __init__(self, message: str, health_factor: float) -> None:
        super().__init__(message)
        self.health_factor = health_factor


@dataclass(frozen=True, slots=True)
class ReserveConfig:
    """One reserve's risk and rate parameters (fractions; the bonus includes the 100%).

    `price_symbol` is the feed symbol pricing the asset in the venue's base currency
    ("ETH/USDT"); None marks a stablecoin worth 1. Defaults are aave-v3-deploy's WETH template;
    `utilization` is the reserve's assumed (constant) borrowed share, which sets both rates.
    """

    price_symbol: str | None
    ltv: float = 0.80
    liquidation_threshold: float = 0.825
    liquidation_bonus: float = 1.05
    protocol_fee: float = 0.10
    rate_model: aave.InterestRateModel = VOLATILE_RATE_MODEL
    reserve_factor: float = 0.10
    utilization: float = 0.45

    def __post_init__(self) -> None:
        if self.price_symbol is not None and self.price_symbol.count("/") != 1:
            raise VenueInputError(
                f"price_symbol must look like 'ETH/USDT', got {self.price_symbol}"
            )
        if not 0 <= self.utilization <= 1:
            raise VenueInputError(f"utilization must be in [0, 1], got {self.utilization}")
        try:  # ReserveParams holds Aave's configurator rules; decimals do not matter in floats
            aave.ReserveParams(
                self.ltv,
                self.liquidation_threshold,
                self.liquidation_bonus,
                self.protocol_fee,
                self.reserve_factor,
                decimals=0,
            )
        except ProtocolMathError as exc:
            raise VenueInputError(f"bad reserve configuration: {exc}") from None

    @property
    def borrow_rate(self) -> float:
        """Variable borrow APR at the assumed utilisation."""
        return aave.borrow_rate(self.rate_model, self.utilization)

    @property
    def supply_rate(self) -> float:
        """Supply APR: the borrowers' interest spread over all supply, less the reserve factor."""
        return aave.supply_rate(self.rate_model, self.utilization, self.reserve_factor)


STABLECOIN_RESERVE = ReserveConfig(
    None,
    ltv=0.75,
    liquidation_threshold=0.80,
    rate_model=STABLE_RATE_MODEL,
    utilization=0.90,
)
"""aave-v3-deploy's USDT template, used at the stable rate model's optimal utilisation."""

DEFAULT_RESERVES: Mapping[str, ReserveConfig] = MappingProxyType(
    {"ETH": ReserveConfig("ETH/USDT"), "USDT": STABLECOIN_RESERVE}
)


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    """One liquidationCall the paper liquidator made; amounts in tokens, prices in base currency.

    `time_ms` is the close of the bar whose extreme triggered it; `bonus` is the bonus part of
    the seized collateral (protocol fee included), `seized - seized / liquidation_bonus`.
    """

    time_ms: int
    debt_asset: str
    collateral_asset: str
    debt_repaid: float
    collateral_seized: float
    bonus: float
    protocol_fee: float
    debt_price: float
    collateral_price: float
    health_factor: float
    health_factor_after: float


@dataclass(frozen=True, slots=True)
class LendingReceipt:
    """What one action moved, and the health factor it left at the current prices."""

    time_ms: int
    action: Literal["supply", "withdraw", "borrow", "repay"]
    asset: str
    amount: float
    health_factor: float


@dataclass(frozen=True, slots=True)
class LendingAccount:
    """Pool.getUserAccountData plus the balances and rates, for an agent's portfolio view.

    Values are in the base currency at the last closes. `liquidation_prices` holds, per
    feed-priced collateral, the price at which HF reaches 1 with everything else unchanged
    (0: never).
    """

    time_ms: int
    supplied: dict[str, float]
    borrowed: dict[str, float]
    collateral: float
    debt: float
    health_factor: float
    borrowing_power: float
    ltv: float  # collateral-weighted maximum loan-to-value
    liquidation_threshold: float  # collateral-weighted
    liquidation_prices: dict[str, float]
    supply_rates: dict[str, float]  # APR at each reserve's assumed utilisation
    borrow_rates: dict[str, float]


# --- pure functions ---------------------------------------------------------------------------


def accrue(
    balances: Mapping[str, float],
    rates: Mapping[str, float],
    seconds: float,
    growth: Callable[[float, float], float],
) -> dict[str, float]:
    """Balances after `seconds` at their APRs; growth is linear (supply) or compounded (debt)."""
    return {asset: amount * growth(rates[asset], seconds) for asset, amount in balances.items()}


def account_at(
    supplied: Mapping[str, float],
    borrowed: Mapping[str, float],
    collateral_prices: Mapping[str, float],
    debt_prices: Mapping[str, float],
    reserves: Mapping[str, ReserveConfig],
) -> aave.AccountData:
    """The account at given prices; only assets actually held need a price."""
    held = [asset for asset, amount in supplied.items() if amount > 0]
    return aave.account_data(
        [supplied[a] * collateral_prices[a] for a in held],
        [reserves[a].ltv for a in held],
        [reserves[a].liquidation_threshold for a in held],
        sum(amount * debt_prices[a] for a, amount in borrowed.items() if amount > 0),
    )


def liquidate_account(
    supplied: Mapping[str, float],
    borrowed: Mapping[str, float],
    collateral_prices: Mapping[str, float],
    debt_prices: Mapping[str, float],
    reserves: Mapping[str, ReserveConfig],
    rule: CloseFactorRule,
    time_ms: int,
) -> tuple[dict[str, float], dict[str, float], list[LiquidationEvent]]:
    """Liquidate while HF < 1: each call repays the largest debt against the largest collateral,
    as much as the close factor allows. Each call either clears a reserve or (v3.3's 50% case,
    HF > 0.95) lifts HF well above 1, so the loop ends; bad debt is left when collateral runs out.
    """
    supplied, borrowed = dict(supplied), dict(borrowed)
    events: list[LiquidationEvent] = []
    while True:
        account = account_at(supplied, borrowed, collateral_prices, debt_prices, reserves)
        debts = {a: v * debt_prices[a] for a, v in borrowed.items() if v > 0}
        collaterals = {
            a: v * collateral_prices[a]
            for a, v in supplied.items()
            if v > 0 and reserves[a].liquidation_threshold > 0
        }
        if account.health_factor >= aave.HEALTH_FACTOR_LIQUIDATION_THRESHOLD or not (
            debts and collaterals
        ):
            return supplied, borrowed, events
        debt_asset = max(debts, key=debts.__getitem__)
        collateral_asset = max(collaterals, key=collaterals.__getitem__)
        hf = account.health_factor
        if rule == "v3.3":
            cover_value = aave.max_liquidatable_debt_v3_3(
                hf, debts[debt_asset], collaterals[collateral_asset], account.total_debt
            )
        else:
            cover_value = aave.max_liquidatable_debt_v3_2(hf, debts[debt_asset])
        debt_price, collateral_price = debt_prices[debt_asset], collateral_prices[collateral_asset]
        reserve = reserves[collateral_asset]
        outcome = aave.liquidate(
            min(cover_value / debt_price, borrowed[debt_asset]),
            supplied[collateral_asset],
            debt_price,
            collateral_price,
            reserve.liquidation_bonus,
            reserve.protocol_fee,
        )
        borrowed[debt_asset] -= outcome.debt_repaid
        supplied[collateral_asset] -= outcome.collateral_seized
        after = account_at(supplied, borrowed, collateral_prices, debt_prices, reserves)
        seized = outcome.collateral_seized
        events.append(
            LiquidationEvent(
                time_ms=time_ms,
                debt_asset=debt_asset,
                collateral_asset=collateral_asset,
                debt_repaid=outcome.debt_repaid,
                collateral_seized=seized,
                bonus=seized - seized / reserve.liquidation_bonus,
                protocol_fee=outcome.protocol_fee,
                debt_price=debt_price,
                collateral_price=collateral_price,
                health_factor=hf,
                health_factor_after=after.health_factor,
            )
        )


def bar_extremes(
    windows: Mapping[str, Candles], last_close: Mapping[str, float]
) -> list[tuple[int, dict[str, float], dict[str, float]]]:
    """(close time, lows, highs) for each new bar time, over all symbols in step.

    A symbol without a bar at that time (a gap in its data) stands at its latest close.
    """
    bars: dict[int, dict[str, tuple[float, float, float]]] = {}
    for symbol, window in windows.items():
        for close_ms, low, high, close in zip(
            window.close_ts, window.low, window.high, window.close, strict=True
        ):
            bars.setdefault(int(close_ms), {})[symbol] = (float(low), float(high), float(close))
    closes = dict(last_close)
    steps = []
    for close_ms in sorted(bars):
        closes.update({symbol: bar[2] for symbol, bar in bars[close_ms].items()})
        at = {symbol: bars[close_ms].get(symbol, (c, c, c)) for symbol, c in closes.items()}
        steps.append(
            (
                close_ms,
                {symbol: bar[0] for symbol, bar in at.items()},
                {symbol: bar[1] for symbol, bar in at.items()},
            )
        )
    return steps


# --- the venue --------------------------------------------------------------------------------


class PaperLending:
    """One Aave-style account over a feed; SQLite if `db` (a saved state then wins).

    Call `advance(now)` before acting at `now`: it accrues interest and runs the liquidator on
    every bar closed since the last call, and returns the liquidations it made.
    """

    def __init__(
        self,
        feed: Feed,
        reserves: Mapping[str, ReserveConfig] | None = None,
        db: str | Path | None = None,
        *,
        close_factor: CloseFactorRule = "v3.3",
        timeframe: str | None = None,
    ) -> None:
        self._reserves = dict(DEFAULT_RESERVES if reserves is None else reserves)
        if not self._reserves:
            raise VenueInputError("PaperLending needs at least one reserve")
        if close_factor not in ("v3.3", "v3.2"):
            raise VenueInputError(f"close_factor must be 'v3.3' or 'v3.2', got {close_factor!r}")
        self._rule: CloseFactorRule = close_factor
        symbols = {r.price_symbol for r in self._reserves.values() if r.price_symbol is not None}
        quotes = {symbol.partition("/")[2] for symbol in symbols}
        if len(quotes) > 1:
            raise VenueInputError(
                f"price symbols must share one quote currency, got {sorted(quotes)}"
            )
        self.base_currency = quotes.pop() if quotes else None
        self._clock = BarClock(feed, sorted(symbols), timeframe)
        self._supplied = {asset: 0.0 for asset in self._reserves}
        self._borrowed = {asset: 0.0 for asset in self._reserves}
        self._accrued_ms: int | None = None
        self._liquidations: list[LiquidationEvent] = []
        self._store = None if db is None else VenueStore(db, "lending")
        saved = None if self._store is None else self._store.load()
        if saved is not None:
            self._restore(saved)

    # -- clock

    def advance(self, now: int | str | pd.Timestamp) -> list[LiquidationEvent]:
        """Accrue interest bar by bar to `now`, liquidating at each bar's worst prices."""
        last_close = self._clock.closes()
        windows = self._clock.advance(now)
        new: list[LiquidationEvent] = []
        for close_ms, lows, highs in bar_extremes(windows, last_close):
            self._accrue_to(close_ms)
            self._supplied, self._borrowed, events = liquidate_account(
                self._supplied,
                self._borrowed,
                self._prices(lows),
                self._prices(highs),
                self._reserves,
                self._rule,
                close_ms,
            )
            new += events
        self._accrue_to(self._clock.now())
        self._liquidations += new
        self._save()
        return new

    def price(self, asset: str) -> float:
        """The asset's price in the base currency now: the last close, or 1 for a stablecoin."""
        symbol = self._reserve(asset).price_symbol
        return 1.0 if symbol is None else self._clock.close(symbol)

    # -- actions

    def supply(self, asset: str, amount: float) -> LendingReceipt:
        """Deposit `amount` (from the caller's wallet) as collateral."""
        amount = self._amount(asset, amount)
        self._supplied[asset] += amount
        return self._done("supply", asset, amount)

    def withdraw(self, asset: str, amount: float) -> LendingReceipt:
        """Take supplied tokens back; refused if it would leave HF < 1."""
        amount = self._amount(asset, amount)
        if amount > self._supplied[asset]:
            raise InsufficientBalanceError(
                f"cannot withdraw {amount} {asset}: {self._supplied[asset]} supplied"
            )
        supplied = {**self._supplied, asset: self._supplied[asset] - amount}
        hf = self._account(supplied, self._borrowed).health_factor
        if hf < aave.HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
            raise HealthFactorError(
                f"withdrawing {amount} {asset} would leave the health factor at {hf:.4f} < 1", hf
            )
        self._supplied = supplied
        return self._done("withdraw", asset, amount)

    def borrow(self, asset: str, amount: float) -> LendingReceipt:
        """Borrow `amount` to the caller's wallet; refused past the borrowing power (LTV) or
        when it would leave HF < 1 (Aave's validateBorrow)."""
        amount = self._amount(asset, amount)
        before = self._account(self._supplied, self._borrowed)
        borrowed = {**self._borrowed, asset: self._borrowed[asset] + amount}
        hf = self._account(self._supplied, borrowed).health_factor
        if hf < aave.HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
            raise HealthFactorError(
                f"borrowing {amount} {asset} would leave the health factor at {hf:.4f} < 1", hf
            )
        value = amount * self.price(asset)
        if value > before.available_borrows * (1 + _CAPACITY_TOLERANCE):
            raise HealthFactorError(
                f"borrowing {amount} {asset} (worth {value:.2f}) exceeds the borrowing power "
                f"{before.available_borrows:.2f} (collateral x LTV - debt); the health factor "
                f"would be {hf:.4f}",
                hf,
            )
        self._borrowed = borrowed
        return self._done("borrow", asset, amount)

    def repay(self, asset: str, amount: float) -> LendingReceipt:
        """Repay debt; like Aave, more than is owed repays only the debt (see the receipt)."""
        amount = self._amount(asset, amount)
        if self._borrowed[asset] == 0:
            raise InsufficientBalanceError(f"no {asset} debt to repay")
        repaid = min(amount, self._borrowed[asset])
        self._borrowed[asset] -= repaid
        return self._done("repay", asset, repaid)

    # -- portfolio view

    def account(self) -> LendingAccount:
        summary = self._account(self._supplied, self._borrowed)
        held = [a for a, amount in self._supplied.items() if amount > 0]
        values = [self._supplied[a] * self.price(a) for a in held]
        thresholds = [self._reserves[a].liquidation_threshold for a in held]
        return LendingAccount(
            time_ms=self._clock.now(),
            supplied=dict(self._supplied),
            borrowed=dict(self._borrowed),
            collateral=summary.total_collateral,
            debt=summary.total_debt,
            health_factor=summary.health_factor,
            borrowing_power=summary.available_borrows,
            ltv=summary.ltv,
            liquidation_threshold=summary.liquidation_threshold,
            liquidation_prices={
                asset: aave.liquidation_price(
                    self.price(asset), values, thresholds, summary.total_debt, index
                )
                for index, asset in enumerate(held)
                if self._reserves[asset].price_symbol is not None and thresholds[index] > 0
            },
            supply_rates={a: r.supply_rate for a, r in self._reserves.items()},
            borrow_rates={a: r.borrow_rate for a, r in self._reserves.items()},
        )

    @property
    def reserves(self) -> Mapping[str, ReserveConfig]:
        """Each listed asset's parameters (LTV, liquidation threshold, rates...)."""
        return MappingProxyType(self._reserves)

    def balances(self) -> dict[str, float]:
        """Net tokens held at the venue per asset: supplied minus borrowed."""
        return {a: self._supplied[a] - self._borrowed[a] for a in self._reserves}

    def liquidations(self) -> list[LiquidationEvent]:
        """Every liquidation so far, oldest first."""
        return list(self._liquidations)

    def equity(self, quote: str = "USDT") -> float:
        """Supplied minus borrowed, valued at the last closes."""
        if self.base_currency not in (None, quote):
            raise VenueInputError(f"this venue prices in {self.base_currency}, not {quote}")
        return sum(amount * self.price(a) for a, amount in self.balances().items() if amount)

    def close(self) -> None:
        """Release the database (state is already saved after every change)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- internals

    def _reserve(self, asset: str) -> ReserveConfig:
        reserve = self._reserves.get(asset)
        if reserve is None:
            raise VenueInputError(f"unknown asset {asset!r}; reserves are {sorted(self._reserves)}")
        return reserve

    def _amount(self, asset: str, amount: float) -> float:
        """Validate an action's asset, amount and time before anything moves."""
        self._reserve(asset)
        self._clock.now()
        self.price(asset)
        return check_amount("amount", amount)

    def _prices(self, symbol_prices: Mapping[str, float]) -> dict[str, float]:
        """Asset prices from symbol prices; assets whose symbol has no price yet are left out."""
        return {
            asset: 1.0 if r.price_symbol is None else symbol_prices[r.price_symbol]
            for asset, r in self._reserves.items()
            if r.price_symbol is None or r.price_symbol in symbol_prices
        }

    def _account(
        self, supplied: Mapping[str, float], borrowed: Mapping[str, float]
    ) -> aave.AccountData:
        prices = self._prices(self._clock.closes())
        return account_at(supplied, borrowed, prices, prices, self._reserves)

    def _accrue_to(self, time_ms: int) -> None:
        """Grow balances from the last accrual to `time_ms` (the clock never goes back)."""
        if self._accrued_ms is not None:
            seconds = (time_ms - self._accrued_ms) / 1000
            self._supplied = accrue(
                self._supplied,
                {a: r.supply_rate for a, r in self._reserves.items()},
                seconds,
                aave.linear_interest,
            )
            self._borrowed = accrue(
                self._borrowed,
                {a: r.borrow_rate for a, r in self._reserves.items()},
                seconds,
                aave.compounded_interest,
            )
        self._accrued_ms = time_ms

    def _done(
        self, action: Literal["supply", "withdraw", "borrow", "repay"], asset: str, amount: float
    ) -> LendingReceipt:
        self._save()
        hf = self._account(self._supplied, self._borrowed).health_factor
        return LendingReceipt(self._clock.now(), action, asset, amount, hf)

    def _save(self) -> None:
        if self._store is not None:
            self._store.save(
                {
                    "clock": self._clock.to_dict(),
                    "supplied": self._supplied,
                    "borrowed": self._borrowed,
                    "accrued_ms": self._accrued_ms,
                    "liquidations": [asdict(e) for e in self._liquidations],
                }
            )

    def _restore(self, state: Mapping[str, Any]) -> None:
        self._clock.restore(state["clock"])
        for name, target in (("supplied", self._supplied), ("borrowed", self._borrowed)):
            for asset, amount in state[name].items():
                self._reserve(asset)
                target[asset] = float(amount)
        self._accrued_ms = state["accrued_ms"]
        self._liquidations = [LiquidationEvent(**e) for e in state["liquidations"]]
