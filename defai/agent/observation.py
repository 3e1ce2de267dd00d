"""What a policy and the RiskGuard see at one tick: prices, candles, the portfolio, inferences.

Plain data, built by the Agent from its venues. Every mapping is copied into a read-only view
when the object is made, because the policy receives the very observation the guard then
reviews: a policy that could edit a price or a balance could talk the guard into anything.
Nothing here validates numbers; the guard checks every one it relies on, so a NaN in a venue's
answer blocks the intents that depend on it instead of crashing the tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, TypeVar

from defai.defi.lending import AccountData, account_data
from defai.types import Candles, NetworkInference

K = TypeVar("K")
V = TypeVar("V")


def _read_only(owner: object, name: str, mapping: Mapping[K, V]) -> None:
    """Replace a frozen dataclass's mapping by a read-only copy (nobody else holds the copy)."""
    object.__setattr__(owner, name, MappingProxyType(dict(mapping)))


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset in the wallet or exchange account: `free` can be spent, `total` includes
    what open orders hold."""

    free: float
    total: float


@dataclass(frozen=True, slots=True)
class Position:
    """An open derivative position as ccxt's fetch_positions reports it (one contract = one
    unit of base). Spot holdings are balances, not positions."""

    symbol: str
    side: Literal["long", "short"]
    contracts: float
    entry_price: float
    mark_price: float
    leverage: float
    liquidation_price: float | None
    notional: float  # in the symbol's quote currency


@dataclass(frozen=True, slots=True)
class LPPosition:
    """A concentrated-liquidity position; `value` is its worth in the portfolio's quote."""

    id: int
    pair: str
    fee_tier: int
    lower_price: float
    upper_price: float
    value: float


@dataclass(frozen=True, slots=True)
class Reserve:
    """The account's stake in one lending reserve, in tokens; `price` is the protocol's oracle
    price in the portfolio's quote (what the health factor is computed with)."""

    supplied: float
    debt: float
    price: float
    ltv: float
    liquidation_threshold: float


@dataclass(frozen=True, slots=True)
class LendingAccount:
    """An Aave-style account: every reserve the market lists, supplied to or not."""

    reserves: Mapping[str, Reserve] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _read_only(self, "reserves", self.reserves)

    def summary(self) -> AccountData:
        """Totals, borrowing power and health factor; ProtocolMathError on malformed data."""
        reserves = list(self.reserves.values())
        return account_data(
            [r.supplied * r.price for r in reserves],
            [r.ltv for r in reserves],
            [r.liquidation_threshold for r in reserves],
            sum(r.debt * r.price for r in reserves),
        )

    @property
    def health_factor(self) -> float:
        return self.summary().health_factor

    @property
    def has_debt(self) -> bool:
        return any(r.debt != 0 for r in self.reserves.values())

    def with_change(
        self, asset: str, *, supplied: float = 0.0, debt: float = 0.0
    ) -> LendingAccount:
        """The account after adding `supplied` and `debt` tokens of `asset` (negative removes):
        what a supply, withdraw, borrow or repay would leave."""
        reserve = self.reserves[asset]
        changed = replace(reserve, supplied=reserve.supplied + supplied, debt=reserve.debt + debt)
        return LendingAccount({**self.reserves, asset: changed})


@dataclass(frozen=True, slots=True)
class Portfolio:
    """Everything the account holds, valued in one `quote` currency (equity and peak too)."""

    quote: str
    equity: float
    peak_equity: float
    balances: Mapping[str, Balance] = field(default_factory=dict)
    positions: tuple[Position, ...] = ()
    lp_positions: tuple[LPPosition, ...] = ()
    lending: LendingAccount = field(default_factory=LendingAccount)
    accounts: Mapping[str, Mapping[str, Balance]] = field(default_factory=dict)
    """Balances per account where funds are not fungible between venues: "exchange" (orders)
    and "wallet" (the on-chain account: swaps, LP, lending). `balances` is their sum."""
    equity_by_venue: Mapping[str, float] = field(default_factory=dict)
    """`equity` split by venue ("exchange", "amm", "lending")."""

    def __post_init__(self) -> None:
        _read_only(self, "balances", self.balances)
        _read_only(
            self, "accounts", {k: MappingProxyType(dict(v)) for k, v in self.accounts.items()}
        )
        _read_only(self, "equity_by_venue", self.equity_by_venue)

    def free(self, asset: str, account: str | None = None) -> float:
        """Spendable amount of an asset in one account (all of them when the portfolio has no
        separate accounts or none is named); 0 when none is held."""
        held = self.accounts.get(account) if account is not None else None
        balance = (held if held is not None else self.balances).get(asset)
        return 0.0 if balance is None else balance.free

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions if p.symbol == symbol), None)

    def lp_position(self, position_id: int) -> LPPosition | None:
        return next((p for p in self.lp_positions if p.id == position_id), None)


@dataclass(frozen=True, slots=True)
class Observation:
    """One tick's view: `prices` are each symbol's last closed candle's close, `candles` the
    windows they come from, `inferences` the network's answers fetched this tick, by topic."""

    time_ms: int
    prices: Mapping[str, float]
    portfolio: Portfolio
    candles: Mapping[str, Candles] = field(default_factory=dict)
    inferences: Mapping[str, NetworkInference] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("prices", "candles", "inferences"):
            _read_only(self, name, getattr(self, name))
