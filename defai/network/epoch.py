"""The pure state transition of a topic, one epoch at a time.

A stateful network (LocalNetwork) keeps one `EpochState` per topic and, each epoch, calls
`synthesize(inferences, forecasted_losses, state.synthesis, params.synthesis)` when workers have
submitted, then `score_epoch(...)` once reputers have scored that synthesis against the ground
truth. Everything here is a function of its arguments, so an epoch can be replayed exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from defai.errors import NetworkError
from defai.network.reputation import Consensus, ReputationParams, reputer_consensus
from defai.network.rewards import (
    ByTask,
    RewardDistribution,
    RewardParams,
    distribute_rewards,
    forecaster_scores,
    inferer_scores,
    recent_score_samples,
    reputer_reward_fractions,
    update_score_emas,
    worker_reward_fractions,
)
from defai.network.synthesis import (
    Regrets,
    Synthesis,
    SynthesisParams,
    SynthesisState,
    ValueBundle,
    initial_regret,
    network_losses,
    update_regrets,
)
from defai.types import FloatArray, IntArray


@dataclass(frozen=True)
class EpochParams:
    """All of a topic's mechanism parameters."""

    synthesis: SynthesisParams = field(default_factory=SynthesisParams)
    reputation: ReputationParams = field(default_factory=ReputationParams)
    rewards: RewardParams = field(default_factory=RewardParams)


@dataclass(frozen=True)
class EpochState:
    """Everything a topic carries from one scored epoch to the next (NaN: nothing yet)."""

    synthesis: SynthesisState
    inclusions: IntArray
    """(n_w,) epochs each worker has been scored in: experience for the initial regret."""
    listening_coefficients: FloatArray
    smoothed_fractions: ByTask[FloatArray]
    inferer_score_samples: FloatArray
    """Recent inferer scores, newest first: their spread scales the reward fractions."""
    forecaster_score_samples: FloatArray
    score_emas: ByTask[FloatArray]
    forecaster_score_ratio: float = math.nan

    @classmethod
    def initial(cls, n_inferers: int, n_forecasters: int, n_reputers: int) -> EpochState:
        """State of a topic before its first epoch: every worker new, reputers fully listened."""
        if min(n_inferers, n_forecasters, n_reputers) < 0:
            raise NetworkError("worker and reputer counts cannot be negative")
        n_w = n_inferers + n_forecasters

        def unknown(n: int) -> FloatArray:
            return np.full(n, np.nan)

        per_task = ByTask(unknown(n_inferers), unknown(n_forecasters), unknown(n_reputers))
        return cls(
            synthesis=SynthesisState(
                Regrets.none_yet(n_inferers, n_forecasters), weights=unknown(n_w)
            ),
            inclusions=np.zeros(n_w, dtype=np.int64),
            listening_coefficients=np.ones(n_reputers),
            smoothed_fractions=per_task,
            inferer_score_samples=unknown(0),
            forecaster_score_samples=unknown(0),
            score_emas=per_task,
        )


@dataclass(frozen=True)
class EpochOutcome:
    """Everything one scored epoch produced, and the state the next epoch starts from."""

    losses: ValueBundle
    regrets: Regrets
    scores: ByTask[FloatArray]
    consensus: Consensus
    """Over all reputer slots; NaN for reputers that did not take part."""
    fractions: ByTask[FloatArray]
    forecasting_task_score: float
    """L⁻ − L: how much the forecasters improved on the inferers alone."""
    rewards: RewardDistribution
    state: EpochState


def _experienced_initial_regret(
    regrets: Regrets, inclusions: IntArray, current: float, params: SynthesisParams
) -> float:
    """Initial regret from workers included at least 1/α times; unchanged while there are none."""
    pooled = np.concatenate([regrets.inferers, regrets.forecasters])
    experienced = (inclusions >= 1 / params.alpha_regret) & ~np.isnan(pooled)
    return initial_regret(pooled[experienced], params) if experienced.any() else current


def _reputer_consensus(
    flat: FloatArray, stakes: FloatArray, coefficients: FloatArray, params: ReputationParams
) -> Consensus:
    """Consensus among the reputers that reported, spread back over all reputer slots."""
    taking_part = (stakes > 0) & ~np.isnan(flat).all(axis=1)
    if not taking_part.any():
        raise NetworkError("no reputer with stake reported a loss: the epoch cannot be scored")
    listened = coefficients[taking_part]
    if not (listened > 0).any():
        # the reputers listened to are all absent: listen afresh to everyone who reported
        listened = np.ones_like(listened)
    found = reputer_consensus(
        flat[taking_part][:, ~np.isnan(flat[taking_part]).all(axis=0)],
        stakes[taking_part],
        listened,
        params,
    )

    def spread(values: FloatArray, absent: FloatArray) -> FloatArray:
        out = absent.copy()
        out[taking_part] = values
        return out

    nan = np.full(stakes.shape, np.nan)
    return Consensus(
        scores=spread(found.scores, nan),
        adjusted_stakes=spread(found.adjusted_stakes, nan),
        listening_coefficients=spread(found.listening_coefficients, coefficients),
        losses=found.losses,
    )


def score_epoch(
    synthesis: Synthesis,
    reputer_losses: ValueBundle,
    stakes: npt.ArrayLike,
    topic_reward: float,
    state: EpochState,
    params: EpochParams,
) -> EpochOutcome:
    """Score a synthesized epoch from its reputers' log-losses and pay out `topic_reward`.

    `reputer_losses` has a leading reputer axis over the same values as `synthesis.values` (NaN
    where a reputer did not report); `stakes` are each reputer's own plus delegated stake (0 for
    a reputer slot not taking part).
    """
    s = np.asarray(stakes, dtype=np.float64)
    n_r = state.listening_coefficients.shape[0]
    if s.shape != (n_r,) or np.shape(reputer_losses.combined) != (n_r,):
        raise NetworkError(
            f"expected stakes and reputer losses for {n_r} reputers, got stakes {s.shape} and "
            f"losses {np.shape(reputer_losses.combined)}"
        )
    workers = (synthesis.values.n_inferers, synthesis.values.n_forecasters)
    if (reputer_losses.n_inferers, reputer_losses.n_forecasters) != workers:
        raise NetworkError(
            f"reputer losses cover (inferers, forecasters) = "
            f"{(reputer_losses.n_inferers, reputer_losses.n_forecasters)}, "
            f"the synthesis {workers}"
        )
    if not (math.isfinite(topic_reward) and topic_reward >= 0):
        raise NetworkError(f"topic_reward must be finite and >= 0, got {topic_reward!r}")

    sp, rp = params.synthesis, params.rewards
    losses = network_losses(reputer_losses, s)
    regrets = update_regrets(
        state.synthesis.regrets, losses, state.synthesis.initial_regret, sp.alpha_regret
    )
    scored = ~np.isnan(np.concatenate([losses.inferers, losses.forecast_implied]))
    inclusions = state.inclusions + scored
    consensus = _reputer_consensus(
        reputer_losses.flat(), s, state.listening_coefficients, params.reputation
    )
    scores = ByTask(inferer_scores(losses), forecaster_scores(losses), consensus.scores)

    limit = rp.max_samples_to_scale_scores
    inferer_samples = recent_score_samples(scores.inferers, state.inferer_score_samples, limit)
    forecaster_samples = recent_score_samples(
        scores.forecasters, state.forecaster_score_samples, limit
    )
    fractions = ByTask(
        worker_reward_fractions(
            scores.inferers,
            inferer_samples,
            rp.p_reward_inference,
            rp.c_reward_inference,
            rp.reward_fraction_epsilon,
        ),
        worker_reward_fractions(
            scores.forecasters,
            forecaster_samples,
            rp.p_reward_forecast,
            rp.c_reward_forecast,
            rp.reward_fraction_epsilon,
        ),
        reputer_reward_fractions(s, scores.reputers, rp.p_reward_reputer),
    )
    task_score = float(losses.naive - losses.combined)
    rewards = distribute_rewards(
        fractions,
        state.smoothed_fractions,
        task_score,
        scores.inferers,
        state.forecaster_score_ratio,
        topic_reward,
        rp,
    )

    def sortition(task_scores: FloatArray, emas: FloatArray) -> FloatArray:
        return update_score_emas(
            emas, task_scores, rp.merit_sortition_alpha, rp.active_score_quantile
        )[0]

    next_state = EpochState(
        synthesis=SynthesisState(
            regrets=regrets,
            network_loss=float(losses.combined),
            initial_regret=_experienced_initial_regret(
                regrets, inclusions, state.synthesis.initial_regret, sp
            ),
            weights=synthesis.weights,
        ),
        inclusions=inclusions,
        listening_coefficients=consensus.listening_coefficients,
        smoothed_fractions=rewards.smoothed_fractions,
        inferer_score_samples=inferer_samples,
        forecaster_score_samples=forecaster_samples,
        score_emas=ByTask(
            sortition(scores.inferers, state.score_emas.inferers),
            sortition(scores.forecasters, state.score_emas.forecasters),
            sortition(scores.reputers, state.score_emas.reputers),
        ),
        forecaster_score_ratio=rewards.forecaster_score_ratio,
    )
    return EpochOutcome(
        losses=losses,
        regrets=regrets,
        scores=scores,
        consensus=consensus,
        fractions=fractions,
        forecasting_task_score=task_score,
        rewards=rewards,
        state=next_state,
    )
