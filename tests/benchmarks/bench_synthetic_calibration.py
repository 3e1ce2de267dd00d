"""Stylised facts of the synthetic market against real Binance ETH/BTC hourly candles.

Run: python tests/benchmarks/bench_synthetic_calibration.py [--seeds N]
Prints one fact per line: real value, then the synthetic mean (and spread) over N seeds of the
same length as the real sample. Needs ../shared/data beside the project.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from defai.market.synthetic import SyntheticFeed
from defai.types import FloatArray, IntArray

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
# symbol -> (file, base-asset volume column): the synthetic feed's volume is in the base asset too
FILES = {
    "ETH/USDT": ("binance_ETHUSDT_1h.csv.gz", "volume_eth"),
    "BTC/USDT": ("binance_BTCUSDT_1h.csv.gz", "volume_btc"),
}
HOUR_MS = 3_600_000
YEAR_HOURS = 365 * 24


@dataclass(frozen=True)
class Bars:
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray


def load_real(name: str, volume_column: str) -> Bars:
    """Hourly candles without the launch day (artefacts) and the last, partial candle."""
    df = pd.read_csv(DATA / name, parse_dates=["timestamp_utc"])
    first_full_day = df["timestamp_utc"].iloc[0].normalize() + pd.Timedelta(days=1)
    df = df[df["timestamp_utc"] >= first_full_day].iloc[:-1]
    return Bars(
        ts=df["timestamp_utc"].dt.as_unit("ms").astype("int64").to_numpy(),
        open=df["open"].to_numpy(np.float64),
        high=df["high"].to_numpy(np.float64),
        low=df["low"].to_numpy(np.float64),
        close=df["close"].to_numpy(np.float64),
        volume=df[volume_column].to_numpy(np.float64),
    )


def hourly_returns(bars: Bars) -> tuple[FloatArray, IntArray]:
    """Close-to-close log returns between consecutive hours (gaps skipped), and their end times."""
    consecutive = np.diff(bars.ts) == HOUR_MS
    r = np.diff(np.log(bars.close))[consecutive]
    return r, bars.ts[1:][consecutive]


def horizon_returns(bars: Bars, hours: int) -> FloatArray:
    """Log returns between closes of candles opening on multiples of `hours` since the epoch."""
    return np.diff(np.log(bars.close[bars.ts % (hours * HOUR_MS) == 0]))


def autocorr(x: FloatArray, lag: int) -> float:
    d = x - x.mean()
    return float((d[:-lag] * d[lag:]).sum() / (d * d).sum())


def facts(bars: Bars) -> dict[str, float]:
    r, _ = hourly_returns(bars)
    sd = r.std()
    q = np.quantile(r, [0.001, 0.01, 0.99, 0.999])
    out = {
        "hourly log-return std": sd,
        "annualised vol": sd * np.sqrt(YEAR_HOURS),
        "excess kurtosis": stats.kurtosis(r),
        "skew": stats.skew(r),
        "acf r lag1": autocorr(r, 1),
    }
    for lag in (1, 24, 168):
        out[f"acf |r| lag{lag}"] = autocorr(np.abs(r), lag)
    for lag in (1, 24, 168):
        out[f"acf r^2 lag{lag}"] = autocorr(r**2, lag)
    for p, v in zip(("0.1%", "1%", "99%", "99.9%"), q, strict=True):
        out[f"quantile {p}"] = v
    out["share |r| > 5 sigma (%)"] = 100 * np.mean(np.abs(r) > 5 * sd)
    # volume: skip outage candles with zero volume; detrend by the trailing week's mean log volume
    consecutive = np.diff(bars.ts) == HOUR_MS
    vol = bars.volume[1:][consecutive]
    traded = vol > 0
    log_v = np.log(vol[traded])
    trend = pd.Series(log_v).rolling(168, min_periods=24).mean().to_numpy()
    ok = np.isfinite(trend)
    out["corr(|r|, log volume)"] = np.corrcoef(np.abs(r[traded]), log_v)[0, 1]
    out["corr(|r|, detrended log volume)"] = np.corrcoef(
        np.abs(r[traded])[ok], (log_v - trend)[ok]
    )[0, 1]
    out["std detrended log volume"] = (log_v - trend)[ok].std()
    body = np.abs(bars.close - bars.open)
    out["mean(high-low) / mean|close-open|"] = (bars.high - bars.low).mean() / body.mean()
    daily = horizon_returns(bars, 24)
    out["daily excess kurtosis"] = stats.kurtosis(daily)
    # annualised vol measured over longer horizons: trends inflate it, mean reversion deflates it
    for hours, label in ((24, "1d"), (168, "7d"), (720, "30d")):
        out[f"annualised vol from {label} returns"] = horizon_returns(bars, hours).std() * np.sqrt(
            YEAR_HOURS / hours
        )
    return {k: float(v) for k, v in out.items()}


def return_correlation(a: Bars, b: Bars) -> float:
    ra, ta = hourly_returns(a)
    rb, tb = hourly_returns(b)
    _, ia, ib = np.intersect1d(ta, tb, return_indices=True)
    return float(np.corrcoef(ra[ia], rb[ib])[0, 1])


def bars_of(feed: SyntheticFeed, symbol: str) -> Bars:
    s = feed.store.series(symbol, "1h")
    return Bars(s.ts, s.open, s.high, s.low, s.close, s.volume)


def cell(real: float, synthetic: list[float]) -> str:
    """Real value, then the synthetic mean ± standard deviation across seeds."""
    values = np.array(synthetic)
    return f"{real:10.4g} {values.mean():10.4g} ± {values.std():<8.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="synthetic runs to average")
    args = parser.parse_args()
    if not all((DATA / f).exists() for f, _ in FILES.values()):
        sys.exit(f"{DATA} lacks the Binance 1h files {FILES}: this benchmark needs ../shared/data")

    real = {sym: load_real(*source) for sym, source in FILES.items()}
    days = int((real["ETH/USDT"].ts[-1] - real["ETH/USDT"].ts[0]) // (24 * HOUR_MS))
    synth: dict[str, list[dict[str, float]]] = {sym: [] for sym in FILES}
    synth_corr = []
    for seed in range(args.seeds):
        feed = SyntheticFeed(seed=seed, start="2017-08-18", days=days, symbols=list(FILES))
        bars = {sym: bars_of(feed, sym) for sym in FILES}
        for sym in FILES:
            synth[sym].append(facts(bars[sym]))
        synth_corr.append(return_correlation(bars["ETH/USDT"], bars["BTC/USDT"]))

    print(f"real: Binance 1h, {days} days; synthetic: mean ± sd over {args.seeds} seeds")
    header = "".join(f" {sym[:3] + ' real':>10s} {sym[:3] + ' synthetic':>21s}" for sym in FILES)
    print(f"{'fact':38s}{header}")
    real_facts = {sym: facts(b) for sym, b in real.items()}
    for fact in real_facts["ETH/USDT"]:
        cells = (cell(real_facts[sym][fact], [f[fact] for f in synth[sym]]) for sym in FILES)
        print(f"{fact:38s} {' '.join(cells)}")
    real_corr = return_correlation(real["ETH/USDT"], real["BTC/USDT"])
    print(f"{'ETH-BTC hourly return correlation':38s} {cell(real_corr, synth_corr)}")

    runs = 5
    t0 = time.perf_counter()
    for seed in range(runs):
        SyntheticFeed(seed=seed, days=365)
    ms = 1000 * (time.perf_counter() - t0) / runs
    print(f"{'generation: 1 year, 1h, 3 symbols (ms)':38s} {ms:10.1f}")


if __name__ == "__main__":
    main()
