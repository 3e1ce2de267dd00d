"""CsvFeed: candles from CSV / CSV.gz files, validated row by row, gaps reported not filled.

Two layouts are read: ccxt's OHLCV order (`timestamp` in epoch ms, open, high, low, close,
volume; header optional) and the normalised layout of the shared data (`timestamp_utc` ISO
open time, open..close, `volume_<base>`, ...). Every error names the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from defai.errors import DataError
from defai.market.feed import Series, SeriesStore, StoreFeed
from defai.types import FloatArray, IntArray, timeframe_ms, to_timestamp

CCXT_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]
_KNOWN_QUOTES = ("USDT", "USDC", "BUSD", "DAI", "USD", "EUR", "BTC", "ETH")
_TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w")


@dataclass(frozen=True, slots=True)
class Gap:
    """Candles missing between two rows: `missing` candles opening from `start_ms` on."""

    symbol: str
    start_ms: int
    end_ms: int
    missing: int

    def __str__(self) -> str:
        start, end = to_timestamp(self.start_ms), to_timestamp(self.end_ms)
        return (
            f"{self.symbol}: {self.missing} candle(s) missing "
            f"from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
        )


def find_gaps(series: Series) -> list[Gap]:
    """Every run of missing candles between consecutive rows of a series."""
    period = timeframe_ms(series.timeframe)
    steps = np.diff(series.ts)
    where = np.flatnonzero(steps > period)
    return [
        Gap(
            series.symbol,
            int(series.ts[i] + period),
            int(series.ts[i + 1] - period),
            int(steps[i] // period - 1),
        )
        for i in where
    ]


def symbol_from_filename(path: Path) -> str | None:
    """'binance_ETHUSDT_1h.csv.gz' -> 'ETH/USDT'; None when the name does not say."""
    for token in re.split(r"[_\-.]", path.name):
        upper = token.upper()
        for quote in _KNOWN_QUOTES:
            if upper.endswith(quote) and len(upper) > len(quote) and upper.isalnum():
                return f"{upper[: -len(quote)]}/{quote}"
    return None


def _infer_timeframe(ts: IntArray, path: Path) -> str:
    if len(ts) < 2:
        raise DataError(f"{path}: fewer than 2 rows; pass timeframe= to read it")
    step = int(np.median(np.diff(ts)))
    for tf in _TIMEFRAMES:
        if timeframe_ms(tf) == step:
            return tf
    raise DataError(f"{path}: rows are {step} ms apart, which is no known timeframe")


def _read_frame(path: Path) -> tuple[pd.DataFrame, int]:
    """The five price/volume columns plus `ts` (ms); and the file line of the first data row."""
    try:
        head = pd.read_csv(path, nrows=0)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from None
    columns = [str(c).strip().lower() for c in head.columns]
    if "timestamp_utc" in columns:
        frame = pd.read_csv(path)
        frame.columns = columns
        volume_cols = [c for c in columns if c.startswith("volume_")]
        if not volume_cols:
            raise DataError(f"{path}: normalised layout without a volume_<base> column")
        parsed = pd.to_datetime(frame["timestamp_utc"], utc=True, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        if len(bad):
            raise DataError(
                f"{path}, line {bad[0] + 2}: timestamp_utc {frame['timestamp_utc'].iloc[bad[0]]!r} "
                "is not a time"
            )
        frame["ts"] = parsed.astype("datetime64[ms, UTC]").astype("int64")
        frame = frame.rename(columns={volume_cols[0]: "volume"})
        return frame, 2
    has_header = columns[: len(CCXT_COLUMNS)] == CCXT_COLUMNS
    frame = pd.read_csv(path, header=0 if has_header else None)
    if frame.shape[1] < len(CCXT_COLUMNS):
        raise DataError(
            f"{path}: expected ccxt's columns {CCXT_COLUMNS} or the normalised layout "
            f"(timestamp_utc, open, high, low, close, volume_<base>); found {columns}"
        )
    frame = frame.iloc[:, : len(CCXT_COLUMNS)]
    frame.columns = CCXT_COLUMNS
    ts = pd.to_numeric(frame["timestamp"], errors="coerce")
    bad = np.flatnonzero(ts.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{path}, line {bad[0] + 1 + has_header}: timestamp "
            f"{frame['timestamp'].iloc[bad[0]]!r} is not epoch milliseconds"
        )
    frame["ts"] = ts.astype("int64")
    return frame, 1 + int(has_header)


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


def validate_ohlcv(
    path: Path,
    first_line: int,
    ts: IntArray,
    o: FloatArray,
    h: FloatArray,
    lo: FloatArray,
    c: FloatArray,
    v: FloatArray,
) -> None:
    """Raise DataError at the first bad row, naming file, line and what is wrong."""

    def fail(row: int, what: str) -> None:
        raise DataError(f"{path}, line {row + first_line}: {what}")

    prices = np.column_stack([o, h, lo, c])
    checks: list[tuple[npt.NDArray[np.bool_], str]] = [
        (np.isnan(prices).any(axis=1) | np.isnan(v), "a price or the volume is NaN/empty"),
        (~np.isfinite(prices).all(axis=1) | np.isinf(v), "a price or the volume is infinite"),
        (np.asarray((prices <= 0).any(axis=1)), "non-positive price"),
        (np.asarray(v < 0), "negative volume"),
        (h < np.maximum(o, c), "high is below max(open, close)"),
        (lo > np.minimum(o, c), "low is above min(open, close)"),
    ]
    steps = np.diff(ts)
    order_checks: list[tuple[npt.NDArray[np.bool_], str]] = [
        (steps == 0, "duplicate timestamp (same as the previous row)"),
        (steps < 0, "timestamps not sorted ascending (earlier than the previous row)"),
    ]
    found: list[tuple[int, str]] = []
    for mask, what in checks:
        row = _first(mask)
        if row is not None:
            found.append((row, what))
    for mask, what in order_checks:
        row = _first(mask)
        if row is not None:
            found.append((row + 1, f"{what}: {to_timestamp(int(ts[row + 1])).isoformat()}"))
    if found:
        row, what = min(found)
        values = f"open={o[row]}, high={h[row]}, low={lo[row]}, close={c[row]}, volume={v[row]}"
        fail(row, f"{what} ({values})")


def read_csv_series(
    path: str | Path, symbol: str | None = None, timeframe: str | None = None
) -> Series:
    """One validated Series from one file; the symbol defaults to what the file name says."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    symbol = symbol or symbol_from_filename(path)
    if symbol is None:
        raise DataError(f"{path}: cannot tell the symbol from the file name; pass symbol=")
    frame, first_line = _read_frame(path)
    if frame.empty:
        raise DataError(f"{path}: no rows")
    cols = {}
    for name in ("open", "high", "low", "close", "volume"):
        numeric = pd.to_numeric(frame[name], errors="coerce")
        junk = numeric.isna() & frame[name].notna()
        row = _first(junk.to_numpy())
        if row is not None:
            raise DataError(
                f"{path}, line {row + first_line}: {name} {frame[name].iloc[row]!r} is not a number"
            )
        cols[name] = numeric.to_numpy(dtype=np.float64)
    ts = frame["ts"].to_numpy(dtype=np.int64)
    validate_ohlcv(
        path, first_line, ts, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"]
    )
    timeframe = timeframe or _infer_timeframe(ts, path)
    period = timeframe_ms(timeframe)
    off_grid = _first(ts % period != 0)
    if off_grid is not None:
        raise DataError(
            f"{path}, line {off_grid + first_line}: {to_timestamp(int(ts[off_grid])).isoformat()} "
            f"is not aligned to {timeframe} candles"
        )
    return Series.from_arrays(
        symbol,
        timeframe,
        ts,
        cols["open"],
        cols["high"],
        cols["low"],
        cols["close"],
        cols["volume"],
    )


class CsvFeed(StoreFeed):
    """A feed over one or more CSV files, one symbol each.

    `CsvFeed("binance_ETHUSDT_1h.csv.gz")` or `CsvFeed({"ETH/USDT": "eth.csv"})`.
    """

    def __init__(
        self,
        files: str | Path | list[str | Path] | dict[str, str | Path],
        timeframe: str | None = None,
    ) -> None:
        if isinstance(files, dict):
            series = [read_csv_series(p, sym, timeframe) for sym, p in files.items()]
        else:
            paths = files if isinstance(files, list) else [files]
            series = [read_csv_series(p, None, timeframe) for p in paths]
        super().__init__(SeriesStore(series))

    def gaps(self, symbol: str) -> list[Gap]:
        return find_gaps(self.store.series(symbol, self.store.base_timeframe(symbol)))
