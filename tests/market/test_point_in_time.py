"""The look-ahead guarantee, as a property: no read returns a candle closing after `as_of`.

Checked on random histories with outages, at every timeframe a feed derives, with random
`limit` and `since`; and on the real ETH file. Returned windows are also complete: nothing
closed before `as_of` (within `since`/`limit`) is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from defai.market.csv import CsvFeed
from defai.market.feed import Feed, Series, SeriesStore, StoreFeed
from defai.types import timeframe_ms

HOUR = 3_600_000
T0 = 1_700_006_400_000  # a midnight, so daily buckets align


def random_feed(seed: int, n: int, drop: float) -> StoreFeed:
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(n, dtype=np.int64) * HOUR
    keep = rng.random(n) >= drop
    keep[0] = True
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    series = Series.from_arrays(
        "ETH/USDT", "1h", ts[keep], open_[keep], high[keep], low[keep], close[keep], close[keep]
    )
    return StoreFeed(SeriesStore([series]))


def check_window(
    feed: Feed, timeframe: str, as_of: int, limit: int | None, since: int | None
) -> None:
    window = feed.candles("ETH/USDT", timeframe, as_of, limit=limit, since=since)
    period = timeframe_ms(timeframe)
    assert np.all(window.close_ts <= as_of)
    assert np.all(np.diff(window.ts) > 0)
    if since is not None:
        assert np.all(window.ts >= since)
    if limit is not None:
        assert len(window) <= limit
    # complete: the full history, filtered by the same rules, ends with exactly this window
    everything = feed.candles("ETH/USDT", timeframe, as_of=2**62)
    expected = everything.ts[everything.ts + period <= as_of]
    if since is not None:
        expected = expected[expected >= since]
    if limit is not None:
        expected = expected[max(len(expected) - limit, 0) :] if limit else expected[:0]
    assert np.array_equal(window.ts, expected)
    assert not window.close.flags.writeable


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 400),
    drop=st.sampled_from([0.0, 0.05, 0.3]),
    timeframe=st.sampled_from(["1h", "4h", "1d"]),
    as_of_offset=st.integers(-2 * HOUR, 500 * HOUR),
    limit=st.none() | st.integers(0, 50),
    since_offset=st.none() | st.integers(-HOUR, 400 * HOUR),
)
def test_no_candle_closes_after_as_of(
    seed: int,
    n: int,
    drop: float,
    timeframe: str,
    as_of_offset: int,
    limit: int | None,
    since_offset: int | None,
) -> None:
    feed = random_feed(seed, n, drop)
    since = None if since_offset is None else T0 + since_offset
    check_window(feed, timeframe, T0 + as_of_offset, limit, since)


@pytest.fixture(scope="module")
def eth_feed() -> CsvFeed:
    from support import shared_file

    return CsvFeed(shared_file("data", "binance_ETHUSDT_1h.csv.gz"))


@settings(max_examples=100, deadline=None)
@given(
    as_of=st.integers(1_502_900_000_000, 1_623_400_000_000),
    timeframe=st.sampled_from(["1h", "4h", "1d"]),
    limit=st.none() | st.integers(1, 300),
)
def test_real_history_never_leaks_the_future(
    eth_feed: CsvFeed, as_of: int, timeframe: str, limit: int | None
) -> None:
    check_window(eth_feed, timeframe, as_of, limit, None)


def test_a_candle_appears_exactly_when_it_closes(tmp_path: Path) -> None:
    feed = random_feed(1, 48, 0.0)
    open_time = T0 + 5 * HOUR
    assert feed.candles("ETH/USDT", "1h", as_of=open_time + HOUR - 1).ts[-1] == open_time - HOUR
    assert feed.candles("ETH/USDT", "1h", as_of=open_time + HOUR).ts[-1] == open_time
