"""One epoch of Allora's inference synthesis as pure numpy: regrets in, network inferences out.

Every network the mechanism needs (combined, naive, one-out per withheld worker, one-in per
forecaster, each forecaster's forecast-implied inference with and without every inferer) is a
weighted mean of some participants' values, weighted by a function of their regrets. So they are
all rows of one masked matrix and go through one function, `network_rows`, which is what keeps
the epoch vectorised over workers and identical to Allora's reference vectors.

Layout conventions: inferers are indexed 0..n_i-1 and forecasters 0..n_f-1; where both are pooled
("workers"), inferers come first, then forecasters (n_w = n_i + n_f). NaN marks what does not
exist: an absent worker's inference, a regret not yet earned, a network nobody can form.
All losses are log10 of the raw loss, as reputers report them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.special import expit, log_expit

from defai.errors import NetworkError
from defai.types import FloatArray

BoolArray = npt.NDArray[np.bool_]
Weighting = Literal["v0.6", "v0.16"]

MAD_TO_SIGMA = 1.4826
"""Scales a median absolute deviation to a normal standard deviation (v0.16 regret scale)."""

ROW_BUDGET = 1 << 18
"""Matrix cells per batch of network rows: bounds memory when one-out forecasts get large."""


@dataclass(frozen=True)
class SynthesisParams:
    """A topic's synthesis parameters; defaults reproduce Allora's v0.6 reference vectors."""

    p_norm: float = 3.0
    c_norm: float = 0.75
    epsilon: float = 0.01
    alpha_regret: float = 0.1
    epsilon_safe_div: float = 1e-7
    weighting: Weighting = "v0.6"
    min_previous_weight: float = 1e-6
    confidence_percentiles: tuple[float, ...] = (2.28, 15.87, 50.0, 84.13, 97.72)

    def __post_init__(self) -> None:
        positive = {
            "p_norm": self.p_norm,
            "epsilon": self.epsilon,
            "epsilon_safe_div": self.epsilon_safe_div,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise NetworkError(f"SynthesisParams.{name} must be finite and > 0, got {value!r}")
        if not math.isfinite(self.c_norm):
            raise NetworkError(f"SynthesisParams.c_norm must be finite, got {self.c_norm!r}")
        if not 0 < self.alpha_regret <= 1:
            raise NetworkError(
                f"SynthesisParams.alpha_regret must be in (0, 1], got {self.alpha_regret!r}"
            )
        if self.weighting not in ("v0.6", "v0.16"):
            raise NetworkError(
                f"SynthesisParams.weighting must be 'v0.6' or 'v0.16', got {self.weighting!r}"
            )
        if not 0 <= self.min_previous_weight < 1:
            raise NetworkError(
                "SynthesisParams.min_previous_weight must be in [0, 1), "
                f"got {self.min_previous_weight!r}"
            )
        pct = self.confidence_percentiles
        if not pct or any(not 0 <= q <= 100 for q in pct) or list(pct) != sorted(pct):
            raise NetworkError(
                "SynthesisParams.confidence_percentiles must be ascending values in [0, 100], "
                f"got {pct!r}"
            )


def _bundle_layout(n_i: int, n_f: int) -> list[tuple[str, tuple[int, ...]]]:
    """Field order and per-network shape of a ValueBundle (after any leading axes)."""
    return [
        ("combined", ()),
        ("naive", ()),
        ("inferers", (n_i,)),
        ("forecast_implied", (n_f,)),
        ("forecast_implied_one_out", (n_f, n_i)),
        ("one_out", (n_i + n_f,)),
        ("one_in", (n_f,)),
    ]


@dataclass(frozen=True)
class ValueBundle:
    """Every value of an epoch that reputers score, one field per kind of network.

    The same shape carries the epoch's inferences (no leading axis), the reputers' log-losses
    (leading reputer axis) and the stake-weighted network losses, so a reputer is simply
    `bundle.map(loss)` and the network losses are a reduction over the leading axis.
    """

    combined: FloatArray
    naive: FloatArray
    inferers: FloatArray
    forecast_implied: FloatArray
    forecast_implied_one_out: FloatArray
    """(..., n_f, n_i): forecaster k's forecast-implied inference with inferer j withheld."""
    one_out: FloatArray
    """(..., n_w): the combined network without worker l (inferers, then forecasters)."""
    one_in: FloatArray
    """(..., n_f): the naive network plus forecaster k's forecast-implied inference only."""

    def __post_init__(self) -> None:
        lead = np.shape(self.combined)
        if np.ndim(self.inferers) <= len(lead) or np.ndim(self.forecast_implied) <= len(lead):
            raise NetworkError(
                "ValueBundle.inferers and .forecast_implied need a worker axis after the "
                f"leading axes {lead}"
            )
        n_i = np.shape(self.inferers)[len(lead)]
        n_f = np.shape(self.forecast_implied)[len(lead)]
        for name, shape in _bundle_layout(n_i, n_f):
            got = np.shape(getattr(self, name))
            if got != (*lead, *shape):
                raise NetworkError(
                    f"ValueBundle.{name} has shape {got}, expected {(*lead, *shape)}"
                )

    @property
    def n_inferers(self) -> int:
        return int(np.shape(self.inferers)[-1])

    @property
    def n_forecasters(self) -> int:
        return int(np.shape(self.forecast_implied)[-1])

    def map(self, fn: Callable[[FloatArray], FloatArray]) -> ValueBundle:
        """Apply `fn` to every field (a reputer's loss, a stake-weighted mean...)."""
        return ValueBundle(
            **{f.name: np.asarray(fn(getattr(self, f.name))) for f in dataclasses.fields(self)}
        )

    def flat(self) -> FloatArray:
        """All values along the last axis, leading axes kept: the vector reputers agree on."""
        lead = np.shape(self.combined)
        layout = _bundle_layout(self.n_inferers, self.n_forecasters)
        parts = [np.reshape(getattr(self, name), (*lead, -1)) for name, _ in layout]
        return np.concatenate(parts, axis=-1)

    @classmethod
    def from_flat(cls, values: FloatArray, n_inferers: int, n_forecasters: int) -> ValueBundle:
        """Inverse of `flat`."""
        layout = _bundle_layout(n_inferers, n_forecasters)
        sizes = [math.prod(shape) for _, shape in layout]
        if values.shape[-1:] != (sum(sizes),):
            raise NetworkError(
                f"a flat bundle of {n_inferers} inferers and {n_forecasters} forecasters has "
                f"{sum(sizes)} values on its last axis, got shape {values.shape}"
            )
        ends = np.cumsum(sizes).tolist()
        lead = values.shape[:-1]
        return cls(
            **{
                name: values[..., end - size : end].reshape((*lead, *shape))
                for (name, shape), size, end in zip(layout, sizes, ends, strict=True)
            }
        )

    @staticmethod
    def stack(bundles: Sequence[ValueBundle]) -> ValueBundle:
        """One bundle with a new leading axis, e.g. from one bundle of losses per reputer."""
        if not bundles:
            raise NetworkError("cannot stack an empty sequence of value bundles")
        return ValueBundle(
            **{
                f.name: np.stack([np.asarray(getattr(b, f.name), np.float64) for b in bundles])
                for f in dataclasses.fields(ValueBundle)
            }
        )


@dataclass(frozen=True)
class Regrets:
    """EMA regrets of every network's participants; NaN marks a worker with none yet."""

    inferers: FloatArray
    forecasters: FloatArray
    naive: FloatArray
    one_out: FloatArray
    """(n_w, n_w): [withheld worker l, worker] in the network without l."""
    one_in: FloatArray
    """(n_f, n_i + 1): [forecaster k, inferers then k itself] in k's one-in network."""

    def __post_init__(self) -> None:
        n_i, n_f = np.shape(self.inferers)[0], np.shape(self.forecasters)[0]
        expected = {
            "inferers": (n_i,),
            "forecasters": (n_f,),
            "naive": (n_i,),
            "one_out": (n_i + n_f, n_i + n_f),
            "one_in": (n_f, n_i + 1),
        }
        for name, shape in expected.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise NetworkError(f"Regrets.{name} has shape {got}, expected {shape}")

    @classmethod
    def none_yet(cls, n_inferers: int, n_forecasters: int) -> Regrets:
        """Regrets of a topic nobody has been scored in yet."""
        n_w = n_inferers + n_forecasters

        def nan(*shape: int) -> FloatArray:
            return np.full(shape, np.nan)

        return cls(
            inferers=nan(n_inferers),
            forecasters=nan(n_forecasters),
            naive=nan(n_inferers),
            one_out=nan(n_w, n_w),
            one_in=nan(n_forecasters, n_inferers + 1),
        )


@dataclass(frozen=True)
class SynthesisState:
    """What synthesis needs from earlier epochs."""

    regrets: Regrets
    network_loss: float = math.nan
    """Loss of the last scored combined inference (L_{i-1}); NaN until one is scored."""
    initial_regret: float = 0.0
    """Regret a newcomer starts from (and is weighted with until it has its own)."""
    weights: FloatArray = field(default_factory=lambda: np.empty(0))
    """(n_w,) last normalised combined weights, empty before any: v0.16 scales regrets by the
    workers still weighted, so a crowd of ignored workers cannot inflate the scale."""


@dataclass(frozen=True)
class Synthesis:
    """All inferences of one epoch, ready for reputers and consumers."""

    values: ValueBundle
    weights: FloatArray
    """(n_w,) normalised weights of the combined inference (0 for absent workers)."""
    confidence_interval: FloatArray
    """Combined-weight percentiles of all inputs, at `SynthesisParams.confidence_percentiles`."""
    forecasted_regrets: FloatArray
    """(n_f, n_i): L_{i-1} minus forecaster k's forecast of inferer j's loss."""


def ema(alpha: float, current: npt.ArrayLike, previous: npt.ArrayLike) -> FloatArray:
    """EMA step where a NaN current (absent) keeps the average and a NaN previous starts it."""
    now = np.asarray(current, dtype=np.float64)
    before = np.asarray(previous, dtype=np.float64)
    blended = alpha * now + (1 - alpha) * before
    return np.where(np.isnan(now), before, np.where(np.isnan(before), now, blended))


def _masked(values: FloatArray, mask: BoolArray, fill: float) -> FloatArray:
    return np.where(mask, values, fill)


def _divide(numerator: FloatArray, denominator: FloatArray, fill: float) -> FloatArray:
    """numerator / denominator where the denominator is positive, `fill` elsewhere."""
    out = np.full(np.broadcast_shapes(numerator.shape, denominator.shape), fill)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _masked_median(values: FloatArray, mask: BoolArray) -> FloatArray:
    """Median along the last axis over masked entries (NaN for an empty row)."""
    ordered = np.sort(_masked(values, mask, np.nan), axis=-1)  # NaN sorts last
    count = mask.sum(axis=-1, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=-1)
    high = np.take_along_axis(ordered, np.minimum(count // 2, ordered.shape[-1] - 1), axis=-1)
    return np.where(count > 0, (low + high) / 2, np.nan)[..., 0]


def _v06_weights(regrets: FloatArray, mask: BoolArray, params: SynthesisParams) -> FloatArray:
    """φ'_p of the regrets over their (Bessel) spread, capped, floored and shifted as in v0.6."""
    p, c = params.p_norm, params.c_norm
    count = mask.sum(axis=-1, keepdims=True)
    mean = _masked(regrets, mask, 0.0).sum(axis=-1, keepdims=True) / np.maximum(count, 1)
    deviation = _masked(regrets - mean, mask, 0.0)
    squares = np.einsum("...i,...i->...", deviation, deviation)[..., None]
    spread = np.sqrt(squares / np.maximum(count - 1, 1))  # a lone regret has no spread
    normalised = regrets / (spread + params.epsilon)
    top = _masked(normalised, mask, -np.inf).max(axis=-1, keepdims=True)
    # If even the best is far below c, shift everyone up so that the best still counts.
    normalised = np.minimum(normalised + np.maximum(c - 8.25 / p - top, 0.0), c + 6.75 / p)
    counted = mask & (normalised >= c - 17.25 / p)
    return np.where(counted, p * expit(p * (normalised - c)), 0.0)


def _v016_weights(
    regrets: FloatArray, mask: BoolArray, scale_mask: BoolArray, params: SynthesisParams
) -> FloatArray:
    """φ'(R̂)/φ'(R̂_max) with a robust (MAD) regret scale, normalised: the live network's rule."""
    p, c = params.p_norm, params.c_norm
    scaled_by = mask & scale_mask
    scaled_by = np.where(scaled_by.sum(axis=-1, keepdims=True) >= 2, scaled_by, mask)
    centre = _masked_median(regrets, scaled_by)[..., None]
    mad = _masked_median(np.abs(regrets - centre), scaled_by)[..., None]
    normalised = regrets / (MAD_TO_SIGMA * mad + params.epsilon)
    top = _masked(normalised, mask, -np.inf).max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # rows without participants
    relative = log_expit(p * (normalised - c)) - log_expit(p * (top - c))
    weights = np.exp(_masked(relative, mask, -np.inf))
    total = weights.sum(axis=-1, keepdims=True)
    return _divide(weights, total, 0.0)


def _weights(
    regrets: FloatArray, mask: BoolArray, scale_mask: BoolArray, params: SynthesisParams
) -> FloatArray:
    if params.weighting == "v0.6":
        return _v06_weights(regrets, mask, params)
    return _v016_weights(regrets, mask, scale_mask, params)


def regret_weights(
    regrets: npt.ArrayLike,
    params: SynthesisParams,
    mask: npt.ArrayLike | None = None,
    scale_mask: npt.ArrayLike | None = None,
) -> FloatArray:
    """Weights of the participants (`mask`, and not NaN) along the last axis, from their regrets.

    v0.6 returns φ'_p values (the caller normalises); v0.16 returns weights summing to 1 per row.
    `scale_mask` (v0.16 only) picks who defines the regret scale: previously weighted workers.
    """
    r = np.asarray(regrets, dtype=np.float64)
    m = ~np.isnan(r) if mask is None else np.asarray(mask, dtype=bool) & ~np.isnan(r)
    s = np.ones(r.shape, dtype=bool) if scale_mask is None else np.asarray(scale_mask, bool)
    return _weights(np.where(m, r, 0.0), m, s, params)


def network_rows(
    values: FloatArray,
    regrets: FloatArray,
    mask: BoolArray,
    *,
    cold: bool,
    initial_regret: float,
    scale_mask: BoolArray,
    params: SynthesisParams,
) -> tuple[FloatArray, FloatArray]:
    """One network inference per row over the masked participants, and their normalised weights.

    Cold starts as Allora: a lone input is returned as is (so are unanimous inputs, exactly);
    with no network loss yet the median; when no participant has a regret yet, the plain mean.
    Newcomers among experienced workers are weighted with the initial regret.
    """
    new = np.isnan(regrets)
    weights = _weights(np.where(new, initial_regret, regrets), mask, scale_mask, params)
    count = mask.sum(axis=-1)
    plain = np.logical_or(cold, ~(mask & ~new).any(axis=-1))
    if plain.any():
        weights = np.where(plain[..., None], mask / np.maximum(count, 1)[..., None], weights)
    weights = weights / np.maximum(weights.sum(axis=-1), params.epsilon_safe_div)[..., None]
    if cold:
        combined = _masked_median(values, mask)
    else:
        combined = np.einsum("...i,...i->...", weights, _masked(values, mask, 0.0))
    lowest = _masked(values, mask, np.inf).min(axis=-1)
    unanimous = lowest == _masked(values, mask, -np.inf).max(axis=-1)  # e.g. a lone input
    combined = np.where(unanimous, lowest, np.where(count == 0, np.nan, combined))
    return combined, weights


def _in_batches(
    rows: int, cells_per_row: int, compute: Callable[[slice], FloatArray]
) -> FloatArray:
    """Run `compute` over slices of `rows` so that no batch exceeds ROW_BUDGET matrix cells."""
    step = max(1, ROW_BUDGET // max(cells_per_row, 1))
    return np.concatenate(
        [compute(slice(start, start + step)) for start in range(0, rows, step)] or [np.empty(0)]
    )


def forecast_implied_inferences(
    inferences: FloatArray,
    forecasted_regrets: FloatArray,
    covered: BoolArray,
    *,
    cold: bool,
    scale_mask: BoolArray,
    params: SynthesisParams,
) -> tuple[FloatArray, FloatArray]:
    """Each forecaster's inference from its forecasted regrets, and again without each inferer.

    Returns (n_f,) and (n_f, n_i); weights are over inferers only, as in Allora.
    """
    n_f, n_i = forecasted_regrets.shape
    # Row j withholds inferer j (when it submitted); the last row withholds nobody.
    withheld = np.vstack(
        [~np.eye(n_i, dtype=bool) & ~np.isnan(inferences)[:, None], np.ones((1, n_i), bool)]
    )
    rows = np.arange(n_f * (n_i + 1))

    def implied(chunk: slice) -> FloatArray:
        forecaster, without = np.divmod(rows[chunk], n_i + 1)
        mask = covered[forecaster] & withheld[without]
        return network_rows(
            np.broadcast_to(inferences, mask.shape),
            forecasted_regrets[forecaster],
            mask,
            cold=cold,
            initial_regret=0.0,
            scale_mask=np.broadcast_to(scale_mask, mask.shape),
            params=params,
        )[0]

    every = _in_batches(rows.size, n_i, implied).reshape(n_f, n_i + 1)
    return every[:, n_i], every[:, :n_i]


def weighted_percentiles(
    values: FloatArray, weights: FloatArray, percentiles: Sequence[float]
) -> FloatArray:
    """Percentiles at mid-point cumulative weights (cumsum − w/2)/Σw, linearly interpolated."""
    order = np.argsort(values, kind="stable")
    ordered, w = values[order], weights[order]
    cumulative = (np.cumsum(w) - w / 2) / w.sum()
    return np.interp(np.asarray(percentiles) / 100, cumulative, ordered)


def _as_array(value: npt.ArrayLike, name: str, shape: tuple[int, ...]) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise NetworkError(f"{name} has shape {array.shape}, expected {shape}")
    return array


def synthesize(
    inferences: npt.ArrayLike,
    forecasted_losses: npt.ArrayLike,
    state: SynthesisState,
    params: SynthesisParams,
) -> Synthesis:
    """Every network inference of the epoch from the submissions and the regrets so far.

    `inferences` is (n_i,) and `forecasted_losses` (n_f, n_i), forecaster k's log-loss forecast
    for inferer j; NaN marks an absent inferer, or a forecast not made.
    """
    n_i, n_f = state.regrets.inferers.shape[0], state.regrets.forecasters.shape[0]
    n_w = n_i + n_f
    inference = _as_array(inferences, "inferences", (n_i,))
    forecasts = _as_array(forecasted_losses, "forecasted_losses", (n_f, n_i))
    present = ~np.isnan(inference)
    if not present.any():
        raise NetworkError("no inference was submitted this epoch: nothing to synthesize")
    previous = state.weights if state.weights.size else np.full(n_w, np.nan)
    if previous.shape != (n_w,):
        raise NetworkError(f"SynthesisState.weights has shape {previous.shape}, expected {(n_w,)}")
    scale_mask = previous > params.min_previous_weight
    cold = math.isnan(state.network_loss)

    forecasted_regrets = state.network_loss - forecasts
    covered = present & ~np.isnan(forecasts)
    implied, implied_one_out = forecast_implied_inferences(
        inference,
        forecasted_regrets,
        covered,
        cold=cold,
        scale_mask=scale_mask[:n_i],
        params=params,
    )
    forecasting = ~np.isnan(implied)
    taking_part = np.concatenate([present, forecasting])

    # Rows: combined, naive, one-out per withheld worker, one-in per forecaster.
    values = np.tile(np.concatenate([inference, implied]), (2 + n_w + n_f, 1))
    values[2 : 2 + n_i, n_i:] = implied_one_out.T  # forecasts recomputed without inferer l
    nan_forecasters = np.full(n_f, np.nan)
    r = state.regrets
    alone = np.eye(n_f, dtype=bool)
    regrets = np.vstack(
        [
            np.concatenate([r.inferers, r.forecasters]),
            np.concatenate([r.naive, nan_forecasters]),
            r.one_out,
            np.hstack([r.one_in[:, :n_i], np.where(alone, r.one_in[:, n_i:], np.nan)]),
        ]
    )
    withheld = ~np.eye(n_w, dtype=bool) & taking_part & taking_part[:, None]
    mask = np.vstack(
        [
            taking_part,
            np.concatenate([present, np.zeros(n_f, dtype=bool)]),
            withheld,
            np.hstack([present & forecasting[:, None], alone & forecasting[:, None]]),
        ]
    ) & ~np.isnan(values)  # e.g. a forecast that covered only the withheld inferer
    networks, weights = network_rows(
        values,
        regrets,
        mask,
        cold=cold,
        initial_regret=state.initial_regret,
        scale_mask=np.broadcast_to(scale_mask, mask.shape),
        params=params,
    )
    inputs = values[0, taking_part]
    interval = weighted_percentiles(inputs, weights[0, taking_part], params.confidence_percentiles)
    return Synthesis(
        values=ValueBundle(
            combined=networks[0],
            naive=networks[1],
            inferers=inference,
            forecast_implied=implied,
            forecast_implied_one_out=implied_one_out,
            one_out=networks[2 : 2 + n_w],
            one_in=networks[2 + n_w :],
        ),
        weights=weights[0],
        confidence_interval=interval,
        forecasted_regrets=forecasted_regrets,
    )


def network_losses(reputer_losses: ValueBundle, stakes: npt.ArrayLike) -> ValueBundle:
    """Stake-weighted mean of the reputers' log-losses (leading axis), skipping NaN reports."""
    s = np.asarray(stakes, dtype=np.float64)
    if s.shape != np.shape(reputer_losses.combined) or s.ndim != 1:
        raise NetworkError(
            f"stakes has shape {s.shape}, expected one per reputer "
            f"{np.shape(reputer_losses.combined)}"
        )
    losses = reputer_losses.flat()
    reported = ~np.isnan(losses)
    means = _divide(s @ _masked(losses, reported, 0.0), s @ reported, np.nan)
    return ValueBundle.from_flat(means, reputer_losses.n_inferers, reputer_losses.n_forecasters)


def update_regrets(
    regrets: Regrets, losses: ValueBundle, initial_regret: float, alpha: float
) -> Regrets:
    """EMA every regret family with this epoch's network losses; newcomers start at the initial.

    A worker in a network is judged against that network's loss; in a network without inferer l,
    a forecaster is judged by its forecast-implied inference recomputed without l, as in Allora.
    """
    n_i = losses.n_inferers
    workers = np.concatenate([losses.inferers, losses.forecast_implied])
    one_out = losses.one_out[:, None] - workers
    one_out[:n_i, n_i:] = losses.one_out[:n_i, None] - losses.forecast_implied_one_out.T
    one_in_members = np.hstack(
        [
            np.broadcast_to(losses.inferers, (losses.n_forecasters, n_i)),
            losses.forecast_implied[:, None],
        ]
    )

    def step(gap: FloatArray, previous: FloatArray) -> FloatArray:
        starting = np.isnan(previous) & ~np.isnan(gap)
        return ema(alpha, gap, np.where(starting, initial_regret, previous))

    return Regrets(
        inferers=step(losses.combined - losses.inferers, regrets.inferers),
        forecasters=step(losses.combined - losses.forecast_implied, regrets.forecasters),
        naive=step(losses.naive - losses.inferers, regrets.naive),
        one_out=step(one_out, regrets.one_out),
        one_in=step(losses.one_in[:, None] - one_in_members, regrets.one_in),
    )


def linear_quantile(values: npt.ArrayLike, q: float) -> float:
    """q-quantile interpolated linearly between order statistics, as numpy's and Allora's."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return float(np.interp(q * (ordered.size - 1), np.arange(ordered.size), ordered))


def initial_regret(experienced_regrets: npt.ArrayLike, params: SynthesisParams) -> float:
    """Newcomers' regret: low in the experienced distribution, so they start with a small weight."""
    r = np.asarray(experienced_regrets, dtype=np.float64)
    if r.size == 0:
        raise NetworkError("the initial regret needs at least one experienced worker's regret")
    spread = float(np.std(r, ddof=1)) if r.size > 1 else 0.0
    offset = params.c_norm - 8.25 / params.p_norm
    return linear_quantile(r, 0.25) + offset * (spread + params.epsilon)
