"""The built-in strategies are found as plugins, like a third party's, and fit the protocol."""

from __future__ import annotations

import inspect
from pathlib import Path

from defai.agent.policy import Strategy
from defai.plugins import STRATEGIES_GROUP, discover, from_folder
from strategies.directional import ForecastDirectional
from strategies.leverage_loop import LeverageLoop
from strategies.lp_rebalance import LPRebalance
from strategies.sma_cross import SmaCross

BUILT_IN = {
    "lp_rebalance": LPRebalance,
    "leverage_loop": LeverageLoop,
    "directional": ForecastDirectional,
    "sma_cross": SmaCross,
}
PLAIN = {SmaCross}  # decide from candles alone: no network topics


def test_entry_points_name_each_built_in_strategy_by_its_name() -> None:
    found = discover(STRATEGIES_GROUP)

    assert {name: found[name] for name in BUILT_IN} == BUILT_IN
    assert all(cls.name == name for name, cls in BUILT_IN.items())


def test_the_strategies_folder_yields_the_same_plugins_and_no_helpers() -> None:
    # Not `strategies.__path__`: under pytest, this test folder can stand in for the package.
    folder = Path(inspect.getfile(LPRebalance)).parent
    found = from_folder(folder, lambda obj: isinstance(obj, type) and hasattr(obj, "decide"))

    assert set(found) == set(BUILT_IN)


def test_defaults_make_working_strategies_that_say_what_to_observe() -> None:
    for cls in BUILT_IN.values():
        strategy = cls()
        assert isinstance(strategy, Strategy)
        assert strategy.symbols and strategy.symbols[0].startswith("ETH/USDT")
        expected = () if cls in PLAIN else ("ETH/USDT log_return 24h", "ETH/USDT volatility 24h")
        assert strategy.topics == expected
