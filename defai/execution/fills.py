"""Fill maths of the paper exchange: numbers in, numbers out (no I/O, no clock, no state).

Every assumption a paper or backtest fill rests on lives here, as a small function with a name,
so `PaperExchange` (paper.py) only decides *which* order meets *which* bar and keeps the books.
See docs/paper_exchange.md for the model in prose.

A bar is only known by its open, high, low, close and volume: the path the price took inside it
is not. Where the order of events inside a bar matters, the maths assumes the pessimistic path
(`path_distance`): the price first goes against the position, then for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, NamedTuple

Side = Literal["buy", "sell"]
PositionSide = Literal["long", "short"]
Direction = Literal["up", "down"]  # a trigger fires when the price rises to it / falls to it
TriggerKind = Literal["stop", "stopLoss", "takeProfit"]


class Bar(NamedTuple):
    """One OHLCV candle; volume is in base units."""

    open: float
    high: float
    low: float
    close: float
    volume: float


class Hit(NamedTuple):
    """An order met by a bar.

    `price` is the fill price before slippage for a taker fill, the exact price for a maker
    fill, or None when a stop-limit triggered but its limit was not reached in the bar.
    `distance` is where along the bar's pessimistic path it happened (0 at the open): fills
    inside one bar happen in increasing distance.
    """

    price: float | None
    taker: bool
    distance: float


class BookFill(NamedTuple):
    """What walking an order book gave: the amount taken and its total quote cost."""

    amount: float
    cost: float

    @property
    def average(self) -> float:
        return self.cost / self.amount if self.amount > 0 else math.nan


# ---- prices a taker pays ----------------------------------------------------------------------


def half_spread(spread_bps: float) -> float:
    """Fraction of the mid price between the mid and the best bid or ask."""
    return spread_bps / 20_000.0


def slippage(
    amount: float, bar_volume: float, spread_bps: float, impact: float, max_slippage: float
) -> float:
    """Fraction of the reference price a taker pays away: half the spread plus market impact.

    Impact follows the square-root law (Almgren et al., Tóth et al.): `impact * sqrt(q / V)`,
    q the order and V the bar's volume, so impact ~ the bar's volatility when q is a whole bar.
    Capped at `max_slippage`, the protection a market order carries on a real venue.
    """
    if bar_volume <= 0:
        return max_slippage
    return min(half_spread(spread_bps) + impact * math.sqrt(amount / bar_volume), max_slippage)


def taker_price(reference: float, side: Side, fraction: float) -> float:
    """The reference price moved against the taker by `fraction`."""
    return reference * (1.0 + fraction) if side == "buy" else reference * (1.0 - fraction)


def walk_book(
    levels: Iterable[tuple[float, float]], amount: float, side: Side, worst_price: float
) -> BookFill:
    """Take (price, amount) levels, best first, until `amount` is filled or the next level is
    worse than `worst_price` (the slippage protection): the rest of the order stays unfilled."""
    filled = cost = 0.0
    for price, size in levels:
        if filled >= amount or not within_limit(side, price, worst_price):
            break
        take = min(size, amount - filled)
        filled += take
        cost += take * price
    return BookFill(filled, cost)


# ---- which price a bar gives an order ---------------------------------------------------------


def within_limit(side: Side, price: float, limit: float) -> bool:
    """Whether `price` is acceptable to a `side` order limited at `limit`."""
    return price <= limit if side == "buy" else price >= limit


def limit_fill_price(side: Side, limit: float, bar: Bar) -> float | None:
    """A resting limit: at the open if the bar opens through it, at the limit if the bar's range
    reaches it (a touch fills: queue position is assumed), otherwise no fill."""
    if within_limit(side, bar.open, limit):
        return bar.open
    reached = bar.low <= limit if side == "buy" else bar.high >= limit
    return limit if reached else None


def trigger_fill_price(direction: Direction, trigger: float, bar: Bar) -> float | None:
    """Where a trigger fires: at the open when the bar gaps through it, else at the trigger when
    the bar's high (rising trigger) or low (falling trigger) reaches it."""
    if direction == "up":
        if bar.open >= trigger:
            return bar.open
        return trigger if bar.high >= trigger else None
    if bar.open <= trigger:
        return bar.open
    return trigger if bar.low <= trigger else None


def trigger_direction(side: Side, kind: TriggerKind, trigger: float, reference: float) -> Direction:
    """Which way the price must move to fire a trigger.

    A stop-loss sells when the price falls (closing a long) and buys when it rises (closing a
    short); a take-profit the opposite. A plain stop fires on the way from the reference price
    (the last close at placement) to the trigger; at the reference itself, a buy stop waits for
    a rise and a sell stop for a fall.
    """
    if kind == "stopLoss":
        return "down" if side == "sell" else "up"
    if kind == "takeProfit":
        return "up" if side == "sell" else "down"
    if trigger != reference:
        return "up" if trigger > reference else "down"
    return "up" if side == "buy" else "down"


def path_distance(price: float, bar: Bar, low_first: bool) -> float:
    """How far the price travels before first trading at `price` on the path open -> low ->
    high -> close (`low_first`) or open -> high -> low -> close: orders events inside a bar.

    With `low_first` for a long position (high first for a short), everything that hurts the
    position happens before everything that helps it: a stop-loss and a take-profit touched in
    the same bar resolve to the stop-loss, unless the bar opened through the take-profit.
    """
    if low_first:
        if price <= bar.open:
            return bar.open - price
        return (bar.open - bar.low) + (price - bar.low)
    if price >= bar.open:
        return price - bar.open
    return (bar.high - bar.open) + (bar.high - price)


def order_hit(
    side: Side,
    limit: float | None,
    trigger: float | None,
    direction: Direction | None,
    triggered: bool,
    marketable: bool,
    bar: Bar,
    low_first: bool,
) -> Hit | None:
    """What one bar does to one open order, or None when the bar leaves it untouched.

    - market order (or stop-market already triggered): taker at the open;
    - limit marketable at placement and still marketable at the open: taker at the open;
    - resting limit: maker, at the open if the bar opens through it, else at the limit;
    - untriggered stop: fires at the trigger (or the open on a gap); a stop-market then takes
      at that price; a stop-limit takes there if its limit allows, else rests as a limit —
      within this bar only when it fired at the open (what follows the open is known to come
      later; what follows an intrabar trigger is not).
    """
    if trigger is not None and not triggered:
        if direction is None:
            raise ValueError("a trigger needs a direction")
        fired = trigger_fill_price(direction, trigger, bar)
        if fired is None:
            return None
        distance = path_distance(fired, bar, low_first)
        if limit is None or within_limit(side, fired, limit):
            return Hit(fired, True, distance)
        if distance == 0.0:
            rest = limit_fill_price(side, limit, bar)
            if rest is not None:
                return Hit(rest, False, path_distance(rest, bar, low_first))
        return Hit(None, False, distance)
    if limit is None or (marketable and within_limit(side, bar.open, limit)):
        return Hit(bar.open, True, 0.0)
    price = limit_fill_price(side, limit, bar)
    return None if price is None else Hit(price, False, path_distance(price, bar, low_first))


# ---- sizes ------------------------------------------------------------------------------------


def volume_capacity(bar_volume: float, max_volume_share: float) -> float:
    """Most the exchange lets one market fill in a bar: a share of what the bar traded."""
    return max(bar_volume, 0.0) * max_volume_share


def affordable_amount(free: float, unit_cost: float, unit_release: float, covered: float) -> float:
    """Largest amount whose cost the free balance pays, counting what the fill frees.

    `unit_cost` is paid per unit beyond the first `covered` units (which cost nothing: the part
    of a perp order that closes a position); `unit_release` is the order's reserved funds freed
    per unit filled. Free never goes below zero.
    """
    if unit_cost <= unit_release:
        return math.inf
    return (max(free, 0.0) + covered * unit_cost) / (unit_cost - unit_release)


# ---- isolated margin on linear perpetuals -----------------------------------------------------


def liquidation_price(
    side: PositionSide, entry: float, contracts: float, margin: float, maintenance_rate: float
) -> float | None:
    """Price at which the position's margin plus its PnL falls to the maintenance margin.

    Long:  margin + (P - entry) * q = mmr * P * q  ->  P = (entry * q - margin) / (q * (1 - mmr))
    Short: margin + (entry - P) * q = mmr * P * q  ->  P = (entry * q + margin) / (q * (1 + mmr))
    None when no positive price liquidates (a long at 1x).
    """
    if contracts <= 0:
        return None
    if side == "long":
        price = (entry * contracts - margin) / (contracts * (1.0 - maintenance_rate))
    else:
        price = (entry * contracts + margin) / (contracts * (1.0 + maintenance_rate))
    return price if price > 0 else None


def liquidation_hit(
    side: PositionSide, liquidation: float | None, bar: Bar, low_first: bool
) -> Hit | None:
    """Whether the bar's range reaches the liquidation price, and where (the open on a gap)."""
    if liquidation is None:
        return None
    price = trigger_fill_price("down" if side == "long" else "up", liquidation, bar)
    if price is None:
        return None
    return Hit(price, True, path_distance(price, bar, low_first))


def position_pnl(side: PositionSide, entry: float, price: float, contracts: float) -> float:
    """PnL of `contracts` of a linear contract opened at `entry`, valued at `price`."""
    return (price - entry) * contracts if side == "long" else (entry - price) * contracts
