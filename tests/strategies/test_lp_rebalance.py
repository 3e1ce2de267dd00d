"""LPRebalance on hand-made portfolios, with the real tools over a real network and market.

The network is advanced once over a 30-day synthetic market; each test builds the portfolio it
needs and checks what the strategy proposes and that the RiskGuard lets it through.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import pytest
from strategy_world import World

from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import CloseLPRange, Hold, Intent, OpenLPRange, Swap, parse_intents
from defai.agent.observation import Balance, LPPosition, Observation, Portfolio
from defai.agent.toolbox import ToolBox
from defai.errors import ConfigError
from strategies._common import SwapRules
from strategies.lp_rebalance import LPRebalance
from tools.lp_range import LpRangeResult

HOUR_MS = 3_600_000
STRATEGY = LPRebalance()


def observe(
    world: World, eth: float, usdt: float, ranges: Sequence[LPPosition] = ()
) -> Observation:
    equity = eth * world.price + usdt + sum(r.value for r in ranges)
    portfolio = Portfolio(
        quote="USDT",
        equity=equity,
        peak_equity=equity,
        balances={"ETH": Balance(eth, eth), "USDT": Balance(usdt, usdt)},
        lp_positions=tuple(ranges),
    )
    inferences = {topic: world.network.latest(topic) for topic in STRATEGY.topics}
    return Observation(world.end_ms, {"ETH/USDT": world.price}, portfolio, inferences=inferences)


def decide(strategy: LPRebalance, observation: Observation, toolbox: ToolBox) -> list[Intent]:
    """The strategy's intents, checked to parse and to say why and on what they rely."""
    proposals = strategy.decide(observation, toolbox)
    intents, rejected = parse_intents(proposals)
    assert not rejected and len(intents) == len(proposals) > 0
    for intent in intents:
        assert intent.reason
        assert isinstance(intent, Hold) or set(intent.topics) == set(STRATEGY.topics)
    assert strategy.decide(observation, toolbox) == proposals  # deterministic, stateless
    return intents


def approved(intents: list[Intent], observation: Observation) -> bool:
    limits = RiskLimits(max_notional_per_order=1e6, max_notional_per_day=1e7)
    return not RiskGuard(limits).review(intents, observation).rejected


def planned_range(world: World, capital: float = 9_000) -> LpRangeResult:
    """What the lp_range tool recommends now, as the strategy asks for it."""
    args = {"symbol": "ETH/USDT", "fee_tier": 3000, "capital": capital, "fee_apr": 0.2}
    plan: LpRangeResult = world.toolbox().call("lp_range", args)
    return plan


def test_opens_the_forecast_range_when_the_wallet_holds_its_token_ratio(world: World) -> None:
    plan = planned_range(world)
    observation = observe(world, eth=plan.amount0, usdt=plan.amount1 + 1_000)  # 90% of it: 9k

    [intent] = decide(STRATEGY, observation, world.toolbox())

    assert isinstance(intent, OpenLPRange)
    assert (intent.pair, intent.fee_tier) == ("ETH/USDT", 3000)
    assert (intent.lower_price, intent.upper_price) == (plan.price_lower, plan.price_upper)
    assert intent.lower_price < world.price < intent.upper_price
    assert intent.capital == pytest.approx(9_000, rel=1e-6)
    assert approved([intent], observation)


def test_opens_no_range_the_price_is_outside_of(world: World) -> None:
    plan = planned_range(world)
    observation = observe(world, eth=plan.amount0, usdt=plan.amount1 + 1_000)
    above = dataclasses.replace(observation, prices={"ETH/USDT": plan.price_upper * 1.01})

    [hold] = decide(STRATEGY, above, world.toolbox())

    assert isinstance(hold, Hold) and "does not hold the price" in hold.reason


def test_swaps_to_the_ratio_first_with_a_floor_no_sandwich_pays_at(world: World) -> None:
    observation = observe(world, eth=0, usdt=10_000)
    base = planned_range(world).amount0

    [swap] = decide(STRATEGY, observation, world.toolbox())

    assert isinstance(swap, Swap)
    assert (swap.pair, swap.side) == ("ETH/USDT", "buy")  # sells USDT for the ETH it lacks
    assert swap.amount_in == pytest.approx(base * world.price)
    assert swap.min_amount_out is not None
    naive = swap.resolved_amount / world.price
    assert naive * (1 - 0.003 - 0.0051) < swap.min_amount_out < naive  # fee + max slippage
    assert approved([swap], observation)


def test_sells_base_when_the_wallet_lacks_quote(world: World) -> None:
    [swap] = decide(STRATEGY, observe(world, eth=3, usdt=0), world.toolbox())

    assert isinstance(swap, Swap) and swap.side == "sell"
    assert 0 < swap.resolved_amount < 3


def test_splits_a_swap_a_sandwich_would_pay_for(world: World) -> None:
    shallow = LPRebalance(swaps=SwapRules(pool_depth=30_000))

    [swap] = decide(shallow, observe(world, eth=0, usdt=10_000), world.toolbox())

    assert isinstance(swap, Swap)
    assert "chunk 1 of" in swap.reason
    assert swap.resolved_amount < planned_range(world).amount0 * world.price / 2


def test_holds_when_no_split_deters_the_sandwich(world: World) -> None:
    exposed = LPRebalance(swaps=SwapRules(pool_depth=30_000, max_chunks=1))

    [hold] = decide(exposed, observe(world, eth=0, usdt=10_000), world.toolbox())

    assert isinstance(hold, Hold)
    assert "private route" in hold.reason


def test_closes_a_range_the_price_has_left(world: World) -> None:
    below = LPPosition(7, "ETH/USDT", 3000, world.price * 0.7, world.price * 0.9, 5_000)
    observation = observe(world, eth=0, usdt=100, ranges=[below])

    [close] = decide(STRATEGY, observation, world.toolbox())

    assert close == CloseLPRange(position_id=7, reason=close.reason, topics=close.topics)
    assert "left range 7" in close.reason
    assert approved([close], observation)


def test_recentres_when_the_forecast_centre_moved_more_than_the_threshold(world: World) -> None:
    plan = planned_range(world)
    # Still holds the price, but centred 4% below the recommended centre: ~0.6 forecast sigma.
    lower, upper = plan.price_lower * 0.96, plan.price_upper * 0.96
    shifted = LPPosition(8, "ETH/USDT", 3000, lower, upper, 5_000)
    assert lower < world.price < upper
    assert 0.5 < math.log(1 / 0.96) / plan.sigma_log_return < 1.0
    observation = observe(world, eth=0, usdt=0, ranges=[shifted])

    [close] = decide(LPRebalance(recentre_sigmas=0.5), observation, world.toolbox())
    [hold] = decide(LPRebalance(recentre_sigmas=1.0), observation, world.toolbox())

    assert isinstance(close, CloseLPRange) and "sigma from range 8" in close.reason
    assert isinstance(hold, Hold) and "range 8" in hold.reason


def test_holds_an_open_range_on_target(world: World) -> None:
    plan = planned_range(world)
    on_target = LPPosition(9, "ETH/USDT", 3000, plan.price_lower, plan.price_upper, 9_000)

    [hold] = decide(STRATEGY, observe(world, 0, 1_000, [on_target]), world.toolbox())

    assert isinstance(hold, Hold) and "0.00 sigma" in hold.reason


@pytest.mark.parametrize("with_range", [False, True], ids=["flat", "out-of-range"])
def test_holds_when_the_forecast_is_stale(world: World, with_range: bool) -> None:
    left = LPPosition(7, "ETH/USDT", 3000, world.price * 0.7, world.price * 0.9, 5_000)
    observation = observe(world, eth=0, usdt=10_000, ranges=[left] if with_range else [])

    [hold] = decide(STRATEGY, observation, world.toolbox(late_ms=3 * HOUR_MS))

    assert isinstance(hold, Hold)
    assert "stale" in hold.reason


def test_holds_with_too_little_capital(world: World) -> None:
    [hold] = decide(STRATEGY, observe(world, eth=0, usdt=50), world.toolbox())

    assert isinstance(hold, Hold) and "below 100" in hold.reason


def test_refuses_parameters_it_cannot_work_with() -> None:
    with pytest.raises(ConfigError, match="capital_fraction"):
        LPRebalance(capital_fraction=1.5)
    with pytest.raises(ConfigError, match="fee_tier"):
        LPRebalance(fee_tier=250)
