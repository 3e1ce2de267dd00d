"""The backtesting.py side of bench_vs_backtesting_py.py; runs in .venv-peer, never in .venv.

Reads candles the bench exported from defai's CsvFeed (columns time_ms, Open, High, Low, Close,
Volume: the very rows defai trades on), runs backtesting.py's SMA crossover with the rules of
defai's `strategies.sma_cross.SmaCross`, and prints one JSON object: trades (entry/exit times in
epoch ms, units, prices), final equity, bars in the traded range, and the seconds `run()` took.

How it is made to do exactly what defai does:
- Units: backtesting.py trades whole units (a size in (0, 1) is a share of equity, rounded down
  to whole units). `FractionalBacktest(fractional_unit=10**-decimals)` trades whole micro-ETH
  instead, and the order size is computed as SmaCross computes it:
  `floor(fraction * cash / close * 10**decimals)`, with `cash` rounded to 8 decimals as the paper
  exchange reports balances, and the unscaled close of the signal's candle.
- Fills: market orders at the next bar's open (`trade_on_close=False`), no spread; the commission
  `commission x units x price` is taken from cash at entry and again at exit, which is the paper
  exchange's taker fee on the cost of each fill.
- A bar with zero volume is a market where nothing traded: the paper exchange fills nothing there
  (each bar fills at most `max_volume_share` of its volume), so an order waits for the first
  bar that traded. Here the order is submitted on the bar before that bar (the extra column
  `NextVolume` says whether the next bar traded; the signal and the size stay those of the
  signal's bar), and SmaCross's "hold while an order is working" is the `pending` state.
- Decisions start at the candle that closes at `--start` (defai's first tick); earlier rows are
  warm-up for the averages only. Open positions stay open at the end: the final equity is cash
  plus the position at the last close, as defai values its account.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings

import numpy as np
import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest
from numpy.lib.stride_tricks import sliding_window_view

HOUR_MS = 3_600_000


def sma(values: np.ndarray, n: int) -> np.ndarray:
    """Mean of each window of n values, NaN before the first full one: each window's mean is
    np.mean of that slice, bit for bit what SmaCross computes."""
    out = np.full(len(values), np.nan)
    out[n - 1 :] = sliding_window_view(np.asarray(values, dtype=np.float64), n).mean(axis=1)
    return out


class SmaCrossPeer(Strategy):
    fast = 10
    slow = 30
    fraction = 0.98
    decimals = 6
    first_decision_ms = 0  # open time of the first candle whose close may be traded on

    def init(self) -> None:
        raw = np.asarray(self.data.RawClose, dtype=np.float64)
        self.sma_fast = self.I(sma, raw, self.fast, name="SMA fast", overlay=False)
        self.sma_slow = self.I(sma, raw, self.slow, name="SMA slow", overlay=False)
        self.pending: tuple[str, int] | None = None  # (side, units) decided, not yet filled
        self.submitted = False
        self.first_decision = pd.Timestamp(self.first_decision_ms, unit="ms", tz="UTC")

    def next(self) -> None:
        if self.pending is not None:
            if not self.submitted:
                self._submit_if_next_bar_trades()
                return
            if self.orders:
                return
            self.pending, self.submitted = None, False  # filled (or canceled by the broker)
        if self.data.index[-1] < self.first_decision:
            return
        fast, slow = self.sma_fast, self.sma_slow
        held = self.position.size
        if fast[-2] < slow[-2] and fast[-1] > slow[-1] and held == 0:
            cash = round(self.equity, 8)  # flat: equity is cash
            units = math.floor(
                self.fraction * cash / float(self.data.RawClose[-1]) * 10**self.decimals
            )
            if units > 0:
                self.pending = ("buy", units)
        elif fast[-2] > slow[-2] and fast[-1] < slow[-1] and held > 0:
            self.pending = ("sell", held)
        if self.pending is not None:
            self._submit_if_next_bar_trades()

    def _submit_if_next_bar_trades(self) -> None:
        assert self.pending is not None
        if not self.data.NextVolume[-1] > 0:
            return
        side, units = self.pending
        if side == "buy":
            self.buy(size=units)
        else:
            self.position.close()
        self.submitted = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--start-ms", type=int, required=True, help="defai's first tick")
    parser.add_argument("--cash", type=float, default=10_000.0)
    parser.add_argument("--commission", type=float, default=0.001)
    parser.add_argument("--fast", type=int, default=10)
    parser.add_argument("--slow", type=int, default=30)
    parser.add_argument("--fraction", type=float, default=0.98)
    parser.add_argument("--decimals", type=int, default=6)
    args = parser.parse_args()

    rows = pd.read_csv(args.csv)
    data = pd.DataFrame(
        {
            "Open": rows.Open.to_numpy(float),
            "High": rows.High.to_numpy(float),
            "Low": rows.Low.to_numpy(float),
            "Close": rows.Close.to_numpy(float),
            "Volume": rows.Volume.to_numpy(float),
            "RawClose": rows.Close.to_numpy(float),
            "NextVolume": rows.Volume.shift(-1).fillna(0.0).to_numpy(float),
        },
        index=pd.DatetimeIndex(pd.to_datetime(rows.time_ms, unit="ms", utc=True)),
    )
    unit = 10.0**-args.decimals
    backtest = FractionalBacktest(
        data,
        SmaCrossPeer,
        cash=args.cash,
        commission=args.commission,
        spread=0.0,
        trade_on_close=False,
        exclusive_orders=False,
        finalize_trades=False,
        fractional_unit=unit,
    )
    params = {
        "fast": args.fast,
        "slow": args.slow,
        "fraction": args.fraction,
        "decimals": args.decimals,
        "first_decision_ms": args.start_ms - HOUR_MS,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "some trades remain open" at the end, by design
        began = time.perf_counter()
        stats = backtest.run(**params)
        elapsed = time.perf_counter() - began

    first_decision = pd.Timestamp(args.start_ms - HOUR_MS, unit="ms", tz="UTC")
    trades = stats["_trades"]
    equity = stats["_equity_curve"]["Equity"]
    open_trades = stats["_strategy"].trades
    report = {
        "trades": [
            {
                "entry_ms": _ms(t.EntryTime),
                "exit_ms": _ms(t.ExitTime),
                "units": float(t.Size),
                "entry_price": float(t.EntryPrice),
                "exit_price": float(t.ExitPrice),
            }
            for t in trades.itertuples()
        ]
        + [
            {
                "entry_ms": _ms(t.entry_time),
                "exit_ms": None,
                "units": float(t.size) * unit,
                "entry_price": float(t.entry_price) / unit,
                "exit_price": None,
            }
            for t in open_trades
        ],
        "final_equity": float(equity.iloc[-1]),
        "bars": int((data.index >= first_decision).sum()),
        "bars_total": len(data),
        "elapsed_s": elapsed,
        "version": _version(),
    }
    print(json.dumps(report))


def _ms(when: pd.Timestamp) -> int:
    return int(pd.Timestamp(when).value // 1_000_000)


def _version() -> str:
    from importlib.metadata import version

    return version("backtesting")


if __name__ == "__main__":
    main()
