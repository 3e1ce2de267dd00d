"""Backtests: the agent on a simulated clock over history, its metrics, reports and sweeps."""

from defai.backtest.engine import Backtest
from defai.backtest.result import BacktestResult

__all__ = ["Backtest", "BacktestResult"]
