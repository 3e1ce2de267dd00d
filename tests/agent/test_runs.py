"""A run's guard requires the strategy's topics for adding exposure on its symbols."""

from __future__ import annotations

from defai.agent.guard import RiskGuard, RiskLimits
from defai.agent.intents import PlaceOrder, ReasonCode
from defai.agent.observation import Balance, Observation, Portfolio
from defai.agent.runs import strategy_limits
from defai.plugins import STRATEGIES_GROUP, resolve

NOW = 1_700_000_000_000


def test_a_proposal_naming_no_topic_still_needs_the_strategys_forecasts() -> None:
    directional = resolve(STRATEGIES_GROUP, "directional")()
    limits = strategy_limits(RiskLimits(), directional)
    assert limits.required_topics == {"ETH/USDT": frozenset(directional.topics)}
    portfolio = Portfolio(
        "USDT", 10_000.0, 10_000.0, {"USDT": Balance(10_000.0, 10_000.0)}, accounts={}
    )
    observation = Observation(NOW, {"ETH/USDT": 2000.0}, portfolio, {}, {})
    buy = PlaceOrder(symbol="ETH/USDT", side="buy", amount=0.1)  # as an LLM might send it
    [verdict] = RiskGuard(limits).review([buy], observation).verdicts
    assert verdict.code is ReasonCode.MISSING_INFERENCE
    [plain] = RiskGuard(RiskLimits()).review([buy], observation).verdicts
    assert plain.code is ReasonCode.APPROVED


def test_configured_required_topics_are_kept() -> None:
    directional = resolve(STRATEGIES_GROUP, "directional")()
    configured = RiskLimits(required_topics={"BTC/USDT": frozenset({"x"})})
    assert strategy_limits(configured, directional) is configured
