"""The shell the paper DeFi venues share: a bar clock over a feed, a SQLite store, input checks.

Each venue is a thin imperative shell around pure protocol maths (`defai.defi`); what they
have in common — advancing bar by bar without ever reading past `now`, persisting their state,
refusing bad amounts at the door — lives here once.
"""

from __future__ import annotations

import json
import math
import numbers
import sqlite3
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from defai.errors import ExecutionError
from defai.market.feed import Feed
from defai.types import Candles, to_ms, to_timestamp


class VenueInputError(ExecutionError, ValueError):
    """A venue was given something it cannot act on: unknown pair or asset, a negative or NaN
    amount, a time earlier than its clock, a malformed configuration."""


class InsufficientBalanceError(ExecutionError):
    """The action needs more of a token than the wallet (or the account) holds."""


class SlippageError(ExecutionError):
    """A swap would pay less than its minimum output, or was sent without one."""


def check_amount(name: str, value: float, *, allow_zero: bool = False) -> float:
    """A finite amount > 0 (>= 0 with allow_zero): bad numbers stop at the venue's door."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise VenueInputError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise VenueInputError(f"{name} must be finite and {bound}, got {value!r}")
    return float(value)


def to_raw(amount: float, decimals: int, *, round_up: bool = False) -> int:
    """Whole tokens -> raw units from the float's shortest decimal form (0.1 ETH is 10**17 wei,
    not the binary float's 100000000000000005); down for what we pay, up for a floor we demand."""
    rounding = ROUND_CEILING if round_up else ROUND_FLOOR
    return int(Decimal(repr(amount)).scaleb(decimals).to_integral_value(rounding=rounding))


def from_raw(raw: int, decimals: int) -> float:
    """Raw units -> whole tokens, correctly rounded (int / int divides exactly, then rounds)."""
    scale: int = 10**decimals
    return raw / scale


def _iso(ms: int) -> str:
    return to_timestamp(ms).isoformat()


class BarClock:
    """A venue's clock over a feed: time only moves forward and each closed bar is handed out once.

    The first `advance` only sets the time: bars that closed before the venue existed neither
    earn nor liquidate anything. Prices are the last closed candle's close, never a later one.
    """

    def __init__(self, feed: Feed, symbols: Iterable[str], timeframe: str | None = None) -> None:
        self._feed = feed
        self._timeframes = {s: timeframe or feed.timeframes(s)[0] for s in symbols}
        self._now_ms: int | None = None
        self._last_open: dict[str, int] = {}
        self._close: dict[str, float] = {}

    def now(self) -> int:
        if self._now_ms is None:
            raise VenueInputError("the venue has no time yet: call advance(now) first")
        return self._now_ms

    def closes(self) -> dict[str, float]:
        """Every symbol's last close seen so far (symbols without a closed candle are absent)."""
        return dict(self._close)

    def close(self, symbol: str) -> float:
        price = self._close.get(symbol)
        if price is None:
            raise VenueInputError(f"no closed {symbol} candle at {_iso(self.now())} yet")
        return price

    def advance(self, now: int | str | pd.Timestamp) -> dict[str, Candles]:
        """Move to `now`; per symbol, the candles closed since the previous call, oldest first."""
        now_ms = to_ms(now)
        started = self._now_ms is not None
        if self._now_ms is not None and now_ms < self._now_ms:
            raise VenueInputError(
                f"time cannot go back: {_iso(now_ms)} is before the venue's clock "
                f"{_iso(self._now_ms)}"
            )
        windows: dict[str, Candles] = {}
        for symbol, timeframe in self._timeframes.items():
            last = self._last_open.get(symbol)
            if last is None and not started:
                seen = self._feed.candles(symbol, timeframe, now_ms, limit=1)
                new = seen.slice(0, 0)
            else:
                since = None if last is None else last + 1
                seen = new = self._feed.candles(symbol, timeframe, now_ms, since=since)
            if len(seen):
                self._last_open[symbol] = int(seen.ts[-1])
                self._close[symbol] = float(seen.close[-1])
            windows[symbol] = new
        self._now_ms = now_ms
        return windows

    def to_dict(self) -> dict[str, Any]:
        return {"now_ms": self._now_ms, "last_open": self._last_open, "close": self._close}

    def restore(self, state: Mapping[str, Any]) -> None:
        unknown = set(state["last_open"]) - set(self._timeframes)
        if unknown:
            raise VenueInputError(
                f"the saved state follows symbols {sorted(unknown)} not configured"
            )
        self._now_ms = state["now_ms"]
        self._last_open = {s: int(t) for s, t in state["last_open"].items()}
        self._close = {s: float(p) for s, p in state["close"].items()}


class VenueStore:
    """A venue's whole state as one JSON document in SQLite, rewritten after every change.

    JSON keeps Python ints exact (raw amounts, liquidity) and floats round-trip through repr, so
    a venue reopened from its file continues bit for bit.
    """

    def __init__(self, path: str | Path, venue: str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._venue = venue
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS venue_state (venue TEXT PRIMARY KEY, state TEXT NOT NULL)"
        )

    def load(self) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT state FROM venue_state WHERE venue = ?", (self._venue,)
        ).fetchone()
        if row is None:
            return None
        state: dict[str, Any] = json.loads(row[0])
        return state

    def save(self, state: Mapping[str, Any]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO venue_state (venue, state) VALUES (?, ?)",
                (self._venue, json.dumps(state)),
            )

    def close(self) -> None:
        self._db.close()


# --- pure maths of the paper pool -------------------------------------------------------------
