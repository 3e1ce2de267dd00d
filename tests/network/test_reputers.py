"""Loss methods against hand-computed cases, log10 reporting, honest and dishonest reputers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from defai.errors import NetworkError
from defai.network.reputers import (
    BCE_EPS,
    LOSS_FLOOR,
    DishonestReputer,
    Reputer,
    ReputerError,
    bce,
    huber,
    log10_loss,
    logcosh,
    loss_function,
    mae,
    mse,
)

VALUES = np.array([1.0, 2.0, 4.5])
TRUTH = 2.0


def test_mse_and_mae() -> None:
    np.testing.assert_array_equal(mse(TRUTH, VALUES), [1.0, 0.0, 6.25])
    np.testing.assert_array_equal(mae(TRUTH, VALUES), [1.0, 0.0, 2.5])


def test_huber_is_quadratic_within_delta_and_linear_beyond() -> None:
    # errors -1, 0, 2.5 with delta 1: 0.5, 0, 1 * (2.5 - 0.5) = 2
    np.testing.assert_array_equal(huber(TRUTH, VALUES, delta=1.0), [0.5, 0.0, 2.0])
    # delta 2: 0.5, 0, 2 * (2.5 - 1) = 3
    np.testing.assert_array_equal(huber(TRUTH, VALUES, delta=2.0), [0.5, 0.0, 3.0])
    # continuous at the boundary
    assert huber(0.0, [1.0], 1.0)[0] == pytest.approx(0.5)


def test_logcosh_hand_values_and_no_overflow() -> None:
    np.testing.assert_allclose(
        logcosh(TRUTH, VALUES),
        [math.log(math.cosh(1.0)), 0.0, math.log(math.cosh(2.5))],
        rtol=1e-14,
        atol=1e-16,
    )
    big = logcosh(0.0, [1000.0, -1000.0])
    np.testing.assert_allclose(big, 1000.0 - math.log(2.0), rtol=1e-15)


def test_bce_hand_values_and_clipping() -> None:
    np.testing.assert_allclose(bce(1.0, [0.8]), [-math.log(0.8)], rtol=1e-14)
    np.testing.assert_allclose(bce(0.0, [0.8]), [-math.log(0.2)], rtol=1e-14)
    np.testing.assert_allclose(bce(0.5, [0.5]), [math.log(2.0)], rtol=1e-14)
    sure_miss = bce(1.0, [0.0, 1.0, -3.0])
    np.testing.assert_allclose(
        sure_miss, [-math.log(BCE_EPS), -math.log1p(-BCE_EPS), -math.log(BCE_EPS)]
    )
    with pytest.raises(ReputerError, match=r"truth must lie in \[0, 1\]"):
        bce(1.5, [0.5])


def test_loss_function_binds_huber_delta_and_rejects_unknown_methods() -> None:
    np.testing.assert_array_equal(loss_function("huber", 2.0)(TRUTH, VALUES), [0.5, 0.0, 3.0])
    assert loss_function("mse") is mse
    with pytest.raises(ReputerError, match="unknown loss method 'ztae'"):
        loss_function("ztae")
    with pytest.raises(ReputerError, match="huber delta must be"):
        loss_function("huber", 0.0)


def test_log10_reporting_floors_exact_hits_and_keeps_nan() -> None:
    out = log10_loss([100.0, 0.0, 1e-3, math.nan])
    np.testing.assert_allclose(out[[0, 2]], [2.0, -3.0], rtol=1e-15)
    assert out[1] == math.log10(LOSS_FLOOR) == -20.0
    assert math.isnan(out[3])


def test_reputer_reports_log10_of_its_loss_method() -> None:
    reputer = Reputer("r1", stake=10.0, loss_method="mae")
    np.testing.assert_allclose(
        reputer.report(TRUTH, VALUES), [0.0, -20.0, math.log10(2.5)], rtol=1e-15
    )
    missing = reputer.report(TRUTH, [math.nan, 3.0])
    assert math.isnan(missing[0]) and missing[1] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "stake": 1.0}, "non-empty name"),
        ({"name": "r", "stake": -1.0}, "stake must be finite and >= 0"),
        ({"name": "r", "stake": math.inf}, "stake must be finite"),
        ({"name": "r", "stake": 1.0, "loss_method": "poisson"}, "unknown loss method"),
        ({"name": "r", "stake": 1.0, "loss_method": "huber", "huber_delta": -1.0}, "delta"),
    ],
)
def test_bad_reputers_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ReputerError, match=message):
        Reputer(**kwargs)  # type: ignore[arg-type]
    assert issubclass(ReputerError, NetworkError)


def test_inverting_reputer_reverses_the_ranking_within_the_same_range() -> None:
    values = np.array([2.1, 2.5, 5.0, math.nan])
    honest = Reputer("h", 1.0).report(TRUTH, values)
    liar = DishonestReputer("d", 1.0, mode="invert")
    lie = liar.report(TRUTH, values)
    finite = np.isfinite(honest)
    assert np.array_equal(np.argsort(lie[finite]), np.argsort(-honest[finite]))
    assert lie[finite].min() == pytest.approx(honest[finite].min())
    assert lie[finite].max() == pytest.approx(honest[finite].max())
    assert math.isnan(lie[3])
    np.testing.assert_array_equal(lie, liar.report(TRUTH, values))  # deterministic


def test_colluding_reputer_makes_its_friend_look_best() -> None:
    values = np.array([2.1, 2.5, 5.0])
    honest = Reputer("h", 1.0).report(TRUTH, values)
    lie = DishonestReputer("d", 1.0, mode="favour", favoured=(2,), margin=1.0).report(TRUTH, values)
    assert lie[2] == pytest.approx(honest.min() - 1.0)
    np.testing.assert_array_equal(lie[:2], honest[:2])
    assert int(np.argmin(lie)) == 2


def test_dishonest_reputer_misconfigurations() -> None:
    with pytest.raises(ReputerError, match="needs favoured indices"):
        DishonestReputer("d", 1.0, mode="favour")
    with pytest.raises(ReputerError, match="unknown mode"):
        DishonestReputer("d", 1.0, mode="shout")  # type: ignore[arg-type]
    with pytest.raises(ReputerError, match="was given 2 values"):
        DishonestReputer("d", 1.0, mode="favour", favoured=(5,)).report(TRUTH, [1.0, 2.0])
