"""Reputer consensus as pure numpy: who the network listens to, and how close each reputer is.

Reputers report a log-loss for every value of an epoch. The consensus is the mean of those
reports weighted by adjusted stake, and a reputer's score is its closeness to the consensus. How
much each reputer is listened to (its listening coefficient) climbs the stake-weighted total score
by finite differences, so a reputer far from everyone else loses influence without being slashed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from defai.errors import NetworkError
from defai.types import FloatArray

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ReputationParams:
    """Module parameters of the consensus; defaults reproduce Allora's v0.6 reference vectors."""

    learning_rate: float = 0.05
    max_iterations: int = 10
    max_gradient_threshold: float = 0.001
    min_stake_fraction: float = 0.5
    finite_difference: float = 0.001
    epsilon_reputer: float = 0.01
    epsilon: float = 0.01
    """Stands in for the norm of an all-zero consensus vector."""

    def __post_init__(self) -> None:
        positive = {
            "learning_rate": self.learning_rate,
            "max_gradient_threshold": self.max_gradient_threshold,
            "finite_difference": self.finite_difference,
            "epsilon_reputer": self.epsilon_reputer,
            "epsilon": self.epsilon,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise NetworkError(f"ReputationParams.{name} must be finite and > 0, got {value!r}")
        if self.max_iterations < 1:
            raise NetworkError(
                f"ReputationParams.max_iterations must be >= 1, got {self.max_iterations!r}"
            )
        if not 0 < self.min_stake_fraction <= 1:
            raise NetworkError(
                "ReputationParams.min_stake_fraction must be in (0, 1], "
                f"got {self.min_stake_fraction!r}"
            )


@dataclass(frozen=True)
class Consensus:
    """Outcome of one epoch of reputer consensus."""

    scores: FloatArray
    """Closeness to consensus, at the coefficients the last iteration started from."""
    adjusted_stakes: FloatArray
    """Stakes the consensus was weighted with, at the same coefficients as the scores."""
    listening_coefficients: FloatArray
    """Coefficients after the last iteration: next epoch starts from them."""
    losses: FloatArray
    """The consensus log-loss of every value reported, at the coefficients of the scores."""


def adjusted_stakes(stakes: npt.ArrayLike, coefficients: npt.ArrayLike) -> FloatArray:
    """Ŝ = min(N a S / Σ a S, 1): listened stake relative to the average, capped at 1.

    Batched over leading axes of `coefficients`, so one call evaluates many trial coefficients.
    """
    s = np.asarray(stakes, dtype=np.float64)
    listened = np.asarray(coefficients, dtype=np.float64) * s
    total = listened.sum(axis=-1, keepdims=True)
    adjusted: FloatArray = np.minimum(s.size * listened / total, 1.0)
    return adjusted


def _consensus(
    reports: FloatArray,
    reported: BoolArray | None,
    stakes: FloatArray,
    coefficients: FloatArray,
    params: ReputationParams,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Scores, adjusted stakes and consensus losses for each row of trial `coefficients`.

    `reported` is None when every reputer reported every value (the common, faster case).
    """
    weight = adjusted_stakes(stakes, coefficients)  # (B, n_r)
    if reported is None:
        consensus = weight @ reports / weight.sum(axis=-1, keepdims=True)  # (B, n_q)
        # Trials move the consensus only a little from row 0's, so expand around it:
        # ‖L_m − C_b‖² = ‖L_m − C_0‖² − 2 (L_m − C_0)·(C_b − C_0) + ‖C_b − C_0‖²
        base = reports - consensus[0]
        shift = consensus - consensus[0]
        squared = (
            np.einsum("rq,rq->r", base, base)
            - 2 * shift @ base.T
            + np.einsum("bq,bq->b", shift, shift)[:, None]
        )
    else:  # a missing report counts as the reported value farthest from consensus
        known = np.where(reported, reports, 0.0)
        listened = weight @ reported
        # A value only unlistened reputers reported: their plain mean is all there is.
        unweighted = known.sum(axis=0) / reported.sum(axis=0)
        consensus = np.where(
            listened > 0, weight @ known / np.where(listened > 0, listened, 1.0), unweighted
        )
        distance = np.where(reported, np.abs(reports - consensus[:, None, :]), -np.inf)
        farthest = np.take_along_axis(
            np.broadcast_to(reports, distance.shape), distance.argmax(axis=1)[:, None, :], axis=1
        )
        gaps = np.where(reported, reports, farthest) - consensus[:, None, :]
        squared = np.einsum("brq,brq->br", gaps, gaps)
    gap = np.sqrt(np.maximum(squared, 0.0))
    norm = np.sqrt(np.einsum("bq,bq->b", consensus, consensus))[:, None]
    norm = np.where(norm == 0, params.epsilon, norm)
    return 1 / (gap / norm + params.epsilon_reputer), weight, consensus


def _listening_step(
    before: FloatArray, after: FloatArray, stakes: FloatArray, min_fraction: float
) -> FloatArray:
    """Pull a step back so that at least `min_fraction` of the stake is still listened to.

    Allora's pull-back assumes the start met the floor. When it did not (the reputer holding
    most stake was unlistened in an epoch others missed), interpolating toward the floor would
    extrapolate coefficients outside [0, 1]: then a step that raises the listened fraction is
    kept, and one that lowers it is refused.
    """
    total = float(stakes.sum())
    fraction_before, fraction_after = float(before @ stakes) / total, float(after @ stakes) / total
    if fraction_after >= min_fraction:
        return after
    if fraction_after == fraction_before:
        return before
    if fraction_before < min_fraction:
        return after if fraction_after > fraction_before else before
    pull = (min_fraction - fraction_before) / (fraction_after - fraction_before)
    return before + (after - before) * pull


def reputer_consensus(
    losses: npt.ArrayLike,
    stakes: npt.ArrayLike,
    listening_coefficients: npt.ArrayLike,
    params: ReputationParams,
) -> Consensus:
    """Consensus of reputers' log-loss vectors (n_r, n_q) with stakes and coefficients (n_r,)."""
    reports = np.asarray(losses, dtype=np.float64)
    s = np.asarray(stakes, dtype=np.float64)
    a = np.asarray(listening_coefficients, dtype=np.float64)
    if reports.ndim != 2 or s.shape != (reports.shape[0],) or a.shape != s.shape:
        raise NetworkError(
            f"reputer losses {reports.shape}, stakes {s.shape} and listening coefficients "
            f"{a.shape} must be (n_r, n_q), (n_r,) and (n_r,)"
        )
    if reports.shape[0] == 0 or not (s > 0).all() or not np.isfinite(s).all():
        raise NetworkError("reputer consensus needs at least one reputer, all with stake > 0")
    if not ((a >= 0) & (a <= 1)).all() or not (a > 0).any():
        raise NetworkError("listening coefficients must be in [0, 1], and not all 0")
    reported = ~np.isnan(reports)
    if not reported.any(axis=0).all():
        raise NetworkError("every value needs a loss from at least one reputer")
    partial = None if reported.all() else reported
    rate, h = params.learning_rate, params.finite_difference
    nudge = np.vstack([np.zeros_like(a), np.eye(a.size)])  # row 0: as is; row l: a_l nudged
    for _ in range(params.max_iterations):
        step = np.where(a == 1.0, -h, h)  # a coefficient at 1 can only be nudged down
        scores, weight, consensus = _consensus(reports, partial, s, a + nudge * step, params)
        listened = scores @ s
        gradient = (1 - listened[0] / listened[1:]) / step
        climbed = np.minimum(np.maximum(a + rate * gradient, 0.0), 1.0)
        moved = _listening_step(a, climbed, s, params.min_stake_fraction)
        largest_move = np.abs(moved - a).max()
        a = moved
        if largest_move / rate < params.max_gradient_threshold:
            break
    return Consensus(
        scores=scores[0], adjusted_stakes=weight[0], listening_coefficients=a, losses=consensus[0]
    )
