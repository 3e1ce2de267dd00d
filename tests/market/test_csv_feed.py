"""CsvFeed: both layouts, the real ETH file's gaps, and one specific error per kind of bad row."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from defai.errors import DataError
from defai.market.csv import CsvFeed, read_csv_series, symbol_from_filename
from defai.types import to_ms

HEADER_NORMALISED = "timestamp_utc,open,high,low,close,volume_eth,volume_usdt,trade_count\n"
HEADER_CCXT = "timestamp,open,high,low,close,volume\n"
T0 = to_ms("2024-01-01")
HOUR = 3_600_000


def good_rows(n: int = 5) -> list[str]:
    return [
        f"2024-01-01T{h:02d}:00:00Z,{100 + h},{102 + h},{99 + h},{101 + h},{10 + h},{1000 + h},"
        for h in range(n)
    ]


def write(
    tmp_path: Path, rows: list[str], header: str = HEADER_NORMALISED, gz: bool = False
) -> Path:
    text = header + "\n".join(rows) + "\n"
    if gz:
        path = tmp_path / "binance_ETHUSDT_1h.csv.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path = tmp_path / "binance_ETHUSDT_1h.csv"
        path.write_text(text)
    return path


def test_reads_normalised_layout_gzipped(tmp_path: Path) -> None:
    feed = CsvFeed(write(tmp_path, good_rows(), gz=True))
    assert feed.symbols() == ["ETH/USDT"]
    window = feed.candles("ETH/USDT", "1h", as_of=T0 + 5 * HOUR)
    assert list(window.close) == [101, 102, 103, 104, 105]
    assert list(window.volume) == [10, 11, 12, 13, 14]  # base volume, not quote volume
    assert feed.gaps("ETH/USDT") == []


def test_reads_ccxt_order_with_and_without_header(tmp_path: Path) -> None:
    rows = [f"{T0 + i * HOUR},{100 + i},{102 + i},{99 + i},{101 + i},{5 + i}" for i in range(4)]
    with_header = tmp_path / "with.csv"
    with_header.write_text(HEADER_CCXT + "\n".join(rows))
    without = tmp_path / "without.csv"
    without.write_text("\n".join(rows))
    for path in (with_header, without):
        series = read_csv_series(path, "ETH/USDT")
        assert series.timeframe == "1h"
        assert list(series.ts) == [T0 + i * HOUR for i in range(4)]
        assert list(series.volume) == [5, 6, 7, 8]


def test_symbol_from_filename() -> None:
    assert symbol_from_filename(Path("binance_ETHUSDT_1h.csv.gz")) == "ETH/USDT"
    assert symbol_from_filename(Path("coinbase_BTCUSD_1d.csv")) == "BTC/USD"
    assert symbol_from_filename(Path("prices.csv")) is None


def test_real_eth_file_reports_exactly_the_documented_gaps(eth_1h_csv: Path) -> None:
    feed = CsvFeed(eth_1h_csv)
    gaps = feed.gaps("ETH/USDT")
    assert len(gaps) == 8
    assert sum(g.missing for g in gaps) == 16
    assert str(gaps[0]) == "ETH/USDT: 4 candle(s) missing from 2017-09-22 20:00 to 2017-09-22 23:00"
    # gaps are not filled: the hour after a gap follows it directly
    window = feed.candles("ETH/USDT", "1h", as_of=to_ms("2017-09-23 02:00"), limit=4)
    assert np.diff(window.ts).tolist() == [HOUR, 5 * HOUR, HOUR]
    assert len(feed.candles("ETH/USDT", "1h", as_of=to_ms("2030-01-01"))) == 33_413


def test_daily_candles_skip_days_with_missing_hours(eth_1h_csv: Path) -> None:
    feed = CsvFeed(eth_1h_csv)
    daily = feed.candles("ETH/USDT", "1d", as_of=to_ms("2017-09-24"), since=to_ms("2017-09-21"))
    # 2017-09-22 lost four hours to an outage: no daily candle is fabricated for it
    assert [str(t.date()) for t in daily.to_frame().index] == ["2017-09-21", "2017-09-23"]


BAD_ROWS = {
    "unsorted": (
        [good_rows()[1], good_rows()[0], *good_rows()[2:]],
        r"line 3: timestamps not sorted ascending \(earlier than the previous row\): "
        r"2024-01-01T00:00",
    ),
    "duplicate": (
        [*good_rows(3), good_rows(3)[2]],
        r"line 5: duplicate timestamp \(same as the previous row\): 2024-01-01T02:00",
    ),
    "nan": (
        [*good_rows(2), "2024-01-01T02:00:00Z,102,104,,103,12,1,"],
        r"line 4: a price or the volume is NaN/empty",
    ),
    "nan-literal": (
        [*good_rows(2), "2024-01-01T02:00:00Z,102,104,101,NaN,12,1,"],
        r"line 4: a price or the volume is NaN/empty",
    ),
    "non-positive": (
        [*good_rows(3), "2024-01-01T03:00:00Z,103,105,0,104,13,1,"],
        r"line 5: non-positive price \(open=103.0, high=105.0, low=0.0",
    ),
    "high-below-open-close": (
        ["2024-01-01T00:00:00Z,100,100.5,99,101,10,1,", *good_rows()[1:]],
        r"line 2: high is below max\(open, close\) \(open=100.0, high=100.5",
    ),
    "low-above-open-close": (
        [*good_rows(1), "2024-01-01T01:00:00Z,101,103,101.5,102,11,1,", *good_rows()[2:]],
        r"line 3: low is above min\(open, close\)",
    ),
    "not-a-number": (
        [*good_rows(1), "2024-01-01T01:00:00Z,101,103,100,abc,11,1,"],
        r"line 3: close 'abc' is not a number",
    ),
    "bad-timestamp": (
        [*good_rows(1), "yesterday,101,103,100,102,11,1,"],
        r"line 3: timestamp_utc 'yesterday' is not a time",
    ),
    "negative-volume": (
        [*good_rows(1), "2024-01-01T01:00:00Z,101,103,100,102,-1,1,"],
        r"line 3: negative volume",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_bad_rows_name_file_line_and_fault(tmp_path: Path, kind: str) -> None:
    rows, message = BAD_ROWS[kind]
    path = write(tmp_path, rows)
    with pytest.raises(DataError, match=rf"^{path}, {message}"):
        CsvFeed(path)


def test_unknown_layout_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x_ETHUSDT.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="expected ccxt's columns"):
        CsvFeed(path)


def test_missing_file_and_unknown_symbol(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        CsvFeed(tmp_path / "nope_ETHUSDT_1h.csv")
    with pytest.raises(DataError, match="cannot tell the symbol"):
        CsvFeed(write(tmp_path, good_rows()).rename(tmp_path / "prices.csv"))
    feed = CsvFeed(write(tmp_path, good_rows()))
    with pytest.raises(DataError, match=r"unknown symbol 'BTC/USDT'; this feed has \['ETH/USDT'\]"):
        feed.candles("BTC/USDT", "1h", as_of=T0)
