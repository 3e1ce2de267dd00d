"""TopicSpec validation and the ground truth of each target, against hand-computed values."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from defai.errors import DataError, NetworkError
from defai.network.topic import (
    TopicError,
    TopicSpec,
    ground_truth,
    ground_truth_series,
    target_from_horizon_sum,
)

CLOSE = np.array([100.0, 110.0, 99.0, 120.0, 120.0])


def topic(**overrides: object) -> TopicSpec:
    fields: dict[str, object] = {"name": "eth", "symbol": "ETH/USDT", "target": "log_return"}
    fields.update(overrides)
    return TopicSpec(**fields)  # type: ignore[arg-type]


def test_defaults_and_derived_durations() -> None:
    t = topic(timeframe="4h", horizon=6, epoch_length=3)
    assert (t.window, t.loss_method) == (256, "mse")
    assert t.period_ms == 4 * 3_600_000
    assert t.horizon_ms == 6 * t.period_ms
    assert t.epoch_ms == 3 * t.period_ms


def test_topic_is_frozen_and_keyword_only() -> None:
    t = topic()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.horizon = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        TopicSpec("eth", "ETH/USDT", "log_return")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "non-empty name"),
        ({"symbol": ""}, "symbol"),
        ({"target": "direction"}, "unknown target 'direction'"),
        ({"timeframe": "1x"}, "unknown timeframe '1x'"),
        ({"horizon": 0}, "horizon .* >= 1, got 0"),
        ({"horizon": 1.5}, "horizon .* integer"),
        ({"horizon": True}, "horizon .* got True"),
        ({"epoch_length": 0}, "epoch_length .* >= 1"),
        ({"window": 4, "horizon": 4}, "window must be .* >= horizon \\+ 1 = 5"),
        ({"loss_method": "ztae"}, "unknown loss_method 'ztae'"),
        ({"loss_method": "bce"}, "'bce' scores probabilities"),
        ({"huber_delta": 0.0}, "huber_delta must be > 0"),
        ({"huber_delta": math.nan}, "huber_delta must be a finite number"),
    ],
)
def test_bad_fields_are_rejected_with_a_specific_error(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(TopicError, match=message):
        topic(**overrides)


def test_topic_error_is_a_network_error() -> None:
    assert issubclass(TopicError, NetworkError)


def test_log_return_truth() -> None:
    t = topic(horizon=2)
    assert ground_truth(100.0, [110.0, 99.0], t) == pytest.approx(math.log(0.99), abs=1e-15)


def test_price_truth_is_the_close_horizon_candles_later() -> None:
    assert ground_truth(100.0, [110.0, 99.0], topic(target="price", horizon=2)) == 99.0


def test_volatility_truth_is_realised_not_demeaned_not_annualised() -> None:
    t = topic(target="volatility", horizon=3)
    expected = math.sqrt(math.log(1.1) ** 2 + math.log(0.9) ** 2 + math.log(120 / 99) ** 2)
    assert ground_truth(100.0, [110.0, 99.0, 120.0], t) == pytest.approx(expected, rel=1e-14)
    # A move straight up has volatility equal to its size: no demeaning.
    assert ground_truth(100.0, [110.0], topic(target="volatility")) == pytest.approx(
        math.log(1.1), rel=1e-14
    )


def test_truth_needs_exactly_horizon_positive_closes() -> None:
    with pytest.raises(TopicError, match="exactly 2 closes"):
        ground_truth(100.0, [110.0], topic(horizon=2))
    with pytest.raises(DataError, match="finite and > 0"):
        ground_truth(100.0, [0.0], topic())
    with pytest.raises(DataError, match="finite and > 0"):
        ground_truth(math.nan, [1.0], topic())


@pytest.mark.parametrize("target", ["log_return", "volatility", "price"])
@pytest.mark.parametrize("horizon", [1, 2, 4])
def test_series_equals_the_scalar_truth_and_is_nan_where_unknown(target: str, horizon: int) -> None:
    t = topic(target=target, horizon=horizon)
    series = ground_truth_series(CLOSE, t)
    assert series.shape == CLOSE.shape
    assert np.isnan(series[-horizon:]).all()
    for i in range(CLOSE.size - horizon):
        expected = ground_truth(CLOSE[i], CLOSE[i + 1 : i + 1 + horizon], t)
        assert series[i] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_series_shorter_than_horizon_is_all_nan() -> None:
    assert np.isnan(ground_truth_series(CLOSE[:2], topic(horizon=2))).all()


def test_target_from_horizon_sum_inverts_the_truth() -> None:
    last = np.array([100.0])
    assert target_from_horizon_sum(np.array([0.1]), last, "log_return")[0] == 0.1
    assert target_from_horizon_sum(np.array([math.log(1.1)]), last, "price")[0] == pytest.approx(
        110.0, rel=1e-14
    )
    assert target_from_horizon_sum(np.array([0.04]), last, "volatility")[0] == pytest.approx(0.2)
    # A linear model's negative variance means no volatility, not NaN.
    assert target_from_horizon_sum(np.array([-1e-6]), last, "volatility")[0] == 0.0
