"""LeverageLoop on hand-made lending accounts, with the real tools over a real network and market.

Each test states the account (wallet, supplied collateral, debt) and checks the one step the
strategy proposes, and that the RiskGuard (default health-factor floor 1.5) lets it through.
"""

from __future__ import annotations

import pytest
from strategy_world import World

from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import (
    Borrow,
    Hold,
    Intent,
    Repay,
    Supply,
    Swap,
    Withdraw,
    parse_intents,
)
from defai.agent.observation import Balance, LendingAccount, Observation, Portfolio, Reserve
from defai.agent.toolbox import ToolBox
from defai.errors import ConfigError
from strategies.leverage_loop import LeverageLoop

HOUR_MS = 3_600_000
STRATEGY = LeverageLoop()
LT = 0.825  # the paper venue's ETH reserve: LTV 0.80, liquidation threshold 0.825


def observe(
    world: World,
    *,
    eth: float = 0.0,
    usdt: float = 0.0,
    supplied: float = 0.0,
    health_factor: float | None = None,
) -> Observation:
    """`supplied` ETH as collateral with the USDT debt that gives `health_factor` (none: no
    debt), plus a wallet."""
    debt = 0.0 if health_factor is None else supplied * world.price * LT / health_factor
    lending = LendingAccount(
        {"ETH": Reserve(supplied, 0, world.price, 0.80, LT), "USDT": Reserve(0, debt, 1, 0.75, 0.8)}
    )
    equity = (eth + supplied) * world.price + usdt - debt
    portfolio = Portfolio(
        quote="USDT",
        equity=equity,
        peak_equity=equity,
        balances={"ETH": Balance(eth, eth), "USDT": Balance(usdt, usdt)},
        lending=lending,
    )
    inferences = {topic: world.network.latest(topic) for topic in STRATEGY.topics}
    return Observation(world.end_ms, {"ETH/USDT": world.price}, portfolio, inferences=inferences)


def decide(strategy: LeverageLoop, observation: Observation, toolbox: ToolBox) -> Intent:
    """The strategy's one step, checked to parse, to say why, and to be deterministic."""
    proposals = strategy.decide(observation, toolbox)
    intents, rejected = parse_intents(proposals)
    assert not rejected and len(intents) == len(proposals) == 1
    assert intents[0].reason
    assert strategy.decide(observation, toolbox) == proposals
    return intents[0]


def approved(intent: Intent, observation: Observation) -> bool:
    limits = RiskLimits(max_notional_per_order=1e6, max_notional_per_day=1e7)
    return not RiskGuard(limits).review([intent], observation).rejected


def test_supplies_the_wallet_collateral_first(world: World) -> None:
    observation = observe(world, eth=2)

    step = decide(STRATEGY, observation, world.toolbox())

    assert step == Supply(asset="ETH", amount=2.0, reason=step.reason, topics=step.topics)
    assert set(step.topics) == set(STRATEGY.topics)
    assert approved(step, observation)


def test_borrows_toward_the_advised_leverage_without_passing_the_health_factor_floor(
    world: World,
) -> None:
    observation = observe(world, supplied=2)

    step = decide(STRATEGY, observation, world.toolbox())

    assert isinstance(step, Borrow) and step.asset == "USDT"
    assert "advised leverage" in step.reason
    after = observation.portfolio.lending.with_change("USDT", debt=step.resolved_amount)
    assert after.health_factor == pytest.approx(STRATEGY.min_health_factor)
    assert approved(step, observation)


def test_swaps_borrowed_cash_into_collateral(world: World) -> None:
    observation = observe(world, usdt=3_000, supplied=2, health_factor=2.5)

    step = decide(STRATEGY, observation, world.toolbox())

    assert isinstance(step, Swap)
    # all but the gas reserve (10 USDT by default) of the borrowed cash
    assert (step.pair, step.side, step.amount_in) == ("ETH/USDT", "buy", 2_990)
    assert step.min_amount_out is not None and step.min_amount_out > 0
    assert approved(step, observation)


def test_holds_once_the_loop_reaches_its_target(world: World) -> None:
    # Advised: the leverage at HF 1.8, i.e. 1.8 / (1.8 - 0.825) = 1.85.
    step = decide(STRATEGY, observe(world, supplied=2, health_factor=1.85), world.toolbox())

    assert isinstance(step, Hold) and "within band" in step.reason


def test_unwinds_when_the_liquidation_probability_crosses_the_bound(world: World) -> None:
    # HF 1.7 is above the floor, but the bound is set below what the forecast gives it.
    cautious = LeverageLoop(max_liquidation_probability=1e-18)
    observation = observe(world, supplied=2, health_factor=1.7)

    step = decide(cautious, observation, world.toolbox())

    assert isinstance(step, Withdraw) and step.asset == "ETH"
    assert "P(liquidation within 24h)" in step.reason
    assert set(step.topics) == {"ETH/USDT volatility 24h"}  # liquidation_risk's input
    after = observation.portfolio.lending.with_change("ETH", supplied=-step.resolved_amount)
    assert after.health_factor >= cautious.withdraw_health_factor - 1e-9
    assert approved(step, observation)


def test_repays_with_cash_in_hand_when_the_loan_is_at_risk(world: World) -> None:
    # HF 1.15: a 13% fall liquidates; over 24h at ~6.5% sigma that is far above 1%.
    observation = observe(world, usdt=500, supplied=2, health_factor=1.15)

    step = decide(STRATEGY, observation, world.toolbox())

    assert step == Repay(asset="USDT", amount=490.0, reason=step.reason, topics=step.topics)
    assert approved(step, observation)


def test_says_so_when_no_withdrawal_can_unwind(world: World) -> None:
    step = decide(STRATEGY, observe(world, supplied=2, health_factor=1.15), world.toolbox())

    assert isinstance(step, Hold) and "outside funds" in step.reason


def test_unwinds_when_the_advised_leverage_falls_below_the_loop(world: World) -> None:
    capped = LeverageLoop(max_leverage=1.3)
    observation = observe(world, supplied=2, health_factor=1.85)  # leverage 1.85

    step = decide(capped, observation, world.toolbox())

    assert isinstance(step, Withdraw) and "target 1.30" in step.reason
    assert approved(step, observation)


def test_sells_withdrawn_collateral_while_unwinding(world: World) -> None:
    capped = LeverageLoop(max_leverage=1.3)
    observation = observe(world, eth=0.2, supplied=1.8, health_factor=1.85)

    step = decide(capped, observation, world.toolbox())

    assert isinstance(step, Swap) and (step.side, step.amount_in) == ("sell", 0.2)
    assert approved(step, observation)


@pytest.mark.parametrize("health_factor", [None, 2.5], ids=["no-loan", "safe-loan"])
def test_holds_when_the_forecast_is_stale(world: World, health_factor: float | None) -> None:
    observation = observe(world, eth=1, supplied=2, health_factor=health_factor)

    step = decide(STRATEGY, observation, world.toolbox(late_ms=3 * HOUR_MS))

    assert isinstance(step, Hold) and "stale" in step.reason


def test_unwinds_below_the_health_factor_floor_even_without_a_forecast(world: World) -> None:
    observation = observe(world, usdt=400, supplied=2, health_factor=1.4)

    step = decide(STRATEGY, observation, world.toolbox(late_ms=3 * HOUR_MS))

    assert isinstance(step, Repay) and step.topics == ()  # relies on no stale inference
    assert "below the floor" in step.reason
    assert approved(step, observation)


def test_refuses_health_factors_in_the_wrong_order() -> None:
    with pytest.raises(ConfigError, match="health_factor_floor"):
        LeverageLoop(health_factor_floor=1.9)
