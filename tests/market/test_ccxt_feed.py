"""CcxtFeed through ccxt's real binance client against the loopback server of conftest.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from defai.errors import FeedError
from defai.market.ccxt_feed import CcxtFeed, OhlcvDownloader, cache_path
from defai.market.csv import CsvFeed

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, first candle the loopback server holds
N_CANDLES = 350


def test_paginates_across_pages_and_keeps_only_closed_candles(
    binance, make_binance, tmp_path: Path
) -> None:
    state, url = binance
    now = T0 + N_CANDLES * HOUR - HOUR // 2  # the last served candle is still forming
    exchange = make_binance(url, now)
    downloader = OhlcvDownloader(exchange, page_limit=100, sleep=lambda s: None)
    feed = CcxtFeed(
        exchange, ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path, downloader=downloader
    )
    window = feed.candles("ETH/USDT", "1h", as_of=now)
    assert len(window) == N_CANDLES - 1
    assert len(state.kline_requests) >= 4
    assert [int(q["startTime"]) for q in state.kline_requests[:4]] == [
        T0 + k * 100 * HOUR for k in range(4)
    ]
    assert np.all(np.diff(window.ts) == HOUR)
    assert window.close[0] == pytest.approx(float(state.klines[0][4]))
    assert window.volume[-1] == pytest.approx(float(state.klines[N_CANDLES - 2][5]))


# ccxt's binance maps any HTTP 429 to DDoSProtection, and the weight-limit code -1003 in an
# error body to RateLimitExceeded. Both are retried.
_TOO_MUCH_WEIGHT = {"code": -1003, "msg": "Too much request weight used; current limit is 6000."}
RATE_LIMIT_BODIES = [
    pytest.param(429, _TOO_MUCH_WEIGHT, "DDoSProtection", id="http-429"),
    pytest.param(400, _TOO_MUCH_WEIGHT, "RateLimitExceeded", id="code-1003"),
]


@pytest.mark.parametrize(("status", "body", "error"), RATE_LIMIT_BODIES)
def test_rate_limit_is_retried_with_backoff(
    binance, make_binance, tmp_path, caplog, status, body, error
) -> None:
    state, url = binance
    state.rate_limit_status, state.rate_limit_body = status, body
    state.fail_next_with_429 = 2
    slept: list[float] = []
    exchange = make_binance(url, T0 + 150 * HOUR)
    downloader = OhlcvDownloader(exchange, page_limit=100, backoff_s=0.5, sleep=slept.append)
    feed = CcxtFeed(
        exchange, ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path, downloader=downloader
    )
    assert len(feed.candles("ETH/USDT", "1h", as_of=T0 + 150 * HOUR)) == 150
    assert slept == [0.5, 1.0]
    assert len(state.kline_requests) == 4  # two refused, then two pages
    assert [r.message.split(",")[0] for r in caplog.records] == [f"binance ETH/USDT: {error}"] * 2


@pytest.mark.parametrize(("status", "body", "error"), RATE_LIMIT_BODIES)
def test_rate_limit_that_never_ends_is_a_clear_error(
    binance, make_binance, tmp_path, status, body, error
) -> None:
    state, url = binance
    state.rate_limit_status, state.rate_limit_body = status, body
    state.fail_next_with_429 = 100
    exchange = make_binance(url, T0 + 150 * HOUR)
    downloader = OhlcvDownloader(exchange, max_retries=2, sleep=lambda s: None)
    with pytest.raises(FeedError, match=rf"gave up after 3 attempts: {error}$"):
        CcxtFeed(exchange, ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path, downloader=downloader)


def test_second_run_hits_the_disk_cache(binance, make_binance, tmp_path: Path) -> None:
    state, url = binance
    now = T0 + 300 * HOUR
    first = CcxtFeed(make_binance(url, now), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path)
    requests_after_first = len(state.kline_requests)
    assert requests_after_first > 0
    second = CcxtFeed(make_binance(url, now), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path)
    assert len(state.kline_requests) == requests_after_first
    a, b = first.candles("ETH/USDT", "1h", now), second.candles("ETH/USDT", "1h", now)
    assert np.array_equal(a.ts, b.ts) and np.array_equal(a.close, b.close)
    # the cache is a plain ccxt-order CSV that CsvFeed reads too
    path = cache_path(tmp_path, "binance", "ETH/USDT", "1h")
    assert len(CsvFeed({"ETH/USDT": path}).candles("ETH/USDT", "1h", now)) == 300


def test_cache_extends_with_only_the_missing_tail(binance, make_binance, tmp_path: Path) -> None:
    state, url = binance
    CcxtFeed(make_binance(url, T0 + 100 * HOUR), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path)
    before = len(state.kline_requests)
    feed = CcxtFeed(
        make_binance(url, T0 + 250 * HOUR), ["ETH/USDT"], "1h", since=T0, cache_dir=tmp_path
    )
    new_requests = state.kline_requests[before:]
    assert new_requests and int(new_requests[0]["startTime"]) == T0 + 100 * HOUR
    assert len(feed.candles("ETH/USDT", "1h", T0 + 250 * HOUR)) == 250


def test_unknown_symbol_is_a_clear_error(binance, make_binance, tmp_path: Path) -> None:
    _, url = binance
    with pytest.raises(FeedError, match="binance has no market 'DOGE/EUR'"):
        CcxtFeed(
            make_binance(url, T0 + 10 * HOUR), ["DOGE/EUR"], "1h", since=T0, cache_dir=tmp_path
        )
