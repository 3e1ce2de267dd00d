"""The report's figures: one `matplotlib.figure.Figure` per plot, drawn on the Agg canvas.

No pyplot: every figure is built and saved on its own, so nothing leaks from one to the next
and nothing needs a display. Times are UTC on every axis; each function returns None when the
result has nothing to draw (no debt, no network) so that the page can say so instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from defai.backtest.result import BacktestResult, LpRange

DPI = 110
WIDTH_IN = 9.6  # about 1050 px: an 80-column text width on a laptop screen
BUY, SELL, LP, LIQUIDATION = "#1a9850", "#d73027", "#4575b4", "#b2182b"
HF_AXIS_CAP = 10.0  # a nearly repaid loan has an enormous health factor: the axis stops here
LOSS_WINDOW = 24  # epochs in the rolling mean of the network's losses

_STYLE: dict[Any, Any] = {
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


P = ParamSpec("P")
R = TypeVar("R")


def _styled(draw: Callable[P, R]) -> Callable[P, R]:
    """Draw inside the report's rc settings (restored afterwards: nothing leaks)."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(_STYLE):
            return draw(*args, **kwargs)

    return wrapper


@_styled
def save(figure: Figure, path: Path) -> Path:
    """Write `figure` as a PNG (no timestamp in its metadata: same result, same bytes)."""
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return path


@_styled
def equity_figure(result: BacktestResult) -> Figure:
    """Equity (quote), drawdown (% below the running peak) and gross exposure, sharing time."""
    figure, (top, middle, bottom) = _figure(3, 7.2, height_ratios=(3.0, 1.6, 1.4))
    x = _times(result.equity.index)
    equity = result.equity.to_numpy(dtype=np.float64)
    top.plot(x, equity, color="#2166ac", linewidth=1.3, label="equity")
    top.axhline(result.capital, color="grey", linestyle="--", linewidth=0.9, label="capital")
    top.set_ylabel(f"equity ({result.quote})")
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    top.set_title(f"{_plain(result.strategy)}: equity, drawdown and exposure")
    top.legend(loc="best", frameon=True, framealpha=0.85, edgecolor="none")

    drawdown = -100.0 * result.drawdown.to_numpy(dtype=np.float64)
    middle.fill_between(x, drawdown, 0.0, color=SELL, alpha=0.35, linewidth=0)
    middle.plot(x, drawdown, color=SELL, linewidth=0.8)
    middle.set_ylabel("drawdown (%)")
    middle.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    if drawdown.size and np.isfinite(drawdown).any():
        worst = int(np.nanargmin(drawdown))
        right = worst > 0.6 * len(drawdown)  # label on the side with room for it
        middle.annotate(
            f"max {-drawdown[worst]:.2f}%",
            (x[worst], drawdown[worst]),
            xytext=(-6 if right else 6, -11),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=8,
        )
        middle.set_ylim(min(float(np.nanmin(drawdown)) * 1.25, -0.1), 0.0)

    exposure = result.exposure.to_numpy(dtype=np.float64)
    bottom.plot(x, exposure, color="#5e3c99", linewidth=1.0, drawstyle="steps-post")
    bottom.set_ylabel("gross exposure\n(× equity)")
    bottom.set_ylim(bottom=0.0)
    _time_axis(bottom)
    return figure


@_styled
def price_figure(result: BacktestResult) -> Figure | None:
    """Each traded symbol's close, with exchange fills, swaps, refused actions and LP ranges."""
    symbols = [s for s in result.prices.columns if result.prices[s].notna().any()]
    if not symbols:
        return None
    figure, axes = _figure(len(symbols), 1.0 + 3.6 * len(symbols))
    x = _times(result.prices.index)
    actions = _market_actions(result)
    for ax, symbol in zip(axes, symbols, strict=True):
        pair = symbol.partition(":")[0]
        close = result.prices[symbol]
        ax.plot(x, close.to_numpy(dtype=np.float64), color="black", lw=1.0, label=f"{symbol} close")
        shown = []
        ranges = [r for r in result.lp_ranges if r.pair == pair]
        for i, r in enumerate(ranges):
            ax.fill_between(
                [_time(r.opened_ms), _range_end(r, result)],
                r.lower,
                r.upper,
                color=LP,
                alpha=0.18,
                linewidth=0.8,
                edgecolor=LP,
                label=f"LP range ({len(ranges)})" if i == 0 else None,
            )
        if ranges:
            shown.append("LP ranges")
        fills = result.trades[result.trades["symbol"] == symbol]
        mine = actions[actions["symbol"].isin([symbol, pair])]
        swaps = mine[(mine["kind"] == "swap") & ~mine["refused"]]
        for side, marker, color in (("buy", "^", BUY), ("sell", "v", SELL)):
            chosen = fills[fills["side"] == side]
            if len(chosen):
                ax.scatter(
                    _times(chosen["time"]),
                    chosen["price"],
                    marker=marker,
                    s=36,
                    color=color,
                    edgecolors="black",
                    linewidths=0.4,
                    zorder=3,
                    label=f"{side} fill ({len(chosen)})",
                )
            chosen = swaps[swaps["side"] == side]
            if len(chosen):
                ax.scatter(
                    _times(chosen["time"]),
                    chosen["price"],
                    marker=marker,
                    s=40,
                    facecolors="none",
                    edgecolors=color,
                    linewidths=1.2,
                    zorder=3,
                    label=f"swap: {side} {pair.partition('/')[0]} ({len(chosen)})",
                )
        refused = mine[mine["refused"]]
        if len(refused):
            when = pd.DatetimeIndex(refused["time"]).tz_localize(pd.DatetimeIndex(close.index).tz)
            at = close.reindex(when).to_numpy(dtype=np.float64)
            ax.scatter(
                _times(refused["time"]),
                at,
                marker="x",
                s=22,
                color="#666666",
                linewidths=0.9,
                zorder=2,
                label=f"refused by the venue ({len(refused)})",
            )
        if len(fills):
            shown.append("fills")
        if len(swaps):
            shown.append("swaps")
        if len(refused):
            shown.append("refused actions")
        quote = pair.partition("/")[2] or result.quote
        ax.set_ylabel(f"{symbol} ({quote})")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        what = f" with {_join(shown)}" if shown else ": nothing traded on it"
        ax.set_title(f"{_plain(result.strategy)}: {symbol}{what}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=5, frameon=False)
    _time_axis(axes[-1])
    return figure


@_styled
def health_figure(result: BacktestResult) -> Figure | None:
    """The lending account's health factor, its borrows and repays, the liquidation line and
    the liquidations."""
    hf = result.health_factor.to_numpy(dtype=np.float64)
    events = result.liquidations
    if not np.isfinite(hf).any() and not len(events):
        return None
    figure, (ax,) = _figure(1, 3.6)
    x = _times(result.health_factor.index)
    ax.plot(x, np.minimum(hf, HF_AXIS_CAP), color="#2166ac", linewidth=1.2, label="health factor")
    ax.axhline(1.0, color=LIQUIDATION, linestyle="--", linewidth=1.0, label="liquidation (HF 1)")
    lending = _market_actions(result)
    lending = lending[~lending["refused"] & np.isfinite(lending["health_factor"])]
    for kind, marker, color in (("borrow", "^", "#e08214"), ("repay", "v", BUY)):
        chosen = lending[lending["kind"] == kind]
        if len(chosen):
            ax.scatter(
                _times(chosen["time"]),
                np.minimum(chosen["health_factor"].to_numpy(dtype=np.float64), HF_AXIS_CAP),
                marker=marker,
                s=40,
                color=color,
                edgecolors="black",
                linewidths=0.4,
                zorder=3,
                label=f"{kind} ({len(chosen)})",
            )
    if len(events) and "time_ms" in events:
        at = events["health_factor"] if "health_factor" in events else pd.Series(1.0, events.index)
        ax.scatter(
            _times(pd.to_datetime(events["time_ms"], unit="ms", utc=True)),
            np.minimum(at.to_numpy(dtype=np.float64), HF_AXIS_CAP),
            marker="X",
            s=80,
            color=LIQUIDATION,
            edgecolors="black",
            linewidths=0.5,
            zorder=4,
            label=f"liquidation ({len(events)})",
        )
    finite = hf[np.isfinite(hf)]
    top = max(1.5, float(finite.max()) * 1.08 if finite.size else 1.5)
    ax.set_ylim(0.0, min(top, HF_AXIS_CAP * 1.05))
    capped = finite.size and finite.max() > HF_AXIS_CAP
    note = f" (axis capped at {HF_AXIS_CAP:g})" if capped else ""
    ax.set_ylabel("health factor")
    ax.set_title(f"{_plain(result.strategy)}: lending health factor{note}; gaps: no debt")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=5, frameon=False)
    _time_axis(ax)
    return figure


@_styled
def network_figure(strategy: str, topic: str, frame: pd.DataFrame) -> Figure | None:
    """One topic: each worker's weight over time (stacked), and the network's loss against the
    naive inference's and the best single worker's (rolling means of the scored epochs)."""
    weights = [c for c in frame.columns if str(c).startswith("weight:")]
    if not len(frame) or not weights:
        return None
    losses = _losses(frame)
    figure, axes = _figure(2 if losses is not None else 1, 7.0 if losses is not None else 4.2)
    x = _times(frame.index)
    stacked = frame[weights].to_numpy(dtype=np.float64)
    names = [_plain(str(c).partition(":")[2]) for c in weights]
    colors = [_PALETTE[i % len(_PALETTE)] for i in range(len(names))]
    top = axes[0]
    top.stackplot(x, np.nan_to_num(stacked).T, labels=names, colors=colors, linewidth=0)
    top.set_axisbelow(True)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("weight (share of 1)")
    top.set_title(_plain(f"{strategy}: network weights by worker, {topic}"))
    handles, labels = top.get_legend_handles_labels()
    top.legend(  # top of the legend = top of the stack
        handles[::-1],
        labels[::-1],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize=7.5,
    )
    if losses is not None:
        bottom = axes[1]
        for label, series, style in losses:
            bottom.plot(_times(series.index), series.to_numpy(), label=label, **style)
        bottom.set_ylabel(f"log10 loss\n({LOSS_WINDOW}-epoch mean)")
        bottom.set_title(
            "network loss vs the naive inference and the best single worker (lower is better)"
        )
        bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7.5)
    _time_axis(axes[-1])
    return figure


def _losses(frame: pd.DataFrame) -> list[tuple[str, pd.Series, dict[str, Any]]] | None:
    """(label, rolling mean, line style) for the network, naive and best worker losses (the
    network's losses are log10 of the raw loss, as Allora's reputers report them)."""
    if "network_loss" not in frame or not frame["network_loss"].notna().any():
        return None
    scored = frame[frame["network_loss"].notna()]

    def smooth(column: str) -> pd.Series:
        return scored[column].astype(np.float64).rolling(LOSS_WINDOW, min_periods=1).mean()

    lines: list[tuple[str, pd.Series, dict[str, Any]]] = [
        ("network", smooth("network_loss"), {"color": "black", "linewidth": 1.5})
    ]
    if "naive_loss" in scored and scored["naive_loss"].notna().any():
        lines.append(("naive (no forecasters)", smooth("naive_loss"), {"color": "grey"}))
    workers = [c for c in scored.columns if str(c).startswith("loss:")]
    means = {c: float(scored[c].mean()) for c in workers if scored[c].notna().any()}
    if means:
        best = min(sorted(means), key=lambda c: means[c])
        name = _plain(str(best).partition(":")[2])
        lines.append((f"best worker: {name}", smooth(best), {"color": BUY, "linestyle": "--"}))
    return lines


def _range_end(lp_range: LpRange, result: BacktestResult) -> np.datetime64:
    """When a range stopped: its close, or for one never closed by an action, the first bar
    after it opened with no LP value at all (it cannot be live then), else the last bar."""
    if lp_range.closed_ms is not None:
        return _time(lp_range.closed_ms)
    index = result.equity.index
    value = result.lp["value"] if "value" in result.lp else pd.Series(dtype=np.float64)
    opened = pd.Timestamp(lp_range.opened_ms, unit="ms", tz="UTC")
    empty = value[(value.index > opened) & ~(value > 0)]
    end = empty.index[0] if len(empty) else index[-1]
    return np.datetime64(int(pd.Timestamp(end).value // 1_000_000), "ms")


def _market_actions(result: BacktestResult) -> pd.DataFrame:
    """Venue actions as plot points: time, kind, symbol (or pair), side, price (quote per base,
    executed swaps), the health factor a lending receipt reported, and whether it was refused."""
    rows = []
    for action in result.actions.to_dict("records"):
        intent = _mapping(action["intent"])
        receipt = _mapping(action["result"])
        rows.append(
            (
                _time(int(action["time_ms"])),
                str(action["kind"]),
                str(intent.get("pair") or intent.get("symbol") or ""),
                str(intent.get("side") or ""),
                _number(receipt.get("price")),
                _number(receipt.get("health_factor")),
                _refused(action["error"]),
            )
        )
    columns = ["time", "kind", "symbol", "side", "price", "health_factor", "refused"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["refused"] = frame["refused"].astype(bool)
    return frame


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _plain(text: str) -> str:
    """User text (strategy, topic, worker names) shown as is: a `$` must not start mathtext."""
    return text.replace("$", r"\$")


def _join(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def _refused(error: Any) -> bool:
    return isinstance(error, str) and bool(error)


def _figure(rows: int, height: float, **grid: Any) -> tuple[Figure, Sequence[Axes]]:
    """A figure of `rows` stacked panels sharing the time axis, in the report's style."""
    figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False, gridspec_kw=grid or None)
    return figure, list(axes[:, 0])


def _time_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(tz="UTC", minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("time (UTC)")


def _times(values: Any) -> np.ndarray:
    """UTC datetimes as naive datetime64 (matplotlib's dates are UTC by default)."""
    index = pd.DatetimeIndex(values)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.asarray(index.to_numpy(dtype="datetime64[ms]"))


def _time(ms: int) -> np.datetime64:
    return np.datetime64(int(ms), "ms")


_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
)

__all__ = [
    "equity_figure",
    "health_figure",
    "network_figure",
    "price_figure",
    "save",
]
