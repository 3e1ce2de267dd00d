"""SmaCross on hand-made candles: crossover decisions, sizing, freshness and working orders."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import Hold, PlaceOrder, parse_intents
from defai.agent.observation import Balance, Observation, Portfolio
from defai.agent.toolbox import ToolBox
from defai.errors import ConfigError
from defai.types import Candles
from strategies.sma_cross import SmaCross

HOUR_MS = 3_600_000
START_MS = 1_600_000_000_000 - 1_600_000_000_000 % HOUR_MS
STRATEGY = SmaCross(fast=2, slow=4)  # short windows: the crossovers are easy to build by hand
NO_TOOLS = ToolBox([])

# SMA2/SMA4 on the last two candles: (10.5, 11.0) then (12.5, 11.5): crossed above
RISING = [12.0, 12.0, 11.0, 10.0, 11.0, 14.0]
# mirror image: (11.5, 11.0) then (9.5, 10.5): crossed below
FALLING = [10.0, 10.0, 11.0, 12.0, 11.0, 8.0]
FLAT_UP = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]  # fast above slow throughout: no crossover


def candles(closes: Sequence[float], symbol: str = "ETH/USDT") -> Candles:
    ts = START_MS + HOUR_MS * np.arange(len(closes), dtype=np.int64)
    close = np.asarray(closes, dtype=np.float64)
    return Candles(symbol, "1h", ts, close, close, close, close, np.full(len(close), 100.0))


def observe(
    closes: Sequence[float],
    *,
    usdt: float = 10_000.0,
    eth: float = 0.0,
    reserved_usdt: float = 0.0,
    late_ms: int = 0,
) -> Observation:
    window = candles(closes)
    price = float(window.close[-1])
    balances = {
        "USDT": Balance(usdt - reserved_usdt, usdt),
        "ETH": Balance(eth, eth),
    }
    portfolio = Portfolio(
        quote="USDT",
        equity=usdt + eth * price,
        peak_equity=usdt + eth * price,
        balances=balances,
        accounts={"exchange": balances},
    )
    now = int(window.close_ts[-1]) + late_ms
    return Observation(now, {"ETH/USDT": price}, portfolio, {"ETH/USDT": window})


def only(proposals: Sequence[object]) -> object:
    assert len(proposals) == 1
    return proposals[0]


def test_a_cross_above_with_nothing_held_buys_the_sizing_rule_amount() -> None:
    order = only(STRATEGY.decide(observe(RISING), NO_TOOLS))

    assert isinstance(order, PlaceOrder)
    assert (order.side, order.order_type, order.symbol) == ("buy", "market", "ETH/USDT")
    # floor(0.98 * 10,000 / 14 * 1e6) / 1e6
    assert order.amount == 700.0
    assert order.amount == STRATEGY.units(10_000.0, 14.0)
    assert "crossed above" in order.reason


def test_the_amount_is_floored_to_the_grid_and_exact_in_decimal() -> None:
    strategy = SmaCross(fraction=0.99, decimals=6)

    amount = strategy.units(10_000.0, 2345.67)

    assert amount == math.floor(0.99 * 10_000.0 / 2345.67 * 1e6) / 1e6
    assert amount * 2345.67 <= 0.99 * 10_000.0
    assert repr(amount) == f"{amount:.6f}".rstrip("0")  # n / 10**6: no 0.1234559999... tail
    assert SmaCross(decimals=0).units(10_000.0, 2345.67) == 4.0


def test_a_cross_below_sells_the_whole_holding() -> None:
    order = only(STRATEGY.decide(observe(FALLING, usdt=5.0, eth=3.25), NO_TOOLS))

    assert isinstance(order, PlaceOrder)
    assert (order.side, order.amount) == ("sell", 3.25)


@pytest.mark.parametrize(
    ("closes", "eth", "usdt", "why"),
    [
        (RISING, 2.0, 0.0, "already long"),
        (FALLING, 0.0, 10_000.0, "nothing to sell"),
        (FLAT_UP, 0.0, 10_000.0, "no crossover"),
        (FLAT_UP, 2.0, 0.0, "no crossover"),
        (RISING, 0.0, 0.0, "no free USDT"),
    ],
)
def test_no_order_without_a_crossover_that_changes_the_position(
    closes: list[float], eth: float, usdt: float, why: str
) -> None:
    hold = only(STRATEGY.decide(observe(closes, usdt=usdt, eth=eth), NO_TOOLS))

    assert isinstance(hold, Hold)
    assert why in hold.reason


def test_no_trade_without_enough_history() -> None:
    # a crossover needs slow + 1 closes: SMA4 now and one candle before
    assert isinstance(only(STRATEGY.decide(observe(RISING[2:]), NO_TOOLS)), Hold)
    assert isinstance(only(STRATEGY.decide(observe(RISING[1:]), NO_TOOLS)), PlaceOrder)
    empty = Observation(START_MS, {}, observe(RISING).portfolio, {})
    hold = only(STRATEGY.decide(empty, NO_TOOLS))
    assert isinstance(hold, Hold) and "0 closed candles" in hold.reason


def test_a_crossover_is_acted_on_only_at_the_first_tick_after_its_candle_closed() -> None:
    within = only(STRATEGY.decide(observe(RISING, late_ms=HOUR_MS - 1), NO_TOOLS))
    stale = only(STRATEGY.decide(observe(RISING, late_ms=HOUR_MS), NO_TOOLS))

    assert isinstance(within, PlaceOrder)
    assert isinstance(stale, Hold) and "no new" in stale.reason


def test_it_holds_while_an_order_still_holds_funds() -> None:
    hold = only(STRATEGY.decide(observe(RISING, reserved_usdt=9_900.0), NO_TOOLS))

    assert isinstance(hold, Hold) and "still working" in hold.reason


def test_the_sma_is_of_the_last_closes_only() -> None:
    # a long flat history before the pattern changes nothing: only the last slow + 1 closes count
    order = only(STRATEGY.decide(observe([1_000.0] * 50 + RISING), NO_TOOLS))

    assert isinstance(order, PlaceOrder) and order.amount == 700.0


def test_its_orders_pass_the_guard_with_limits_that_fit_the_account() -> None:
    observation = observe(RISING)
    proposals = STRATEGY.decide(observation, NO_TOOLS)
    intents, rejected = parse_intents(proposals)
    review = RiskGuard(RiskLimits(max_notional_per_order=20_000.0)).review(intents, observation)

    assert not rejected and len(review.approved) == 1


def test_it_observes_one_symbol_and_no_topics() -> None:
    strategy = SmaCross()

    assert (strategy.name, strategy.symbols, strategy.topics) == ("sma_cross", ("ETH/USDT",), ())
    assert (strategy.fast, strategy.slow) == (10, 30)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fast": 30, "slow": 10},
        {"fast": 0},
        {"fraction": 0.0},
        {"fraction": 1.5},
        {"decimals": -1},
        {"symbol": "ETH/USDT:USDT"},
    ],
)
def test_bad_parameters_are_refused_when_made(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SmaCross(**kwargs)  # type: ignore[arg-type]
