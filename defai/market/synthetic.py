"""A seeded synthetic crypto market: the offline default feed, realistic enough to test strategies.

The model (see docs/synthetic_market.md for the equations and the calibration) stacks the
stylised facts of hourly crypto returns, each for a reason a strategy would notice:

- a hidden Markov chain of market regimes (calm, bull, bear, turbulent): trends and slow,
  long-memory swings of volatility that range/LP/leverage strategies must survive;
- GARCH(1,1) on Student-t shocks: fast volatility clustering and fat tails;
- compound-Poisson jumps with common timing: crashes that hit every symbol at once;
- correlated shocks (Cholesky of a correlation matrix): ETH, BTC and SOL move together;
- intrabar high/low sampled from the Brownian bridge between open and close;
- volume that rises with volatility and with the size of the move, with a daily cycle.

`generate_market` is the pure core (numbers in, arrays out); `SyntheticFeed` wraps its series in
the point-in-time store every feed uses. Defaults are calibrated on Binance ETH/USDT and BTC/USDT
hourly candles 2017-2021 (tests/benchmarks/bench_synthetic_calibration.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from defai.errors import DataError, FeedError
from defai.market.feed import Series, SeriesStore, StoreFeed
from defai.types import FloatArray, IntArray, timeframe_ms, to_ms

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
_YEAR_HOURS = 365.0 * 24.0


def _check_finite(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not math.isfinite(value):
            raise DataError(f"{owner}: {name} must be a finite number, got {value!r}")


def _check_positive(owner: str, **values: float) -> None:
    _check_finite(owner, **values)
    for name, value in values.items():
        if value <= 0:
            raise DataError(f"{owner}: {name} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """One traded symbol: where its price starts, how volatile and how liquid it is."""

    symbol: str
    start_price: float
    annual_vol: float  # long-run annualised volatility of log returns (1.0 = 100 %)
    base_volume: float  # typical base-asset volume per hour at unit volatility multiplier

    def __post_init__(self) -> None:
        _check_positive(
            f"symbol {self.symbol!r}",
            start_price=self.start_price,
            annual_vol=self.annual_vol,
            base_volume=self.base_volume,
        )


@dataclass(frozen=True, slots=True)
class RegimeParams:
    """One state of the hidden market regime: how long it lasts, how wild and which way."""

    name: str
    mean_duration_hours: float
    vol_multiplier: float  # scales every symbol's volatility while the regime lasts
    sharpe: float  # annualised drift / annualised vol of every symbol in this regime

    def __post_init__(self) -> None:
        owner = f"regime {self.name!r}"
        _check_positive(
            owner, mean_duration_hours=self.mean_duration_hours, vol_multiplier=self.vol_multiplier
        )
        _check_finite(owner, sharpe=self.sharpe)


@dataclass(frozen=True, slots=True)
class SyntheticMarketParams:
    """The whole model; every field is validated so a bad value fails here, not mid-backtest.

    `correlation[i][j]` is the correlation of symbol i's and j's shocks; `regime_switch[a][b]` the
    probability that regime a, when it ends, hands over to regime b (zero diagonal, rows sum to 1).
    GARCH and the intraday cycle act per base candle: the defaults are calibrated for 1h candles.
    """

    symbols: tuple[SymbolParams, ...]
    correlation: tuple[tuple[float, ...], ...]
    regimes: tuple[RegimeParams, ...]
    regime_switch: tuple[tuple[float, ...], ...]
    garch_alpha: float  # reaction of variance to the last squared shock
    garch_beta: float  # persistence of variance
    tail_dof: float  # Student-t degrees of freedom of the shocks (> 2; lower = fatter tails)
    jump_rate_per_day: float  # mean number of market-wide jumps per day
    jump_mean: float  # mean jump size, in units of the symbol's per-candle volatility
    jump_std: float  # jump size dispersion, same units
    reversal: float  # MA(1) coefficient of returns (< 0: bid-ask bounce / overshoot)
    intrabar_vol_ratio: float  # volatility of the path inside a candle / the candle's volatility
    intraday_vol_amplitude: float  # relative amplitude of the daily volatility cycle
    intraday_peak_hour_utc: float  # hour of day (UTC) when volatility and volume peak
    volume_vol_elasticity: float  # d log(volume) / d log(volatility)
    volume_move_elasticity: float  # d log(volume) / d |standardised return|
    volume_noise: float  # stationary std of the log-volume noise
    volume_noise_persistence: float  # AR(1) coefficient of the log-volume noise (per candle)

    def __post_init__(self) -> None:
        owner = "synthetic market params"
        if not self.symbols:
            raise DataError(f"{owner}: at least one symbol is needed")
        names = [s.symbol for s in self.symbols]
        if len(set(names)) != len(names):
            raise DataError(f"{owner}: duplicate symbols in {names}")
        if not self.regimes:
            raise DataError(f"{owner}: at least one regime is needed")
        _check_correlation(self.correlation, names)
        _check_regime_switch(self.regime_switch, len(self.regimes))
        _check_finite(
            owner,
            garch_alpha=self.garch_alpha,
            garch_beta=self.garch_beta,
            jump_mean=self.jump_mean,
            reversal=self.reversal,
            intraday_peak_hour_utc=self.intraday_peak_hour_utc,
            volume_vol_elasticity=self.volume_vol_elasticity,
            volume_move_elasticity=self.volume_move_elasticity,
        )
        _check_positive(owner, tail_dof=self.tail_dof, intrabar_vol_ratio=self.intrabar_vol_ratio)
        if self.garch_alpha < 0 or self.garch_beta < 0 or self.garch_alpha + self.garch_beta >= 1:
            raise DataError(
                f"{owner}: GARCH needs alpha >= 0, beta >= 0 and alpha + beta < 1 for a finite "
                f"long-run variance, got alpha={self.garch_alpha}, beta={self.garch_beta}"
            )
        if self.tail_dof <= 2:
            raise DataError(f"{owner}: tail_dof must be > 2 (finite variance), got {self.tail_dof}")
        for name, value, low, high in (
            ("jump_rate_per_day", self.jump_rate_per_day, 0.0, math.inf),
            ("jump_std", self.jump_std, 0.0, math.inf),
            ("reversal", self.reversal, -1.0, 1.0),
            ("intraday_vol_amplitude", self.intraday_vol_amplitude, 0.0, 0.999),
            ("volume_noise", self.volume_noise, 0.0, math.inf),
            ("volume_noise_persistence", self.volume_noise_persistence, 0.0, 0.999),
        ):
            if not low <= value <= high:  # also rejects NaN
                raise DataError(f"{owner}: {name} must be in [{low}, {high}], got {value!r}")

    def symbol(self, name: str) -> SymbolParams:
        for s in self.symbols:
            if s.symbol == name:
                return s
        known = [s.symbol for s in self.symbols]
        raise FeedError(f"unknown synthetic symbol {name!r}; the model defines {known}")


def _check_correlation(matrix: tuple[tuple[float, ...], ...], names: list[str]) -> None:
    c = np.asarray(matrix, dtype=np.float64)
    n = len(names)
    if c.shape != (n, n):
        raise DataError(f"correlation must be a {n}x{n} matrix (one row per symbol {names})")
    if not np.all(np.isfinite(c)):
        raise DataError("correlation contains a NaN or infinite entry")
    if not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1.0):
        raise DataError("correlation must be symmetric with ones on the diagonal")
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise DataError(
            f"correlation matrix is not positive-definite (eigenvalues {np.linalg.eigvalsh(c)}): "
            "no set of random shocks can have these pairwise correlations"
        ) from None


def _check_regime_switch(matrix: tuple[tuple[float, ...], ...], n: int) -> None:
    q = np.asarray(matrix, dtype=np.float64)
    if q.shape != (n, n):
        raise DataError(f"regime_switch must be a {n}x{n} matrix (one row per regime)")
    if not np.all(np.isfinite(q)) or np.any(q < 0) or not np.allclose(q.sum(axis=1), 1.0):
        raise DataError("regime_switch rows must be probabilities (>= 0, finite) summing to 1")
    if n > 1 and np.any(np.diag(q) != 0):
        raise DataError("regime_switch must have a zero diagonal: a regime ends by switching")


# Calibrated on Binance ETH/USDT and BTC/USDT 1h, 2017-08-18 .. 2021-06-09 (see the docs page).
# SOL has no data in ../shared: its vol, volume and correlations are plausible guesses.
DEFAULT_SYMBOLS: tuple[SymbolParams, ...] = (
    SymbolParams("ETH/USDT", start_price=2300.0, annual_vol=1.11, base_volume=15_000.0),
    SymbolParams("BTC/USDT", start_price=42_000.0, annual_vol=0.92, base_volume=1_000.0),
    SymbolParams("SOL/USDT", start_price=100.0, annual_vol=1.40, base_volume=150_000.0),
)

DEFAULT_MARKET = SyntheticMarketParams(
    symbols=DEFAULT_SYMBOLS,
    correlation=(
        (1.00, 0.81, 0.72),
        (0.81, 1.00, 0.66),
        (0.72, 0.66, 1.00),
    ),
    # long regimes carry the slow swings of volatility (weekly |r| autocorrelation);
    # the Sharpe ratios net out to a near-zero long-run drift
    regimes=(
        RegimeParams("calm", mean_duration_hours=60 * 24, vol_multiplier=0.55, sharpe=0.0),
        RegimeParams("bull", mean_duration_hours=30 * 24, vol_multiplier=1.0, sharpe=2.0),
        RegimeParams("bear", mean_duration_hours=20 * 24, vol_multiplier=1.2, sharpe=-2.0),
        RegimeParams("turbulent", mean_duration_hours=10 * 24, vol_multiplier=2.2, sharpe=-2.3),
    ),
    regime_switch=(
        (0.00, 0.40, 0.35, 0.25),
        (0.60, 0.00, 0.10, 0.30),
        (0.50, 0.20, 0.00, 0.30),
        (0.50, 0.20, 0.30, 0.00),
    ),
    garch_alpha=0.07,
    garch_beta=0.89,
    tail_dof=5.0,
    jump_rate_per_day=0.3,
    jump_mean=-1.0,
    jump_std=4.0,
    reversal=-0.04,
    intrabar_vol_ratio=1.05,
    intraday_vol_amplitude=0.12,
    intraday_peak_hour_utc=15.0,
    volume_vol_elasticity=1.0,
    volume_move_elasticity=0.3,
    volume_noise=0.45,
    volume_noise_persistence=0.6,
)


@dataclass(frozen=True, slots=True)
class SyntheticMarket:
    """Generated candles per symbol plus the hidden regime path (an index into params.regimes),
    so a backtest can report how a strategy did in each regime."""

    series: tuple[Series, ...]
    regime: IntArray


def _regime_path(
    regimes: Sequence[RegimeParams],
    switch: FloatArray,
    step_hours: float,
    n: int,
    rng: np.random.Generator,
) -> tuple[IntArray, FloatArray]:
    """Regime index per candle (a Markov chain, durations geometric) and its stationary law."""
    leave = np.minimum(1.0, step_hours / np.array([r.mean_duration_hours for r in regimes]))
    k = len(regimes)
    # stationary law of the chain: the switch chain's stationary law weighted by mean duration
    if k == 1:
        embedded = np.ones(1)
    else:
        a = np.vstack([switch.T - np.eye(k), np.ones(k)])
        embedded = np.linalg.lstsq(a, np.r_[np.zeros(k), 1.0], rcond=None)[0]
    stationary = embedded / leave
    stationary /= stationary.sum()
    path = np.empty(n, dtype=np.int64)
    state = int(rng.choice(k, p=stationary))
    filled = 0
    while filled < n:
        length = int(rng.geometric(leave[state]))
        path[filled : filled + length] = state
        filled += length
        if k > 1:
            state = int(rng.choice(k, p=switch[state]))
    return path, stationary


def _garch_variance(
    shocks: FloatArray, jumps: FloatArray, alpha: float, beta: float, long_run: float
) -> tuple[FloatArray, FloatArray]:
    """GARCH(1,1) variance h and total unit shock u = sqrt(h) z + J, column-wise per symbol.

    Jumps feed the variance, so a crash is followed by a turbulent spell as in real markets.
    The recursion is inherently sequential; looping over candles with symbols vectorised costs
    a few microseconds per candle.
    """
    n = shocks.shape[0]
    omega = 1.0 - alpha - beta
    h = np.empty_like(shocks)
    u = np.empty_like(shocks)
    h_t = np.full(shocks.shape[1], long_run)
    for t in range(n):
        h[t] = h_t
        u[t] = np.sqrt(h_t) * shocks[t] + jumps[t]
        h_t = omega + alpha * u[t] ** 2 + beta * h_t
    return h, u


def _ar1(innovations: FloatArray, persistence: float) -> FloatArray:
    """x_t = phi x_{t-1} + e_t along axis 0, by prefix doubling: log2(n) vectorised passes.

    After the pass with shift s, x_t sums phi^j e_{t-j} for j < 2s; phi^s underflows to 0 long
    before s reaches n, so the loop stops early for any persistence < 1.
    """
    x = innovations.copy()
    coeff, shift = persistence, 1
    while shift < len(x) and coeff != 0.0:
        x[shift:] = x[shift:] + coeff * x[:-shift]
        coeff, shift = coeff * coeff, 2 * shift
    return x


def _student_t_abs_mean(dof: float) -> float:
    """E|z| of a Student-t scaled to unit variance: centres the volume's reaction to moves."""
    log_ratio = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)
    return 2.0 * math.sqrt(dof - 2) * math.exp(log_ratio) / (math.sqrt(math.pi) * (dof - 1))


def generate_market(
    params: SyntheticMarketParams,
    rng: np.random.Generator,
    start_ms: int,
    n_candles: int,
    timeframe: str = "1h",
    symbols: Sequence[str] | None = None,
) -> SyntheticMarket:
    """Simulate `n_candles` OHLCV candles from `start_ms` for `symbols` (default: all of them).

    Pure: the result depends only on the arguments and the generator's state. The draws depend
    on the symbol set, so ETH's path with and without SOL differs for the same seed.
    """
    step_ms = timeframe_ms(timeframe)
    if n_candles <= 0:
        raise DataError(f"n_candles must be > 0, got {n_candles}")
    if start_ms % step_ms:
        raise DataError(f"start {start_ms} ms is not aligned to a {timeframe} candle boundary")
    if symbols is None:
        names = [s.symbol for s in params.symbols]
    else:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
    if not names or len(set(names)) != len(names):
        raise FeedError(f"symbols must be a non-empty list without duplicates, got {names}")
    chosen = [params.symbol(name) for name in names]
    index = [params.symbols.index(s) for s in chosen]
    corr = np.asarray(params.correlation, dtype=np.float64)[np.ix_(index, index)]
    chol = np.linalg.cholesky(corr)
    k, n = len(chosen), n_candles
    step_hours = step_ms / _HOUR_MS
    ts = start_ms + step_ms * np.arange(n, dtype=np.int64)

    regime, stationary = _regime_path(
        params.regimes, np.asarray(params.regime_switch, dtype=np.float64), step_hours, n, rng
    )
    vol_mult = np.array([r.vol_multiplier for r in params.regimes])
    sharpe = np.array([r.sharpe for r in params.regimes])

    # multivariate Student-t shocks: one chi-square mixing per candle, so tails are joint
    dof = params.tail_dof
    mixing = np.sqrt(rng.chisquare(dof, n) / (dof - 2))
    z = (rng.standard_normal((n, k)) @ chol.T) / mixing[:, None]

    # compound Poisson jumps: common timing (market events), correlated sizes; compensated
    # (mean removed) so that a negative mean jump skews returns without adding a downward drift
    lam = params.jump_rate_per_day * step_hours / 24
    counts = rng.poisson(lam, n).astype(np.float64)
    sizes = rng.standard_normal((n, k)) @ chol.T
    jumps = (counts - lam)[:, None] * params.jump_mean + np.sqrt(counts)[:, None] * (
        params.jump_std * sizes
    )
    jump_var = (params.jump_mean**2 + params.jump_std**2) * lam  # E[J^2]

    persistence = params.garch_alpha + params.garch_beta
    long_run_h = 1.0 + params.garch_alpha * jump_var / (1.0 - persistence)
    h, u = _garch_variance(z, jumps, params.garch_alpha, params.garch_beta, long_run_h)

    if step_ms < _DAY_MS:
        hour = ((ts + step_ms // 2) % _DAY_MS) / _HOUR_MS
        phase = 2 * np.pi * (hour - params.intraday_peak_hour_utc) / 24
        season = 1.0 + params.intraday_vol_amplitude * np.cos(phase)
        season_var = 1.0 + params.intraday_vol_amplitude**2 / 2
    else:
        season, season_var = np.ones(n), 1.0

    # unit-variance normalisation: annual_vol is the long-run vol whatever the other knobs say
    unit_var = (
        float(stationary @ vol_mult**2)
        * season_var
        * (1.0 + params.reversal**2)
        * (long_run_h + jump_var)
    )
    step_years = step_hours / _YEAR_HOURS
    annual_vol = np.array([s.annual_vol for s in chosen])
    sigma = annual_vol * math.sqrt(step_years / unit_var)  # per-candle vol at unit multipliers

    market_mult = vol_mult[regime] * season  # (n,)
    cond_vol = sigma[None, :] * market_mult[:, None] * np.sqrt(h)  # diffusive vol per candle
    shocks = sigma[None, :] * market_mult[:, None] * u
    drift = sharpe[regime][:, None] * annual_vol[None, :] * step_years
    log_ret = drift + shocks
    log_ret[1:] += params.reversal * shocks[:-1]

    start_log = np.log([s.start_price for s in chosen])
    log_close = start_log + np.cumsum(log_ret, axis=0)
    log_open = np.vstack([start_log, log_close[:-1]])

    # extremes of a Brownian bridge from 0 to x with variance s^2: (x +- sqrt(x^2 - 2 s^2 ln U))/2
    bridge_var = (params.intrabar_vol_ratio * cond_vol) ** 2
    up = np.sqrt(log_ret**2 - 2 * bridge_var * np.log1p(-rng.random((n, k))))
    down = np.sqrt(log_ret**2 - 2 * bridge_var * np.log1p(-rng.random((n, k))))
    open_, close = np.exp(log_open), np.exp(log_close)
    # exp() of different sums can round a hair inside the body: clamp to keep OHLC consistent
    high = np.maximum(np.exp(log_open + (log_ret + up) / 2), np.maximum(open_, close))
    low = np.minimum(np.exp(log_open + (log_ret - down) / 2), np.minimum(open_, close))

    persist = params.volume_noise_persistence
    innovations = rng.standard_normal((n, k)) * params.volume_noise * math.sqrt(1 - persist**2)
    innovations[0] /= math.sqrt(1 - persist**2)  # start the AR(1) noise in its stationary law
    noise = _ar1(innovations, persist)
    surprise = np.abs(u) / np.sqrt(h) - _student_t_abs_mean(dof)
    log_volume = (
        np.log([s.base_volume * step_hours for s in chosen])
        + params.volume_vol_elasticity * np.log(market_mult[:, None] * np.sqrt(h))
        + params.volume_move_elasticity * surprise
        + noise
    )
    volume = np.exp(log_volume)

    series = tuple(
        Series.from_arrays(
            name, timeframe, ts, open_[:, j], high[:, j], low[:, j], close[:, j], volume[:, j]
        )
        for j, name in enumerate(names)
    )
    regime.setflags(write=False)
    return SyntheticMarket(series, regime)


class SyntheticFeed(StoreFeed):
    """The offline default market: seeded, so the same seed gives the same candles bit for bit."""

    def __init__(
        self,
        seed: int = 7,
        start: int | str | pd.Timestamp = "2024-01-01",
        days: int = 365,
        symbols: Sequence[str] | None = None,
        params: SyntheticMarketParams = DEFAULT_MARKET,
        timeframe: str = "1h",
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise DataError(f"seed must be a non-negative int, got {seed!r}")
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
            raise DataError(f"days must be a positive int, got {days!r}")
        n_candles = days * _DAY_MS // timeframe_ms(timeframe)
        if n_candles == 0:
            raise DataError(f"{days} day(s) hold no complete {timeframe} candle")
        self.seed = seed
        self.params = params
        self.market = generate_market(
            params, np.random.default_rng(seed), to_ms(start), n_candles, timeframe, symbols
        )
        super().__init__(SeriesStore(list(self.market.series)))
