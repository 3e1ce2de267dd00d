"""The models of the inference network: inferers (workers), loss forecasters, and plug-ins.

Every built-in is a frozen dataclass whose answer is a pure function of the window it is shown
and its own parameters. None holds state between calls — no fitted coefficients, no running
averages, no random generator — so a network restored from disk continues bit-identically and a
backtest may ask for epochs in any order.

Built-in inferers share one mechanism (`SignalWorker`): each forecasts the sum over the topic's
horizon of a per-candle signal of its window (the log-return on log-return and price topics,
the squared log-return on volatility topics), and `target_from_horizon_sum` turns that sum into
the target exactly as the ground truth defines it. Most models are linear in the signal: a kernel
built once per window length and cached, so `predict` is one dot product and `predict_history`
one `np.correlate` pass over the full history; the ridge AR fits every window from moving sums.

The network calls any worker through `safe_predict` (or `batch_predict`): whatever a model does —
raise, return NaN, a string, a negative volatility — comes back as a float or a `WorkerError`,
which means "no inference this epoch". User models plug in through `as_worker`.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter
from scipy.special import ndtri

from defai.errors import NetworkError
from defai.network.topic import (
    Target,
    TopicSpec,
    horizon_signal,
    log_returns,
    target_from_horizon_sum,
)
from defai.types import Candles, FloatArray, IntArray

BoolArray = npt.NDArray[np.bool_]


class WorkerError(NetworkError):
    """A worker or forecaster gave no usable answer this epoch; the network skips it."""


class WorkerConfigError(NetworkError):
    """A worker or forecaster cannot be built as asked (bad parameter, unusable plug-in)."""


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class Worker(Protocol):
    """An inferer: predicts the topic's target over the next `horizon` candles.

    `window` holds only candles closed at or before the epoch time.
    """

    @property
    def name(self) -> str: ...

    def predict(self, window: Candles, topic: TopicSpec) -> float: ...


@runtime_checkable
class HistoryWorker(Worker, Protocol):
    """A worker that can answer many epochs of one history at once, for backtests.

    `at[i]` is the index in `history` of the last candle visible at epoch i; the answer must
    equal `predict` on the window of the `topic.window` candles ending there (NaN where predict
    would give no inference), and must not read anything after `at[i]`.
    """

    def predict_history(self, history: Candles, at: IntArray, topic: TopicSpec) -> FloatArray: ...


@runtime_checkable
class Forecaster(Protocol):
    """Predicts each inferer's log10 loss for this epoch, before the truth is known.

    `loss_history` is (past epochs x inferers) of observed log10 losses, oldest row first, NaN
    where an inferer gave no inference; the answer has one entry per inferer, NaN for "no view".
    Rows are consecutive epochs, `epoch_length` candles apart, the last row being the latest
    epoch whose truth is known at the end of `window` (the epoch ceil(horizon / epoch_length)
    epochs back), so a forecaster can match each row with the market it was incurred in.
    """

    @property
    def name(self) -> str: ...

    def forecast_losses(
        self, window: Candles, topic: TopicSpec, loss_history: FloatArray
    ) -> FloatArray: ...


# --------------------------------------------------------------------------- the network's calls

_DOMAIN = {
    "log_return": "a finite number",
    "volatility": "a finite number >= 0",
    "price": "a finite number > 0",
}


def _in_domain(values: FloatArray, target: Target) -> BoolArray:
    ok = np.isfinite(values)
    if target == "price":
        ok &= values > 0
    elif target == "volatility":
        ok &= values >= 0
    return ok


def _name_of(obj: object) -> str:
    return str(getattr(obj, "name", type(obj).__name__))


def checked_inference(value: object, worker: str, topic: TopicSpec) -> float:
    """`value` as a float if it is a usable inference of `topic`'s target, else WorkerError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WorkerError(
            f"worker {worker!r} returned a {type(value).__name__} for topic {topic.name!r}; "
            "an inference must be a real number"
        )
    number = float(value)
    if not _in_domain(np.array([number]), topic.target)[0]:
        raise WorkerError(
            f"worker {worker!r} returned {number!r} for topic {topic.name!r}: a {topic.target} "
            f"inference must be {_DOMAIN[topic.target]}"
        )
    return number


def safe_predict(worker: Worker, window: Candles, topic: TopicSpec) -> float:
    """The worker's inference, or WorkerError if it raised or returned something unusable."""
    try:
        value: object = worker.predict(window, topic)
    except WorkerError:
        raise
    except Exception as exc:
        raise WorkerError(
            f"worker {_name_of(worker)!r} failed on topic {topic.name!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return checked_inference(value, _name_of(worker), topic)


def _epoch_indices(at: npt.ArrayLike, length: int) -> IntArray:
    idx = np.asarray(at)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise NetworkError(f"epoch indices must be a 1-D integer array, got {idx.dtype}{idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= length):
        raise NetworkError(f"epoch indices must lie in [0, {length}), got {idx.min()}..{idx.max()}")
    return idx


def _window_at(history: Candles, last: int, topic: TopicSpec) -> Candles:
    return history.slice(max(0, last - topic.window + 1), last + 1)


def batch_predict(
    worker: Worker, history: Candles, at: npt.ArrayLike, topic: TopicSpec
) -> FloatArray:
    """Inferences of `worker` at many epochs of one history; NaN where it gave none.

    Uses the worker's own vectorised `predict_history` when it has one, else `safe_predict` on
    each point-in-time window. A failing `predict_history` raises WorkerError for the batch.
    """
    idx = _epoch_indices(at, len(history))
    if isinstance(worker, HistoryWorker):
        try:
            values = np.asarray(worker.predict_history(history, idx, topic), dtype=np.float64)
        except Exception as exc:
            raise WorkerError(
                f"worker {_name_of(worker)!r}: predict_history failed on topic {topic.name!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if values.shape != idx.shape:
            raise WorkerError(
                f"worker {_name_of(worker)!r}: predict_history returned shape {values.shape} "
                f"for {idx.size} epochs"
            )
        return np.where(_in_domain(values, topic.target), values, np.nan)
    out = np.full(idx.shape, np.nan)
    for i, last in enumerate(idx):
        try:
            out[i] = safe_predict(worker, _window_at(history, int(last), topic), topic)
        except WorkerError:
            continue
    return out


# --------------------------------------------------------------------------- built-in inferers


class SignalWorker(ABC):
    """Base of the built-in inferers: forecast the horizon sum of the window's signal.

    A subclass implements `window_sums` over windows of one signal array; `predict` passes its
    own window as the whole array, `predict_history` the full history with many window starts.
    Both go through the same arithmetic, which is what makes them agree.
    """

    name: str

    def min_candles(self, topic: TopicSpec) -> int:
        """Fewest candles this model needs in its window to say anything."""
        return 2

    @abstractmethod
    def window_sums(
        self,
        signal: FloatArray,
        starts: IntArray,
        length: int,
        topic: TopicSpec,
        epoch_ms: IntArray,
    ) -> FloatArray:
        """Forecast of the sum of the next `horizon` signal values after each window.

        The windows are `signal[s : s + length]` for s in `starts`, oldest first; `epoch_ms` is
        each epoch's time (the close of its last visible candle), for models that draw from a
        seeded hash. Nothing outside a window may influence its answer.
        """

    def predict(self, window: Candles, topic: TopicSpec) -> float:
        close = window.close[-topic.window :]
        need = self.min_candles(topic)
        if close.size < need:
            raise WorkerError(
                f"worker {self.name!r} needs at least {need} candles for topic {topic.name!r}, "
                f"got {close.size}"
            )
        signal = horizon_signal(log_returns(close), topic.target)
        epoch_ms = np.array([window.ts[-1] + window.period_ms], dtype=np.int64)
        total = self.window_sums(signal, np.zeros(1, np.int64), signal.size, topic, epoch_ms)
        return float(target_from_horizon_sum(total, close[-1:], topic.target)[0])

    def predict_history(self, history: Candles, at: npt.ArrayLike, topic: TopicSpec) -> FloatArray:
        """`predict` at every epoch `at` (index of its last visible candle), vectorised.

        Nothing after `max(at)` is read; epochs with fewer than `topic.window` candles behind
        them are answered one by one through `predict`.
        """
        idx = _epoch_indices(at, len(history))
        out = np.full(idx.shape, np.nan)
        if idx.size == 0:
            return out
        size = topic.window
        full = idx >= size - 1
        if full.any() and size >= self.min_candles(topic):
            close = history.close[: int(idx.max()) + 1]
            last = idx[full]
            signal = horizon_signal(log_returns(close), topic.target)
            epoch_ms = history.ts[last] + history.period_ms
            starts = last - (size - 1)
            total = self.window_sums(signal, starts, size - 1, topic, epoch_ms)
            out[full] = target_from_horizon_sum(total, close[last], topic.target)
        for i in np.flatnonzero(~full):
            try:
                out[i] = self.predict(_window_at(history, int(idx[i]), topic), topic)
            except WorkerError:
                continue
        out[~np.isfinite(out)] = np.nan
        return out


@functools.lru_cache(maxsize=1024)
def _cached_kernel(model: LinearWorker, length: int, topic: TopicSpec) -> FloatArray:
    kernel = np.ascontiguousarray(model.kernel(length, topic), dtype=np.float64)
    kernel.setflags(write=False)
    return kernel


def _latest_first(weights: npt.ArrayLike, length: int) -> FloatArray:
    """A kernel of `length` with `weights[0]` on the newest value, `weights[1]` the one before..."""
    w = np.asarray(weights, dtype=np.float64)[:length]
    kernel = np.zeros(length)
    kernel[length - w.size :] = w[::-1]
    return kernel


def _is_variance(topic: TopicSpec) -> bool:
    return topic.target == "volatility"


def _moving_sums(values: FloatArray, span: int) -> FloatArray:
    """Element s is sum(values[s : s + span]), each summed directly (no cumulative drift)."""
    result: FloatArray = np.correlate(values, np.ones(span), mode="valid")
    return result


class LinearWorker(SignalWorker):
    """A model whose horizon sum is a fixed linear combination (`kernel`) of the window."""

    @abstractmethod
    def kernel(self, length: int, topic: TopicSpec) -> FloatArray:
        """Weights on a window of `length` signal values, oldest first."""

    def window_sums(
        self,
        signal: FloatArray,
        starts: IntArray,
        length: int,
        topic: TopicSpec,
        epoch_ms: IntArray,
    ) -> FloatArray:
        kernel = _cached_kernel(self, length, topic)
        result: FloatArray = np.correlate(signal, kernel, mode="valid")[starts]
        return result


def _check(condition: bool, model: str, message: str) -> None:
    if not condition:
        raise WorkerConfigError(f"{model}: {message}")


@dataclass(frozen=True)
class Persistence(LinearWorker):
    """The latest known truth: last close, last horizon return, last realised horizon vol.

    This is the truth of the epoch `horizon` candles ago (`lag_epochs` epochs further back if
    asked), the classic baseline every model must beat.
    """

    name: str = "persistence"
    lag_epochs: int = 0

    def __post_init__(self) -> None:
        _check(self.lag_epochs >= 0, self.name, "lag_epochs must be >= 0")

    def _lag(self, topic: TopicSpec) -> int:
        return self.lag_epochs * topic.epoch_length

    def min_candles(self, topic: TopicSpec) -> int:
        span = 0 if topic.target == "price" else topic.horizon
        return max(2, self._lag(topic) + span + 1)

    def kernel(self, length: int, topic: TopicSpec) -> FloatArray:
        lag = self._lag(topic)
        if topic.target == "price":  # close[t - lag] = close[t] * exp(-(last lag returns))
            return _latest_first(-np.ones(lag), length)
        return _latest_first(np.r_[np.zeros(lag), np.ones(topic.horizon)], length)


@dataclass(frozen=True)
class StaleCopier(Persistence):
    """Bad actor: persistence `lag_epochs` epochs out of date, every epoch."""

    name: str = "stale-copier"
    lag_epochs: int = 3


@dataclass(frozen=True)
class Momentum(LinearWorker):
    """Trend following: the mean signal of the last `lookback` candles continues over the horizon.

    On volatility topics this is the recent realised variance carried forward.
    """

    name: str = "momentum"
    lookback: int = 24

    def __post_init__(self) -> None:
        _check(self.lookback >= 1, self.name, "lookback must be >= 1")

    def kernel(self, length: int, topic: TopicSpec) -> FloatArray:
        n = min(self.lookback, length)
        return _latest_first(np.full(n, topic.horizon / n), length)


@dataclass(frozen=True)
class MeanReversion(LinearWorker):
    """Reversion toward a moving average at `speed` per candle.

    Return and price topics: log price reverts toward its `lookback`-candle moving average.
    Volatility topics: the variance of the last `recent` candles reverts toward the `lookback`
    average variance.
    """

    name: str = "mean-reversion"
    lookback: int = 48
    recent: int = 8
    speed: float = 0.05

    def __post_init__(self) -> None:
        _check(self.lookback >= 2, self.name, "lookback must be >= 2")
        _check(1 <= self.recent <= self.lookback, self.name, "recent must be in [1, lookback]")
        _check(0 < self.speed <= 1, self.name, "speed must be in (0, 1]")

    def kernel(self, length: int, topic: TopicSpec) -> FloatArray:
        h, keep = topic.horizon, 1.0 - self.speed
        if not _is_variance(topic):
            # gap = ln c_t - mean(ln c over L closes) = sum_i r[-1-i] (L-1-i)/L; it closes by
            # 1 - keep^h over the horizon.
            n = min(self.lookback, length + 1)
            gap = (n - 1 - np.arange(n - 1)) / n
            return _latest_first(-(1.0 - keep**h) * gap, length)
        n = min(self.lookback, length)
        r = min(self.recent, n)
        decay = keep * (1.0 - keep**h) / self.speed  # sum_{k=1..h} keep^k
        return _latest_first(np.full(n, (h - decay) / n), length) + _latest_first(
            np.full(r, decay / r), length
        )


@dataclass(frozen=True)
class Ewma(LinearWorker):
    """Exponentially weighted mean of the signal (RiskMetrics EWMA variance on volatility topics).

    Weights halve every `halflife` candles and are renormalised over the window.
    """

    name: str = "ewma"
    halflife: float = 12.0

    def __post_init__(self) -> None:
        _check(self.halflife > 0, self.name, "halflife must be > 0")

    def kernel(self, length: int, topic: TopicSpec) -> FloatArray:
        w = 0.5 ** (np.arange(length) / self.halflife)
        return _latest_first(topic.horizon * w / w.sum(), length)


@dataclass(frozen=True)
class Garch(LinearWorker):
    """GARCH(1,1) with FIXED alpha and beta and variance targeting on the window.

    Not fitted (an MLE per epoch would cost milliseconds): omega = (1 - alpha - beta) * the
    window's mean squared return, the recursion starts at that mean, and the h-step forecasts
    decay toward it at alpha + beta per candle. Returns are taken as zero-mean, as the realised
    volatility truth is. On return and price topics it uses the model's constant-mean equation:
    the window's mean return.
    """

    name: str = "garch"
    alpha: float = 0.08
    beta: float = 0.90

    def __post_init__(self) -> None:
        _check(self.alpha >= 0 and self.beta >= 0, self.name, "alpha and beta must be >= 0")
        _check(self.alpha + self.beta < 1, self.name, "alpha + beta must be < 1 (stationary)")

    def kernel(self, length: int, topic: TopicSpec) -> FloatArray:
        h = topic.horizon
        if not _is_variance(topic):
            return np.full(length, h / length)
        a, b = self.alpha, self.beta
        rho = a + b
        # sigma2_next = level * mean + a * sum_j b^j x[-1-j]; forecasts sum to h*mean + phi*(...)
        level = (1 - rho) * (1 - b**length) / (1 - b) + b**length
        phi = (1 - rho**h) / (1 - rho)
        uniform = np.full(length, (h - phi + phi * level) / length)
        return uniform + _latest_first(phi * a * b ** np.arange(length), length)


_DIFFUSE = 1e6  # prior variance of the Kalman state, relative to the observation noise


@dataclass(frozen=True)
class KalmanTrend(LinearWorker):
    """Kalman local-linear-trend filter on the cumulative signal (log price, cumulative variance).

    State (level, slope); noise variances are relative to a unit observation noise, so the filter
    is scale-free and linear in the data. The forecast of the horizon sum is
    level + horizon * slope - the last cumulative value.
    """

    name: str = "kalman-trend"
    level_var: float = 10.0
    slope_var: float = 0.01

    def __post_init__(self) -> None:
        _check(
            self.level_var >= 0 and self.slope_var > 0,
            self.name,
            "level_var must be >= 0 and slope_var > 0",
        )

    def kernel(self, length: int, topic: TopicSpec) -> FloatArray:
        # Observations y_0..y_n (n = length), y_t = sum of the first t signal values. The filtered
        # state is sum_t M_t K_t y_t with M_t the product of the later transitions (I - K H) F.
        n = length
        p00, p01, p11 = _DIFFUSE, 0.0, _DIFFUSE
        gains = np.empty((n + 1, 2))
        for t in range(n + 1):
            if t:  # predict: P <- F P F' + Q, F = [[1, 1], [0, 1]]
                p00, p01 = p00 + 2 * p01 + p11 + self.level_var, p01 + p11
                p11 = p11 + self.slope_var
            k0, k1 = p00 / (p00 + 1.0), p01 / (p00 + 1.0)
            gains[t] = k0, k1
            p00, p01, p11 = (1 - k0) * p00, (1 - k0) * p01, p11 - k1 * p01
        # Backward pass: row vector u = [1, h] @ M, then u <- u (I - K H) F.
        u0, u1 = 1.0, float(topic.horizon)
        weights_y = np.empty(n + 1)
        for t in range(n, -1, -1):
            k0, k1 = gains[t]
            weights_y[t] = u0 * k0 + u1 * k1
            a = u0 * (1 - k0) - u1 * k1  # first entry of u (I - K H)
            u0, u1 = a, a + u1  # times F
        weights_y[n] -= 1.0
        # y_t contains signal value i for every t > i.
        return np.cumsum(weights_y[:0:-1])[::-1]


@dataclass(frozen=True)
class RidgeAR(SignalWorker):
    """AR(order) regression of the demeaned signal on its own lags, fitted on each window.

    Closed-form ridge: the penalty is `ridge` times the mean diagonal of the Gram matrix, so it
    is scale-free and the same default suits returns and squared returns. The fit is iterated
    `horizon` steps ahead; on volatility topics this is an ARCH(order) regression.
    """

    name: str = "ridge-ar"
    order: int = 4
    ridge: float = 0.1

    def __post_init__(self) -> None:
        _check(self.order >= 1, self.name, "order must be >= 1")
        _check(self.ridge > 0, self.name, "ridge must be > 0")

    def min_candles(self, topic: TopicSpec) -> int:
        return 2 * self.order + 2

    def window_sums(
        self,
        signal: FloatArray,
        starts: IntArray,
        length: int,
        topic: TopicSpec,
        epoch_ms: IntArray,
    ) -> FloatArray:
        # Each window regresses column p (z[t+p]) on columns 0..p-1 (its lags) over n rows, z
        # the signal demeaned by the window's mean. The cross-products of the columns come from
        # moving sums of lagged products of the raw signal, corrected for the mean; arrays are
        # laid out (column, column, window) so every step runs over contiguous memory.
        p = self.order
        n = length - p
        mean = _moving_sums(signal, length)[starts] / length
        columns = _moving_sums(signal, n)[np.arange(p + 1)[:, None] + starts]
        products = np.empty((p + 1, p + 1, starts.size))
        for lag in range(p + 1):
            lagged = _moving_sums(signal[: signal.size - lag] * signal[lag:], n)
            for i in range(p + 1 - lag):
                products[i, i + lag] = products[i + lag, i] = lagged[starts + i]
        products -= mean * (columns[:, None] + columns[None, :]) - n * mean * mean
        gram, moment = products[:p, :p].transpose(2, 0, 1), products[:p, p].T
        penalty = self.ridge * np.trace(products[:p, :p]) / p + np.finfo(np.float64).tiny
        coef = np.linalg.solve(gram + penalty[:, None, None] * np.eye(p), moment[..., None])[..., 0]
        state = signal[starts[:, None] + np.arange(length - p, length)] - mean[:, None]
        total = np.zeros(starts.size)
        for _ in range(topic.horizon):
            step = np.einsum("ij,ij->i", state, coef)
            total += step
            state = np.concatenate([state[:, 1:], step[:, None]], axis=1)
        result: FloatArray = topic.horizon * mean + total
        return result


def _splitmix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A counter-based hash: equal inputs give equal bits, on any machine, in any order."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class RandomGuesser(SignalWorker):
    """Bad actor: a wide random guess at the window's scale, reproducible without state.

    The draw is a standard normal from a hash of (seed, topic name, epoch time), so a restarted
    network or a backtest replays exactly the same guesses. Returns: width * z standard
    deviations of the horizon return; volatility: the horizon variance times exp(width * z).
    """

    name: str = "random-guesser"
    seed: int = 0
    width: float = 3.0

    def __post_init__(self) -> None:
        _check(isinstance(self.seed, int), self.name, "seed must be an integer")
        _check(self.width > 0, self.name, "width must be > 0")

    def normals(self, topic: TopicSpec, epoch_ms: IntArray) -> FloatArray:
        key = np.array([self.seed % 2**64], dtype=np.uint64)
        key = _splitmix64(key ^ np.uint64(zlib.crc32(topic.name.encode())))
        bits = _splitmix64(key ^ epoch_ms.astype(np.uint64))
        uniform = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
        result: FloatArray = ndtri(uniform)
        return result

    def window_sums(
        self,
        signal: FloatArray,
        starts: IntArray,
        length: int,
        topic: TopicSpec,
        epoch_ms: IntArray,
    ) -> FloatArray:
        z = self.normals(topic, epoch_ms)
        h = topic.horizon
        result: FloatArray
        if _is_variance(topic):
            variance = _moving_sums(signal, length)[starts] / length
            result = h * variance * np.exp(self.width * z)
        else:
            variance = _moving_sums(signal * signal, length)[starts] / length
            result = self.width * z * np.sqrt(h * variance)
        return result


@dataclass(frozen=True)
class Adversarial(SignalWorker):
    """Bad actor: a good model turned against the network, and biased.

    Return and price topics: the inner forecast with its sign flipped, times `factor`, pushed
    `bias` standard deviations of the horizon return (over the window) away from it — flipping
    alone is harmless where the inner forecast is near zero, as hourly returns' is.
    Volatility topics (a negative variance is impossible): the inner volatility times `factor`.
    """

    name: str = "adversarial"
    inner: SignalWorker = field(default_factory=Ewma)
    factor: float = 3.0
    bias: float = 1.0

    def __post_init__(self) -> None:
        _check(self.factor > 0, self.name, "factor must be > 0")
        _check(math.isfinite(self.bias), self.name, "bias must be finite")

    def min_candles(self, topic: TopicSpec) -> int:
        return self.inner.min_candles(topic)

    def window_sums(
        self,
        signal: FloatArray,
        starts: IntArray,
        length: int,
        topic: TopicSpec,
        epoch_ms: IntArray,
    ) -> FloatArray:
        inner = self.inner.window_sums(signal, starts, length, topic, epoch_ms)
        if _is_variance(topic):
            return inner * self.factor**2
        spread = np.sqrt(topic.horizon * _moving_sums(signal * signal, length)[starts] / length)
        return -self.factor * inner + self.bias * spread


def default_zoo() -> list[SignalWorker]:
    """One of each built-in model with its defaults: a network's honest workers."""
    return [
        Persistence(),
        Momentum(),
        MeanReversion(),
        Ewma(),
        Garch(),
        RidgeAR(),
        KalmanTrend(),
    ]


def bad_actors(seed: int = 0) -> list[SignalWorker]:
    """A random guesser, a stale copier and an adversary, for tests and benchmarks."""
    return [RandomGuesser(seed=seed), StaleCopier(), Adversarial()]


# --------------------------------------------------------------------------- plug-ins


class Estimator(Protocol):
    """Anything with scikit-learn's `predict(X)`: X is (rows x features), one output per row."""

    def predict(self, x: Any, /) -> Any: ...


@dataclass(frozen=True)
class LaggedLogReturns:
    """Default features for estimators: the last `lags` one-candle log-returns, oldest first."""

    lags: int

    def __call__(self, window: Candles) -> FloatArray:
        if len(window) < self.lags + 1:
            raise WorkerError(f"{self.lags} lagged returns need {self.lags + 1} candles")
        return log_returns(window.close[-(self.lags + 1) :])


@dataclass(frozen=True)
class CallableWorker:
    """A plain function as a worker: `fn(window)` or `fn(close)` returns the target's value."""

    name: str
    fn: Callable[[Any], object]
    takes: Literal["candles", "close"] = "candles"

    def predict(self, window: Candles, topic: TopicSpec) -> float:
        seen = window.tail(topic.window)
        value = self.fn(seen if self.takes == "candles" else seen.close)
        return checked_inference(value, self.name, topic)


@dataclass(frozen=True)
class EstimatorWorker:
    """An sklearn-style model as a worker: `model.predict(features(window)[None, :])[0]`.

    The model's output is the target's value itself (a log-return, a volatility or a price).
    """

    name: str
    model: Estimator
    features: Callable[[Candles], npt.ArrayLike]

    def predict(self, window: Candles, topic: TopicSpec) -> float:
        row = np.asarray(self.features(window.tail(topic.window)), dtype=np.float64).reshape(1, -1)
        out = np.asarray(self.model.predict(row))
        if out.size != 1:
            raise WorkerError(
                f"worker {self.name!r}: model.predict returned {out.size} values for one row"
            )
        return checked_inference(out.reshape(-1)[0].item(), self.name, topic)


def _callable_takes(fn: Callable[..., object]) -> Literal["candles", "close"]:
    """'candles' if fn's first parameter is annotated Candles or not at all, else 'close'."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return "candles"
    if not params:
        raise WorkerConfigError(f"{_name_of(fn)}: a worker function takes one argument")
    annotation = params[0].annotation
    if annotation is inspect.Parameter.empty or annotation is Candles or annotation == "Candles":
        return "candles"
    return "close"


def as_worker(
    obj: object,
    name: str | None = None,
    *,
    takes: Literal["candles", "close"] | None = None,
    features: Callable[[Candles], npt.ArrayLike] | None = None,
) -> Worker:
    """Wrap a user model as a Worker.

    - an object with `predict(X)` (scikit-learn style): called on one row of `features(window)`;
      by default the last `model.n_features_in_` log-returns, oldest first (`LaggedLogReturns`);
    - a callable `f(window: Candles)` or `f(close: FloatArray)`: which one is read from the first
      parameter's annotation (Candles or none -> the window, anything else -> the closes) unless
      `takes` says;
    - a Worker is returned as it is.

    Either way the model's output is the topic's target value; bad outputs become WorkerError
    through `safe_predict`.
    """
    default_name = str(getattr(obj, "__name__", type(obj).__name__))
    label = name or default_name
    if isinstance(obj, Worker) and takes is None and features is None:
        if name is not None and name != obj.name:
            raise WorkerConfigError(f"{obj.name!r} is already a worker; it cannot be renamed")
        return obj
    predict = getattr(obj, "predict", None)
    if callable(predict) and not inspect.isroutine(obj):
        if features is None:
            lags = getattr(obj, "n_features_in_", None)
            if not isinstance(lags, int) or lags < 1:
                raise WorkerConfigError(
                    f"{label}: pass features=... (the model has no n_features_in_ to default to "
                    "that many lagged log-returns)"
                )
            features = LaggedLogReturns(lags)
        return EstimatorWorker(label, obj, features)  # type: ignore[arg-type]
    if callable(obj):
        return CallableWorker(label, obj, takes or _callable_takes(obj))
    raise WorkerConfigError(
        f"cannot use a {type(obj).__name__} as a worker: pass a callable, an object with "
        "predict(X), or a Worker"
    )


# --------------------------------------------------------------------------- forecasters


def _loss_vol_exponent(topic: TopicSpec, scale: float) -> float:
    """How a raw loss grows with the size of the error: loss ~ scale ** exponent."""
    if topic.loss_method in ("mse", "logcosh"):
        return 2.0
    if topic.loss_method == "huber":
        return 2.0 if scale < topic.huber_delta else 1.0
    return 1.0


def _error_scales(
    close: FloatArray, topic: TopicSpec, epochs: int, halflife: float
) -> tuple[FloatArray, float]:
    """log10 of the expected error scale at each past epoch (oldest first) and at the coming one.

    The scale is the EWMA volatility over the horizon as known at the epoch's time (times the
    price for price topics): ex ante, so one quiet candle cannot send it toward zero. Past
    epochs are `epoch_length` candles apart, the latest being the most recent one whose truth is
    known at the window's end.
    """
    r = log_returns(close)
    decay = [1.0, -(0.5 ** (1.0 / halflife))]
    variance = lfilter([1.0], decay, r * r) / lfilter([1.0], decay, np.ones(r.size))
    h, step = topic.horizon, topic.epoch_length
    newest = close.size - 1 - step * math.ceil(h / step)
    at = np.r_[newest - step * np.arange(epochs)[::-1], close.size - 1]  # last visible close
    known = at >= 1
    scale = np.full(at.size, np.nan)
    scale[known] = np.sqrt(h * variance[at[known] - 1])
    if topic.target == "price":
        scale[known] *= close[at[known]]
    logs = np.log10(np.maximum(scale, np.finfo(np.float64).tiny))
    return logs[:-1], float(logs[-1])


@dataclass(frozen=True)
class EwmaLossForecaster:
    """EWMA of each inferer's past log10 losses, optionally conditioned on volatility.

    A loss depends on how hard the epoch was: raw mse grows as the squared error scale (the
    EWMA volatility over the horizon, `vol_halflife` candles), so the log10 loss moves by
    2 * log10 of the scale ratio. Conditioning:
    - "none": the EWMA (weights halve every `halflife` epochs);
    - "ratio": EWMA + gamma * (log10 scale now - EWMA of log10 scale when the losses were
      incurred), gamma fixed by the loss method (mse 2, mae 1, ...);
    - "regression": the same with a per-inferer slope of log-loss on log-scale, fitted by
      weighted least squares and shrunk toward gamma (`shrinkage` in log10-units squared).
    Rows beyond the window's reach are ignored when conditioning.
    """

    name: str = "loss-ewma"
    halflife: float = 8.0
    conditioning: Literal["none", "ratio", "regression"] = "ratio"
    vol_halflife: float = 12.0
    shrinkage: float = 0.01

    def __post_init__(self) -> None:
        _check(self.halflife > 0 and self.vol_halflife > 0, self.name, "halflives must be > 0")
        _check(self.shrinkage > 0, self.name, "shrinkage must be > 0")
        _check(
            self.conditioning in ("none", "ratio", "regression"),
            self.name,
            f"unknown conditioning {self.conditioning!r}",
        )

    def forecast_losses(
        self, window: Candles, topic: TopicSpec, loss_history: FloatArray
    ) -> FloatArray:
        losses = np.asarray(loss_history, dtype=np.float64)
        if losses.ndim != 2:
            raise NetworkError(f"loss_history must be (epochs x inferers), got {losses.shape}")
        epochs = losses.shape[0]
        present = np.isfinite(losses)
        past = np.zeros(epochs)
        now = 0.0
        if self.conditioning != "none":
            past, now = _error_scales(
                window.close[-topic.window :], topic, epochs, self.vol_halflife
            )
            present &= np.isfinite(past)[:, None]
        w = np.where(present, 0.5 ** (np.arange(epochs)[::-1, None] / self.halflife), 0.0)
        total = w.sum(axis=0)
        filled = np.where(present, losses, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            loss_mean = (w * filled).sum(axis=0) / total
            if self.conditioning == "none":
                result: FloatArray = loss_mean
                return result
            past_filled = np.where(np.isfinite(past), past, 0.0)[:, None]
            scale_mean = (w * past_filled).sum(axis=0) / total
            gamma = _loss_vol_exponent(topic, 10.0**now)
            slope = np.full(losses.shape[1], gamma)
            if self.conditioning == "regression":
                dz = np.where(present, past_filled - scale_mean, 0.0)
                prior = self.shrinkage * total
                slope = ((w * dz * (filled - loss_mean)).sum(axis=0) + prior * gamma) / (
                    (w * dz * dz).sum(axis=0) + prior
                )
            result = loss_mean + slope * (now - scale_mean)
        return result


def default_forecasters() -> list[EwmaLossForecaster]:
    """Three forecasters that disagree usefully: vol-scaled, plain and slower, regressed on vol."""
    return [
        EwmaLossForecaster("loss-ewma-vol", halflife=8.0, conditioning="ratio"),
        EwmaLossForecaster("loss-ewma", halflife=16.0, conditioning="none"),
        EwmaLossForecaster("loss-vol-regression", halflife=32.0, conditioning="regression"),
    ]


def safe_forecast(
    forecaster: Forecaster, window: Candles, topic: TopicSpec, loss_history: FloatArray
) -> FloatArray:
    """A forecaster's predicted log10 losses (NaN = no view), or WorkerError if unusable."""
    who = _name_of(forecaster)
    try:
        raw = forecaster.forecast_losses(window, topic, loss_history)
        out = np.asarray(raw, dtype=np.float64)
    except WorkerError:
        raise
    except Exception as exc:
        raise WorkerError(
            f"forecaster {who!r} failed on topic {topic.name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    expected = (np.shape(loss_history)[1],)
    if out.shape != expected:
        raise WorkerError(f"forecaster {who!r} returned shape {out.shape}, expected {expected}")
    if np.isinf(out).any():
        raise WorkerError(f"forecaster {who!r} returned an infinite log10 loss")
    return out
