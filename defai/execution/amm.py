"""PaperAMM: Uniswap v3 LP positions and swaps on paper, priced by a market feed.

The pool's price is the feed's last closed candle, so a backtest, a paper run and the tools all
see one market. Mints, burns and swaps use the exact integer maths of `defai.defi.uniswap_v3`
and the pool simulator, against an assumed in-range liquidity (the pool's depth); fees accrue
bar by bar from the feed's traded volume while a position's range holds the price; a swap pays
the fee, its price impact, gas, and the expected loss to the best sandwich (`defai.defi.mev`).
Every model choice is written down in docs/defi_venues.md.

Amounts are whole tokens (floats) at the boundary and raw integers inside, converted only at
the edge, so a mint/burn round trip loses exactly the contracts' rounding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from defai.defi import uniswap_v3_pool as v3pool
from defai.defi.mev import concentrated_pool, optimal_sandwich
from defai.defi.uniswap_v3 import (
    FEE_PIPS_DENOMINATOR,
    FEE_TIER_TICK_SPACING,
    MAX_SQRT_RATIO,
    MIN_SQRT_RATIO,
    Q96,
    fees_owed,
    full_range_ticks,
    get_amounts_for_liquidity,
    get_liquidity_for_amounts,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
    price_range_to_ticks,
    price_to_sqrt_price_x96,
    tick_to_price,
)
from defai.defi.uniswap_v3_lp import impermanent_loss_range
from defai.errors import ExecutionError, ProtocolMathError
from defai.execution.venue import (
    BarClock,
    InsufficientBalanceError,
    SlippageError,
    VenueInputError,
    VenueStore,
    check_amount,
    from_raw,
    to_raw,
)
from defai.market.feed import Feed
from defai.types import Candles, FloatArray, IntArray


def range_overlap(
    low: FloatArray, high: FloatArray, price_lower: FloatArray, price_upper: FloatArray
) -> FloatArray:
    """Share of each bar's [low, high] inside [price_lower, price_upper]: the time in range if
    the price spread evenly over the bar's range. A bar with no range is in or out entirely."""
    width = high - low
    inside = np.clip(np.minimum(high, price_upper) - np.maximum(low, price_lower), 0.0, None)
    point = ((low >= price_lower) & (low < price_upper)).astype(np.float64)
    share: FloatArray = np.where(width > 0, inside / np.where(width > 0, width, 1.0), point)
    return share


def depth_liquidity(
    depth: float | FloatArray, price: float | FloatArray, decimals0: int, decimals1: int
) -> FloatArray:
    """Raw in-range liquidity L whose virtual reserves are worth `depth` quote at `price`.

    Virtual reserves x = L/sqrt(P), y = L*sqrt(P) are worth 2*L*sqrt(P) in token1 (raw units), so
    a pool configured by value keeps the same depth as the price moves.
    """
    raw_price = np.asarray(price, dtype=np.float64) * 10.0 ** (decimals1 - decimals0)
    liquidity: FloatArray = (
        np.asarray(depth, dtype=np.float64) * 10.0**decimals1 / (2.0 * np.sqrt(raw_price))
    )
    return liquidity


def lp_fees(
    bars: Candles,
    price_lower: FloatArray,
    price_upper: FloatArray,
    liquidity: FloatArray,
    opened_ms: IntArray,
    *,
    fee: float,
    depth: float,
    volume_share: float,
    decimals0: int,
    decimals1: int,
) -> FloatArray:
    """Quote fees each position earns over `bars`: quote volume x fee x in-range share x L share.

    Quote volume is the bar's base volume x close x `volume_share`; a position's share of the
    fees is L / (pool L + our L in range in that bar), and it earns only on bars that open at or
    after its mint. One row per position (arrays of equal length), summed over the bars.
    """
    lower, upper = price_lower[:, None], price_upper[:, None]
    ours = liquidity[:, None]
    live = bars.ts[None, :] >= opened_ms[:, None]
    overlap = range_overlap(bars.low[None, :], bars.high[None, :], lower, upper) * live
    in_range_liquidity = (ours * (overlap > 0)).sum(axis=0)
    pool = depth_liquidity(depth, bars.close, decimals0, decimals1)
    quote_volume = bars.volume * bars.close * volume_share
    earned: FloatArray = (quote_volume * fee * overlap * ours / (pool + in_range_liquidity)).sum(
        axis=1
    )
    return earned


def expected_sandwich_loss(
    liquidity: float,
    sqrt_price: float,
    fee: float,
    *,
    zero_for_one: bool,
    amount_in: float,
    slippage: float,
    attacker_gas: float,
) -> float:
    """Output (raw units) a swap loses to the attacker's best sandwich, 0 if none pays its gas.

    The pool is one range of constant liquidity, i.e. virtual reserves (FORMULAS.md D);
    `attacker_gas` is in the input token's raw units, `sqrt_price` is sqrt(raw token1/token0).
    """
    curve = concentrated_pool(
        liquidity,
        sqrt_price,
        MIN_SQRT_RATIO / Q96,
        MAX_SQRT_RATIO / Q96,
        zero_for_one=zero_for_one,
        fee=fee,
    )
    attack = optimal_sandwich(curve, amount_in, slippage, attacker_gas)
    return attack.victim_loss if attack.profitable else 0.0


def outward_ticks(tick_lower: int, tick_upper: int, tick_spacing: int) -> tuple[int, int]:
    """Usable ticks containing [tick_lower, tick_upper]: lower rounded down, upper up, clamped."""
    if not tick_lower < tick_upper:
        raise VenueInputError(f"need lower_tick < upper_tick, got {tick_lower}, {tick_upper}")
    lowest, highest = full_range_ticks(tick_spacing)
    lower = tick_lower // tick_spacing * tick_spacing
    upper = -(-tick_upper // tick_spacing) * tick_spacing
    return max(lower, lowest), min(upper, highest)


# --- configuration and views ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """One paper pool. The pair's base is token0 and its quote token1, so the pool price is the
    feed's close; depth is the in-range liquidity, given as the quote value of the virtual
    reserves (a v2 pool with that TVL has the same price impact). `volume_share` scales the
    feed's volume to the pool's: 0.1 is a rough order of magnitude of Uniswap's ETH/stable
    volume against Binance's, not a calibration; use 1 when the feed is the pool's own trades.
    """

    pair: str = "ETH/USDT"
    fee_pips: int = 3000
    decimals0: int = 18
    decimals1: int = 6
    depth: float = 1_000_000_000.0
    gas_cost: float = 5.0  # quote per action (mint, burn, collect, swap)
    mev: bool = True
    volume_share: float = 0.1  # share of the feed's (CEX) volume that trades in this pool

    def __post_init__(self) -> None:
        base, _, quote = self.pair.partition("/")
        if not (base and quote) or base == quote:
            raise VenueInputError(f"pair must look like 'ETH/USDT', got {self.pair!r}")
        if self.fee_pips not in FEE_TIER_TICK_SPACING:
            raise VenueInputError(
                f"fee_pips {self.fee_pips} is not a v3 fee tier: use one of "
                f"{list(FEE_TIER_TICK_SPACING)}"
            )
        for name in ("decimals0", "decimals1"):
            decimals = getattr(self, name)
            if (
                isinstance(decimals, bool)
                or not isinstance(decimals, int)
                or not 0 <= decimals <= 36
            ):
                raise VenueInputError(f"{name} must be an int in [0, 36], got {decimals!r}")
        check_amount("depth", self.depth)
        check_amount("gas_cost", self.gas_cost, allow_zero=True)
        if not 0 < check_amount("volume_share", self.volume_share) <= 1:
            raise VenueInputError(f"volume_share must be in (0, 1], got {self.volume_share}")

    @property
    def base(self) -> str:
        return self.pair.partition("/")[0]

    @property
    def quote(self) -> str:
        return self.pair.partition("/")[2]

    @property
    def tick_spacing(self) -> int:
        return FEE_TIER_TICK_SPACING[self.fee_pips]

    @property
    def fee(self) -> float:
        return self.fee_pips / FEE_PIPS_DENOMINATOR


@dataclass(frozen=True, slots=True)
class LpPosition:
    """One LP position as stored; liquidity 0 once burned (kept until its fees are collected)."""

    id: int
    pair: str
    tick_lower: int
    tick_upper: int
    liquidity: int
    opened_ms: int
    open_price: float
    fees_owed: float  # quote, whole tokens, not yet collected


@dataclass(frozen=True, slots=True)
class LpValuation:
    """A position marked at the pool price, for an agent's portfolio view."""

    id: int
    pair: str
    tick_lower: int
    tick_upper: int
    price_lower: float
    price_upper: float
    liquidity: int
    amount0: float  # principal at the pool price, whole tokens
    amount1: float
    fees_owed: float  # quote
    value: float  # quote: principal + uncollected fees
    impermanent_loss: float | None  # vs holding what was deposited, fees excluded; None if burned
    in_range: bool
    opened_ms: int
    open_price: float


@dataclass(frozen=True, slots=True)
class LpReceipt:
    """A mint (amounts paid in), burn (principal paid out) or collect (fees paid out)."""

    time_ms: int
    action: Literal["mint", "burn", "collect"]
    position_id: int
    pair: str
    amount0: float
    amount1: float
    gas_cost: float


@dataclass(frozen=True, slots=True)
class SwapReceipt:
    """A swap's outcome; `price` is quote per base net of fee, impact and MEV."""

    time_ms: int
    pair: str
    side: Literal["buy", "sell"]
    amount_in: float
    amount_out: float
    price: float
    fee: float  # input token, paid to the pool's LPs
    price_impact: float  # fraction of the output lost to the curve, fee and MEV excluded
    mev_cost: float  # output token lost to the expected sandwich
    gas_cost: float  # quote


# --- the venue --------------------------------------------------------------------------------


class PaperAMM:
    """Paper Uniswap v3 pools over a feed: LP positions, fees, swaps, a wallet; SQLite if `db`.

    Call `advance(now)` before acting at `now`: it moves the clock, accrues fees on the bars that
    closed, and sets the pool price. With `db`, a saved state wins over `balances`.
    """

    def __init__(
        self,
        feed: Feed,
        pools: Sequence[PoolConfig],
        balances: Mapping[str, float] | None = None,
        db: str | Path | None = None,
        *,
        timeframe: str | None = None,
    ) -> None:
        if not pools:
            raise VenueInputError("PaperAMM needs at least one PoolConfig")
        self._pools = {p.pair: p for p in pools}
        if len(self._pools) != len(pools):
            raise VenueInputError("each pair may be configured once")
        self._decimals: dict[str, int] = {}
        for pool in pools:
            for token, decimals in ((pool.base, pool.decimals0), (pool.quote, pool.decimals1)):
                if self._decimals.setdefault(token, decimals) != decimals:
                    raise VenueInputError(f"{token} has different decimals in two pools")
        self._clock = BarClock(feed, self._pools, timeframe)
        self._wallet = {token: 0 for token in self._decimals}
        for asset, amount in (balances or {}).items():
            token = self._token(asset)
            self._wallet[token] = to_raw(
                check_amount(f"balance of {asset}", amount, allow_zero=True), self._decimals[token]
            )
        self._positions: dict[int, LpPosition] = {}
        self._next_id = 1
        self._store = None if db is None else VenueStore(db, "amm")
        saved = None if self._store is None else self._store.load()
        if saved is not None:
            self._restore(saved)

    # -- clock and prices

    def advance(self, now: int | str | pd.Timestamp) -> None:
        """Move the clock to `now` and accrue fees on every bar closed since the last call."""
        windows = self._clock.advance(now)
        for pair, bars in windows.items():
            live = [p for p in self._positions.values() if p.pair == pair and p.liquidity > 0]
            if not (live and len(bars)):
                continue
            config = self._pools[pair]
            bounds = np.array([self._price_bounds(config, p) for p in live])
            earned = lp_fees(
                bars,
                bounds[:, 0],
                bounds[:, 1],
                np.array([float(p.liquidity) for p in live]),
                np.array([p.opened_ms for p in live], dtype=np.int64),
                fee=config.fee,
                depth=config.depth,
                volume_share=config.volume_share,
                decimals0=config.decimals0,
                decimals1=config.decimals1,
            )
            for position, amount in zip(live, earned, strict=True):
                self._positions[position.id] = replace(
                    position, fees_owed=position.fees_owed + float(amount)
                )
        self._save()

    def price(self, pair: str) -> float:
        """The pool price now (quote per base): the last closed candle's close."""
        return self._clock.close(self._pool(pair).pair)

    # -- liquidity positions

    def mint(
        self,
        pair: str,
        lower_price: float | None = None,
        upper_price: float | None = None,
        *,
        lower_tick: int | None = None,
        upper_tick: int | None = None,
        amount0_max: float = 0.0,
        amount1_max: float = 0.0,
    ) -> LpReceipt:
        """Open a position with the most liquidity the amounts fund in the range (prices or ticks,
        rounded outward to the tick spacing); pays the amounts the pool takes, rounded up."""
        config = self._pool(pair)
        now = self._clock.now()
        tick_lower, tick_upper = self._range(
            config, lower_price, upper_price, lower_tick, upper_tick
        )
        max0 = to_raw(check_amount("amount0_max", amount0_max, allow_zero=True), config.decimals0)
        max1 = to_raw(check_amount("amount1_max", amount1_max, allow_zero=True), config.decimals1)
        sqrt_price = self._sqrt_price(config)
        sqrt_lower, sqrt_upper = (
            get_sqrt_ratio_at_tick(tick_lower),
            get_sqrt_ratio_at_tick(tick_upper),
        )
        try:
            liquidity = get_liquidity_for_amounts(sqrt_price, sqrt_lower, sqrt_upper, max0, max1)
        except ProtocolMathError as exc:
            raise VenueInputError(f"cannot mint: {exc}") from None
        if liquidity == 0:
            raise VenueInputError(
                f"amount0_max={amount0_max}, amount1_max={amount1_max} fund no liquidity in "
                f"ticks [{tick_lower}, {tick_upper}] at price {self.price(pair)} (below the range "
                f"only {config.base} counts, above it only {config.quote})"
            )
        paid0, paid1 = get_amounts_for_liquidity(
            sqrt_price, sqrt_lower, sqrt_upper, liquidity, round_up=True
        )
        self._settle(config, -paid0, -paid1)
        position = LpPosition(
            self._next_id,
            config.pair,
            tick_lower,
            tick_upper,
            liquidity,
            now,
            self.price(pair),
            0.0,
        )
        self._positions[position.id] = position
        self._next_id += 1
        self._save()
        return self._receipt("mint", position, paid0, paid1)

    def burn(self, position_id: int) -> LpReceipt:
        """Withdraw all the position's liquidity: its principal at the pool price (rounded down)
        goes to the wallet; fees stay owed until `collect`."""
        position = self._position(position_id)
        if position.liquidity == 0:
            raise VenueInputError(f"position {position_id} is already burned; collect its fees")
        config = self._pools[position.pair]
        amount0, amount1 = get_amounts_for_liquidity(
            self._sqrt_price(config),
            get_sqrt_ratio_at_tick(position.tick_lower),
            get_sqrt_ratio_at_tick(position.tick_upper),
            position.liquidity,
        )
        self._settle(config, amount0, amount1)
        self._keep(replace(position, liquidity=0))
        self._save()
        return self._receipt("burn", position, amount0, amount1)

    def collect(self, position_id: int) -> LpReceipt:
        """Pay the position's accrued fees (quote) to the wallet; a burned position then closes."""
        position = self._position(position_id)
        config = self._pools[position.pair]
        fees = to_raw(position.fees_owed, config.decimals1)
        self._settle(config, 0, fees)
        self._keep(replace(position, fees_owed=0.0))
        self._save()
        return self._receipt("collect", position, 0, fees)

    def positions(self) -> list[LpValuation]:
        """Every position not yet closed, marked at the pool price."""
        return [self._valuation(p) for p in sorted(self._positions.values(), key=lambda p: p.id)]

    # -- swaps

    def swap(
        self, pair: str, side: Literal["buy", "sell"], amount_in: float, min_amount_out: float
    ) -> SwapReceipt:
        """Sell `amount_in` of base ('sell') or of quote ('buy') through the pool's depth.

        Refused when the output would fall below `min_amount_out`, and when that floor is 0 or
        less (such a swap can be sandwiched for everything). With MEV on, the expected sandwich
        takes what the floor allows it, when that pays the attacker's gas.
        """
        config = self._pool(pair)
        now = self._clock.now()
        if side not in ("buy", "sell"):
            raise VenueInputError(f"side must be 'buy' or 'sell', got {side!r}")
        check_amount("amount_in", amount_in)
        if not (isinstance(min_amount_out, numbers.Real) and min_amount_out > 0):
            raise SlippageError(
                f"min_amount_out must be > 0, got {min_amount_out!r}: a swap without a floor "
                "can be sandwiched for all of its output"
            )
        check_amount("min_amount_out", min_amount_out)
        zero_for_one = side == "sell"
        decimals_in, decimals_out = (
            (config.decimals0, config.decimals1)
            if zero_for_one
            else (config.decimals1, config.decimals0)
        )
        raw_in = to_raw(amount_in, decimals_in)
        raw_min = to_raw(min_amount_out, decimals_out, round_up=True)
        price = self.price(pair)
        sqrt_price = self._sqrt_price(config)
        liquidity = int(depth_liquidity(config.depth, price, config.decimals0, config.decimals1))
        pool = v3pool.initialize_pool(sqrt_price, config.fee_pips, config.tick_spacing)
        full_range = v3pool.Position(*full_range_ticks(config.tick_spacing))
        pool = v3pool.mint(pool, full_range, liquidity).pool
        try:
            result = v3pool.swap(pool, zero_for_one, raw_in)
        except ProtocolMathError as exc:
            raise ExecutionError(f"the pool cannot fill this swap: {exc}") from None
        paid, received = (
            (result.amount0, -result.amount1) if zero_for_one else (result.amount1, -result.amount0)
        )
        if paid != raw_in:
            raise ExecutionError(
                f"the pool's depth cannot absorb {amount_in}: only {from_raw(paid, decimals_in)} "
                "would fill"
            )
        if received < raw_min:
            raise SlippageError(
                f"{side} {amount_in} on {pair} would pay {from_raw(received, decimals_out)}, "
                f"below min_amount_out {min_amount_out}"
            )
        growth = (
            result.pool.fee_growth_global0_x128
            if zero_for_one
            else result.pool.fee_growth_global1_x128
        )
        fee = fees_owed(liquidity, growth, 0)
        mev = 0
        if config.mev:
            attacker_gas = 2 * config.gas_cost * (1 / price if zero_for_one else 1.0)
            loss = expected_sandwich_loss(
                float(liquidity),
                sqrt_price / Q96,
                config.fee,
                zero_for_one=zero_for_one,
                amount_in=float(raw_in),
                slippage=1 - raw_min / received,
                attacker_gas=attacker_gas * 10**decimals_in,
            )
            mev = min(math.ceil(loss), received - raw_min)
        out = received - mev
        if zero_for_one:
            self._settle(config, -raw_in, out)
        else:
            self._settle(config, out, -raw_in)
        self._save()
        spot = price if zero_for_one else 1 / price
        whole_in, whole_out = from_raw(raw_in, decimals_in), from_raw(out, decimals_out)
        net_in = from_raw(raw_in - fee, decimals_in)
        return SwapReceipt(
            time_ms=now,
            pair=config.pair,
            side=side,
            amount_in=whole_in,
            amount_out=whole_out,
            price=whole_out / whole_in if zero_for_one else whole_in / whole_out,
            fee=from_raw(fee, decimals_in),
            price_impact=1 - from_raw(received, decimals_out) / (net_in * spot),
            mev_cost=from_raw(mev, decimals_out),
            gas_cost=config.gas_cost,
        )

    # -- portfolio view

    def fee_tier(self, pair: str) -> int:
        """The pool's fee in pips (3000 = 0.3 %)."""
        return self._pool(pair).fee_pips

    def transfer(self, token: str, amount: float) -> None:
        """Move tokens into (amount > 0) or out of (< 0) the wallet: what another venue on the
        same chain account (a lending market) takes or gives back."""
        if token not in self._wallet:
            raise VenueInputError(
                f"unknown token {token!r}; the wallet holds {sorted(self._wallet)}"
            )
        check_amount("amount", abs(amount))
        raw = to_raw(abs(amount), self._decimals[token], round_up=amount < 0)
        delta = raw if amount > 0 else -raw
        if self._wallet[token] + delta < 0:
            have = from_raw(self._wallet[token], self._decimals[token])
            raise InsufficientBalanceError(f"needs {-amount} {token}, the wallet holds {have}")
        self._wallet[token] += delta
        self._save()

    def balances(self) -> dict[str, float]:
        """The wallet, whole tokens."""
        return {token: from_raw(raw, self._decimals[token]) for token, raw in self._wallet.items()}

    def equity(self, quote: str = "USDT") -> float:
        """Wallet plus positions (principal and uncollected fees), valued in `quote`."""
        total = 0.0
        for token, amount in self.balances().items():
            if amount:
                total += amount * self._value_of(token, quote)
        for position in self.positions():
            if self._pools[position.pair].quote != quote:
                raise VenueInputError(f"cannot value a {position.pair} position in {quote}")
            total += position.value
        return total

    def close(self) -> None:
        """Release the database (state is already saved after every change)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- internals

    def _pool(self, pair: str) -> PoolConfig:
        config = self._pools.get(pair)
        if config is None:
            raise VenueInputError(f"unknown pair {pair!r}; this venue has {sorted(self._pools)}")
        return config

    def _token(self, asset: str) -> str:
        if asset not in self._decimals:
            raise VenueInputError(
                f"unknown asset {asset!r}; this venue holds {sorted(self._decimals)}"
            )
        return asset

    def _position(self, position_id: int) -> LpPosition:
        position = self._positions.get(position_id)
        if position is None:
            raise VenueInputError(f"no open position {position_id!r}")
        return position

    def _keep(self, position: LpPosition) -> None:
        """Store the position, or forget it once it holds neither liquidity nor fees."""
        if position.liquidity == 0 and position.fees_owed == 0:
            del self._positions[position.id]
        else:
            self._positions[position.id] = position

    def _sqrt_price(self, config: PoolConfig) -> int:
        return price_to_sqrt_price_x96(
            self._clock.close(config.pair), config.decimals0, config.decimals1
        )

    def _price_bounds(self, config: PoolConfig, position: LpPosition) -> tuple[float, float]:
        return (
            tick_to_price(position.tick_lower, config.decimals0, config.decimals1),
            tick_to_price(position.tick_upper, config.decimals0, config.decimals1),
        )

    def _range(
        self,
        config: PoolConfig,
        lower_price: float | None,
        upper_price: float | None,
        lower_tick: int | None,
        upper_tick: int | None,
    ) -> tuple[int, int]:
        no_ticks = lower_tick is None and upper_tick is None
        no_prices = lower_price is None and upper_price is None
        try:
            if no_ticks and lower_price is not None and upper_price is not None:
                return price_range_to_ticks(
                    check_amount("lower_price", lower_price),
                    check_amount("upper_price", upper_price),
                    config.tick_spacing,
                    config.decimals0,
                    config.decimals1,
                )
            if no_prices and lower_tick is not None and upper_tick is not None:
                if not all(type(t) is int for t in (lower_tick, upper_tick)):
                    raise VenueInputError(f"ticks must be ints, got {lower_tick!r}, {upper_tick!r}")
                return outward_ticks(lower_tick, upper_tick, config.tick_spacing)
        except ProtocolMathError as exc:
            raise VenueInputError(f"bad range: {exc}") from None
        raise VenueInputError(
            "give the range as lower_price and upper_price, or as lower_tick and upper_tick"
        )

    def _settle(self, config: PoolConfig, delta0: int, delta1: int) -> None:
        """Apply token deltas and the action's gas (quote) at once, or refuse them all."""
        deltas = {
            config.base: delta0,
            config.quote: delta1 - to_raw(config.gas_cost, config.decimals1),
        }
        for token, delta in deltas.items():
            if self._wallet[token] + delta < 0:
                need = from_raw(-delta, self._decimals[token])
                have = from_raw(self._wallet[token], self._decimals[token])
                raise InsufficientBalanceError(
                    f"needs {need} {token} (gas included), the wallet holds {have}"
                )
        for token, delta in deltas.items():
            self._wallet[token] += delta

    def _receipt(
        self, action: Literal["mint", "burn", "collect"], position: LpPosition, raw0: int, raw1: int
    ) -> LpReceipt:
        config = self._pools[position.pair]
        return LpReceipt(
            self._clock.now(),
            action,
            position.id,
            position.pair,
            from_raw(raw0, config.decimals0),
            from_raw(raw1, config.decimals1),
            config.gas_cost,
        )

    def _valuation(self, position: LpPosition) -> LpValuation:
        config = self._pools[position.pair]
        price = self.price(position.pair)
        sqrt_price = self._sqrt_price(config)
        lower, upper = self._price_bounds(config, position)
        raw0, raw1 = get_amounts_for_liquidity(
            sqrt_price,
            get_sqrt_ratio_at_tick(position.tick_lower),
            get_sqrt_ratio_at_tick(position.tick_upper),
            position.liquidity,
        )
        amount0, amount1 = from_raw(raw0, config.decimals0), from_raw(raw1, config.decimals1)
        return LpValuation(
            id=position.id,
            pair=position.pair,
            tick_lower=position.tick_lower,
            tick_upper=position.tick_upper,
            price_lower=lower,
            price_upper=upper,
            liquidity=position.liquidity,
            amount0=amount0,
            amount1=amount1,
            fees_owed=position.fees_owed,
            value=amount0 * price + amount1 + position.fees_owed,
            impermanent_loss=(
                impermanent_loss_range(position.open_price, price, lower, upper)
                if position.liquidity
                else None
            ),
            in_range=position.tick_lower
            <= get_tick_at_sqrt_ratio(sqrt_price)
            < position.tick_upper,
            opened_ms=position.opened_ms,
            open_price=position.open_price,
        )

    def _value_of(self, token: str, quote: str) -> float:
        if token == quote:
            return 1.0
        pair = f"{token}/{quote}"
        if pair not in self._pools:
            raise VenueInputError(f"cannot value {token} in {quote}: no {pair} pool")
        return self.price(pair)

    def _save(self) -> None:
        if self._store is not None:
            self._store.save(
                {
                    "clock": self._clock.to_dict(),
                    "wallet": self._wallet,
                    "positions": [asdict(p) for p in self._positions.values()],
                    "next_id": self._next_id,
                }
            )

    def _restore(self, state: Mapping[str, Any]) -> None:
        self._clock.restore(state["clock"])
        for token, raw in state["wallet"].items():
            self._wallet[self._token(token)] = int(raw)
        for saved in state["positions"]:
            position = LpPosition(**saved)
            self._pool(position.pair)
            self._positions[position.id] = position
        self._next_id = int(state["next_id"])
