"""CcxtFeed: candles from any ccxt exchange, downloaded page by page and cached on disk.

Pagination advances `since` past the last candle received; ccxt's own rate limiter spaces the
requests (`enableRateLimit`), and rate-limit or network errors are retried with backoff. Only
closed candles are cached (a candle still forming would change), so a cached file never needs
rewriting, and a second run over the same range sends no request at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ccxt
import numpy as np

from defai.errors import FeedError
from defai.market.csv import CCXT_COLUMNS, read_csv_series
from defai.market.feed import Series, SeriesStore, StoreFeed
from defai.types import timeframe_ms, to_timestamp

log = logging.getLogger(__name__)

RETRYABLE = (ccxt.RateLimitExceeded, ccxt.NetworkError)


def cache_path(cache_dir: Path, exchange_id: str, symbol: str, timeframe: str) -> Path:
    """`<dir>/<exchange>/<BASE>_<QUOTE>-<tf>.csv`: readable by CsvFeed too."""
    safe = symbol.replace("/", "_").replace(":", "_")
    return cache_dir / exchange_id / f"{safe}-{timeframe}.csv"


def _write_cache(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as fh:
        fh.write(",".join(CCXT_COLUMNS) + "\n")
        for t, *values in rows.tolist():
            fh.write(f"{int(t)}," + ",".join(repr(x) for x in values) + "\n")
    tmp.replace(path)  # atomic: a crash never leaves half a cache file


def _series_rows(series: Series) -> np.ndarray:
    return np.column_stack(
        [
            series.ts.astype(np.float64),
            series.open,
            series.high,
            series.low,
            series.close,
            series.volume,
        ]
    )


class OhlcvDownloader:
    """Paginated `fetch_ohlcv` with retries; returns closed candles in [since, until)."""

    def __init__(
        self,
        exchange: ccxt.Exchange,
        page_limit: int = 1000,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.exchange = exchange
        self.page_limit = page_limit
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.requests = 0

    def _page(self, symbol: str, timeframe: str, since: int) -> list[list[Any]]:
        for attempt in range(self.max_retries + 1):
            try:
                self.requests += 1
                page: list[list[Any]] = self.exchange.fetch_ohlcv(
                    symbol, timeframe, since=since, limit=self.page_limit
                )
                return page
            except RETRYABLE as exc:
                if attempt == self.max_retries:
                    raise FeedError(
                        f"{self.exchange.id} {symbol} {timeframe}: gave up after "
                        f"{attempt + 1} attempts: {type(exc).__name__}"
                    ) from None
                delay = self.backoff_s * 2**attempt
                log.warning(
                    "%s %s: %s, retrying in %.1fs",
                    self.exchange.id,
                    symbol,
                    type(exc).__name__,
                    delay,
                )
                self.sleep(delay)
            except ccxt.BadSymbol:
                raise FeedError(f"{self.exchange.id} has no market {symbol!r}") from None
            except ccxt.ExchangeError as exc:
                raise FeedError(f"{self.exchange.id} {symbol} {timeframe}: {exc}") from None
        raise AssertionError("unreachable")

    def download(self, symbol: str, timeframe: str, since: int, until: int) -> np.ndarray:
        period = timeframe_ms(timeframe)
        rows: list[list[Any]] = []
        cursor = since
        while cursor < until:
            page = [r for r in self._page(symbol, timeframe, cursor) if r[0] >= cursor]
            if not page:
                break
            rows.extend(page)
            cursor = int(page[-1][0]) + period
        table = np.array(rows, dtype=np.float64).reshape(-1, 6)
        closed = (table[:, 0] >= since) & (table[:, 0] + period <= until)
        return table[closed]


class CcxtFeed(StoreFeed):
    """A feed over candles of a ccxt exchange between `since` and `until` (default: now).

    `CcxtFeed("binance", ["ETH/USDT"], "1h", since="2024-01-01", cache_dir="defai-data")`.
    """

    def __init__(
        self,
        exchange: str | ccxt.Exchange,
        symbols: list[str],
        timeframe: str,
        since: int,
        until: int | None = None,
        cache_dir: str | Path = "defai-data",
        downloader: OhlcvDownloader | None = None,
    ) -> None:
        self.exchange = make_exchange(exchange) if isinstance(exchange, str) else exchange
        self.downloader = downloader or OhlcvDownloader(self.exchange)
        self.cache_dir = Path(cache_dir)
        period = timeframe_ms(timeframe)
        now = int(self.exchange.milliseconds())
        until = now if until is None else min(until, now)
        if since >= until:
            raise FeedError(
                f"since {to_timestamp(since)} is not before until {to_timestamp(until)}"
            )
        since -= since % period
        loaded = [self._load(s, timeframe, since, until) for s in symbols]
        self.timeframe = timeframe
        self._first = {s.symbol: int(s.ts[0]) for s in loaded}  # refreshes never re-ask older
        super().__init__(SeriesStore(loaded))

    def refresh(self) -> None:
        """Add the candles closed since the last load: a live run calls it before every tick."""
        until = int(self.exchange.milliseconds())
        self.store = SeriesStore(
            [self._load(s, self.timeframe, first, until) for s, first in self._first.items()]
        )

    def _load(self, symbol: str, timeframe: str, since: int, until: int) -> Series:
        path = cache_path(self.cache_dir, self.exchange.id, symbol, timeframe)
        period = timeframe_ms(timeframe)
        cached = (
            _series_rows(read_csv_series(path, symbol, timeframe))
            if path.exists()
            else np.empty((0, 6))
        )
        parts = [cached]
        if len(cached) == 0:
            parts.append(self.downloader.download(symbol, timeframe, since, until))
        else:
            first, last = int(cached[0, 0]), int(cached[-1, 0])
            if since < first:
                parts.append(self.downloader.download(symbol, timeframe, since, first))
            if last + 2 * period <= until:
                parts.append(self.downloader.download(symbol, timeframe, last + period, until))
        table = np.concatenate(parts)
        table = table[np.argsort(table[:, 0], kind="stable")]
        table = table[np.r_[True, np.diff(table[:, 0]) > 0]] if len(table) else table
        if len(parts) > 1 and len(table):
            _write_cache(path, table)
        window = table[(table[:, 0] >= since) & (table[:, 0] + period <= until)]
        if len(window) == 0:
            raise FeedError(
                f"{self.exchange.id} returned no {timeframe} candles for {symbol} between "
                f"{to_timestamp(since)} and {to_timestamp(until)}"
            )
        return Series.from_arrays(
            symbol, timeframe, window[:, 0].astype(np.int64), *(window[:, i] for i in range(1, 6))
        )


def make_exchange(name: str, config: dict[str, Any] | None = None) -> ccxt.Exchange:
    """A ccxt exchange by id, with ccxt's rate limiter on; no credentials unless given."""
    cls = getattr(ccxt, name, None)
    if not isinstance(cls, type) or not issubclass(cls, ccxt.Exchange):
        raise FeedError(f"ccxt has no exchange {name!r} (e.g. binance, kraken, coinbase, okx)")
    return cls({"enableRateLimit": True, **(config or {})})
