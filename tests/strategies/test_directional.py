"""ForecastDirectional on hand-made portfolios, with the real tools over a real network and market.

At the end of the synthetic month the network forecasts a strong 24h rise. For a falling market
the same network is read through `Shifted`, which moves the log-return forecast (value and CI)
down by a fixed amount: every other input, and every tool, stays the real one.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from strategy_world import World

from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import Hold, Intent, PlaceOrder, parse_intents
from defai.agent.observation import Balance, Observation, Portfolio, Position
from defai.agent.toolbox import ToolBox
from defai.errors import ConfigError
from strategies.directional import ForecastDirectional

HOUR_MS = 3_600_000
SPOT = ForecastDirectional(max_order_fraction=None)  # whole steps: the sizing, not the pace
PERP = ForecastDirectional(
    symbol="ETH/USDT:USDT", long_only=False, max_exposure=2, leverage=3, max_order_fraction=None
)
BEARISH = -0.14  # the month ends on a forecast of about +0.067: this makes it about -0.073


def observe(
    world: World,
    *,
    eth: float = 0.0,
    usdt: float = 0.0,
    positions: Sequence[Position] = (),
    shift: float = 0.0,
) -> Observation:
    equity = eth * world.price + usdt + sum(p.notional / p.leverage for p in positions)
    portfolio = Portfolio(
        quote="USDT",
        equity=equity,
        peak_equity=equity,
        balances={"ETH": Balance(eth, eth), "USDT": Balance(usdt, usdt)},
        positions=tuple(positions),
    )
    source = world.source(shift)
    inferences = {topic: source.latest(topic) for topic in SPOT.topics}
    prices = {"ETH/USDT": world.price, "ETH/USDT:USDT": world.price}
    return Observation(world.end_ms, prices, portfolio, inferences=inferences)


def long(world: World, contracts: float) -> Position:
    notional = contracts * world.price
    return Position("ETH/USDT:USDT", "long", contracts, world.price, world.price, 3, 0, notional)


def decide(strategy: ForecastDirectional, observation: Observation, toolbox: ToolBox) -> Intent:
    """The strategy's one intent, checked to parse, to say why, on what, deterministically."""
    proposals = strategy.decide(observation, toolbox)
    intents, rejected = parse_intents(proposals)
    assert not rejected and len(intents) == len(proposals) == 1
    intent = intents[0]
    assert intent.reason
    assert isinstance(intent, Hold) or set(intent.topics) == set(SPOT.topics)
    assert strategy.decide(observation, toolbox) == proposals
    return intent


def approved(intent: Intent, observation: Observation) -> bool:
    limits = RiskLimits(max_notional_per_order=1e6, max_notional_per_day=1e7)
    return not RiskGuard(limits).review([intent], observation).rejected


def test_buys_up_to_full_exposure_on_a_positive_forecast_with_a_stop_below(world: World) -> None:
    observation = observe(world, usdt=10_000)

    order = decide(SPOT, observation, world.toolbox())

    assert isinstance(order, PlaceOrder)
    assert (order.symbol, order.side, order.order_type) == ("ETH/USDT", "buy", "market")
    assert order.resolved_amount == pytest.approx(10_000 / world.price)  # spot caps at 1x
    assert order.stop_loss is not None
    assert world.price * 0.8 < order.stop_loss < world.price * 0.95  # 2 sigma of ~6.5%
    assert approved(order, observation)


def test_sells_to_flat_on_a_negative_forecast(world: World) -> None:
    observation = observe(world, eth=1, usdt=5_000, shift=BEARISH)

    order = decide(SPOT, observation, world.toolbox(BEARISH))

    assert isinstance(order, PlaceOrder) and order.side == "sell"
    assert order.resolved_amount == 1.0 and order.stop_loss is None
    assert approved(order, observation)


def test_stays_flat_on_a_negative_forecast_when_long_only(world: World) -> None:
    order = decide(SPOT, observe(world, usdt=10_000, shift=BEARISH), world.toolbox(BEARISH))

    assert isinstance(order, Hold) and "+0.00" in order.reason


def test_does_not_churn_within_the_rebalance_threshold(world: World) -> None:
    near_target = observe(world, eth=9_500 / world.price, usdt=500)  # 95% in, target 100%

    hold = decide(SPOT, near_target, world.toolbox())
    order = decide(
        ForecastDirectional(rebalance_threshold=0.02, max_order_fraction=None),
        near_target,
        world.toolbox(),
    )

    assert isinstance(hold, Hold) and "within 0.1" in hold.reason
    assert isinstance(order, PlaceOrder) and order.side == "buy"


@pytest.mark.parametrize("shift", [0.0, BEARISH], ids=["bullish", "bearish"])
def test_perpetual_goes_long_or_short_with_a_stop_beyond_k_sigma(
    world: World, shift: float
) -> None:
    observation = observe(world, usdt=10_000, shift=shift)

    order = decide(PERP, observation, world.toolbox(shift))

    assert isinstance(order, PlaceOrder) and order.symbol == "ETH/USDT:USDT"
    assert order.side == ("sell" if shift else "buy")
    assert order.resolved_amount == pytest.approx(2 * 10_000 / world.price)  # max_exposure
    assert order.leverage == 3 and not order.reduce_only
    assert order.stop_loss is not None
    assert (order.stop_loss > world.price) == (order.side == "sell")
    assert approved(order, observation)


def test_perpetual_closes_a_long_before_going_short(world: World) -> None:
    observation = observe(world, usdt=5_000, positions=[long(world, 2)], shift=BEARISH)

    order = decide(PERP, observation, world.toolbox(BEARISH))

    assert isinstance(order, PlaceOrder) and order.reduce_only
    assert (order.side, order.resolved_amount) == ("sell", 2)
    assert approved(order, observation)


def test_holds_when_the_forecast_is_stale(world: World) -> None:
    hold = decide(SPOT, observe(world, usdt=10_000), world.toolbox(late_ms=3 * HOUR_MS))

    assert isinstance(hold, Hold) and "stale" in hold.reason


def test_refuses_a_perpetual_margin_that_exceeds_equity() -> None:
    with pytest.raises(ConfigError, match="margin leverage"):
        ForecastDirectional(
            symbol="ETH/USDT:USDT", max_exposure=2, leverage=1, max_order_fraction=None
        )


def test_the_position_walks_to_its_target_in_steps(world: World) -> None:
    """With the default cap each order is at most 4% of equity, whatever the target."""
    order = decide(ForecastDirectional(), observe(world, usdt=10_000), world.toolbox())
    assert isinstance(order, PlaceOrder) and order.side == "buy"
    assert order.resolved_amount == pytest.approx(0.04 * 10_000 / world.price)
