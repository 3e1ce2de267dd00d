"""Edge cases of the per-epoch transition that the reference vectors do not reach."""

from __future__ import annotations

import dataclasses

import numpy as np

from defai.network.epoch import EpochParams, EpochState, score_epoch
from defai.network.synthesis import ValueBundle, synthesize


def test_consensus_survives_when_the_only_listened_reputer_is_absent() -> None:
    """One reputer held the others' listening at 0; this epoch it does not report."""
    params = EpochParams()
    state = EpochState.initial(n_inferers=2, n_forecasters=0, n_reputers=3)
    state = dataclasses.replace(state, listening_coefficients=np.array([0.0, 0.0, 1.0]))
    synthesis = synthesize([0.01, -0.02], np.empty((0, 2)), state.synthesis, params.synthesis)
    truth = 0.005
    values = synthesis.values.flat()
    reports = np.log10((values - truth) ** 2)
    losses = np.vstack([reports, reports + 0.01, np.full_like(reports, np.nan)])
    bundle = ValueBundle.from_flat(losses, 2, 0)
    outcome = score_epoch(synthesis, bundle, np.array([100.0, 50.0, 0.0]), 1.0, state, params)
    scores = outcome.consensus.scores
    assert np.isfinite(scores[:2]).all() and np.isnan(scores[2])
    assert outcome.consensus.listening_coefficients[2] == 1.0  # untouched while absent
    assert np.nansum(outcome.rewards.payouts.reputers) > 0
