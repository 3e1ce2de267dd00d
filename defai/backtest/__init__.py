"""Backtests: the agent on a simulated clock over history, its metrics, reports and sweeps."""

from defai.backtest.engine import Backtest
from defai.backtest.result import BacktestResult
from defai.backtest.sweep import WalkForwardResult, grid, sweep, walk_forward

__all__ = ["Backtest", "BacktestResult", "WalkForwardResult", "grid", "sweep", "walk_forward"]
