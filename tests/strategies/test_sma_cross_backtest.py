"""SmaCross through the Backtest engine on real candles, against the rule computed by hand.

What bench_vs_backtesting_py.py checks against backtesting.py, without the peer's venv: on
three months of Binance ETH/USDT 1h, an independent pandas/numpy loop over the CSV's rows
(signal on a candle's close, fill at the next traded candle's open, 0.1% of the cost as fee,
buy floor(0.98 x cash / close x 1e6) / 1e6 ETH, sell everything) gives the same fills, at the
same times and prices, and the same final equity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from support import shared_file

from defai.agent.guard import RiskLimits
from defai.backtest import Backtest, BacktestResult
from defai.execution.paper import MarketRules
from defai.market.csv import CsvFeed
from defai.types import to_ms
from strategies.sma_cross import SmaCross

pytestmark = pytest.mark.shared

HOUR_MS = 3_600_000
START, END = "2021-01-01", "2021-04-01"
CAPITAL, FEE = 10_000.0, 0.001
STRATEGY = SmaCross()


@dataclass(frozen=True)
class Fill:
    time_ms: int
    side: str
    amount: float
    price: float
    fee: float


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    raw = pd.read_csv(shared_file("data", "binance_ETHUSDT_1h.csv.gz"))
    times = pd.to_datetime(raw["timestamp_utc"], utc=True)
    return pd.DataFrame(
        {
            "ts": (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1),
            "open": raw["open"].astype(float),
            "close": raw["close"].astype(float),
            "volume": raw["volume_eth"].astype(float),
        }
    )


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    feed = CsvFeed(shared_file("data", "binance_ETHUSDT_1h.csv.gz"))
    return Backtest(
        STRATEGY,
        feed,
        start=START,
        end=END,
        capital=CAPITAL,
        network=None,
        limits=RiskLimits(max_notional_per_order=1e12, max_notional_per_day=1e15, max_drawdown=1),
        exchange={
            "taker": FEE,
            "spread_bps": 0.0,
            "impact": 0.0,
            "max_slippage": 0.0,
            "max_volume_share": 1.0,
            "markets": {"ETH/USDT": MarketRules(price_tick=1e-8, amount_step=1e-8, min_cost=0)},
        },
    ).run()


def by_hand(rows: pd.DataFrame) -> tuple[list[Fill], float]:
    """The rule, candle by candle over the CSV rows: decisions on candles closing at START..END,
    each order filled at the open of the next candle with volume, if it opens before END."""
    ts, opens, closes = rows["ts"].to_numpy(), rows["open"].to_numpy(), rows["close"].to_numpy()
    volume = rows["volume"].to_numpy()
    fast = np.full(len(closes), np.nan)
    slow = np.full(len(closes), np.nan)
    fast[STRATEGY.fast - 1 :] = sliding_window_view(closes, STRATEGY.fast).mean(axis=1)
    slow[STRATEGY.slow - 1 :] = sliding_window_view(closes, STRATEGY.slow).mean(axis=1)
    first, last = to_ms(START) - HOUR_MS, to_ms(END) - HOUR_MS  # candles' open times
    cash, held, fills = CAPITAL, 0.0, []
    i = int(np.searchsorted(ts, first))
    while i < len(ts) and ts[i] <= last:
        up = fast[i - 1] < slow[i - 1] and fast[i] > slow[i]
        down = fast[i - 1] > slow[i - 1] and fast[i] < slow[i]
        amount = 0.0
        if up and held == 0:
            amount = math.floor(0.98 * round(cash, 8) / closes[i] * 1e6) / 1e6
        elif down and held > 0:
            amount = held
        if amount > 0:
            j = i + 1
            while j < len(ts) and volume[j] <= 0:
                j += 1
            if j >= len(ts) or ts[j] > last:
                break  # the order would still be waiting at the end
            price = opens[j]
            fee = FEE * amount * price
            if up:
                cash, held = cash - amount * price - fee, amount
            else:
                cash, held = cash + amount * price - fee, 0.0
            fills.append(Fill(int(ts[j]), "buy" if up else "sell", amount, price, fee))
            i = j  # the next decision is on the candle the order filled in
            continue
        i += 1
    end = int(np.searchsorted(ts, last, side="right")) - 1
    return fills, cash + held * closes[end]


def engine_fills(result: BacktestResult) -> list[Fill]:
    return [
        Fill(int(t.time.value // 1_000_000), t.side, t.amount, t.price, t.fee)
        for t in result.trades.itertuples()
    ]


def test_the_engine_trades_the_rule_at_the_next_open(
    result: BacktestResult, rows: pd.DataFrame
) -> None:
    expected, _ = by_hand(rows)
    got = engine_fills(result)

    assert len(expected) > 20  # three months of hourly crossovers
    assert [(f.time_ms, f.side) for f in got] == [(f.time_ms, f.side) for f in expected]
    assert [f.price for f in got] == [f.price for f in expected]  # the open, exactly
    assert [f.amount for f in got] == pytest.approx([f.amount for f in expected], abs=1e-9)
    opens = rows.set_index("ts")["open"]
    assert all(opens[f.time_ms] == f.price for f in got)


def test_fees_are_a_tenth_of_a_percent_of_each_fill_cost(result: BacktestResult) -> None:
    trades = result.trades

    cost = trades["amount"].to_numpy() * trades["price"].to_numpy()

    assert len(trades) > 20
    assert trades["cost"].to_numpy() == pytest.approx(cost, rel=1e-12)
    assert trades["fee"].to_numpy() == pytest.approx(FEE * cost, rel=1e-12)


def test_the_final_equity_is_the_hand_computed_one(
    result: BacktestResult, rows: pd.DataFrame
) -> None:
    _, equity = by_hand(rows)

    assert result.equity.iloc[-1] == pytest.approx(equity, rel=1e-9)
    assert result.bars == (to_ms(END) - to_ms(START)) // HOUR_MS + 1
