"""SyntheticFeed: determinism, OHLC consistency, stylised facts, point-in-time reads, bad input."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from defai.errors import DataError, FeedError
from defai.market.feed import Series
from defai.market.synthetic import (
    DEFAULT_MARKET,
    SymbolParams,
    SyntheticFeed,
    generate_market,
)
from defai.types import FloatArray, to_ms

HOUR_MS = 3_600_000
START = "2024-01-01"


@pytest.fixture(scope="module")
def year() -> SyntheticFeed:
    return SyntheticFeed(seed=11, start=START, days=365)


def base(feed: SyntheticFeed, symbol: str) -> Series:
    return feed.store.series(symbol, "1h")


def log_returns(series: Series) -> FloatArray:
    return np.diff(np.log(series.close))


def autocorr(x: FloatArray, lag: int) -> float:
    d = x - x.mean()
    return float((d[:-lag] * d[lag:]).sum() / (d * d).sum())


FIELDS = ("ts", "open", "high", "low", "close", "volume")


def test_same_seed_gives_bit_identical_candles() -> None:
    a, b = SyntheticFeed(seed=3, days=30), SyntheticFeed(seed=3, days=30)
    for symbol in a.symbols():
        for field in FIELDS:
            assert np.array_equal(getattr(base(a, symbol), field), getattr(base(b, symbol), field))
    assert np.array_equal(a.market.regime, b.market.regime)


def test_different_seeds_give_different_candles() -> None:
    a, b = SyntheticFeed(seed=3, days=30), SyntheticFeed(seed=4, days=30)
    assert np.array_equal(base(a, "ETH/USDT").ts, base(b, "ETH/USDT").ts)
    assert not np.array_equal(base(a, "ETH/USDT").close, base(b, "ETH/USDT").close)


def test_default_symbols_hourly_grid_and_start_prices(year: SyntheticFeed) -> None:
    assert year.symbols() == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    for spec in DEFAULT_MARKET.symbols:
        s = base(year, spec.symbol)
        assert len(s.ts) == 365 * 24
        assert s.ts[0] == to_ms(START)
        assert np.all(np.diff(s.ts) == HOUR_MS)
        assert s.open[0] == pytest.approx(spec.start_price, rel=1e-12)
    assert year.timeframes("ETH/USDT") == ["1h", "4h", "1d"]


def test_ohlc_consistent_positive_and_continuous(year: SyntheticFeed) -> None:
    for symbol in year.symbols():
        s = base(year, symbol)
        assert np.all(np.isfinite(np.c_[s.open, s.high, s.low, s.close, s.volume]))
        assert np.all(s.low > 0) and np.all(s.volume > 0)
        assert np.all(s.high >= np.maximum(s.open, s.close))
        assert np.all(s.low <= np.minimum(s.open, s.close))
        assert np.array_equal(s.open[1:], s.close[:-1])  # no gaps between candles


def test_symbols_are_positively_correlated_near_the_configured_level(year: SyntheticFeed) -> None:
    names = [s.symbol for s in DEFAULT_MARKET.symbols]
    returns = np.array([log_returns(base(year, name)) for name in names])
    realised = np.corrcoef(returns)
    configured = np.array(DEFAULT_MARKET.correlation)
    off_diagonal = ~np.eye(len(names), dtype=bool)
    assert np.all(realised[off_diagonal] > 0.3)
    assert np.allclose(realised[off_diagonal], configured[off_diagonal], atol=0.12)


def test_volatility_clusters_and_tails_are_fat(year: SyntheticFeed) -> None:
    r = log_returns(base(year, "ETH/USDT"))
    assert autocorr(np.abs(r), 1) > 0.15
    assert autocorr(np.abs(r), 24) > 0.05
    excess_kurtosis = ((r - r.mean()) ** 4).mean() / r.var() ** 2 - 3
    assert excess_kurtosis > 3
    assert r.std() * math.sqrt(24 * 365) == pytest.approx(1.11, rel=0.35)


def test_volume_rises_with_the_size_of_the_move(year: SyntheticFeed) -> None:
    s = base(year, "BTC/USDT")
    r = log_returns(s)
    assert np.corrcoef(np.abs(r), np.log(s.volume[1:]))[0, 1] > 0.25


def test_turbulent_regime_is_more_volatile_than_calm(year: SyntheticFeed) -> None:
    r = log_returns(base(year, "ETH/USDT"))
    regime = year.market.regime[1:]
    names = [reg.name for reg in DEFAULT_MARKET.regimes]
    calm, turbulent = names.index("calm"), names.index("turbulent")
    assert np.any(regime == calm) and np.any(regime == turbulent)
    assert r[regime == turbulent].std() > 2 * r[regime == calm].std()


def test_reads_are_point_in_time(year: SyntheticFeed) -> None:
    as_of = to_ms(START) + 100 * HOUR_MS + 1_234  # mid-candle: candle 100 is not closed yet
    window = year.candles("ETH/USDT", "1h", as_of)
    assert len(window) == 100
    assert np.all(window.close_ts <= as_of)
    assert window.ts[-1] + 2 * HOUR_MS > as_of
    assert len(year.candles("ETH/USDT", "1h", to_ms(START))) == 0


@pytest.mark.parametrize(("timeframe", "per_bucket"), [("4h", 4), ("1d", 24)])
def test_coarser_timeframes_aggregate_the_hourly_candles(
    year: SyntheticFeed, timeframe: str, per_bucket: int
) -> None:
    hourly = base(year, "SOL/USDT")
    _, end = year.span("SOL/USDT", "1h")
    coarse = year.candles("SOL/USDT", timeframe, end)
    assert len(coarse) == len(hourly.ts) // per_bucket

    def buckets(a: NDArray[Any]) -> NDArray[Any]:
        return a.reshape(-1, per_bucket)

    assert np.array_equal(coarse.ts, buckets(hourly.ts)[:, 0])
    assert np.array_equal(coarse.open, buckets(hourly.open)[:, 0])
    assert np.array_equal(coarse.close, buckets(hourly.close)[:, -1])
    assert np.array_equal(coarse.high, buckets(hourly.high).max(axis=1))
    assert np.array_equal(coarse.low, buckets(hourly.low).min(axis=1))
    assert np.allclose(coarse.volume, buckets(hourly.volume).sum(axis=1))


def test_symbol_subset_and_finer_base_timeframe() -> None:
    feed = SyntheticFeed(seed=1, days=2, symbols=["BTC/USDT"], timeframe="15m")
    assert feed.symbols() == ["BTC/USDT"]
    assert feed.timeframes("BTC/USDT") == ["15m", "1h", "4h", "1d"]
    assert len(feed.store.series("BTC/USDT", "15m").ts) == 2 * 96
    assert len(feed.store.series("BTC/USDT", "1h").ts) == 2 * 24


def test_generator_is_pure_given_the_generator_state() -> None:
    def run() -> Series:
        rng = np.random.default_rng(5)
        return generate_market(DEFAULT_MARKET, rng, to_ms(START), 48, symbols="ETH/USDT").series[0]

    assert np.array_equal(run().close, run().close)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"days": 0}, DataError, "days must be a positive int"),
        ({"days": -5}, DataError, "days must be a positive int"),
        ({"seed": -1}, DataError, "seed must be a non-negative int"),
        ({"symbols": ["DOGE/USDT"]}, FeedError, "unknown synthetic symbol 'DOGE/USDT'"),
        ({"symbols": ["ETH/USDT", "ETH/USDT"]}, FeedError, "without duplicates"),
        ({"start": "2024-01-01T00:30:00Z"}, DataError, "not aligned"),
        ({"timeframe": "1mo"}, DataError, "unknown timeframe"),
    ],
)
def test_bad_feed_arguments_raise_specific_errors(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SyntheticFeed(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"garch_alpha": math.nan}, "garch_alpha must be a finite number"),
        ({"tail_dof": 2.0}, "tail_dof must be > 2"),
        ({"garch_beta": 0.95}, "alpha \\+ beta < 1"),
        ({"volume_noise": math.nan}, "volume_noise must be in"),
        ({"regime_switch": ((0.0, 1.0, 0.0, 0.0),) * 4}, "zero diagonal"),
        ({"correlation": ((1, 0.9, -0.9), (0.9, 1, 0.9), (-0.9, 0.9, 1))}, "not positive-definite"),
        ({"correlation": ((1, 0.5), (0.5, 1))}, "3x3 matrix"),
    ],
)
def test_bad_model_params_raise_data_error(change: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        dataclasses.replace(DEFAULT_MARKET, **change)  # type: ignore[arg-type]


def test_bad_symbol_params_raise_data_error() -> None:
    with pytest.raises(DataError, match="start_price must be a finite number"):
        SymbolParams("ETH/USDT", start_price=math.nan, annual_vol=1.0, base_volume=1.0)
    with pytest.raises(DataError, match="annual_vol must be > 0"):
        SymbolParams("ETH/USDT", start_price=1.0, annual_vol=0.0, base_volume=1.0)


def test_a_single_symbol_single_regime_market_works() -> None:
    solo = dataclasses.replace(
        DEFAULT_MARKET,
        symbols=DEFAULT_MARKET.symbols[:1],
        correlation=((1.0,),),
        regimes=DEFAULT_MARKET.regimes[:1],
        regime_switch=((1.0,),),
    )
    feed = SyntheticFeed(seed=2, days=3, params=solo)
    assert feed.symbols() == ["ETH/USDT"]
    assert np.all(feed.market.regime == 0)
