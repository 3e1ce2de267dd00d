"""Scores, active sets and the reward split of one epoch, as pure numpy.

Workers are scored by how much the network loses without them (one-out) and, for forecasters,
also by how much they add to the naive network alone (one-in). Scores become reward fractions
through a softplus of the score over its recent spread; the topic's reward is split between the
inference, forecasting and reputation tasks by the modified entropy of each task's (smoothed)
fractions, so a task whose reward is spread over many real participants earns more. The score
EMAs also decide the active set (merit sortition).

Arrays are indexed by worker slot; NaN marks a worker that did not take part this epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.special import xlogy

from defai.errors import NetworkError
from defai.network.synthesis import BoolArray, ValueBundle, ema, linear_quantile
from defai.types import FloatArray

T = TypeVar("T")


@dataclass(frozen=True)
class ByTask(Generic[T]):
    """One value per task: inference (inferers), forecasting (forecasters), reputation."""

    inferers: T
    forecasters: T
    reputers: T


@dataclass(frozen=True)
class RewardParams:
    """Module parameters of scoring and rewards; defaults reproduce Allora's reference vectors."""

    p_reward_inference: float = 3.0
    p_reward_forecast: float = 3.0
    p_reward_reputer: float = 1.0
    c_reward_inference: float = 0.75
    c_reward_forecast: float = 0.75
    reward_fraction_epsilon: float = 0.01
    max_samples_to_scale_scores: int = 10
    task_reward_alpha: float = 0.1
    beta_entropy: float = 0.25
    merit_sortition_alpha: float = 0.1
    active_score_quantile: float = 0.2
    """Passive members' score EMAs drift toward this quantile of the active members' scores."""
    max_active: ByTask[int] = ByTask(inferers=32, forecasters=6, reputers=6)

    def __post_init__(self) -> None:
        positive = {
            "p_reward_inference": self.p_reward_inference,
            "p_reward_forecast": self.p_reward_forecast,
            "p_reward_reputer": self.p_reward_reputer,
            "reward_fraction_epsilon": self.reward_fraction_epsilon,
            "beta_entropy": self.beta_entropy,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise NetworkError(f"RewardParams.{name} must be finite and > 0, got {value!r}")
        for name in ("task_reward_alpha", "merit_sortition_alpha"):
            if not 0 < getattr(self, name) <= 1:
                raise NetworkError(
                    f"RewardParams.{name} must be in (0, 1], got {getattr(self, name)!r}"
                )
        if not 0 <= self.active_score_quantile <= 1:
            raise NetworkError(
                "RewardParams.active_score_quantile must be in [0, 1], "
                f"got {self.active_score_quantile!r}"
            )
        sizes = (self.max_active.inferers, self.max_active.forecasters, self.max_active.reputers)
        if self.max_samples_to_scale_scores < 1 or min(sizes) < 1:
            raise NetworkError(
                "RewardParams.max_samples_to_scale_scores and max_active sizes must be >= 1"
            )


@dataclass(frozen=True)
class RewardDistribution:
    """How one epoch's topic reward is split between tasks and participants."""

    smoothed_fractions: ByTask[FloatArray]
    entropies: ByTask[float]
    forecaster_score_ratio: float
    forecasting_utility: float
    """χ: the forecasting task's share of the workers' reward, in [0.1, 0.5]."""
    normalization_factor: float
    """γ: keeps the workers' total reward unchanged whatever χ is."""
    pools: ByTask[float]
    """Share of the topic reward per task."""
    payouts: ByTask[FloatArray]


def _participants(values: FloatArray) -> BoolArray:
    return ~np.isnan(values)


def inferer_scores(losses: ValueBundle) -> FloatArray:
    """T_j = L⁻_j − L: how much worse the network does without inferer j (a lone one scores 0)."""
    taking_part = _participants(losses.inferers)
    scores = np.where(taking_part, losses.one_out[: losses.n_inferers] - losses.combined, np.nan)
    return np.where(taking_part & (taking_part.sum() == 1), 0.0, scores)


def forecaster_scores(losses: ValueBundle) -> FloatArray:
    """T_k = f⁺ (L⁻ − L⁺_k) + (1 − f⁺)(L⁻_k − L), f⁺ = 1/2^(N_f−1); a lone forecaster scores 0."""
    taking_part = _participants(losses.forecast_implied)
    count = int(taking_part.sum())
    unique = 1 / 2 ** (count - 1) if count else 0.0
    one_in = losses.naive - losses.one_in
    one_out = losses.one_out[losses.n_inferers :] - losses.combined
    scores = np.where(taking_part, unique * one_in + (1 - unique) * one_out, np.nan)
    return np.where(taking_part & (count == 1), 0.0, scores)


def recent_score_samples(scores: FloatArray, previous: FloatArray, limit: int) -> FloatArray:
    """Newest first: this epoch's scores (in worker order) before earlier ones, at most `limit`."""
    return np.concatenate([scores[_participants(scores)], previous])[:limit]


def worker_reward_fractions(
    scores: FloatArray, samples: FloatArray, p: float, c: float, epsilon: float
) -> FloatArray:
    """u ∝ φ_{p,c}(T / (σ + ε)), σ the Bessel spread of recent samples; equal if σ < ε."""
    taking_part = _participants(scores)
    spread = float(np.std(samples, ddof=1)) if samples.size > 1 else 0.0
    mapped = np.full(scores.shape, np.nan)
    if spread < epsilon:
        mapped[taking_part] = 1.0
    else:
        mapped[taking_part] = np.logaddexp(0.0, p * (scores[taking_part] / (spread + epsilon) - c))
    return mapped / float(mapped[taking_part].sum())


def reputer_reward_fractions(stakes: FloatArray, scores: FloatArray, p: float) -> FloatArray:
    """(S T)^p normalised: stake counts, but only as far as the reputer agrees with consensus."""
    weighted = (stakes * scores) ** p
    return weighted / np.nansum(weighted)


def smooth_fractions(fractions: FloatArray, previous: FloatArray, alpha: float) -> FloatArray:
    """EMA of the fractions, renormalised over this epoch's participants (others keep theirs)."""
    taking_part = _participants(fractions)
    smoothed = ema(alpha, fractions, previous)
    if taking_part.any():
        smoothed[taking_part] /= smoothed[taking_part].sum()
    return smoothed


def modified_entropy(fractions: FloatArray, beta: float) -> float:
    """−Σ f ln f · (N_eff/N)^β: high when reward is spread over many (effective) participants."""
    if fractions.size == 0:
        return 0.0
    effective = 1 / float(np.sum(fractions**2))
    return float(-np.sum(xlogy(fractions, fractions)) * (effective / fractions.size) ** beta)


def forecaster_score_ratio(
    task_score: float, inferer_scores: FloatArray, previous: float, alpha: float
) -> float:
    """EMA of the forecasting task's score relative to the best inferer's score.

    Undefined when no inferer has a non-zero score; the ratio then keeps its previous value.
    """
    scored = inferer_scores[_participants(inferer_scores)]
    best = float(scored.max()) if scored.size else 0.0
    if best == 0:
        return previous
    return float(ema(alpha, (task_score - min(0.0, best)) / abs(best), previous))


def forecasting_utility(ratio: float) -> float:
    """χ = 0.1 + 0.4 r, clamped to [0.1, 0.5]; no ratio yet counts as r < 0."""
    if not ratio >= 0:
        return 0.1
    return 0.5 if ratio >= 1 else 0.1 + 0.4 * ratio


def task_pools(entropies: ByTask[float], chi: float) -> tuple[ByTask[float], float]:
    """Shares of the topic reward per task, and γ = (F + G) / ((1 − χ) F + χ G)."""
    f, g, h = entropies.inferers, entropies.forecasters, entropies.reputers
    denominator = (1 - chi) * f + chi * g
    gamma = (f + g) / denominator if denominator > 0 else 1.0
    total = f + g + h
    if total <= 0:
        return ByTask(0.0, 0.0, 0.0), gamma
    return ByTask((1 - chi) * gamma * f / total, chi * gamma * g / total, h / total), gamma


def distribute_rewards(
    fractions: ByTask[FloatArray],
    previous_smoothed: ByTask[FloatArray],
    forecasting_task_score: float,
    inferer_scores: FloatArray,
    previous_ratio: float,
    topic_reward: float,
    params: RewardParams,
) -> RewardDistribution:
    """Split `topic_reward` between tasks by entropy, then between participants by fraction."""
    alpha = params.task_reward_alpha
    smoothed = ByTask(
        smooth_fractions(fractions.inferers, previous_smoothed.inferers, alpha),
        smooth_fractions(fractions.forecasters, previous_smoothed.forecasters, alpha),
        smooth_fractions(fractions.reputers, previous_smoothed.reputers, alpha),
    )

    def entropy(task_fractions: FloatArray, task_smoothed: FloatArray) -> float:
        return modified_entropy(task_smoothed[_participants(task_fractions)], params.beta_entropy)

    entropies = ByTask(
        entropy(fractions.inferers, smoothed.inferers),
        entropy(fractions.forecasters, smoothed.forecasters),
        entropy(fractions.reputers, smoothed.reputers),
    )
    ratio = forecaster_score_ratio(forecasting_task_score, inferer_scores, previous_ratio, alpha)
    chi = forecasting_utility(ratio)
    pools, gamma = task_pools(entropies, chi)
    payouts = ByTask(
        fractions.inferers * pools.inferers * topic_reward,
        fractions.forecasters * pools.forecasters * topic_reward,
        fractions.reputers * pools.reputers * topic_reward,
    )
    return RewardDistribution(smoothed, entropies, ratio, chi, gamma, pools, payouts)


def delegator_split(
    rewards: npt.ArrayLike, own_stake: npt.ArrayLike, delegated_stake: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """(reputer's part, delegators' part): delegators earn reward × delegated / total stake."""
    reward = np.asarray(rewards, dtype=np.float64)
    own = np.asarray(own_stake, dtype=np.float64)
    delegated = np.asarray(delegated_stake, dtype=np.float64)
    if (own < 0).any() or (delegated < 0).any():
        raise NetworkError("stakes cannot be negative")
    total = own + delegated
    to_delegators = np.where(total > 0, reward * delegated / np.where(total > 0, total, 1), 0.0)
    return reward - to_delegators, to_delegators


def select_active(previous_emas: npt.ArrayLike, size: int) -> tuple[BoolArray, float]:
    """Merit sortition: the `size` best previous score EMAs (unscored newcomers fill free places).

    Returns the active mask and the quality cutoff, the lowest EMA that still made the set.
    """
    emas = np.asarray(previous_emas, dtype=np.float64)
    best_first = np.argsort(np.where(np.isnan(emas), np.inf, -emas), kind="stable")
    active = np.zeros(emas.shape, dtype=bool)
    active[best_first[:size]] = True
    ranked = emas[active & ~np.isnan(emas)]
    return active, float(ranked.min()) if ranked.size else math.nan


def update_score_emas(
    previous_emas: npt.ArrayLike, scores: npt.ArrayLike, alpha: float, quantile: float
) -> tuple[FloatArray, float]:
    """Active members (with a score) move toward it; passive ones toward the active quantile.

    Drifting passive members toward a typical active score lets them re-enter the active set
    when the active ones do badly, without a score of their own. Returns the EMAs and the quantile.
    """
    emas = np.asarray(previous_emas, dtype=np.float64)
    current = np.asarray(scores, dtype=np.float64)
    active = _participants(current)
    level = linear_quantile(current[active], quantile) if active.any() else math.nan
    target = np.where(active, current, np.where(np.isnan(emas), np.nan, level))
    return ema(alpha, target, emas), level
