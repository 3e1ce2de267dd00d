"""BacktestResult: what a backtest leaves for a user to read, plot and compare.

Everything is a pandas object indexed by UTC time, built once at the end of the run from plain
lists, plus the metrics and a hash of every trade and venue action (equal hashes, equal trades).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from defai.backtest import metrics as m
from defai.types import epoch_ms, timeframe_ms, to_timestamp

ACTION_COLUMNS = ["time_ms", "kind", "intent", "result", "error"]
TRADE_COLUMNS = ["time", "symbol", "side", "amount", "price", "cost", "fee", "order_id"]


@dataclass(frozen=True, slots=True)
class LpRange:
    """An LP position's price range and life, for plots (closed_ms None: still open)."""

    position_id: int
    pair: str
    opened_ms: int
    closed_ms: int | None
    lower: float
    upper: float

    def closed(self, now: int) -> LpRange:
        return replace(self, closed_ms=now)


@dataclass(frozen=True)
class BacktestResult:
    strategy: str
    quote: str
    capital: float
    equity: pd.Series
    """Equity in the quote after each tick (all venues, marked at the last closes)."""
    exposure: pd.Series
    """Gross market value at risk over equity, as the policy saw it at each tick."""
    health_factor: pd.Series
    """The lending account's health factor (NaN while it owes nothing)."""
    prices: pd.DataFrame
    """The last close of each traded symbol at each tick."""
    trades: pd.DataFrame
    """Exchange fills: time, symbol, side, amount, price, cost, fee (quote), order_id."""
    round_trips: pd.DataFrame
    actions: pd.DataFrame
    """Every intent a venue executed or refused: time, kind, intent, result, error."""
    lp: pd.DataFrame
    """Open LP positions per tick, in the quote: value, uncollected fees, and impermanent loss
    (principal minus what holding the deposited tokens would be worth; negative is a loss)."""
    lp_ranges: tuple[LpRange, ...]
    liquidations: pd.DataFrame
    network: Mapping[str, pd.DataFrame]
    """Per topic: the network's inference, interval, weights, truth and losses per epoch."""
    verdicts: Mapping[str, int]
    """How many proposals the guard answered with each reason code."""
    decisions: tuple[str, ...] = field(repr=False)
    """Each tick's proposals, canonical: what the look-ahead check compares."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    trade_hash: str = ""
    elapsed_s: float = math.nan
    """Wall seconds of the whole run, `setup_s` of them spent before the first tick (wiring,
    and recording the network when no cached recording existed)."""
    setup_s: float = math.nan

    @property
    def bars_per_second(self) -> float:
        """Ticks per second of the loop itself, setup excluded."""
        loop = self.elapsed_s - self.setup_s
        return self.bars / loop if loop > 0 else math.nan

    @property
    def bars(self) -> int:
        return len(self.equity)

    @property
    def drawdown(self) -> pd.Series:
        return pd.Series(m.drawdown(self.equity.to_numpy()), index=self.equity.index)

    def metrics_table(self) -> pd.DataFrame:
        """The metrics with their units, one row each, ready to print."""
        rows = [
            (name, METRIC_LABELS.get(name, name), value) for name, value in self.metrics.items()
        ]
        return pd.DataFrame(rows, columns=["metric", "label", "value"]).set_index("metric")


METRIC_LABELS = {
    "start_equity": "Start equity",
    "end_equity": "End equity",
    "total_return": "Total return",
    "cagr": "CAGR",
    "sharpe": "Sharpe (annualised)",
    "sortino": "Sortino (annualised)",
    "max_drawdown": "Max drawdown",
    "calmar": "Calmar",
    "trades": "Fills",
    "round_trips": "Round trips",
    "win_rate": "Win rate",
    "profit_factor": "Profit factor",
    "exposure": "Mean gross exposure",
    "time_in_market": "Time in market",
    "fees": "Exchange fees",
    "turnover": "Turnover (x mean equity)",
    "lp_fees": "LP fees earned",
    "impermanent_loss": "Impermanent loss of open LP (quote)",
    "liquidations": "Liquidations",
}
PERCENT_METRICS = frozenset(
    {"total_return", "cagr", "max_drawdown", "win_rate", "exposure", "time_in_market"}
)


def build_result(
    *,
    strategy: str,
    quote: str,
    capital: float,
    timeframe: str,
    times: np.ndarray,
    equity: np.ndarray,
    exposure: np.ndarray,
    health_factor: np.ndarray,
    prices: Mapping[str, Sequence[float]],
    lp: Mapping[str, Sequence[float]],
    lp_ranges: Sequence[LpRange],
    trades: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
    verdicts: Mapping[str, int],
    decisions: Sequence[str],
    liquidations: Sequence[Any],
    network: Mapping[str, pd.DataFrame],
    elapsed_s: float,
    setup_s: float,
) -> BacktestResult:
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="time")
    fills = trade_frame(trades, quote)
    trips = m.round_trips(
        fills["symbol"].tolist(),
        epoch_ms(fills["time"]).tolist(),
        np.where(fills["side"] == "buy", 1.0, -1.0) * fills["amount"].to_numpy(),
        fills["price"].tolist(),
        fills["fee"].tolist(),
    )
    trip_frame = pd.DataFrame(
        [
            (t.symbol, to_timestamp(t.opened_ms), to_timestamp(t.closed_ms), t.side, t.pnl)
            for t in trips
        ],
        columns=["symbol", "opened", "closed", "side", "pnl"],
    )
    lp_frame = pd.DataFrame({k: list(v) for k, v in lp.items()}, index=index)
    liquidation_frame = pd.DataFrame([_fields(e) for e in liquidations])
    result = BacktestResult(
        strategy=strategy,
        quote=quote,
        capital=capital,
        equity=pd.Series(equity, index=index, name="equity"),
        exposure=pd.Series(exposure, index=index, name="exposure"),
        health_factor=pd.Series(health_factor, index=index, name="health_factor"),
        prices=pd.DataFrame({s: list(v) for s, v in prices.items()}, index=index),
        trades=fills,
        round_trips=trip_frame,
        actions=pd.DataFrame(list(actions), columns=ACTION_COLUMNS),
        lp=lp_frame,
        lp_ranges=tuple(lp_ranges),
        liquidations=liquidation_frame,
        network={t: _between(f, index) for t, f in network.items()},
        verdicts=dict(verdicts),
        decisions=tuple(decisions),
        elapsed_s=elapsed_s,
        setup_s=setup_s,
    )
    return replace(
        result,
        metrics=compute_metrics(result, timeframe, _collected_fees(actions, result.prices)),
        trade_hash=trade_hash(fills, actions),
    )


def curve_metrics(equity: pd.Series, timeframe: str) -> dict[str, float]:
    """What an equity curve alone says (one tick per `timeframe`): return, CAGR, Sharpe,
    Sortino, maximum drawdown, Calmar."""
    values = equity.to_numpy(dtype=np.float64)
    if not len(values):
        return {}
    tick = timeframe_ms(timeframe)
    times = epoch_ms(equity.index)
    years = (int(times[-1]) - int(times[0]) + tick) / m.YEAR_MS
    growth = m.cagr(values, years)
    worst = m.max_drawdown(values)
    return {
        "total_return": m.total_return(values),
        "cagr": growth,
        "sharpe": m.sharpe(values, m.YEAR_MS / tick),
        "sortino": m.sortino(values, m.YEAR_MS / tick),
        "max_drawdown": worst,
        "calmar": m.calmar(growth, worst),
    }


def compute_metrics(
    result: BacktestResult, timeframe: str, lp_collected: float
) -> dict[str, float]:
    equity = result.equity.to_numpy(dtype=np.float64)
    if equity.size == 0:
        return {}
    pnls = result.round_trips["pnl"].tolist()
    lp = result.lp
    exposure = result.exposure.to_numpy(dtype=np.float64)
    return {
        "start_equity": float(equity[0]),
        "end_equity": float(equity[-1]),
        **curve_metrics(result.equity, timeframe),
        "trades": float(len(result.trades)),
        "round_trips": float(len(pnls)),
        "win_rate": m.win_rate(pnls),
        "profit_factor": m.profit_factor(pnls),
        "exposure": float(np.nanmean(exposure)) if np.isfinite(exposure).any() else math.nan,
        "time_in_market": float(np.mean(np.nan_to_num(exposure) > 1e-3)),
        "fees": float(result.trades["fee"].sum()),
        "turnover": float(result.trades["cost"].sum() / np.mean(equity)),
        "lp_fees": lp_collected + (float(lp["fees_owed"].iloc[-1]) if len(lp) else 0.0),
        "impermanent_loss": float(lp["impermanent_loss"].iloc[-1]) if len(lp) else 0.0,
        "liquidations": float(len(result.liquidations)),
    }


def trade_frame(trades: Sequence[Mapping[str, Any]], quote: str) -> pd.DataFrame:
    """ccxt trades as one row each; a fee paid in the base is valued at the trade's price."""
    rows = []
    for t in trades:
        fee = t.get("fee") or {}
        cost = float(fee.get("cost") or 0.0)
        if cost and fee.get("currency") not in (None, quote):
            cost *= float(t["price"])
        rows.append(
            (
                pd.Timestamp(int(t["timestamp"]), unit="ms", tz="UTC"),
                t["symbol"],
                t["side"],
                float(t["amount"]),
                float(t["price"]),
                float(t["cost"]),
                cost,
                str(t.get("order") or ""),
            )
        )
    frame = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def trade_hash(fills: pd.DataFrame, actions: Sequence[Mapping[str, Any]]) -> str:
    """sha256 over every fill and every on-chain action, floats written exactly (repr)."""
    digest = hashlib.sha256()
    columns = [epoch_ms(fills["time"]).tolist()] + [
        fills[c].tolist() for c in ("symbol", "side", "amount", "price", "fee")
    ]
    for row in zip(*columns, strict=True):
        digest.update(json.dumps(row).encode())
    for action in actions:
        if action["kind"] in ("place_order", "cancel_order"):
            continue  # their fills are above; order ids carry the run id
        digest.update(
            json.dumps(
                [action["time_ms"], action["intent"], action["result"], action["error"]],
                sort_keys=True,
            ).encode()
        )
    return digest.hexdigest()


def _collected_fees(actions: Sequence[Mapping[str, Any]], prices: pd.DataFrame) -> float:
    """LP fees paid out by `collect` when ranges closed, in the quote at that tick's close."""
    total = 0.0
    for action in actions:
        if action["kind"] != "close_lp_range" or action["error"] is not None:
            continue
        collect = action["result"].get("collect") or {}
        pair = collect.get("pair", "")
        if pair not in prices:
            continue
        price = float(prices[pair].loc[pd.Timestamp(action["time_ms"], unit="ms", tz="UTC")])
        total += float(collect["amount0"]) * price + float(collect["amount1"])
    return total


def _fields(event: Any) -> dict[str, Any]:
    names = getattr(event, "__dataclass_fields__", None)
    return {n: getattr(event, n) for n in names} if names else dict(event)


def _between(frame: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    if not len(index):
        return frame
    return frame.loc[(frame.index >= index[0]) & (frame.index <= index[-1])]
