"""PaperExchange: a paper-trading venue speaking ccxt, with every fill assumption written down.

The fill maths is in fills.py (pure functions); this module keeps the books — orders, trades,
balances, isolated positions — matches open orders against each candle the engine's clock
closes, and renders everything through ccxt's own `safe_*` builders so the shapes are ccxt's.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import ccxt
import numpy as np
from ccxt.base.decimal_to_precision import ROUND, TICK_SIZE, TRUNCATE, decimal_to_precision
from ccxt.base.precise import Precise

from defai.errors import ConfigError, ExecutionError
from defai.execution import fills
from defai.execution.broker import Balance, Market, Order, Position, Ticker, Trade
from defai.execution.fills import Bar, Hit, PositionSide, Side, TriggerKind
from defai.market.feed import Feed
from defai.types import Candles, timeframe_ms, to_ms

OrderBookSource = Callable[[str, int], Mapping[str, Any]]
"""(market symbol, bar open ms) -> a ccxt order book ({"bids": [[price, amount], ...], "asks"})."""

_CCXT = ccxt.Exchange()  # ccxt's own builders (safe_order, safe_trade, ...) give the exact shapes
_BALANCE_STEP = 1e-8  # balances are reported to 8 decimals, as exchanges do
_TRIGGER_PARAMS: tuple[tuple[str, TriggerKind], ...] = (
    ("triggerPrice", "stop"),
    ("stopPrice", "stop"),  # ccxt's older name
    ("stopLossPrice", "stopLoss"),
    ("takeProfitPrice", "takeProfit"),
)
_KNOWN_PARAMS = frozenset(
    [key for key, _ in _TRIGGER_PARAMS] + ["reduceOnly", "clientOrderId", "postOnly", "timeInForce"]
)
_SAFETY = 1.0 - 1e-9  # keeps float rounding from spending a hair more than the free balance


@dataclass(frozen=True, slots=True)
class MarketRules:
    """Trading rules of a feed symbol's spot and perpetual markets (tick, step, min notional)."""

    price_tick: float
    amount_step: float
    min_cost: float = 5.0  # quote units: sized for USD-quoted markets

    def __post_init__(self) -> None:
        if not (_positive(self.price_tick) and _positive(self.amount_step)) or not (
            math.isfinite(self.min_cost) and self.min_cost >= 0
        ):
            raise ConfigError(f"market rules need tick, step > 0 and min_cost >= 0: {self}")

    @classmethod
    def for_price(cls, price: float) -> MarketRules:
        """Binance-like rules from a price level: ~6 significant digits of price, amounts worth
        ~0.1-1 quote unit per step (ETH at 2,000: tick 0.01, step 0.0001)."""
        magnitude = math.floor(math.log10(price))
        return cls(price_tick=10.0 ** (magnitude - 5), amount_step=10.0 ** (-magnitude - 1))


_R = TypeVar("_R", "_Order", "_Fill")


@dataclass(slots=True)
class _Order:
    id: str
    client_order_id: str | None
    symbol: str
    type: str
    side: Side
    amount: float
    price: float | None
    trigger_price: float | None
    trigger_kind: TriggerKind | None
    direction: fills.Direction | None
    reduce_only: bool
    post_only: bool
    marketable: bool  # through the spread at placement: takes at the next open
    timestamp: int
    lock: float  # funds reserved in lock_currency for the unfilled part
    lock_currency: str
    status: str = "open"
    triggered: bool = False
    filled: float = 0.0
    cost: float = 0.0
    fee: float = 0.0
    last_trade_timestamp: int | None = None
    last_update_timestamp: int | None = None
    reason: str | None = None  # why the exchange canceled it
    trade_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Fill:
    id: str
    order_id: str | None
    symbol: str
    order_type: str | None
    side: Side
    price: float
    amount: float
    fee: float
    fee_rate: float
    fee_currency: str
    taker: bool
    timestamp: int
    realized_pnl: float = 0.0
    insurance: float = 0.0  # loss beyond an isolated position's margin, borne by the venue
    reason: str | None = None  # "liquidation" or "halt" for fills no order asked for


@dataclass(slots=True)
class _Position:
    symbol: str
    side: PositionSide
    contracts: float
    entry_price: float
    margin: float
    leverage: float
    timestamp: int
    realized_pnl: float = 0.0


class PaperExchange:
    """A paper-trading exchange on a point-in-time feed: ccxt's unified API, explicit fills.

    Markets: for each feed symbol BASE/QUOTE, a spot market "BASE/QUOTE" and a linear
    perpetual "BASE/QUOTE:QUOTE" (isolated margin, contract size 1), both priced by the feed's
    candles at `timeframe`. All feed symbols must share one quote currency, the account's.

    Clock: the engine drives it. `advance(now_ms)` processes, in time order, every candle of the
    traded markets that closed after the previous `advance` and at or before `now_ms` (read
    through the feed's point-in-time window: nothing later is ever seen). Orders are stamped with
    the clock and may be created at any time; an order only meets candles opening at or after
    its timestamp, so a signal computed on bar t's close fills at the earliest at bar t+1's open.

    Fill assumptions (docs/paper_exchange.md has the worked examples):
    - Reference price at placement: the last closed candle's close, with bid/ask at half the
      spread either side. Fills are stamped with the open time of the bar they happen in.
    - Market order: fills at the next bar's open, moved against the taker by half the spread
      plus square-root impact `impact * sqrt(q / bar volume)`, capped at `max_slippage`; taker
      fee. With `order_books`, fills at a bar's open walk the book's levels instead, taking no
      level worse than mid * (1 +/- max_slippage); what the book cannot give waits a bar.
    - Limit order: marketable at placement (a buy at or above the ask, a sell at or below the
      bid) -> taker at the next open, no worse than its limit, if the open is still within the
      limit; otherwise it rests. A resting limit is a maker: a buy fills when the bar's low
      reaches the limit (a touch is enough) at the limit, or at the open when the bar opens
      through it; sells mirror with the high. `postOnly` limits that would take are refused.
    - Stop (`triggerPrice`; `stopLossPrice`/`takeProfitPrice` exits): fires when the bar's
      high/low reaches the trigger, at the trigger, or at the open when the bar gaps through it;
      a stop-market then takes there with slippage (capped at its limit for a stop-limit).
      A plain stop fires on the way from the placement price to the trigger; a stop-loss sells
      on a fall / buys on a rise, a take-profit the opposite. The trigger fires at bar prices;
      real venues may trigger on a mark price.
    - Inside one bar the path is unknown: events are ordered along the pessimistic path (open,
      then the extreme against the position — with no position, the extreme away from the
      close — then the other): a stop-loss and a take-profit touched in one bar -> the
      stop-loss, unless the bar opened through the take-profit.
    - Size: each market fills at most `max_volume_share` x the bar's volume per bar, shared by
      its orders in path order; the rest waits for later bars (partial fills). Amounts are
      truncated to the market's step; a fill smaller than one step waits.
    - Funds: an order reserves its worst-case cost at placement (limit price, or reference x
      (1 + max_slippage) for market and stop orders, plus the taker fee); a fill never spends
      more than the free balance plus what it releases: a market buy that gapped beyond its
      reservation fills what the account affords and the rest is canceled. Fees are charged in
      the quote currency (spot and perps).
    - Perpetuals: isolated margin `notional / leverage` per position, one position per symbol
      (one-way mode); mark price = last close. Liquidated when the bar's low (long) or high
      (short) reaches the liquidation price where margin + PnL = maintenance rate x notional
      (at the open on a gap), closed at that price with a liquidation fee (`liquidation_fee` x
      notional, at most what is left of the margin). A position can never lose more than its
      margin: any excess (a gap through the bankruptcy price) is borne by the venue and reported
      as `insurance` in the trade's info. A stop that would close a position at or beyond its
      liquidation price is refused. Reduce-only orders are clipped to the position and canceled
      when it closes. Leverage changes only with no position and no open order on the symbol.
    - Equity (all balances at the last closes plus unrealised PnL) at or below `min_equity`
      after a bar closes every position at the close, cancels every order and halts the
      exchange: new orders are refused.
    """

    def __init__(
        self,
        feed: Feed,
        *,
        markets: Mapping[str, MarketRules] | None = None,
        balances: Mapping[str, float] | None = None,
        maker: float = 0.0002,
        taker: float = 0.0005,
        spread_bps: float = 2.0,
        impact: float = 0.01,
        max_slippage: float = 0.01,
        max_volume_share: float = 0.1,
        leverage: float = 1.0,
        max_leverage: float = 20.0,
        maintenance_margin_rate: float = 0.005,
        liquidation_fee: float = 0.005,
        min_equity: float = 0.0,
        timeframe: str | None = None,
        start: int | str | None = None,
        order_books: OrderBookSource | None = None,
        db: str | Path | None = None,
        id: str = "paper",
    ) -> None:
        self.id = id
        self._feed = feed
        self._order_books = order_books
        symbols = feed.symbols()
        if not symbols:
            raise ConfigError("PaperExchange needs a feed with at least one symbol")
        self._timeframe = timeframe or feed.timeframes(symbols[0])[0]
        self._period = timeframe_ms(self._timeframe)
        self._config = _config(
            maker=maker,
            taker=taker,
            spread_bps=spread_bps,
            impact=impact,
            max_slippage=max_slippage,
            max_volume_share=max_volume_share,
            leverage=leverage,
            max_leverage=max_leverage,
            maintenance_margin_rate=maintenance_margin_rate,
            liquidation_fee=liquidation_fee,
            min_equity=min_equity,
            timeframe=self._timeframe,
            id=id,
            markets={s: _fields(r) for s, r in sorted((markets or {}).items())},
        )
        self._maker, self._taker = maker, taker
        self._spread_bps, self._impact, self._max_slippage = spread_bps, impact, max_slippage
        self._max_volume_share, self._max_leverage = max_volume_share, max_leverage
        self._mmr, self._liquidation_fee, self._min_equity = (
            maintenance_margin_rate,
            liquidation_fee,
            min_equity,
        )
        self._currency = _account_currency(symbols)

        self._orders: dict[str, _Order] = {}
        self._open: dict[str, dict[str, _Order]] = {}  # market symbol -> open orders, oldest first
        self._by_client_id: dict[str, str] = {}
        self._trades: dict[str, _Fill] = {}
        self._positions: dict[str, _Position] = {}
        self._reserved: dict[str, float] = {}  # funds locked by open orders, per currency
        self._balance_cache: tuple[object, Balance] | None = None
        self._closes: dict[tuple[str, int], float | None] = {}
        self._halted: str | None = None
        self._store = _Store(Path(db)) if db is not None else None
        self._dirty_orders: set[str] = set()
        self._dirty_positions: set[str] = set()
        self._unsaved_trades: list[_Fill] = []

        saved = self._store.load() if self._store is not None else None
        if saved is None:
            self._rules = {
                s: (markets or {}).get(s) or MarketRules.for_price(self._first_open(s))
                for s in symbols
            }
            self._now = to_ms(start) if start is not None else self._first_close(symbols)
            self._balances = _initial_balances(balances, self._currency, symbols)
            self._leverage = {f"{s}:{self._currency}": float(leverage) for s in symbols}
            self._next_id = 1
        else:
            try:
                self._restore(saved)
            except ConfigError:
                self.close()
                raise
        self._markets = self._build_markets()
        self._feed_symbol = {m: fs for fs in self._rules for m in self._market_symbols(fs)}
        self._save()

    # ---- ccxt's unified API --------------------------------------------------------------------

    def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return {s: _CCXT.deep_extend(m) for s, m in self._markets.items()}

    def fetch_balance(self, params: dict[str, Any] | None = None) -> Balance:
        used = self._used()
        key = (tuple(self._balances.items()), tuple(used.items()))
        if self._balance_cache is None or self._balance_cache[0] != key:
            self._balance_cache = (key, self._render_balance(used))
        # ccxt's builders are slow and a backtest asks every tick: render again only when the
        # books changed, and hand out a copy the caller may modify
        copy = {k: dict(v) if isinstance(v, dict) else v for k, v in self._balance_cache[1].items()}
        copy["timestamp"], copy["datetime"] = self._now, _CCXT.iso8601(self._now)
        return copy  # type: ignore[return-value]

    def _render_balance(self, used: dict[str, float]) -> Balance:
        raw: dict[str, Any] = {"info": {"balances": dict(self._balances), "used": used}}
        for code, total in sorted(self._balances.items()):
            total_s = _balance_string(total)
            used_s = Precise.string_min(_balance_string(used.get(code, 0.0)), total_s)
            raw[code] = {"total": total_s, "used": used_s}
        return _CCXT.safe_balance(raw)  # type: ignore[no-any-return]

    def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> Ticker:
        market = self._market(symbol)
        window = self._feed.candles(self._feed_symbol[symbol], self._timeframe, self._now, 1)
        if len(window) == 0:
            raise ccxt.ExchangeNotAvailable(f"no closed {self._timeframe} candle of {symbol} yet")
        bar = _bar(window, 0)
        close_ts = int(window.close_ts[0])
        quote_volume = bar.volume * (bar.high + bar.low + bar.close) / 3.0
        spread = fills.half_spread(self._spread_bps)
        ticker = _CCXT.safe_ticker(
            {
                "info": {"ohlcv": window.to_ohlcv()[0], "timeframe": self._timeframe},
                "symbol": market["symbol"],
                "timestamp": close_ts,
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "bid": bar.close * (1.0 - spread),
                "ask": bar.close * (1.0 + spread),
                "baseVolume": bar.volume,
                "quoteVolume": quote_volume,
            },
            market,
        )
        ticker["datetime"] = _CCXT.iso8601(close_ts)
        return ticker  # type: ignore[no-any-return]

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Order:
        market = self._market(symbol)
        params = dict(params or {})
        client_id = params.get("clientOrderId")
        if client_id is not None and str(client_id) in self._by_client_id:
            return self._order_dict(self._orders[self._by_client_id[str(client_id)]])
        if self._halted is not None:
            raise ccxt.InsufficientFunds(f"{self.id} is halted: {self._halted}")
        order = self._new_order(market, type, side, amount, price, params)
        self._orders[order.id] = order
        self._open.setdefault(order.symbol, {})[order.id] = order
        if order.client_order_id is not None:
            self._by_client_id[order.client_order_id] = order.id
        self._touch_order(order)
        self._save()
        return self._order_dict(order)

    def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Order:
        order = self._find_order(id, symbol)
        if order.status != "open":
            raise ccxt.OrderNotFound(f"order {id} is {order.status}: only open orders can cancel")
        self._close_order(order, "canceled", self._now, None)
        self._save()
        return self._order_dict(order)

    def fetch_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Order:
        return self._order_dict(self._find_order(id, symbol))

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Order]:
        if symbol is not None:
            self._market(symbol)
        orders = sorted((o for book in self._open.values() for o in book.values()), key=_seq)
        return [self._order_dict(o) for o in _select(orders, symbol, since, limit)]

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Trade]:
        if symbol is not None:
            self._market(symbol)
        trades = list(self._trades.values())
        return [self._trade_dict(t) for t in _select(trades, symbol, since, limit)]

    def fetch_positions(
        self, symbols: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> list[Position]:
        for s in symbols or []:
            self._market(s)
        return [
            self._position_dict(p)
            for s, p in sorted(self._positions.items())
            if symbols is None or s in symbols
        ]

    def set_leverage(
        self, leverage: float, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """ccxt's set_leverage for one perpetual; refused while it has a position or order."""
        if symbol is None:
            raise ccxt.ArgumentsRequired("set_leverage needs a symbol")
        market = self._market(symbol)
        if not market["swap"]:
            raise ccxt.BadSymbol(f"{symbol} is a spot market: leverage applies to perpetuals")
        if not 1.0 <= leverage <= self._max_leverage:
            raise ccxt.BadRequest(f"leverage must be in [1, {self._max_leverage}], got {leverage}")
        if symbol in self._positions or self._open.get(symbol):
            raise ccxt.BadRequest(
                f"cannot change the leverage of {symbol} while a position or an order is open"
            )
        self._leverage[symbol] = float(leverage)
        self._save()
        return {
            "info": {"symbol": symbol, "leverage": leverage},
            "symbol": symbol,
            "marginMode": "isolated",
            "longLeverage": float(leverage),
            "shortLeverage": float(leverage),
        }

    # ---- the clock -------------------------------------------------------------------------------

    @property
    def now(self) -> int:
        """The exchange's clock (epoch ms): the `now_ms` of the last `advance`."""
        return self._now

    @property
    def halted(self) -> bool:
        return self._halted is not None

    def advance(self, now_ms: int) -> list[Trade]:
        """Process every candle of the traded markets closed in (previous now, now_ms], in time
        order: fill orders, liquidate positions, check equity. Returns the trades made."""
        now = int(now_ms)
        if now < self._now:
            raise ExecutionError(
                f"{self.id}: the clock cannot go back from {self._now} to {now} (epoch ms)"
            )
        made: list[_Fill] = []
        active = self._active_feed_symbols()
        if active and self._halted is None and now > self._now:
            self._process(active, now, made)
        self._now = now
        self._save()
        return [self._trade_dict(f) for f in made]

    def equity(self) -> float:
        """Account value in the quote currency: balances at the last closes plus unrealised PnL
        (NaN while a held currency has no closed candle yet)."""
        marks = {fs: self._last_close(fs, self._now) for fs in self._rules}
        return self._equity({fs: m for fs, m in marks.items() if m is not None})

    def close(self) -> None:
        """Release the state database (state is already saved after every call)."""
        if self._store is not None:
            self._store.close()

    # ---- placing orders --------------------------------------------------------------------------

    def _new_order(
        self,
        market: Market,
        type: str,
        side: str,
        amount: float,
        price: float | None,
        params: dict[str, Any],
    ) -> _Order:
        symbol = market["symbol"]
        unknown = set(params) - _KNOWN_PARAMS
        if unknown:
            raise ccxt.NotSupported(f"{self.id} does not support order params {sorted(unknown)}")
        if type not in ("market", "limit"):
            raise ccxt.InvalidOrder(f"order type must be 'market' or 'limit', got {type!r}")
        if side not in ("buy", "sell"):
            raise ccxt.InvalidOrder(f"order side must be 'buy' or 'sell', got {side!r}")
        order_side: Side = "buy" if side == "buy" else "sell"
        rules = self._rules[self._feed_symbol[symbol]]
        if not _positive(amount):
            raise ccxt.InvalidOrder(f"amount must be a positive number, got {amount!r}")
        amount = _to_step(amount, rules.amount_step, TRUNCATE)
        if amount < rules.amount_step:
            raise ccxt.InvalidOrder(
                f"amount is below the minimum {rules.amount_step} {market['base']} of {symbol}"
            )
        # a market order ignores price, as ccxt's unified API does
        price = _on_tick("price", price, rules.price_tick) if type == "limit" else None
        trigger, kind = self._trigger(params, rules)
        time_in_force = params.get("timeInForce", "GTC")
        if time_in_force not in ("GTC", "PO"):
            raise ccxt.NotSupported(f"timeInForce must be 'GTC' or 'PO', got {time_in_force!r}")
        post_only = bool(params.get("postOnly", False)) or time_in_force == "PO"
        reduce_only = bool(params.get("reduceOnly", False))
        reference = self._last_close(self._feed_symbol[symbol], self._now)
        if reference is None:
            raise ccxt.InvalidOrder(f"no closed candle of {symbol} yet: no price to trade at")
        spread = fills.half_spread(self._spread_bps)
        marketable = (
            price is not None
            and trigger is None
            and (
                price >= reference * (1.0 + spread)
                if order_side == "buy"
                else price <= reference * (1.0 - spread)
            )
        )
        if post_only and (type == "market" or marketable):
            raise ccxt.OrderImmediatelyFillable(
                f"post-only {side} at {price} would take liquidity ({symbol} last {reference})"
            )
        if market["swap"]:
            reduce_only = reduce_only or kind in ("stopLoss", "takeProfit")
            self._check_position_rules(symbol, order_side, trigger, reduce_only)
        elif reduce_only:
            raise ccxt.InvalidOrder(f"{symbol} is a spot market: there is no position to reduce")
        worst = (
            price
            if price is not None
            else max(reference, trigger or 0.0) * (1.0 + self._max_slippage)
        )
        notional = amount * (price or trigger or reference)
        if notional < rules.min_cost:
            raise ccxt.InvalidOrder(
                f"order value {notional:.8g} {market['quote']} is below the minimum "
                f"{rules.min_cost} of {symbol}"
            )
        lock, currency = self._reservation(market, order_side, amount, worst, reduce_only)
        free = self._free(currency)
        if lock > free:
            raise ccxt.InsufficientFunds(
                f"{side} {amount} {symbol} needs {lock:.8g} {currency}, {free:.8g} is free"
            )
        order = _Order(
            id=str(self._next_id),
            client_order_id=None
            if params.get("clientOrderId") is None
            else str(params["clientOrderId"]),
            symbol=symbol,
            type=type,
            side=order_side,
            amount=amount,
            price=price,
            trigger_price=trigger,
            trigger_kind=kind,
            direction=None
            if trigger is None or kind is None
            else fills.trigger_direction(order_side, kind, trigger, reference),
            reduce_only=reduce_only,
            post_only=post_only,
            marketable=marketable,
            timestamp=self._now,
            lock=lock,
            lock_currency=currency,
            last_update_timestamp=self._now,
        )
        self._next_id += 1
        return order

    def _trigger(
        self, params: dict[str, Any], rules: MarketRules
    ) -> tuple[float | None, TriggerKind | None]:
        given = [(k, kind) for k, kind in _TRIGGER_PARAMS if params.get(k) is not None]
        if not given:
            return None, None
        if len(given) > 1:
            names = [k for k, _ in given]
            raise ccxt.InvalidOrder(f"one trigger per order, got {names}: use one order each")
        key, kind = given[0]
        return _on_tick(key, params[key], rules.price_tick), kind

    def _check_position_rules(
        self, symbol: str, side: Side, trigger: float | None, reduce_only: bool
    ) -> None:
        """Reduce-only needs a position to reduce; a stop closing a position must fire before
        its liquidation."""
        position = self._positions.get(symbol)
        closes = position is not None and _closing_side(position.side) == side
        if reduce_only and not closes:
            raise ccxt.InvalidOrder(
                f"reduce-only {side} on {symbol} has no "
                f"{'long' if side == 'sell' else 'short'} position to reduce"
            )
        if position is not None and closes and trigger is not None:
            liquidation = self._liquidation_price(position)
            beyond = liquidation is not None and (
                trigger <= liquidation if position.side == "long" else trigger >= liquidation
            )
            if beyond:
                raise ccxt.InvalidOrder(
                    f"stop at {trigger} is at or beyond the liquidation price {liquidation:.8g} "
                    f"of the {position.side} {symbol} position: it would never fire first"
                )

    def _reservation(
        self, market: Market, side: Side, amount: float, price: float, reduce_only: bool
    ) -> tuple[float, str]:
        """Funds an order reserves at its worst expected price: quote for a spot buy, base for a
        spot sell, margin + fee for the part of a perp order that opens exposure."""
        if market["spot"]:
            if side == "sell":
                return amount, market["base"]
            return amount * price * (1.0 + self._taker), market["quote"]
        opening = 0.0 if reduce_only else self._opening_amount(market["symbol"], side, amount)
        unit = price * (1.0 / self._leverage[market["symbol"]] + self._taker)
        return opening * unit, market["settle"]

    def _opening_amount(self, symbol: str, side: Side, amount: float) -> float:
        position = self._positions.get(symbol)
        if position is None or _closing_side(position.side) != side:
            return amount
        return max(amount - position.contracts, 0.0)

    # ---- matching --------------------------------------------------------------------------------

    def _process(self, active: list[str], now: int, made: list[_Fill]) -> None:
        since = self._now - self._period + 1  # candles closing after the previous advance
        windows = {fs: self._feed.candles(fs, self._timeframe, now, since=since) for fs in active}
        marks = {fs: m for fs in active if (m := self._last_close(fs, self._now)) is not None}
        times = np.unique(np.concatenate([w.ts for w in windows.values()]))
        cursor = dict.fromkeys(active, 0)
        for t in times:
            ts = int(t)
            for fs, window in windows.items():
                i = cursor[fs]
                if i < len(window) and int(window.ts[i]) == ts:
                    cursor[fs] = i + 1
                    bar = _bar(window, i)
                    for symbol in self._market_symbols(fs):
                        self._process_market(symbol, bar, ts, made)
                    marks[fs] = bar.close
            if self._equity(marks) <= self._min_equity:
                self._halt(marks, ts + self._period, made)
                return

    def _process_market(self, symbol: str, bar: Bar, ts: int, made: list[_Fill]) -> None:
        book = self._open.get(symbol)
        position = self._positions.get(symbol)
        if not book and position is None:
            return
        low_first = position.side == "long" if position is not None else bar.close >= bar.open
        hits: list[tuple[float, int, _Order, Hit]] = []
        for order in list(book.values()) if book else []:
            if order.timestamp > ts:
                continue
            hit = fills.order_hit(
                order.side,
                order.price,
                order.trigger_price,
                order.direction,
                order.triggered,
                order.marketable,
                bar,
                low_first,
            )
            if order.marketable:
                order.marketable = False
                self._touch_order(order)
            if hit is None:
                continue
            if order.trigger_price is not None and not order.triggered:
                order.triggered = True
                order.last_update_timestamp = ts
                self._touch_order(order)
            if hit.price is not None:
                hits.append((hit.distance, int(order.id), order, hit))
        hits.sort(key=lambda h: (h[0], h[1]))
        capacity = fills.volume_capacity(bar.volume, self._max_volume_share)
        for distance, _, order, hit in hits:
            self._liquidate_if_reached(symbol, bar, ts, low_first, distance, made)
            if order.status == "open" and capacity > 0:
                capacity -= self._fill(order, hit, bar, ts, capacity, made)
        self._liquidate_if_reached(symbol, bar, ts, low_first, math.inf, made)

    def _fill(
        self, order: _Order, hit: Hit, bar: Bar, ts: int, capacity: float, made: list[_Fill]
    ) -> float:
        """Fill what the bar, the funds and the position allow; returns the amount filled."""
        market = self._markets[order.symbol]
        step = self._rules[self._feed_symbol[order.symbol]].amount_step
        remaining = _to_step(order.amount - order.filled, step, ROUND)
        wanted = min(remaining, capacity)
        position = self._positions.get(order.symbol)
        if order.reduce_only:
            if position is None or _closing_side(position.side) != order.side:
                self._close_order(order, "canceled", ts, "reduce-only: no position to reduce")
                return 0.0
            wanted = min(wanted, position.contracts)
        amount, price = self._fill_price(order, hit, bar, ts, wanted)
        covered = 0.0
        if market["spot"]:
            unit_cost = price * (1.0 + self._taker) if order.side == "buy" else 1.0
        else:
            if position is not None and _closing_side(position.side) == order.side:
                covered = position.contracts
            unit_cost = price * (1.0 / self._leverage[order.symbol] + self._taker)
        unit_release = order.lock / remaining
        free = self._free(order.lock_currency)
        affordable = fills.affordable_amount(free, unit_cost, unit_release, covered) * _SAFETY
        short_of_funds = affordable < amount
        if short_of_funds:
            amount, price = self._fill_price(order, hit, bar, ts, min(amount, affordable))
        amount = _to_step(amount, step, TRUNCATE)
        if amount > 0:
            self._unlock(order, min(unit_release * amount, order.lock))
            self._book_fill(order, market, amount, price, hit.taker, ts, made)
        if short_of_funds and order.status == "open":
            self._close_order(order, "canceled", ts, "insufficient funds at fill")
        return amount

    def _fill_price(
        self, order: _Order, hit: Hit, bar: Bar, ts: int, amount: float
    ) -> tuple[float, float]:
        """(amount, price) a fill of up to `amount` gets: makers at their price; takers walk the
        order book at the open when one is given, else pay slippage; never beyond a limit."""
        assert hit.price is not None
        if not hit.taker:
            return amount, hit.price
        if self._order_books is not None and hit.distance == 0.0:
            book = self._order_books(order.symbol, ts)
            bids, asks = book["bids"], book["asks"]
            mid = (float(bids[0][0]) + float(asks[0][0])) / 2.0
            worst = fills.taker_price(mid, order.side, self._max_slippage)
            if order.price is not None:
                worst = min(worst, order.price) if order.side == "buy" else max(worst, order.price)
            levels = ((float(p), float(a)) for p, a, *_ in (asks if order.side == "buy" else bids))
            taken = fills.walk_book(levels, amount, order.side, worst)
            return taken.amount, taken.average if taken.amount > 0 else hit.price
        fraction = fills.slippage(
            amount, bar.volume, self._spread_bps, self._impact, self._max_slippage
        )
        price = fills.taker_price(hit.price, order.side, fraction)
        if order.price is not None:
            price = min(price, order.price) if order.side == "buy" else max(price, order.price)
        return amount, price

    def _book_fill(
        self,
        order: _Order,
        market: Market,
        amount: float,
        price: float,
        taker: bool,
        ts: int,
        made: list[_Fill],
    ) -> None:
        rate = self._taker if taker else self._maker
        fee = rate * amount * price
        fill = _Fill(
            id="",
            order_id=order.id,
            symbol=order.symbol,
            order_type=order.type,
            side=order.side,
            price=price,
            amount=amount,
            fee=fee,
            fee_rate=rate,
            fee_currency=market["quote"],
            taker=taker,
            timestamp=ts,
        )
        step = self._rules[self._feed_symbol[order.symbol]].amount_step
        order.filled = _to_step(order.filled + amount, step, ROUND)
        order.cost += amount * price
        order.fee += fee
        order.last_trade_timestamp = order.last_update_timestamp = ts
        if market["spot"]:
            self._settle_spot(market, order.side, amount, price, fee, step)
        else:
            self._settle_perp(fill, step)
        self._record(fill, made)
        order.trade_ids.append(fill.id)
        if _to_step(order.amount - order.filled, step, ROUND) <= 0:
            self._close_order(order, "closed", ts, None)
        self._touch_order(order)

    def _settle_spot(
        self, market: Market, side: Side, amount: float, price: float, fee: float, step: float
    ) -> None:
        base, quote = market["base"], market["quote"]
        held = self._balances.get(base, 0.0)
        if side == "buy":
            self._balances[quote] -= amount * price + fee
            self._balances[base] = _to_step(held + amount, step, ROUND)
        else:
            self._balances[base] = _to_step(held - amount, step, ROUND)
            self._balances[quote] = self._balances.get(quote, 0.0) + amount * price - fee

    def _settle_perp(self, fill: _Fill, step: float) -> None:
        """Close what the fill closes (PnL, margin back, loss capped at margin), open the rest."""
        symbol, currency = fill.symbol, fill.fee_currency
        position = self._positions.get(symbol)
        closing = 0.0
        if position is not None and _closing_side(position.side) == fill.side:
            closing = min(fill.amount, position.contracts)
            fee = fill.fee * closing / fill.amount
            pnl, insurance = self._reduce(position, closing, fill.price, fee, fill.timestamp)
            fill.realized_pnl, fill.insurance = pnl, insurance
            self._balances[currency] += pnl - fee + insurance
        opening = _to_step(fill.amount - closing, step, ROUND)
        if opening <= 0:
            return
        self._balances[currency] -= fill.fee * opening / fill.amount
        margin = opening * fill.price / self._leverage[symbol]
        position = self._positions.get(symbol)
        if position is None:
            side: PositionSide = "long" if fill.side == "buy" else "short"
            position = self._positions[symbol] = _Position(
                symbol, side, 0.0, fill.price, 0.0, self._leverage[symbol], fill.timestamp
            )
        contracts = _to_step(position.contracts + opening, step, ROUND)
        position.entry_price = (
            position.entry_price * position.contracts + fill.price * opening
        ) / contracts
        position.contracts = contracts
        position.margin += margin
        position.timestamp = fill.timestamp
        self._touch_position(symbol)

    def _reduce(
        self, position: _Position, amount: float, price: float, fee: float, ts: int
    ) -> tuple[float, float]:
        """Take `amount` off a position at `price`: (realised PnL, insurance). The insurance
        covers any loss beyond the released margin: isolated margin caps the loss."""
        share = amount / position.contracts
        released = position.margin * share
        pnl = fills.position_pnl(position.side, position.entry_price, price, amount)
        insurance = max(-(released + pnl - fee), 0.0)
        position.realized_pnl += pnl
        step = self._rules[self._feed_symbol[position.symbol]].amount_step
        position.contracts = _to_step(position.contracts - amount, step, ROUND)
        position.margin -= released
        self._touch_position(position.symbol)
        if position.contracts <= 0:
            del self._positions[position.symbol]
            for order in list(self._open.get(position.symbol, {}).values()):
                if order.reduce_only:
                    self._close_order(order, "canceled", ts, "position closed")
        return pnl, insurance

    def _liquidate_if_reached(
        self, symbol: str, bar: Bar, ts: int, low_first: bool, up_to: float, made: list[_Fill]
    ) -> None:
        position = self._positions.get(symbol)
        if position is None:
            return
        hit = fills.liquidation_hit(
            position.side, self._liquidation_price(position), bar, low_first
        )
        if hit is not None and hit.price is not None and hit.distance <= up_to:
            self._force_close(position, hit.price, self._liquidation_fee, ts, "liquidation", made)

    def _force_close(
        self,
        position: _Position,
        price: float,
        fee_rate: float,
        ts: int,
        reason: str,
        made: list[_Fill],
    ) -> None:
        """Close a whole position at `price` on the venue's initiative (liquidation, halt): the
        fee takes at most what is left of the margin."""
        amount = position.contracts
        pnl = fills.position_pnl(position.side, position.entry_price, price, amount)
        fee = min(fee_rate * amount * price, max(position.margin + pnl, 0.0))
        currency = self._markets[position.symbol]["settle"]
        fill = _Fill(
            id="",
            order_id=None,
            symbol=position.symbol,
            order_type="market",
            side=_closing_side(position.side),
            price=price,
            amount=amount,
            fee=fee,
            fee_rate=fee_rate,
            fee_currency=currency,
            taker=True,
            timestamp=ts,
            reason=reason,
        )
        pnl, insurance = self._reduce(position, amount, price, fee, ts)
        fill.realized_pnl, fill.insurance = pnl, insurance
        self._balances[currency] += pnl - fee + insurance
        self._record(fill, made)

    def _halt(self, marks: dict[str, float], ts: int, made: list[_Fill]) -> None:
        equity = self._equity(marks)
        for position in list(self._positions.values()):
            mark = marks[self._feed_symbol[position.symbol]]
            self._force_close(position, mark, self._taker, ts, "halt", made)
        for book in list(self._open.values()):
            for order in list(book.values()):
                self._close_order(order, "canceled", ts, "halted: equity <= min_equity")
        self._halted = f"equity {equity:.8g} <= min_equity {self._min_equity} at {ts}"

    # ---- books -----------------------------------------------------------------------------------

    def _close_order(self, order: _Order, status: str, ts: int, reason: str | None) -> None:
        self._unlock(order, order.lock)
        order.status = status
        order.reason = reason
        order.last_update_timestamp = ts
        self._open.get(order.symbol, {}).pop(order.id, None)
        self._touch_order(order)

    def _record(self, fill: _Fill, made: list[_Fill]) -> None:
        fill.id = str(self._next_id)
        self._next_id += 1
        self._trades[fill.id] = fill
        made.append(fill)
        if self._store is not None:
            self._unsaved_trades.append(fill)

    def _unlock(self, order: _Order, amount: float) -> None:
        order.lock -= amount
        self._reserved[order.lock_currency] -= amount

    def _recount_reserved(self) -> None:
        """Reserved funds summed afresh from the open orders (oldest first), so float drift of
        the running sums never builds up and a restarted exchange holds the very same figures."""
        self._reserved = dict.fromkeys(self._balances, 0.0)
        for order in sorted((o for b in self._open.values() for o in b.values()), key=_seq):
            self._reserved[order.lock_currency] = (
                self._reserved.get(order.lock_currency, 0.0) + order.lock
            )

    def _margins(self) -> dict[str, float]:
        """Isolated margin per settle currency (summed in symbol order: a restarted exchange
        must add the same floats in the same order)."""
        margins: dict[str, float] = {}
        for symbol in sorted(self._positions):
            currency = self._markets[symbol]["settle"]
            margins[currency] = margins.get(currency, 0.0) + self._positions[symbol].margin
        return margins

    def _used(self) -> dict[str, float]:
        used = dict.fromkeys(self._balances, 0.0)
        used.update(self._reserved)
        for currency, margin in self._margins().items():
            used[currency] = used.get(currency, 0.0) + margin
        return used

    def _free(self, currency: str) -> float:
        margin = self._margins().get(currency, 0.0)
        return self._balances.get(currency, 0.0) - self._reserved.get(currency, 0.0) - margin

    def _equity(self, marks: Mapping[str, float]) -> float:
        value = 0.0
        for code, total in sorted(self._balances.items()):
            if code == self._currency:
                value += total
            elif total != 0.0:
                value += total * marks.get(f"{code}/{self._currency}", math.nan)
        for _, position in sorted(self._positions.items()):
            mark = marks.get(self._feed_symbol[position.symbol], math.nan)
            value += fills.position_pnl(
                position.side, position.entry_price, mark, position.contracts
            )
        return value

    def _liquidation_price(self, position: _Position) -> float | None:
        return fills.liquidation_price(
            position.side, position.entry_price, position.contracts, position.margin, self._mmr
        )

    def _active_feed_symbols(self) -> list[str]:
        """Feed symbols whose candles matter: open orders, positions or held base currency."""
        active = {self._feed_symbol[s] for s, book in self._open.items() if book}
        active.update(self._feed_symbol[s] for s in self._positions)
        active.update(
            f"{code}/{self._currency}"
            for code, total in self._balances.items()
            if total != 0.0 and f"{code}/{self._currency}" in self._rules
        )
        return sorted(active)

    def _find_order(self, id: str, symbol: str | None) -> _Order:
        order = self._orders.get(str(id))
        if order is None or (symbol is not None and order.symbol != symbol):
            where = f" on {symbol}" if symbol is not None else ""
            raise ccxt.OrderNotFound(f"{self.id} has no order {id}{where}")
        return order

    def _market(self, symbol: str) -> Market:
        market = self._markets.get(symbol)
        if market is None:
            raise ccxt.BadSymbol(
                f"{self.id} has no market {symbol!r}; it lists {sorted(self._markets)}"
            )
        return market

    def _last_close(self, feed_symbol: str, as_of: int) -> float | None:
        """Memoised per time: equity is marked several times a tick on the same closes."""
        key = (feed_symbol, as_of)
        if key not in self._closes:
            if len(self._closes) > 64:
                self._closes.clear()
            window = self._feed.candles(feed_symbol, self._timeframe, as_of, 1)
            self._closes[key] = float(window.close[-1]) if len(window) else None
        return self._closes[key]

    def _first_open(self, feed_symbol: str) -> float:
        """Open of the symbol's first candle: sets its default tick and step, nothing else."""
        first = self._feed.span(feed_symbol, self._timeframe)[0] + self._period
        return float(self._feed.candles(feed_symbol, self._timeframe, first, 1).open[0])

    def _first_close(self, symbols: list[str]) -> int:
        return min(self._feed.span(s, self._timeframe)[0] for s in symbols) + self._period

    def _market_symbols(self, feed_symbol: str) -> tuple[str, str]:
        return feed_symbol, f"{feed_symbol}:{self._currency}"

    # ---- ccxt shapes -----------------------------------------------------------------------------

    def _build_markets(self) -> dict[str, Market]:
        markets: dict[str, Market] = {}
        for feed_symbol, rules in self._rules.items():
            base, quote = feed_symbol.split("/")
            spot, swap = self._market_symbols(feed_symbol)
            common = {
                "base": base,
                "quote": quote,
                "baseId": base,
                "quoteId": quote,
                "active": True,
                "taker": self._taker,
                "maker": self._maker,
                "precision": {"amount": rules.amount_step, "price": rules.price_tick},
                "info": {"feedSymbol": feed_symbol, "rules": _fields(rules)},
            }
            limits = {
                "amount": {"min": rules.amount_step, "max": None},
                "price": {"min": rules.price_tick, "max": None},
                "cost": {"min": rules.min_cost, "max": None},
            }
            markets[spot] = _CCXT.safe_market_structure(
                {
                    **common,
                    "id": f"{base}{quote}",
                    "symbol": spot,
                    "type": "spot",
                    "spot": True,
                    "margin": False,
                    "limits": {**limits, "leverage": {"min": None, "max": None}},
                    "marginModes": {"cross": False, "isolated": False},
                }
            )
            markets[swap] = _CCXT.safe_market_structure(
                {
                    **common,
                    "id": f"{base}{quote}-PERP",
                    "symbol": swap,
                    "settle": quote,
                    "settleId": quote,
                    "type": "swap",
                    "spot": False,
                    "margin": False,
                    "swap": True,
                    "future": False,
                    "option": False,
                    "index": False,
                    "contract": True,
                    "linear": True,
                    "inverse": False,
                    "subType": "linear",
                    "contractSize": 1.0,
                    "limits": {**limits, "leverage": {"min": 1.0, "max": self._max_leverage}},
                    "marginModes": {"cross": False, "isolated": True},
                }
            )
        return markets

    def _order_dict(self, order: _Order) -> Order:
        market = self._markets[order.symbol]
        fee = {"cost": order.fee, "currency": market["quote"]}
        raw = {
            "info": _fields(order),
            "id": order.id,
            "clientOrderId": order.client_order_id,
            "timestamp": order.timestamp,
            "lastTradeTimestamp": order.last_trade_timestamp,
            "lastUpdateTimestamp": order.last_update_timestamp,
            "symbol": order.symbol,
            "type": order.type,
            "side": order.side,
            "price": order.price,
            "amount": order.amount,
            "filled": order.filled,
            "cost": order.cost,
            "status": order.status,
            "timeInForce": ("PO" if order.post_only else "GTC") if order.type == "limit" else None,
            "postOnly": order.post_only,
            "reduceOnly": order.reduce_only,
            "triggerPrice": order.trigger_price,
            "stopLossPrice": order.trigger_price if order.trigger_kind == "stopLoss" else None,
            "takeProfitPrice": order.trigger_price if order.trigger_kind == "takeProfit" else None,
            "fee": fee,
            "fees": [dict(fee)],
        }
        rendered: Order = _CCXT.safe_order(raw, market)
        rendered["trades"] = [self._trade_dict(self._trades[t]) for t in order.trade_ids]
        return rendered

    def _trade_dict(self, fill: _Fill) -> Trade:
        fee = {"cost": fill.fee, "currency": fill.fee_currency, "rate": fill.fee_rate}
        return _CCXT.safe_trade(  # type: ignore[no-any-return]
            {
                "info": _fields(fill),
                "id": fill.id,
                "order": fill.order_id,
                "timestamp": fill.timestamp,
                "datetime": _CCXT.iso8601(fill.timestamp),
                "symbol": fill.symbol,
                "type": fill.order_type,
                "side": fill.side,
                "takerOrMaker": "taker" if fill.taker else "maker",
                "price": fill.price,
                "amount": fill.amount,
                "fee": fee,
            },
            self._markets[fill.symbol],
        )

    def _position_dict(self, position: _Position) -> Position:
        mark = self._last_close(self._feed_symbol[position.symbol], self._now)
        mark = position.entry_price if mark is None else mark
        notional = position.contracts * mark
        pnl = fills.position_pnl(position.side, position.entry_price, mark, position.contracts)
        collateral = position.margin + pnl
        maintenance = self._mmr * notional
        return {
            "info": _fields(position),
            "id": None,
            "symbol": position.symbol,
            "timestamp": position.timestamp,
            "datetime": _CCXT.iso8601(position.timestamp),
            "lastUpdateTimestamp": position.timestamp,
            "hedged": False,
            "side": position.side,
            "contracts": position.contracts,
            "contractSize": 1.0,
            "entryPrice": position.entry_price,
            "markPrice": mark,
            "lastPrice": mark,
            "notional": notional,
            "leverage": position.leverage,
            "collateral": collateral,
            "positionMargin": position.margin,
            "initialMargin": position.margin,
            "initialMarginPercentage": 1.0 / position.leverage,
            "maintenanceMargin": maintenance,
            "maintenanceMarginPercentage": self._mmr,
            "marginRatio": maintenance / collateral if collateral > 0 else None,
            "unrealizedPnl": pnl,
            "realizedPnl": position.realized_pnl,
            "percentage": 100.0 * pnl / position.margin,
            "liquidationPrice": self._liquidation_price(position),
            "marginMode": "isolated",
            "isolated": True,
            "stopLossPrice": None,
            "takeProfitPrice": None,
        }

    # ---- persistence -----------------------------------------------------------------------------

    def _touch_order(self, order: _Order) -> None:
        if self._store is not None:
            self._dirty_orders.add(order.id)

    def _touch_position(self, symbol: str) -> None:
        if self._store is not None:
            self._dirty_positions.add(symbol)

    def _save(self) -> None:
        """End of every mutating call: settle the running sums and write what changed."""
        self._recount_reserved()
        if self._store is None:
            return
        state = {
            "config": self._config,
            "rules": {s: _fields(r) for s, r in self._rules.items()},
            "leverage": self._leverage,
            "now": self._now,
            "next_id": self._next_id,
            "halted": self._halted,
        }
        self._store.save(
            state,
            self._balances,
            [self._orders[i] for i in sorted(self._dirty_orders, key=int)],
            self._unsaved_trades,
            {s: self._positions.get(s) for s in sorted(self._dirty_positions)},
        )
        self._dirty_orders.clear()
        self._dirty_positions.clear()
        self._unsaved_trades.clear()

    def _restore(self, saved: _Saved) -> None:
        state = saved.state
        if state["config"] != self._config:
            changed = sorted(
                k for k in self._config if state["config"].get(k) != self._config.get(k)
            )
            raise ConfigError(
                f"the state database was written with other settings ({', '.join(changed)}): "
                "restart with the same settings, or use a new db"
            )
        self._rules = {s: MarketRules(**r) for s, r in state["rules"].items()}
        self._leverage = {s: float(v) for s, v in state["leverage"].items()}
        self._now = int(state["now"])
        self._next_id = int(state["next_id"])
        self._halted = state["halted"]
        self._balances = dict(saved.balances)
        for order in saved.orders:
            self._orders[order.id] = order
            if order.status == "open":
                self._open.setdefault(order.symbol, {})[order.id] = order
            if order.client_order_id is not None:
                self._by_client_id[order.client_order_id] = order.id
        self._trades = {t.id: t for t in saved.trades}
        self._positions = {p.symbol: p for p in saved.positions}


# ---- SQLite state --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Saved:
    state: dict[str, Any]
    balances: dict[str, float]
    orders: list[_Order]
    trades: list[_Fill]
    positions: list[_Position]


class _Store:
    """The exchange's state in SQLite (WAL): one transaction per mutating call."""

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS balances (currency TEXT PRIMARY KEY, total REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS trades (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS positions (symbol TEXT PRIMARY KEY, data TEXT NOT NULL);
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(self._SCHEMA)

    def load(self) -> _Saved | None:
        rows = dict(self._db.execute("SELECT key, value FROM state").fetchall())
        if not rows:
            return None
        return _Saved(
            state={k: json.loads(v) for k, v in rows.items()},
            balances=dict(self._db.execute("SELECT currency, total FROM balances").fetchall()),
            orders=[_Order(**json.loads(d)) for (d,) in self._rows("orders")],
            trades=[_Fill(**json.loads(d)) for (d,) in self._rows("trades")],
            positions=[
                _Position(**json.loads(d))
                for (d,) in self._db.execute("SELECT data FROM positions ORDER BY symbol")
            ],
        )

    def _rows(self, table: str) -> list[tuple[str]]:
        return self._db.execute(f"SELECT data FROM {table} ORDER BY id").fetchall()

    def save(
        self,
        state: dict[str, Any],
        balances: Mapping[str, float],
        orders: list[_Order],
        trades: list[_Fill],
        positions: Mapping[str, _Position | None],
    ) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in state.items()],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO balances VALUES (?, ?)", list(balances.items())
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO orders VALUES (?, ?)",
                [(int(o.id), json.dumps(_fields(o))) for o in orders],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO trades VALUES (?, ?)",
                [(int(t.id), json.dumps(_fields(t))) for t in trades],
            )
            for symbol, position in positions.items():
                if position is None:
                    self._db.execute("DELETE FROM positions WHERE symbol = ?", (symbol,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO positions VALUES (?, ?)",
                        (symbol, json.dumps(_fields(position))),
                    )

    def close(self) -> None:
        self._db.close()


# ---- helpers -------------------------------------------------------------------------------------


def _config(**settings: Any) -> dict[str, Any]:
    """Validated settings, as stored with the state (a restart must use the same ones)."""
    numbers = {k: v for k, v in settings.items() if isinstance(v, int | float)}
    for name, value in numbers.items():
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
    checks: list[tuple[bool, str]] = [
        (
            settings["taker"] >= 0 and settings["maker"] > -settings["taker"],
            "fees: taker >= 0 and maker > -taker",
        ),
        (settings["spread_bps"] >= 0 and settings["impact"] >= 0, "spread_bps and impact >= 0"),
        (0 <= settings["max_slippage"] < 1, "max_slippage in [0, 1)"),
        (0 < settings["max_volume_share"] <= 1, "max_volume_share in (0, 1]"),
        (1 <= settings["leverage"] <= settings["max_leverage"], "1 <= leverage <= max_leverage"),
        (
            0 < settings["maintenance_margin_rate"] < 1 / settings["max_leverage"],
            "0 < maintenance_margin_rate < 1 / max_leverage (else max leverage liquidates at once)",
        ),
        (settings["liquidation_fee"] >= 0, "liquidation_fee >= 0"),
    ]
    for ok, rule in checks:
        if not ok:
            raise ConfigError(f"PaperExchange settings break the rule {rule}: {settings}")
    return {k: float(v) if isinstance(v, int | float) else v for k, v in settings.items()}


def _account_currency(symbols: list[str]) -> str:
    quotes = set()
    for s in symbols:
        parts = s.split("/")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"feed symbol {s!r} is not BASE/QUOTE")
        quotes.add(parts[1])
    if len(quotes) != 1:
        raise ConfigError(
            "PaperExchange keeps its account in one quote currency; "
            f"the feed mixes {sorted(quotes)}"
        )
    return quotes.pop()


def _fields(record: MarketRules | _Order | _Fill | _Position) -> dict[str, Any]:
    """A record's fields as a dict, lists copied (dataclasses.asdict deep-copies: too slow for
    every order rendered)."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return {k: list(v) if isinstance(v, list) else v for k, v in values.items()}


def _on_tick(name: str, value: Any, tick: float) -> float:
    """A user's price rounded to the market's tick; refused unless positive after rounding."""
    rounded = _to_step(float(value), tick, ROUND) if _positive(value) else 0.0
    if rounded <= 0:
        raise ccxt.InvalidOrder(
            f"{name} must be a positive price of at least {tick}, got {value!r}"
        )
    return rounded


def _select(
    records: list[_R], symbol: str | None, since: int | None, limit: int | None
) -> list[_R]:
    """ccxt's symbol/since/limit filter: `limit` keeps the first records after `since`, or the
    most recent ones when `since` is not given."""
    kept = [
        r
        for r in records
        if (symbol is None or r.symbol == symbol) and (since is None or r.timestamp >= since)
    ]
    if limit is None:
        return kept
    return kept[:limit] if since is not None else kept[max(len(kept) - limit, 0) :]


def _seq(order: _Order) -> int:
    return int(order.id)


def _initial_balances(
    balances: Mapping[str, float] | None, currency: str, symbols: list[str]
) -> dict[str, float]:
    """The opening deposit: finite, >= 0, in currencies the feed can value."""
    deposit = {code: float(v) for code, v in (balances or {"USDT": 10_000.0}).items()}
    priced = {currency} | {s.split("/")[0] for s in symbols}
    for code, value in deposit.items():
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"balance of {code} must be finite and >= 0, got {value!r}")
        if code not in priced:
            raise ConfigError(
                f"no {code}/{currency} market in the feed to value the {code} balance"
            )
    return deposit


def _closing_side(side: PositionSide) -> Side:
    return "sell" if side == "long" else "buy"


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _to_step(value: float, step: float, mode: int) -> float:
    """`value` on the `step` grid through ccxt's decimal_to_precision (TRUNCATE or ROUND)."""
    return float(decimal_to_precision(value, mode, step, TICK_SIZE))


def _balance_string(value: float) -> str:
    return str(decimal_to_precision(value, ROUND, _BALANCE_STEP, TICK_SIZE))


def _bar(window: Candles, i: int) -> Bar:
    return Bar(
        float(window.open[i]),
        float(window.high[i]),
        float(window.low[i]),
        float(window.close[i]),
        float(window.volume[i]),
    )
