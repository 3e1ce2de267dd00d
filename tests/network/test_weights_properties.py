"""Properties of the regret → weight maps, and of the cold-start rules built on them.

v0.16 has no public reference vectors, so it is held to its defining properties: weights sum to
one, never decrease as regret grows, and a lone worker takes all the weight. v0.6 (checked exactly
against Allora's vectors elsewhere) is held to its sanity rules: non-negative, monotone, and zero
exactly where MECHANISM.md's normalised regret falls below c − 17.25/p.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from defai.errors import NetworkError
from defai.network.epoch import EpochParams, EpochState, score_epoch
from defai.network.rewards import delegator_split
from defai.network.synthesis import (
    Regrets,
    SynthesisParams,
    SynthesisState,
    ValueBundle,
    regret_weights,
    synthesize,
)
from defai.types import FloatArray

V06 = SynthesisParams()
V016 = SynthesisParams(weighting="v0.16")

finite = st.floats(min_value=-20, max_value=20, allow_nan=False, allow_infinity=False)


def regrets(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[FloatArray]:
    return st.integers(min_size, max_size).flatmap(lambda n: arrays(np.float64, n, elements=finite))


def assert_monotone(r: FloatArray, w: FloatArray) -> None:
    order = np.argsort(r, kind="stable")
    assert np.all(np.diff(w[order]) >= 0)


@given(regrets())
def test_v016_weights_sum_to_one(r: FloatArray) -> None:
    assert math.isclose(regret_weights(r, V016).sum(), 1.0, rel_tol=1e-12)


@given(regrets())
def test_v016_weights_never_decrease_with_regret(r: FloatArray) -> None:
    assert_monotone(r, regret_weights(r, V016))


@given(finite)
def test_v016_lone_worker_takes_all_the_weight(r: float) -> None:
    assert regret_weights([r], V016).tolist() == [1.0]


@given(regrets(), st.lists(st.booleans(), min_size=40, max_size=40))
def test_v016_scale_falls_back_to_everyone_when_fewer_than_two_were_weighted(
    r: FloatArray, flags: list[bool]
) -> None:
    weighted_before = np.zeros(r.size, dtype=bool)
    weighted_before[: min(1, r.size)] = flags[0]
    np.testing.assert_array_equal(
        regret_weights(r, V016, scale_mask=weighted_before), regret_weights(r, V016)
    )


@given(regrets())
def test_v06_weights_are_non_negative_and_monotone(r: FloatArray) -> None:
    w = regret_weights(r, V06)
    assert np.all(w >= 0)
    assert w.max() > 0  # the best worker always counts
    assert_monotone(r, w)


@given(regrets())
def test_v06_weight_is_zero_exactly_below_the_cutoff(r: FloatArray) -> None:
    p, c, eps = V06.p_norm, V06.c_norm, V06.epsilon
    spread = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    normalised = r / (spread + eps)
    if normalised.max() < c - 8.25 / p:
        normalised = normalised + (c - 8.25 / p - normalised.max())
    below = normalised < c - 17.25 / p
    margin = np.abs(normalised - (c - 17.25 / p)) > 1e-9  # away from rounding at the edge
    w = regret_weights(r, V06)
    assert np.all(w[below & margin] == 0)
    assert np.all(w[~below & margin] > 0)


@given(st.integers(2, 6), st.integers(1, 12), st.sampled_from([V06, V016]), st.data())
def test_batched_rows_equal_rows_one_by_one(
    rows: int, width: int, params: SynthesisParams, data: st.DataObject
) -> None:
    r = data.draw(arrays(np.float64, (rows, width), elements=finite))
    mask = data.draw(arrays(np.bool_, (rows, width)))
    batched = regret_weights(r, params, mask)
    for row in range(rows):
        np.testing.assert_allclose(batched[row], regret_weights(r[row], params, mask[row]))


def experienced(n_inferers: int, n_forecasters: int, seed: int) -> Regrets:
    """Every regret family filled, as after some scored epochs."""
    rng = np.random.default_rng(seed)
    n_w = n_inferers + n_forecasters
    return Regrets(
        inferers=rng.normal(size=n_inferers),
        forecasters=rng.normal(size=n_forecasters),
        naive=rng.normal(size=n_inferers),
        one_out=rng.normal(size=(n_w, n_w)),
        one_in=rng.normal(size=(n_forecasters, n_inferers + 1)),
    )


inferences = st.integers(1, 12).flatmap(
    lambda n: arrays(np.float64, n, elements=st.floats(-1e3, 1e3, allow_nan=False))
)


@given(finite, st.integers(0, 3), st.sampled_from([V06, V016]), st.booleans())
def test_a_single_inference_is_returned_as_is(
    value: float, n_forecasters: int, params: SynthesisParams, cold: bool
) -> None:
    state = SynthesisState(
        experienced(1, n_forecasters, seed=1), network_loss=math.nan if cold else -3.0
    )
    forecasts = np.full((n_forecasters, 1), -2.5)
    synthesis = synthesize([value], forecasts, state, params)
    assert float(synthesis.values.combined) == value
    assert synthesis.confidence_interval.tolist() == [value] * 5


@given(inferences, st.sampled_from([V06, V016]))
def test_without_a_network_loss_the_median_is_returned(
    values: FloatArray, params: SynthesisParams
) -> None:
    state = SynthesisState(experienced(values.size, 2, seed=2))
    forecasts = np.full((2, values.size), -2.0)
    synthesis = synthesize(values, forecasts, state, params)
    assert float(synthesis.values.combined) == pytest.approx(np.median(values), abs=1e-12)


@given(inferences, st.sampled_from([V06, V016]))
def test_when_every_worker_is_new_the_plain_mean_is_returned(
    values: FloatArray, params: SynthesisParams
) -> None:
    state = SynthesisState(Regrets.none_yet(values.size, 0), network_loss=-3.0)
    synthesis = synthesize(values, np.empty((0, values.size)), state, params)
    assert float(synthesis.values.combined) == pytest.approx(values.mean(), abs=1e-9)


@settings(max_examples=50)
@given(
    st.integers(2, 8),
    st.integers(0, 3),
    st.integers(0, 7),
    finite,
    st.sampled_from([V06, V016]),
    st.integers(0, 2**32 - 1),
)
def test_a_newcomer_is_weighted_with_the_initial_regret(
    n_inferers: int,
    n_forecasters: int,
    newcomer: int,
    initial: float,
    params: SynthesisParams,
    seed: int,
) -> None:
    newcomer %= n_inferers
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n_inferers)
    forecasts = rng.normal(-2, 1, (n_forecasters, n_inferers))
    regrets = experienced(n_inferers, n_forecasters, seed)
    with_initial = regrets.inferers.copy()
    with_initial[newcomer] = initial
    without = with_initial.copy()
    without[newcomer] = math.nan
    as_newcomer = SynthesisState(
        Regrets(without, *_rest(regrets)), network_loss=-3.0, initial_regret=initial
    )
    as_known = SynthesisState(Regrets(with_initial, *_rest(regrets)), network_loss=-3.0)
    got = synthesize(values, forecasts, as_newcomer, params)
    want = synthesize(values, forecasts, as_known, params)
    assert float(got.values.combined) == float(want.values.combined)
    np.testing.assert_array_equal(got.weights, want.weights)


def _rest(regrets: Regrets) -> tuple[FloatArray, ...]:
    return regrets.forecasters, regrets.naive, regrets.one_out, regrets.one_in


def test_bad_shapes_and_parameters_raise_network_errors() -> None:
    state = SynthesisState(Regrets.none_yet(3, 1))
    with pytest.raises(NetworkError, match="inferences has shape"):
        synthesize([1.0, 2.0], np.zeros((1, 3)), state, V06)
    with pytest.raises(NetworkError, match="forecasted_losses has shape"):
        synthesize([1.0, 2.0, 3.0], np.zeros((2, 3)), state, V06)
    with pytest.raises(NetworkError, match="no inference"):
        synthesize([math.nan] * 3, np.zeros((1, 3)), state, V06)
    with pytest.raises(NetworkError, match="weighting"):
        SynthesisParams(weighting="v0.7")  # type: ignore[arg-type]
    with pytest.raises(NetworkError, match="alpha_regret"):
        SynthesisParams(alpha_regret=0.0)
    with pytest.raises(NetworkError, match="one_out has shape"):
        Regrets(np.zeros(2), np.zeros(1), np.zeros(2), np.zeros((2, 2)), np.zeros((1, 3)))


def log_squared_error(values: ValueBundle, truth: float) -> ValueBundle:
    return values.map(lambda v: np.log10((v - truth) ** 2 + 1e-12))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([V06, V016]))
@example(seed=4480, params=V06)  # the listened stake fell below the floor: coefficients left [0, 1]
def test_epochs_with_comers_and_goers_pay_out_the_whole_reward(
    seed: int, params: SynthesisParams
) -> None:
    """Through synthesize and score_epoch: absent and new workers never leak reward or warn.

    Only when every task has a single participant (all entropies 0) is nothing paid out.
    """
    rng = np.random.default_rng(seed)
    n_inferers, n_forecasters, n_reputers = 4, 2, 3
    epoch_params = EpochParams(synthesis=params)
    state = EpochState.initial(n_inferers, n_forecasters, n_reputers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(12):
            truth = rng.normal()
            values = np.where(
                rng.random(n_inferers) < 0.7, truth + rng.normal(size=n_inferers), np.nan
            )
            values[rng.integers(n_inferers)] = truth + rng.normal()  # someone always submits
            forecasts = rng.normal(-2, 1, (n_forecasters, n_inferers))
            forecasts[rng.random((n_forecasters, n_inferers)) < 0.3] = np.nan
            synthesis = synthesize(values, forecasts, state.synthesis, params)
            reports = log_squared_error(synthesis.values, truth).flat()
            losses = ValueBundle.from_flat(
                reports + rng.normal(0, 0.05, (n_reputers, 1)), n_inferers, n_forecasters
            )
            stakes = np.where(rng.random(n_reputers) < 0.8, rng.uniform(1, 10, n_reputers), 0.0)
            stakes[0] = 5.0
            outcome = score_epoch(synthesis, losses, stakes, 100.0, state, epoch_params)
            payouts = outcome.rewards.payouts
            paid = sum(
                float(np.nansum(p))
                for p in (payouts.inferers, payouts.forecasters, payouts.reputers)
            )
            entropy = outcome.rewards.entropies
            spread = entropy.inferers + entropy.forecasters + entropy.reputers > 0
            assert paid == pytest.approx(100.0 if spread else 0.0, rel=1e-9)
            assert np.isfinite(synthesis.values.combined)
            state = outcome.state


@given(
    arrays(np.float64, 4, elements=st.floats(0, 1e6)),
    arrays(np.float64, 4, elements=st.floats(0, 1e6)),
    arrays(np.float64, 4, elements=st.floats(0, 1e6)),
)
def test_delegators_get_their_stake_share_of_a_reputer_reward(
    rewards: FloatArray, own: FloatArray, delegated: FloatArray
) -> None:
    reputer, delegators = delegator_split(rewards, own, delegated)
    np.testing.assert_allclose(reputer + delegators, rewards, rtol=1e-12)
    total = own + delegated
    expected = np.where(total > 0, rewards * delegated / np.where(total > 0, total, 1), 0.0)
    np.testing.assert_allclose(delegators, expected, rtol=1e-12)
