"""Reputers: they score every inference of an epoch against the ground truth, with stake.

The loss methods are pure vectorised functions returning the RAW loss of each value against the
truth; what a reputer reports is its log10 (Allora's convention: every network loss is a log10),
floored at `LOSS_FLOOR` so that an exact hit reports a finite number instead of -inf, which would
hand that worker an unbounded regret and every weight in the synthesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from defai.errors import NetworkError
from defai.types import FloatArray

LOSS_FLOOR = 1e-20
"""Smallest raw loss reported: log10 reports never go below -20 (an exact hit, in practice)."""

BCE_EPS = 1e-7
"""Predicted probabilities are clipped to [BCE_EPS, 1 - BCE_EPS]: a sure miss costs ~16.1 nats."""


class ReputerError(NetworkError):
    """A loss method or reputer is asked for something it cannot score."""


def _errors(truth: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64) - np.asarray(truth, dtype=np.float64)


def mse(truth: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    """Squared error."""
    e = _errors(truth, values)
    return e * e


def mae(truth: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    """Absolute error."""
    return np.abs(_errors(truth, values))


def huber(truth: npt.ArrayLike, values: npt.ArrayLike, delta: float = 1.0) -> FloatArray:
    """e²/2 within `delta` of the truth, delta·(|e| − delta/2) beyond: squared near, linear far."""
    if not (math.isfinite(delta) and delta > 0):
        raise ReputerError(f"huber delta must be a finite number > 0, got {delta!r}")
    a = np.abs(_errors(truth, values))
    return np.where(a <= delta, 0.5 * a * a, delta * (a - 0.5 * delta))


def logcosh(truth: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    """ln cosh(e), written as |e| + ln(1 + e^(−2|e|)) − ln 2 so it never overflows."""
    a = np.abs(_errors(truth, values))
    return a + np.log1p(np.exp(-2.0 * a)) - math.log(2.0)


def bce(truth: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    """Binary cross-entropy of predicted probabilities against a truth in [0, 1] (natural log)."""
    y = np.asarray(truth, dtype=np.float64)
    if not np.all((y >= 0.0) & (y <= 1.0)):
        raise ReputerError(f"bce scores probabilities: the truth must lie in [0, 1], got {truth!r}")
    p = np.clip(np.asarray(values, dtype=np.float64), BCE_EPS, 1.0 - BCE_EPS)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


LossMethod = Literal["mse", "mae", "huber", "logcosh", "bce"]
LossFunction = Callable[[npt.ArrayLike, npt.ArrayLike], FloatArray]

LOSS_METHODS: Mapping[str, Callable[..., FloatArray]] = {
    "mse": mse,
    "mae": mae,
    "huber": huber,
    "logcosh": logcosh,
    "bce": bce,
}


def loss_function(method: str, huber_delta: float = 1.0) -> LossFunction:
    """The raw loss `f(truth, values)` of a topic's loss method (huber bound to its delta)."""
    if method not in LOSS_METHODS:
        raise ReputerError(f"unknown loss method {method!r}; choose one of {sorted(LOSS_METHODS)}")
    if method == "huber":
        huber(0.0, 0.0, huber_delta)  # validates delta once, here, rather than every epoch

        def bound(truth: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
            return huber(truth, values, huber_delta)

        return bound
    return LOSS_METHODS[method]


def log10_loss(raw: npt.ArrayLike) -> FloatArray:
    """What a reputer reports: log10 of the raw loss, floored at LOSS_FLOOR; NaN stays NaN."""
    return np.log10(np.maximum(np.asarray(raw, dtype=np.float64), LOSS_FLOOR))


@dataclass(frozen=True)
class Reputer:
    """An honest reputer: reports log10 losses of the topic's loss method.

    `stake` is the reputer's initial stake; the network's ledger, not this object, tracks how it
    changes, so a reputer stays an immutable description.
    """

    name: str
    stake: float
    loss_method: str = "mse"
    huber_delta: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ReputerError("a reputer needs a non-empty name")
        if not (math.isfinite(self.stake) and self.stake >= 0):
            raise ReputerError(f"reputer {self.name!r}: stake must be finite and >= 0")
        loss_function(self.loss_method, self.huber_delta)

    def raw_losses(self, truth: float, values: npt.ArrayLike) -> FloatArray:
        return loss_function(self.loss_method, self.huber_delta)(truth, values)

    def report(self, truth: float, values: npt.ArrayLike) -> FloatArray:
        """log10 loss of each value against the truth; a missing (NaN) value reports NaN."""
        return log10_loss(self.raw_losses(truth, values))


@dataclass(frozen=True)
class DishonestReputer(Reputer):
    """A reputer that lies, deterministically, to test that consensus discounts it.

    mode "invert" mirrors the honest losses within their range, so the best inference looks
    worst; mode "favour" reports the inferences at positions `favoured` (indices into `values`)
    `margin` log10 units better than the best honest loss — collusion with those workers.
    """

    mode: Literal["invert", "favour"] = "invert"
    favoured: tuple[int, ...] = ()
    margin: float = 1.0

    def __post_init__(self) -> None:
        Reputer.__post_init__(self)
        if self.mode not in ("invert", "favour"):
            raise ReputerError(f"reputer {self.name!r}: unknown mode {self.mode!r}")
        if self.mode == "favour" and not self.favoured:
            raise ReputerError(f"reputer {self.name!r}: mode 'favour' needs favoured indices")

    def report(self, truth: float, values: npt.ArrayLike) -> FloatArray:
        honest = log10_loss(self.raw_losses(truth, values))
        finite = np.isfinite(honest)
        if not finite.any():
            return honest
        lo, hi = float(honest[finite].min()), float(honest[finite].max())
        if self.mode == "invert":
            return np.where(finite, lo + hi - honest, honest)
        if max(self.favoured) >= honest.size or min(self.favoured) < -honest.size:
            raise ReputerError(
                f"reputer {self.name!r} favours positions {self.favoured} "
                f"but was given {honest.size} values"
            )
        distorted = honest.copy()
        distorted[list(self.favoured)] = lo - self.margin
        return distorted
