"""Parameter sweeps and walk-forward analysis over a local process pool.

`grid` spells out a cartesian product of strategy parameters; `sweep` backtests a strategy once
per parameter set and returns one row each (parameters, metrics, trade hash); `walk_forward`
slides train/test windows over the history, picks the best parameters on each train window and
runs them on the test window that follows, and chains the test windows' equity into one
out-of-sample curve.

Determinism: a row depends only on the feed, the strategy with its parameters and the backtest
options, never on the process count or on which worker ran it; rows come back in grid order.

Processes: `processes=1` runs everything in this process. More use a `ProcessPoolExecutor`
started by multiprocessing's "forkserver" method ("spawn" where there is none). Measured on
this project (2 busy cores): a spawned worker re-imports defai, ccxt and LangChain before its
first backtest (about 7 s of CPU each), so a 2-worker "spawn" pool took 36 s to answer, every
time; "fork" answered in 0.1 s but copies whatever threads and locks the caller holds (test
runners, loggers, clients), which can deadlock a child. A fork server is a clean
single-threaded process that imports defai once per session (14 s the first time there) and
forks every worker from there: 0.3 s per pool after that. The feed reaches each worker once, as
the pool's initializer argument (a 365-day synthetic feed pickles to about 1.2 MB in 5 ms, a
4-year hourly CSV feed to 1.6 MB in under 1 ms: no need to rebuild it from a recipe). Scripts
that call these functions with processes > 1 need the usual `if __name__ == "__main__":` guard.

The embedded network (network="local", the default) is the same for every parameter set: it is
recorded once in the parent, up to the last tick any run needs, into `cache_dir` (a temporary
folder when none is given); each run then loads the recording from disk and replays it at its
own clock, instead of running the network's epochs again.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import pickle
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from defai.agent.policy import Strategy
from defai.backtest.engine import Backtest, embedded_topics
from defai.backtest.result import curve_metrics
from defai.backtest.tape import NetworkTape
from defai.errors import ConfigError, DefaiError
from defai.market.feed import Feed
from defai.market.view import SimClock
from defai.network.local import Topic
from defai.plugins import STRATEGIES_GROUP, TOOLS_GROUP, load_object, resolve
from defai.types import timeframe_ms

METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "round_trips",
    "win_rate",
    "profit_factor",
    "exposure",
    "time_in_market",
    "fees",
    "turnover",
    "end_equity",
    "liquidations",
)
"""The metrics a sweep row carries (all of `BacktestResult.metrics` that compare runs)."""
LOWER_IS_BETTER = frozenset({"max_drawdown", "fees", "turnover", "liquidations"})
"""Metrics `walk_forward` minimises by default; every other one is maximised."""

StrategyLike = Strategy | str | type


# ---------------------------------------------------------------------------------- the grid


def grid(**values: Any) -> list[dict[str, Any]]:
    """Every combination of the given parameter values, as one dict each.

    `grid(a=(1, 2), b=("x", "y"))` -> `[{a: 1, b: "x"}, {a: 1, b: "y"}, {a: 2, b: "x"},
    {a: 2, b: "y"}]`: keyword order, the last keyword varying fastest, each value list in the
    order given. A value that is not a list, tuple or range (a string, a number, None) is one
    value. No keywords: one empty parameter set (the strategy as given).
    """
    axes: list[list[Any]] = []
    for name, given in values.items():
        axis = list(given) if isinstance(given, list | tuple | range) else [given]
        if not axis:
            raise ConfigError(f"grid: no values for {name!r}")
        axes.append(axis)
    return [dict(zip(values, combo, strict=True)) for combo in itertools.product(*axes)]


# ---------------------------------------------------------------------------------- sweep


def sweep(
    strategy: StrategyLike,
    feed: Feed,
    grid: Iterable[Mapping[str, Any]],
    *,
    processes: int = 1,
    **backtest_kwargs: Any,
) -> pd.DataFrame:
    """Backtest `strategy` once per parameter set of `grid`; one row each, in grid order.

    `strategy`: a strategy instance (a dataclass: its fields are the parameters), a strategy
    class (built with its defaults) or a plugin name / 'module:attr' spec. Each parameter set is
    applied with `dataclasses.replace(strategy, **params)`; a name the strategy has no field for
    raises ConfigError before anything runs. A value the strategy rejects, or a run that fails
    with a defai error, does not stop the sweep: that row's `error` holds the message and its
    metrics are NaN. `backtest_kwargs` go to every `Backtest` (start, end, capital, timeframe,
    network, cache_dir, exchange, limits, warmup, window; not journal or policy).

    Columns: the parameters, then `METRICS`, `trade_hash`, `bars`, `elapsed_s` (seconds the run
    took, the only column that changes between runs) and `error` (None when the row ran).
    Everything but `elapsed_s` is the same for any `processes`.
    """
    base = as_strategy(strategy)
    params = [dict(p) for p in grid]
    check_params(base, params)
    _check_kwargs(backtest_kwargs)
    _check_processes(processes)
    with _network_cache(backtest_kwargs) as kwargs:
        tasks = [_task(base, p, feed, kwargs, None) for p in params]
        _record_network(feed, tasks, kwargs)
        results = _run_tasks(tasks, feed, processes, base)
    return _frame(params, results)


# ---------------------------------------------------------------------------------- walk-forward


@dataclass(frozen=True)
class WalkForwardResult:
    """What `walk_forward` found: per split, the chosen parameters and how they did."""

    splits: pd.DataFrame
    """One row per split: split, train_start, train_end, test_start, test_end (first and last
    ticks, UTC), the chosen parameters, `train_<metric>`, the test window's metrics as
    `test_<name>`, test_trade_hash, test_bars and error."""
    equity: pd.Series
    """The out-of-sample equity: each test window's equity scaled by the previous window's
    closing equity over the starting capital, so the curve compounds across windows."""
    train: pd.DataFrame
    """Every train-window sweep row, with its `split` number first."""
    metric: str
    timeframe: str = "1h"
    capital: float = 10_000.0
    metrics: Mapping[str, float] = field(init=False)
    """Return, CAGR, Sharpe, Sortino and drawdown of the out-of-sample curve."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", curve_metrics(self.equity, self.timeframe))


def walk_forward(
    strategy: StrategyLike,
    feed: Feed,
    grid: Iterable[Mapping[str, Any]],
    *,
    train: str | pd.Timedelta,
    test: str | pd.Timedelta,
    step: str | pd.Timedelta | None = None,
    anchored: bool = False,
    metric: str = "sharpe",
    maximize: bool | None = None,
    processes: int = 1,
    **backtest_kwargs: Any,
) -> WalkForwardResult:
    """Walk-forward optimisation: fit on a train window, judge on the unseen window after it.

    Splits are rolling by default: split k trains on `[s + k*step, s + k*step + train)` and tests
    on the `test` that follows, where `s` is the backtest's first tick (the `start` option, or
    the feed's start plus `warmup` candles) and `step` defaults to `test`, so the test windows
    tile the rest of the history back to back. `anchored=True` keeps every train window starting
    at `s` (it grows by `step` each split). The last test window is cut at the backtest's end;
    splits stop when no test tick is left. `step` must be at least `test` (overlapping test
    windows would count the same hours twice in the out-of-sample curve).

    On each train window every parameter set of `grid` is backtested (as in `sweep`); the best
    by `metric` wins (maximised, except for `LOWER_IS_BETTER` metrics unless `maximize` says;
    NaN and failed rows rank last; ties go to the earlier grid row) and is run on the test
    window with a fresh `capital`. A window's indicators read the candles before it, so no
    warmup is lost at its start. All train runs of all splits form one batch for the pool,
    then all test runs another; the network is recorded once up to the last test tick.
    """
    base = as_strategy(strategy)
    params = [dict(p) for p in grid]
    if not params:
        raise ConfigError("walk_forward: the grid is empty")
    check_params(base, params)
    _check_kwargs(backtest_kwargs)
    _check_processes(processes)
    if metric not in METRICS:
        raise ConfigError(f"walk_forward: unknown metric {metric!r}; one of {list(METRICS)}")
    larger = (metric not in LOWER_IS_BETTER) if maximize is None else maximize
    timeframe = str(backtest_kwargs.get("timeframe", "1h"))
    capital = float(backtest_kwargs.get("capital", 10_000.0))
    first, last = Backtest(base, feed, **backtest_kwargs).span()
    windows = splits(first, last, train, test, step, anchored, timeframe)
    span_kwargs = {k: v for k, v in backtest_kwargs.items() if k not in ("start", "end")}
    with _network_cache(span_kwargs) as kwargs:
        train_tasks = [
            _task(base, p, feed, {**kwargs, "start": a, "end": b}, last)
            for (a, b, _, _) in windows
            for p in params
        ]
        _record_network(feed, train_tasks, kwargs)
        train_results = _run_tasks(train_tasks, feed, processes, base)
        n = len(params)
        chosen = [
            best_row(train_results[i * n : (i + 1) * n], metric, larger)
            for i in range(len(windows))
        ]
        test_tasks = [
            _task(base, params[c], feed, {**kwargs, "start": a, "end": b}, last, True)
            for c, (_, _, a, b) in zip(chosen, windows, strict=True)
            if c is not None
        ]
        _record_network(feed, test_tasks, kwargs)
        test_results = iter(_run_tasks(test_tasks, feed, processes, base))
    rows, curves = [], []
    train_frames = []
    for k, (window, pick) in enumerate(zip(windows, chosen, strict=True)):
        block = train_results[k * n : (k + 1) * n]
        frame = _frame(params, block)
        frame.insert(0, "split", k)
        train_frames.append(frame)
        result = next(test_results) if pick is not None else None
        rows.append(_split_row(k, window, params, pick, block, result, metric))
        if result is not None and result.error is None and result.equity is not None:
            curves.append(result.equity)
    return WalkForwardResult(
        splits=_with_none(pd.DataFrame(rows), rows, ("test_trade_hash", "error")),
        equity=stitch(curves, capital),
        train=pd.concat(train_frames, ignore_index=True),
        metric=metric,
        timeframe=timeframe,
        capital=capital,
    )


def splits(
    first: int,
    last: int,
    train: str | pd.Timedelta,
    test: str | pd.Timedelta,
    step: str | pd.Timedelta | None = None,
    anchored: bool = False,
    timeframe: str = "1h",
) -> list[tuple[int, int, int, int]]:
    """(train first tick, train last tick, test first tick, test last tick), epoch ms, for the
    ticks `first`..`last` (inclusive, on `timeframe` closes); see `walk_forward`."""
    tick = timeframe_ms(timeframe)
    train_ms, test_ms = _duration(train, "train"), _duration(test, "test")
    step_ms = test_ms if step is None else _duration(step, "step")
    for name, value in (("train", train_ms), ("test", test_ms), ("step", step_ms)):
        if value % tick:
            raise ConfigError(f"walk_forward: {name} must be a whole number of {timeframe} ticks")
    if step_ms < test_ms:
        raise ConfigError(
            "walk_forward: step must be >= test (overlapping test windows would count the same "
            "ticks twice in the out-of-sample curve)"
        )
    windows = []
    offset = 0
    while first + offset + train_ms <= last:
        train_start = first if anchored else first + offset
        test_start = first + offset + train_ms
        windows.append(
            (train_start, test_start - tick, test_start, min(test_start + test_ms - tick, last))
        )
        offset += step_ms
    if not windows:
        raise ConfigError(
            f"walk_forward: {pd.Timedelta(train_ms, unit='ms')} of training leaves no test tick "
            f"between {pd.Timestamp(first, unit='ms', tz='UTC')} and "
            f"{pd.Timestamp(last, unit='ms', tz='UTC')}"
        )
    return windows


def best_row(results: Sequence[RunResult], metric: str, maximize: bool = True) -> int | None:
    """Index of the best row by `metric`: NaN and failed rows last, ties to the earliest row;
    None when every row failed."""
    best, best_value = None, -math.inf
    for i, r in enumerate(results):
        if r.error is not None:
            continue
        value = r.metrics.get(metric, math.nan)
        score = -math.inf if math.isnan(value) else (value if maximize else -value)
        if best is None or score > best_value:
            best, best_value = i, score
    return best


def stitch(curves: Sequence[pd.Series], capital: float) -> pd.Series:
    """Chain equity curves that each started from `capital`: window k is scaled by the closing
    equity of window k-1 (already scaled) over `capital`, as if its money had been carried on."""
    pieces, scale = [], 1.0
    for curve in curves:
        if not len(curve):
            continue
        scaled = curve * scale
        pieces.append(scaled)
        scale = float(scaled.iloc[-1]) / capital
    if not pieces:
        return pd.Series([], dtype=np.float64, name="equity", index=pd.DatetimeIndex([], tz="UTC"))
    stitched: pd.Series = pd.concat(pieces).rename("equity")
    return stitched


# ---------------------------------------------------------------------------------- strategies


def as_strategy(strategy: StrategyLike) -> Strategy:
    """A strategy instance from an instance, a class (its defaults) or a plugin name/spec."""
    if isinstance(strategy, str):
        strategy = resolve(STRATEGIES_GROUP, strategy)
    if isinstance(strategy, type):
        strategy = strategy()
    if not dataclasses.is_dataclass(strategy):
        raise ConfigError(
            f"{type(strategy).__name__} is not a dataclass: a sweep sets a strategy's "
            "parameters with dataclasses.replace"
        )
    return strategy  # type: ignore[return-value]


def parameters(strategy: Strategy) -> list[str]:
    """The names a grid may set: the strategy's init fields."""
    return [f.name for f in dataclasses.fields(strategy) if f.init]  # type: ignore[arg-type]


def check_params(strategy: Strategy, params: Sequence[Mapping[str, Any]]) -> None:
    """ConfigError naming every grid key the strategy has no field for."""
    known = parameters(strategy)
    unknown = sorted({k for p in params for k in p} - set(known))
    if unknown:
        raise ConfigError(
            f"{type(strategy).__name__} has no parameter(s) {unknown}; its parameters are {known}"
        )


# ---------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class RunResult:
    """One backtest's outcome as a worker sends it back (small: no frames but the equity)."""

    metrics: Mapping[str, float]
    trade_hash: str | None
    bars: int
    elapsed_s: float
    error: str | None = None
    equity: pd.Series | None = None


@dataclass(frozen=True)
class _Task:
    strategy: str  # 'module:attr' or 'file.py:attr' the worker loads the class from
    fields: Mapping[str, Any]  # the class's init arguments; None when `error` is set
    kwargs: Mapping[str, Any]
    tape_until: int | None  # replay the network recorded up to here (None: engine's choice)
    error: str | None = None
    keep_equity: bool = False


def _task(
    base: Strategy,
    params: Mapping[str, Any],
    feed: Feed,
    kwargs: Mapping[str, Any],
    until: int | None,
    keep_equity: bool = False,
) -> _Task:
    try:
        strategy = dataclasses.replace(base, **params)  # type: ignore[type-var]
    except Exception as exc:  # the strategy's own validation, reported on its row
        return _Task(_class_ref(base), {}, kwargs, None, error=f"{type(exc).__name__}: {exc}")
    init = {name: getattr(strategy, name) for name in parameters(strategy)}
    tape = None
    if kwargs.get("network", "local") == "local" and _topics(strategy) is not None:
        try:
            tape = until if until is not None else Backtest(strategy, feed, **kwargs).span()[1]
        except DefaiError as exc:
            return _Task(_class_ref(base), {}, kwargs, None, error=f"{type(exc).__name__}: {exc}")
    return _Task(_class_ref(base), init, kwargs, tape, keep_equity=keep_equity)


def _class_ref(strategy: Strategy) -> str:
    """Where a worker finds the strategy's class: its module, or the file a plugin came from."""
    cls = type(strategy)
    module = cls.__module__
    if _importable(module):
        return f"{module}:{cls.__qualname__}"
    source = getattr(sys.modules.get(module), "__file__", None)
    if source is None:
        raise ConfigError(f"{cls.__qualname__}: cannot find the module a worker would load it from")
    return f"{source}:{cls.__qualname__}"


def _importable(module: str) -> bool:
    """Whether a fresh process finds `module` by name (a plugin loaded from a file is only in
    this process's sys.modules, under a made-up name)."""
    if module == "__main__":
        return False
    top = module.partition(".")[0]
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        try:
            if find is not None and find(top, None) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def _topics(strategy: Strategy) -> list[Topic]:
    """The embedded topics the engine will record (none when it lacks one: the run then fails
    with the engine's own error)."""
    try:
        return embedded_topics(strategy)
    except ConfigError:
        return []


def _record_network(feed: Feed, tasks: Sequence[_Task], kwargs: Mapping[str, Any]) -> None:
    """Record, in this process, every topic the tasks will replay, into the cache folder."""
    cache = kwargs.get("cache_dir")
    done: set[tuple[str, int]] = set()
    for task in tasks:
        if task.tape_until is None:
            continue
        strategy = load_object(task.strategy)(**task.fields)
        topics = [t for t in _topics(strategy) if (t.fingerprint(), task.tape_until) not in done]
        if topics:
            NetworkTape.record(topics, feed, task.tape_until, SimClock(0), cache)
            done.update((t.fingerprint(), task.tape_until) for t in topics)


def _run(task: _Task, feed: Feed) -> RunResult:
    if task.error is not None:
        return RunResult({}, None, 0, 0.0, task.error)
    strategy = load_object(task.strategy)(**task.fields)
    kwargs = dict(task.kwargs)
    try:
        if task.tape_until is not None:
            kwargs["network_until"] = task.tape_until
        result = Backtest(strategy, feed, **kwargs).run()
    except DefaiError as exc:
        return RunResult({}, None, 0, 0.0, f"{type(exc).__name__}: {exc}")
    return RunResult(
        dict(result.metrics),
        result.trade_hash,
        result.bars,
        result.elapsed_s,
        None,
        result.equity if task.keep_equity else None,
    )


_WORKER_FEED: Feed | None = None  # set once per worker process by the pool's initializer


def _init_worker(feed: Feed) -> None:
    global _WORKER_FEED
    _WORKER_FEED = feed


def _run_in_worker(task: _Task) -> RunResult:
    assert _WORKER_FEED is not None, "worker started without its feed"
    return _run(task, _WORKER_FEED)


def _run_tasks(
    tasks: Sequence[_Task], feed: Feed, processes: int, base: Strategy
) -> list[RunResult]:
    """Each task's result, in task order, run here (processes=1) or by a pool."""
    _check_processes(processes)
    runnable = sum(t.error is None for t in tasks)
    if processes == 1 or runnable <= 1:
        return [_run(t, feed) for t in tasks]
    try:
        pickle.dumps(feed)
    except Exception as exc:
        raise ConfigError(
            f"{type(feed).__name__} cannot be sent to worker processes ({exc}); use processes=1"
        ) from None
    with _pool(min(processes, runnable), feed, base) as pool:
        return list(pool.map(_run_in_worker, tasks, chunksize=1))


@contextmanager
def _pool(workers: int, feed: Feed, base: Strategy) -> Iterator[Executor]:
    methods = get_all_start_methods()
    context = get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        # What every worker imports, once, in the server (only read when the server starts).
        modules = ["defai.backtest.sweep", type(base).__module__]
        modules += sorted({ep.module for ep in entry_points(group=TOOLS_GROUP)})
        preload = [name for name in modules if name != "__main__"]
        context.set_forkserver_preload(preload)  # type: ignore[attr-defined]
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(feed,)
    ) as pool:
        yield pool


@contextmanager
def _network_cache(kwargs: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The backtest options with a cache folder for the network (a temporary one if none)."""
    out = dict(kwargs)
    if out.get("network", "local") != "local" or out.get("cache_dir") is not None:
        if out.get("cache_dir") is not None:
            out["cache_dir"] = Path(out["cache_dir"])
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="defai-sweep-") as folder:
        out["cache_dir"] = Path(folder)
        yield out


def _check_processes(processes: int) -> None:
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ConfigError(f"processes must be a positive int, got {processes!r}")


def _check_kwargs(kwargs: Mapping[str, Any]) -> None:
    fields = {f.name for f in dataclasses.fields(Backtest)} - {"strategy", "feed"}
    for name in kwargs:
        if name not in fields:
            raise ConfigError(f"unknown backtest option {name!r}; options: {sorted(fields)}")
    for name in ("journal", "policy"):
        if kwargs.get(name) is not None:
            raise ConfigError(f"a sweep cannot share one {name} between its runs")
    network = kwargs.get("network", "local")
    if network is not None and not isinstance(network, str):
        raise ConfigError(
            "a sweep replays network='local' or runs with network=None; an InferenceSource "
            "object holds state each run would share"
        )


# ---------------------------------------------------------------------------------- frames


def _frame(params: Sequence[Mapping[str, Any]], results: Sequence[RunResult]) -> pd.DataFrame:
    names = list(dict.fromkeys(k for p in params for k in p))
    rows = []
    for p, r in zip(params, results, strict=True):
        row: dict[str, Any] = {k: p.get(k) for k in names}
        row.update({k: r.metrics.get(k, math.nan) for k in METRICS})
        row.update(trade_hash=r.trade_hash, bars=r.bars, elapsed_s=r.elapsed_s, error=r.error)
        rows.append(row)
    columns = [*names, *METRICS, "trade_hash", "bars", "elapsed_s", "error"]
    return _with_none(pd.DataFrame(rows, columns=columns), rows, ("trade_hash", "error"))


def _with_none(
    frame: pd.DataFrame, rows: Sequence[Mapping[str, Any]], columns: Iterable[str]
) -> pd.DataFrame:
    """Text columns keep None where a row has none (pandas would write NaN)."""
    for name in columns:
        frame[name] = pd.Series([r[name] for r in rows], index=frame.index, dtype=object)
    return frame


def _split_row(
    k: int,
    window: tuple[int, int, int, int],
    params: Sequence[Mapping[str, Any]],
    pick: int | None,
    block: Sequence[RunResult],
    result: RunResult | None,
    metric: str,
) -> dict[str, Any]:
    names = list(dict.fromkeys(n for p in params for n in p))
    stamp = [pd.Timestamp(t, unit="ms", tz="UTC") for t in window]
    row: dict[str, Any] = {
        "split": k,
        "train_start": stamp[0],
        "train_end": stamp[1],
        "test_start": stamp[2],
        "test_end": stamp[3],
    }
    row.update({n: None if pick is None else params[pick].get(n) for n in names})
    row["train_" + metric] = math.nan if pick is None else block[pick].metrics.get(metric)
    tested = result.metrics if result is not None else {}
    row.update({f"test_{name}": tested.get(name, math.nan) for name in METRICS})
    row["test_trade_hash"] = result.trade_hash if result is not None else None
    row["test_bars"] = result.bars if result is not None else 0
    if pick is None:
        row["error"] = "every parameter set failed on the train window"
    else:
        row["error"] = None if result is None else result.error
    return row


def _duration(value: str | pd.Timedelta, name: str) -> int:
    """'60d', '12h', '2w' as timeframes are written (pandas deprecates 'd'); else pandas' own."""
    if isinstance(value, str) and value[:-1].isdigit() and value[-1:] in "mhdw":
        value = pd.Timedelta(timeframe_ms(value), unit="ms")
    try:
        delta = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"walk_forward: {name}={value!r} is not a duration ({exc})") from None
    ms = int(delta / pd.Timedelta(1, unit="ms"))
    if ms <= 0:
        raise ConfigError(f"walk_forward: {name} must be positive, got {value!r}")
    return ms


__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "RunResult",
    "WalkForwardResult",
    "as_strategy",
    "best_row",
    "check_params",
    "grid",
    "parameters",
    "splits",
    "stitch",
    "sweep",
    "walk_forward",
]
