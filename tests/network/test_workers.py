"""Inferers, forecasters and plug-ins: real models on synthetic markets, vectorised history equal
to point-in-time predictions, no look-ahead, and user models that misbehave without harm."""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any

import numpy as np
import pytest

from defai.errors import NetworkError
from defai.network.topic import TopicSpec, ground_truth_series, log_returns
from defai.network.workers import (
    Adversarial,
    CallableWorker,
    EstimatorWorker,
    Ewma,
    EwmaLossForecaster,
    Forecaster,
    Garch,
    HistoryWorker,
    KalmanTrend,
    LaggedLogReturns,
    MeanReversion,
    Momentum,
    Persistence,
    RandomGuesser,
    RidgeAR,
    SignalWorker,
    StaleCopier,
    Worker,
    WorkerConfigError,
    WorkerError,
    as_worker,
    bad_actors,
    batch_predict,
    default_forecasters,
    default_zoo,
    safe_forecast,
    safe_predict,
)
from defai.types import Candles, FloatArray

TARGETS = ["log_return", "volatility", "price"]
HOUR = 3_600_000
START = 1_600_000_000_000


def candles(close: FloatArray, timeframe: str = "1h") -> Candles:
    n = close.size
    ts = START + np.arange(n, dtype=np.int64) * HOUR
    return Candles("ETH/USDT", timeframe, ts, close, close, close, close, np.ones(n))


def topic(target: str = "log_return", **overrides: Any) -> TopicSpec:
    fields: dict[str, Any] = {"name": f"eth-{target}", "symbol": "ETH/USDT", "target": target}
    fields.update(overrides)
    return TopicSpec(**fields)


def prices(returns: FloatArray) -> FloatArray:
    return 2000.0 * np.exp(np.cumsum(returns))


def random_walk(n: int, seed: int = 1, sigma: float = 0.01) -> FloatArray:
    return prices(np.random.default_rng(seed).normal(0.0, sigma, n))


def ar1_returns(n: int, phi: float, seed: int = 2) -> FloatArray:
    noise = np.random.default_rng(seed).normal(0.0, 0.01, n)
    r = np.empty(n)
    r[0] = noise[0]
    for i in range(1, n):
        r[i] = phi * r[i - 1] + noise[i]
    return r


def garch_returns(n: int, alpha: float, beta: float, seed: int = 3) -> FloatArray:
    z = np.random.default_rng(seed).normal(size=n)
    long_run = 1e-4
    omega = long_run * (1 - alpha - beta)
    variance, r = long_run, np.empty(n)
    for i in range(n):
        r[i] = math.sqrt(variance) * z[i]
        variance = omega + alpha * r[i] ** 2 + beta * variance
    return r


ALL_WORKERS: list[SignalWorker] = [
    *default_zoo(),
    *bad_actors(seed=7),
    Adversarial(name="adversarial-ar", inner=RidgeAR(order=2)),
    StaleCopier(name="stale-1", lag_epochs=1),
]


def mse(pred: FloatArray, truth: FloatArray) -> float:
    ok = np.isfinite(pred) & np.isfinite(truth)
    return float(np.mean((pred[ok] - truth[ok]) ** 2))


# --------------------------------------------------------------------------- sanity


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("worker", ALL_WORKERS, ids=lambda w: w.name)
def test_every_builtin_gives_a_sane_inference(worker: SignalWorker, target: str) -> None:
    close = random_walk(400)
    t = topic(target, horizon=4)
    value = safe_predict(worker, candles(close), t)  # raises unless finite and in domain
    scale = 0.01 * math.sqrt(4)
    wide = 40.0 if worker.name == "random-guesser" else 10.0
    if target == "log_return":
        assert abs(value) < wide * scale
    elif target == "volatility":
        assert 0.0 <= value < wide * scale
    else:
        assert abs(math.log(value / close[-1])) < wide * scale


def test_zoos_conform_to_the_protocols_and_have_unique_names() -> None:
    workers = [*default_zoo(), *bad_actors()]
    assert all(isinstance(w, Worker) and isinstance(w, HistoryWorker) for w in workers)
    assert len({w.name for w in workers}) == len(workers)
    forecasters = default_forecasters()
    assert all(isinstance(f, Forecaster) for f in forecasters)
    assert len({f.name for f in forecasters}) == len(forecasters)


@pytest.mark.parametrize("worker", ALL_WORKERS, ids=lambda w: w.name)
def test_workers_are_immutable_stateless_and_survive_a_restart(worker: SignalWorker) -> None:
    window = candles(random_walk(300))
    t = topic("volatility", horizon=2)
    first = worker.predict(window, t)
    with pytest.raises(dataclasses.FrozenInstanceError):
        worker.name = "other"
    restored = pickle.loads(pickle.dumps(worker))
    assert restored == worker
    assert worker.predict(window, t) == first
    assert restored.predict(window, t) == first


# --------------------------------------------------------------------------- predict_history


def windows_of(history: Candles, at: np.ndarray, t: TopicSpec) -> list[Candles]:
    return [history.slice(max(0, int(a) - t.window + 1), int(a) + 1) for a in at]


def predict_or_nan(worker: SignalWorker, window: Candles, t: TopicSpec) -> float:
    try:
        return worker.predict(window, t)
    except WorkerError:
        return math.nan


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("worker", ALL_WORKERS, ids=lambda w: w.name)
def test_predict_history_equals_predict_on_every_truncation(
    worker: SignalWorker, target: str
) -> None:
    history = candles(random_walk(700, seed=4))
    t = topic(target, horizon=3, epoch_length=2, window=96)
    at = np.r_[np.arange(0, 120), np.arange(120, 700, 7)]
    expected = [predict_or_nan(worker, w, t) for w in windows_of(history, at, t)]
    got = worker.predict_history(history, at, t)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, equal_nan=True)
    assert np.isfinite(got[at >= t.window]).all()


@pytest.mark.parametrize("poison", [math.nan, 1e12])
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("worker", ALL_WORKERS, ids=lambda w: w.name)
def test_predict_history_never_reads_after_each_epoch(
    worker: SignalWorker, target: str, poison: float
) -> None:
    close = random_walk(600, seed=5)
    t = topic(target, horizon=2, window=64)
    at = np.arange(0, 600, 3)
    clean = worker.predict_history(candles(close), at, t)
    for cut in (40, 180, 399):
        poisoned = close.copy()
        poisoned[cut + 1 :] = poison
        early = at <= cut
        # Later epochs see the poison; the earlier ones, in the same call, must not.
        dirty = worker.predict_history(candles(poisoned), at, t)
        np.testing.assert_array_equal(dirty[early], clean[early])


def test_predict_reads_only_the_topics_window() -> None:
    close = random_walk(500, seed=6)
    t = topic("volatility", window=128)
    history = candles(close)
    for worker in ALL_WORKERS:
        assert worker.predict(history, t) == worker.predict(history.tail(128), t)


def test_too_short_a_window_is_no_inference() -> None:
    t = topic(window=64)
    short = candles(random_walk(5))
    with pytest.raises(WorkerError, match="'ridge-ar' needs at least 10 candles"):
        RidgeAR().predict(short, t)
    assert np.isnan(RidgeAR().predict_history(short, np.arange(5), t)).all()
    assert np.isnan(Persistence().predict_history(short, [0], t)).all()


def test_predict_history_rejects_bad_epoch_indices() -> None:
    history = candles(random_walk(50))
    with pytest.raises(NetworkError, match=r"lie in \[0, 50\)"):
        Ewma().predict_history(history, np.array([10, 50]), topic())
    with pytest.raises(NetworkError, match="1-D integer"):
        Ewma().predict_history(history, np.array([1.5]), topic())


# --------------------------------------------------------------------------- the models


def test_persistence_is_the_latest_known_truth() -> None:
    close = random_walk(300)
    window = candles(close)
    for target in TARGETS:
        t = topic(target, horizon=5)
        truth = ground_truth_series(close, t)
        assert Persistence().predict(window, t) == pytest.approx(truth[-1 - 5], rel=1e-12)
    assert Persistence().predict(window, topic("price")) == close[-1]


def test_stale_copier_answers_k_epochs_late() -> None:
    close = random_walk(400)
    t = topic("log_return", horizon=3, epoch_length=4)
    truth = ground_truth_series(close, t)
    at = np.arange(300, 400)
    got = StaleCopier(lag_epochs=2).predict_history(candles(close), at, t)
    np.testing.assert_allclose(got, truth[at - 3 - 2 * 4], rtol=1e-9)
    price = StaleCopier(lag_epochs=2).predict(candles(close), topic("price", epoch_length=4))
    assert price == pytest.approx(close[-1 - 8], rel=1e-12)


def test_ridge_ar_beats_persistence_and_zero_on_an_ar1_process() -> None:
    close = prices(ar1_returns(6000, phi=0.4))
    t = topic("log_return")
    truth = ground_truth_series(close, t)
    at = np.arange(300, close.size - 1)
    history = candles(close)
    ar = mse(RidgeAR().predict_history(history, at, t), truth[at])
    # Theory: persistence makes 2(1 - phi) / (1 - phi^2) = 1.43 times the noise variance.
    assert ar < 0.75 * mse(Persistence().predict_history(history, at, t), truth[at])
    assert ar < 0.9 * mse(np.zeros(at.size), truth[at])


def test_garch_and_ewma_volatility_beat_the_best_constant_on_a_garch_process() -> None:
    close = prices(garch_returns(8000, alpha=0.12, beta=0.86))
    t = topic("volatility", horizon=4)
    truth = ground_truth_series(close, t)
    at = np.arange(300, close.size - 4)
    best_constant = mse(np.full(at.size, np.mean(truth[at])), truth[at])  # hindsight
    for worker in (Garch(), Ewma()):
        assert mse(worker.predict_history(candles(close), at, t), truth[at]) < 0.9 * best_constant


def test_momentum_follows_a_trend_and_mean_reversion_fades_a_jump() -> None:
    noise = np.random.default_rng(8).normal(0.0, 0.001, 300)
    trend = prices(0.005 + noise)
    t = topic("log_return", horizon=2)
    assert Momentum().predict(candles(trend), t) == pytest.approx(0.01, rel=0.1)
    jump = prices(np.r_[noise[:-1], 0.1])
    assert MeanReversion().predict(candles(jump), t) < -0.005
    assert MeanReversion().predict(candles(jump), topic("price")) < jump[-1]


def test_mean_reversion_pulls_recent_variance_toward_its_average() -> None:
    calm = np.tile([0.01, -0.01], 150)
    storm = np.r_[calm[:-8], np.tile([0.04, -0.04], 4)]
    t = topic("volatility", horizon=6)
    forecast = MeanReversion().predict(candles(prices(storm)), t)
    assert 0.01 * math.sqrt(6) < forecast < 0.04 * math.sqrt(6)


def test_kalman_trend_extrapolates_a_linear_trend() -> None:
    trend = prices(np.full(300, 0.002))
    assert KalmanTrend().predict(candles(trend), topic("log_return", horizon=5)) == pytest.approx(
        0.01, rel=1e-3
    )
    assert KalmanTrend().predict(candles(trend), topic("volatility", horizon=4)) == pytest.approx(
        0.004, rel=1e-3
    )


def test_volatility_models_see_a_volatility_jump() -> None:
    calm = np.tile([0.005, -0.005], 150)
    storm = np.r_[calm, np.tile([0.03, -0.03], 20)]
    t = topic("volatility")
    for worker in (Ewma(), Garch(), Momentum(), RidgeAR(), KalmanTrend()):
        assert worker.predict(candles(prices(storm)), t) > 2 * worker.predict(
            candles(prices(calm)), t
        ), worker.name


def test_random_guesser_is_wide_and_reproducible_from_seed_and_epoch_time() -> None:
    close = random_walk(3000)
    t = topic("log_return")
    at = np.arange(300, 2999)
    history = candles(close)
    guesses = RandomGuesser(seed=3).predict_history(history, at, t)
    np.testing.assert_array_equal(guesses, RandomGuesser(seed=3).predict_history(history, at, t))
    assert not np.array_equal(guesses, RandomGuesser(seed=4).predict_history(history, at, t))
    assert np.std(guesses) > 2 * np.std(ground_truth_series(close, t)[at])
    assert len(np.unique(guesses)) == guesses.size
    # The draw depends on the epoch's time, not on how the window was delivered.
    shifted = Candles(
        "ETH/USDT", "1h", history.ts + HOUR, close, close, close, close, np.ones(close.size)
    )
    assert RandomGuesser(seed=3).predict(history, t) != RandomGuesser(seed=3).predict(shifted, t)


def test_adversarial_flips_biases_returns_and_inflates_volatility() -> None:
    window = candles(random_walk(300))
    inner = Ewma()
    ret, vol = topic("log_return"), topic("volatility")
    flipped = Adversarial(inner=inner, factor=3.0, bias=0.0)
    assert flipped.predict(window, ret) == pytest.approx(-3.0 * inner.predict(window, ret))
    assert flipped.predict(window, vol) == pytest.approx(3.0 * inner.predict(window, vol))
    # the bias pushes the flipped forecast by `bias` standard deviations of the window's returns
    r = np.diff(np.log(window.close[-ret.window :]))
    spread = np.sqrt(ret.horizon * np.mean(r * r))
    biased = Adversarial(inner=inner, factor=3.0, bias=2.0)
    assert biased.predict(window, ret) == pytest.approx(
        flipped.predict(window, ret) + 2.0 * spread, rel=1e-9
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: Garch(alpha=0.5, beta=0.6),
        lambda: Garch(alpha=-0.1),
        lambda: Momentum(lookback=0),
        lambda: MeanReversion(speed=0.0),
        lambda: MeanReversion(recent=100),
        lambda: Ewma(halflife=0.0),
        lambda: RidgeAR(order=0),
        lambda: RidgeAR(ridge=0.0),
        lambda: KalmanTrend(slope_var=0.0),
        lambda: StaleCopier(lag_epochs=-1),
        lambda: Adversarial(factor=0.0),
        lambda: RandomGuesser(width=0.0),
        lambda: EwmaLossForecaster(halflife=0.0),
        lambda: EwmaLossForecaster(conditioning="psychic"),  # type: ignore[arg-type]
    ],
)
def test_bad_model_parameters_are_rejected(build: Any) -> None:
    with pytest.raises(WorkerConfigError):
        build()


# --------------------------------------------------------------------------- plug-ins


class LinearModel:
    """A scikit-learn-shaped regressor, as a user would bring one."""

    def __init__(self, coef: list[float], n_features: bool = True) -> None:
        self.coef = np.asarray(coef)
        if n_features:
            self.n_features_in_ = len(coef)

    def predict(self, x: Any) -> FloatArray:
        result: FloatArray = np.asarray(x) @ self.coef
        return result


def test_a_function_of_the_window_plugs_in() -> None:
    def last_range(window: Candles) -> float:
        return float(np.log(window.close[-1] / window.close[0]))

    worker = as_worker(last_range)
    assert isinstance(worker, CallableWorker) and worker.takes == "candles"
    assert worker.name == "last_range"
    close = random_walk(400)
    t = topic(window=100)
    assert safe_predict(worker, candles(close), t) == pytest.approx(
        math.log(close[-1] / close[-100])
    )


def test_a_function_of_the_closes_plugs_in() -> None:
    def drift(close: FloatArray) -> float:
        return float(np.mean(np.diff(np.log(close))))

    worker = as_worker(drift, name="drift")
    assert isinstance(worker, CallableWorker) and worker.takes == "close"
    close = random_walk(50)
    assert safe_predict(worker, candles(close), topic()) == pytest.approx(
        float(np.mean(log_returns(close)))
    )
    unannotated = as_worker(lambda c: float(c[-1]), name="last", takes="close")
    assert safe_predict(unannotated, candles(close), topic("price")) == close[-1]


def test_an_sklearn_style_model_plugs_in_on_lagged_log_returns() -> None:
    close = random_walk(60)
    model = LinearModel([0.1, 0.2, 0.3])
    worker = as_worker(model, name="lin")
    assert isinstance(worker, EstimatorWorker)
    assert worker.features == LaggedLogReturns(3)
    expected = float(log_returns(close)[-3:] @ model.coef)
    assert safe_predict(worker, candles(close), topic()) == pytest.approx(expected)
    custom = as_worker(
        LinearModel([1.0], n_features=False), name="c", features=lambda w: [w.close[-1] * 0.0]
    )
    assert safe_predict(custom, candles(close), topic()) == 0.0
    with pytest.raises(WorkerConfigError, match="pass features="):
        as_worker(LinearModel([1.0], n_features=False), name="x")
    with pytest.raises(WorkerError, match="3 lagged returns need 4 candles"):
        safe_predict(worker, candles(close[:3]), topic())


def test_as_worker_passes_workers_through_and_rejects_the_rest() -> None:
    ewma = Ewma()
    assert as_worker(ewma) is ewma
    with pytest.raises(WorkerConfigError, match="cannot be renamed"):
        as_worker(ewma, name="other")
    with pytest.raises(WorkerConfigError, match="cannot use a int as a worker"):
        as_worker(5)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (math.nan, "returned nan"),
        (math.inf, "returned inf"),
        ("1.0", "returned a str"),
        (None, "returned a NoneType"),
        (True, "returned a bool"),
        (np.array([1.0, 2.0]), "returned a ndarray"),
    ],
)
def test_bad_user_outputs_become_worker_errors(output: object, message: str) -> None:
    worker = as_worker(lambda w: output, name="bad")
    with pytest.raises(WorkerError, match=f"'bad' {message}"):
        safe_predict(worker, candles(random_walk(20)), topic())


def test_out_of_domain_and_crashing_user_models_become_worker_errors() -> None:
    window = candles(random_walk(20))
    with pytest.raises(WorkerError, match="volatility inference must be a finite number >= 0"):
        safe_predict(as_worker(lambda w: -0.1, name="neg"), window, topic("volatility"))
    with pytest.raises(WorkerError, match="price inference must be a finite number > 0"):
        safe_predict(as_worker(lambda w: 0.0, name="zero"), window, topic("price"))

    def crash(window: Candles) -> float:
        raise ZeroDivisionError("boom")

    with pytest.raises(WorkerError, match="'crash' failed on topic 'eth-log_return': Zero"):
        safe_predict(as_worker(crash), window, topic())
    assert issubclass(WorkerError, NetworkError)


def test_numpy_and_integer_outputs_are_accepted() -> None:
    window = candles(random_walk(20))
    assert safe_predict(as_worker(lambda w: np.float32(0.5), name="f32"), window, topic()) == 0.5
    assert safe_predict(as_worker(lambda w: 2, name="int"), window, topic("price")) == 2.0


def test_batch_predict_loops_plug_ins_and_vectorises_builtins() -> None:
    history = candles(random_walk(300))
    t = topic(window=50)
    at = np.arange(40, 300, 10)

    def flaky(window: Candles) -> float:
        if int(window.ts[-1] // HOUR) % 20 == 0:
            raise RuntimeError("flaky")
        return float(window.close[-1] / window.close[0] - 1.0)

    got = batch_predict(as_worker(flaky), history, at, t)
    failing = (history.ts[at] // HOUR) % 20 == 0
    assert np.isnan(got[failing]).all() and np.isfinite(got[~failing]).all()
    np.testing.assert_array_equal(
        batch_predict(Ewma(), history, at, t), Ewma().predict_history(history, at, t)
    )


def test_batch_predict_refuses_a_history_of_the_wrong_shape() -> None:
    @dataclasses.dataclass(frozen=True)
    class Sloppy:
        name: str = "sloppy"

        def predict(self, window: Candles, topic: TopicSpec) -> float:
            return 0.0

        def predict_history(self, history: Candles, at: Any, topic: TopicSpec) -> FloatArray:
            return np.zeros(1)

    with pytest.raises(WorkerError, match="returned shape"):
        batch_predict(Sloppy(), candles(random_walk(30)), np.arange(5), topic())


# --------------------------------------------------------------------------- forecasters


def quiet_then_loud(quiet: int, loud: int, small: float = 0.01) -> FloatArray:
    returns = np.r_[
        np.tile([small, -small], quiet // 2), np.tile([2 * small, -2 * small], loud // 2)
    ]
    return prices(returns)


def ewma_variance(returns: FloatArray, halflife: float) -> float:
    weights = 0.5 ** (np.arange(returns.size)[::-1] / halflife)
    return float(weights @ returns**2 / weights.sum())


def test_plain_ewma_of_losses_ignores_missing_epochs() -> None:
    window = candles(random_walk(300))
    history = np.array([[-4.0, np.nan, np.nan], [-2.0, -3.0, np.nan]])
    forecaster = EwmaLossForecaster(halflife=1.0, conditioning="none")
    got = forecaster.forecast_losses(window, topic(), history)
    assert got[0] == pytest.approx((-4.0 * 0.5 - 2.0) / 1.5)
    assert got[1] == -3.0
    assert math.isnan(got[2])
    empty = forecaster.forecast_losses(window, topic(), np.empty((0, 4)))
    assert empty.shape == (4,) and np.isnan(empty).all()


@pytest.mark.parametrize(("method", "gamma"), [("mse", 2.0), ("mae", 1.0), ("logcosh", 2.0)])
@pytest.mark.parametrize("conditioning", ["ratio", "regression"])
def test_vol_conditioning_moves_forecasts_by_the_log_vol_ratio(
    method: str, gamma: float, conditioning: str
) -> None:
    # Epochs every 40 candles: the five past ones all fell in the calm, now it is loud.
    close = quiet_then_loud(216, 40)
    t = topic(epoch_length=40, loss_method=method)
    history = np.full((5, 2), -3.0)
    forecaster = EwmaLossForecaster(conditioning=conditioning)  # type: ignore[arg-type]
    got = forecaster.forecast_losses(candles(close), t, history)
    now = math.sqrt(ewma_variance(log_returns(close), forecaster.vol_halflife))
    np.testing.assert_allclose(got, -3.0 + gamma * math.log10(now / 0.01), rtol=1e-9)


def test_regression_conditioning_learns_a_steeper_slope() -> None:
    # Volatility that swings every 20 candles; losses made to grow as scale**3, not scale**2.
    rng = np.random.default_rng(9)
    sizes = np.repeat(rng.choice([0.005, 0.01, 0.03], size=13), 20)[:256]
    close = prices(sizes * np.where(np.arange(256) % 2, 1.0, -1.0))
    seen = log_returns(close)
    halflife, epochs = 12.0, 200
    at = 254 - np.arange(epochs)[::-1]  # epoch_length 1, horizon 1: the newest is one back
    scales = np.log10([math.sqrt(ewma_variance(seen[:a], halflife)) for a in at])
    history = (1.0 + 3.0 * scales)[:, None]
    now = math.log10(math.sqrt(ewma_variance(seen, halflife)))
    regression = EwmaLossForecaster(halflife=50.0, conditioning="regression", shrinkage=1e-6)
    ratio = EwmaLossForecaster(halflife=50.0, conditioning="ratio")
    window, t = candles(close), topic()
    assert regression.forecast_losses(window, t, history)[0] == pytest.approx(1 + 3 * now, abs=1e-5)
    assert abs(ratio.forecast_losses(window, t, history)[0] - (1 + 3 * now)) > 1e-2


def test_price_topics_scale_errors_by_the_price() -> None:
    # A steady climb at constant volatility: only the price level changes between epochs.
    climb = 0.005
    close = prices(np.full(256, climb))
    t = topic("price", epoch_length=40)
    history = np.full((5, 1), 2.0)
    got = EwmaLossForecaster(halflife=8.0).forecast_losses(candles(close), t, history)
    at = np.array([55, 95, 135, 175, 215])  # the past epochs' last visible candles
    weights = 0.5 ** (np.arange(5)[::-1] / 8.0)
    mean_at = float(weights @ at / weights.sum())
    expected = 2.0 + 2.0 * climb * math.log10(math.e) * (255 - mean_at)
    assert got[0] == pytest.approx(expected, rel=1e-9)


def test_vol_conditioned_forecaster_predicts_losses_better_when_volatility_switches() -> None:
    # Calm and stormy regimes (5x the volatility) of 150 candles: losses jump at each switch,
    # which the volatility catches within a few candles and a slow loss average does not.
    rng = np.random.default_rng(12)
    sigma = np.repeat(rng.choice([0.004, 0.02], size=40), 150)
    close = prices(rng.normal(size=sigma.size) * sigma)
    t = topic("log_return", window=128, horizon=4, epoch_length=4)
    truth = ground_truth_series(close, t)
    history = candles(close)
    at = np.arange(200, close.size - 4, 4)
    predictions = np.stack([w.predict_history(history, at, t) for w in (Ewma(), Garch())], axis=1)
    losses = np.log10((predictions - truth[at, None]) ** 2)
    errors: dict[str, list[float]] = {"none": [], "ratio": []}
    for i in range(100, at.size, 3):
        window = history.slice(int(at[i]) - 127, int(at[i]) + 1)
        past = losses[i - 100 : i]  # the latest row is the epoch one back: its truth is known
        for conditioning in ("none", "ratio"):
            forecaster = EwmaLossForecaster(halflife=16.0, conditioning=conditioning)
            forecast = forecaster.forecast_losses(window, t, past)
            errors[conditioning].append(float(np.mean((forecast - losses[i]) ** 2)))
    assert np.mean(errors["ratio"]) < 0.95 * np.mean(errors["none"])


def test_safe_forecast_checks_what_forecasters_return() -> None:
    window = candles(random_walk(50))
    history = np.zeros((3, 2))

    @dataclasses.dataclass(frozen=True)
    class Fixed:
        out: Any
        name: str = "fixed"

        def forecast_losses(self, window: Candles, topic: TopicSpec, loss_history: Any) -> Any:
            if isinstance(self.out, Exception):
                raise self.out
            return self.out

    np.testing.assert_array_equal(
        safe_forecast(Fixed([1.0, math.nan]), window, topic(), history), [1.0, math.nan]
    )
    with pytest.raises(WorkerError, match=r"returned shape \(3,\), expected \(2,\)"):
        safe_forecast(Fixed([1.0, 2.0, 3.0]), window, topic(), history)
    with pytest.raises(WorkerError, match="infinite"):
        safe_forecast(Fixed([1.0, math.inf]), window, topic(), history)
    with pytest.raises(WorkerError, match=r"'fixed' failed .* KeyError"):
        safe_forecast(Fixed(KeyError("x")), window, topic(), history)
    with pytest.raises(NetworkError, match="epochs x inferers"):
        EwmaLossForecaster().forecast_losses(window, topic(), np.zeros(3))
