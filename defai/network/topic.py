"""What the network predicts: a topic's target, horizon and cadence, and its ground truth.

Every target is a function of one sum over the horizon of a per-candle signal: the log-return
(log-return and price targets) or the squared log-return (volatility). `horizon_signal` and
`target_from_horizon_sum` state that once; the ground truth and every built-in worker use them,
so a worker's forecast and the truth it is scored against mean the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from defai.errors import DataError, NetworkError
from defai.network.reputers import LOSS_METHODS, LossMethod
from defai.types import FloatArray, timeframe_ms

Target = Literal["log_return", "volatility", "price"]
TARGETS: tuple[Target, ...] = get_args(Target)


class TopicError(NetworkError):
    """A topic is specified with a field out of range, or its ground truth asked of bad input."""


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """One question the network answers every `epoch_length` candles.

    At epoch time t (a candle close), workers see the last `window` candles closed at or before
    t and predict `target` over the next `horizon` candles: the truth is known `horizon` candles
    later. Keyword-only, so synthesis parameters (p, c, alpha, ...) can join without breaking
    callers; `huber_delta` is the huber loss's delta in the target's units.
    """

    name: str
    symbol: str
    target: Target
    timeframe: str = "1h"
    horizon: int = 1
    epoch_length: int = 1
    window: int = 256
    loss_method: LossMethod = "mse"
    huber_delta: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TopicError("a topic needs a non-empty name")
        where = f"topic {self.name!r}"
        if not isinstance(self.symbol, str) or not self.symbol:
            raise TopicError(f"{where}: symbol must be a non-empty string such as 'ETH/USDT'")
        if self.target not in TARGETS:
            raise TopicError(f"{where}: unknown target {self.target!r}; choose one of {TARGETS}")
        try:
            timeframe_ms(self.timeframe)
        except DataError as exc:
            raise TopicError(f"{where}: {exc}") from None
        for field in ("horizon", "epoch_length"):
            if not _positive_int(getattr(self, field)):
                raise TopicError(
                    f"{where}: {field} counts candles and must be an integer >= 1, "
                    f"got {getattr(self, field)!r}"
                )
        if not _positive_int(self.window) or self.window < self.horizon + 1:
            raise TopicError(
                f"{where}: window must be an integer >= horizon + 1 = {self.horizon + 1} "
                f"candles, got {self.window!r}"
            )
        if self.loss_method not in LOSS_METHODS:
            raise TopicError(
                f"{where}: unknown loss_method {self.loss_method!r}; "
                f"choose one of {sorted(LOSS_METHODS)}"
            )
        if self.loss_method == "bce":
            raise TopicError(
                f"{where}: loss_method 'bce' scores probabilities in (0, 1); "
                f"a {self.target} target is not one"
            )
        if not (isinstance(self.huber_delta, int | float) and math.isfinite(self.huber_delta)):
            raise TopicError(f"{where}: huber_delta must be a finite number")
        if self.huber_delta <= 0:
            raise TopicError(f"{where}: huber_delta must be > 0, got {self.huber_delta!r}")

    @property
    def period_ms(self) -> int:
        return timeframe_ms(self.timeframe)

    @property
    def epoch_ms(self) -> int:
        return self.epoch_length * self.period_ms

    @property
    def horizon_ms(self) -> int:
        """Ground-truth lag: how long after an epoch its truth is known."""
        return self.horizon * self.period_ms


def log_returns(close: npt.ArrayLike) -> FloatArray:
    """One-candle log-returns: element i is ln(close[i+1] / close[i])."""
    return np.diff(np.log(np.asarray(close, dtype=np.float64)))


def horizon_signal(returns: FloatArray, target: Target) -> FloatArray:
    """The per-candle quantity whose sum over the horizon determines the target."""
    return returns * returns if target == "volatility" else returns


def target_from_horizon_sum(
    total: FloatArray, last_close: FloatArray, target: Target
) -> FloatArray:
    """The target value implied by a (predicted) horizon sum of `horizon_signal`.

    A predicted sum of squared returns below zero (possible from a linear model) means no
    variance: volatility 0.
    """
    if target == "log_return":
        return total
    if target == "price":
        return last_close * np.exp(total)
    return np.sqrt(np.maximum(total, 0.0))


def ground_truth(close_t: float, closes_ahead: npt.ArrayLike, topic: TopicSpec) -> float:
    """The realised target of the epoch whose last visible close is `close_t`.

    `closes_ahead` are the closes of the `horizon` candles in (t, t + horizon]. log_return is
    ln(close[t+h] / close[t]); price is close[t+h]; volatility is the realised volatility of the
    horizon, sqrt(sum of squared one-candle log-returns) — the horizon's own, not annualised and
    not demeaned.
    """
    ahead = np.asarray(closes_ahead, dtype=np.float64)
    if ahead.shape != (topic.horizon,):
        raise TopicError(
            f"topic {topic.name!r}: ground truth needs exactly {topic.horizon} closes after t, "
            f"got shape {ahead.shape}"
        )
    if not (math.isfinite(close_t) and close_t > 0 and np.all(np.isfinite(ahead) & (ahead > 0))):
        raise DataError(
            f"topic {topic.name!r}: closes must be finite and > 0 for a ground truth, "
            f"got {close_t!r} then {ahead.tolist()}"
        )
    if topic.target == "price":
        return float(ahead[-1])
    if topic.target == "log_return":
        return math.log(ahead[-1] / close_t)
    r = log_returns(np.concatenate(([close_t], ahead)))
    return math.sqrt(float(np.sum(r * r)))


def ground_truth_series(close: npt.ArrayLike, topic: TopicSpec) -> FloatArray:
    """`ground_truth` for every index t of a close history at once; NaN for the last `horizon`.

    Element t is the truth of the epoch whose last visible candle is t.
    """
    c = np.asarray(close, dtype=np.float64)
    h = topic.horizon
    out = np.full(c.shape, np.nan)
    if c.size <= h:
        return out
    if topic.target == "price":
        out[:-h] = c[h:]
    elif topic.target == "log_return":
        out[:-h] = np.log(c[h:] / c[:-h])
    else:
        r = log_returns(c)
        out[:-h] = np.sqrt(sliding_window_view(r * r, h).sum(axis=1))
    return out
