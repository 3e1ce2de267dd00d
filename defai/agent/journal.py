"""Journal: one SQLite file per agent recording everything each tick did, and never a secret.

The journal is what makes an agent auditable and restartable: every tool call with its inputs and
output, every LLM message, every intent with the risk guard's verdict, every order and fill, and
the equity after the tick, filed under a run id. A restart reads back the open orders and the
last tick; a replay reads back the tool calls and LLM messages in order.

A tick's records are written in one transaction (`with journal.transaction():`), so a crash
leaves either the whole tick or nothing of it. SQLite runs in WAL mode: one writer (the agent)
and any number of readers (a dashboard, `sqlite3`, pandas) that see committed ticks only.

Every JSON payload and text goes through `redact()` first: values of secret-looking keys and
pydantic `SecretStr`s become asterisks, and any secret the journal has been told about (or has
seen as a `SecretStr`) is scrubbed wherever it is echoed, e.g. inside an exchange's error text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import BaseModel, SecretBytes, SecretStr

from defai.config import REDACTED
from defai.errors import DefaiError

log = logging.getLogger(__name__)

Mode = Literal["backtest", "paper", "live"]
MODES: tuple[str, ...] = get_args(Mode)
SCHEMA_VERSION = 1
# ccxt's "open" plus the statuses CcxtBroker adds for an order whose fate is not known yet
# (pending: written, being sent; unknown: sent, no answer): a restart must re-fetch all three.
OPEN_STATUSES = ("open", "pending", "unknown")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL CHECK (mode IN {MODES}),
    strategy TEXT NOT NULL,
    seed INTEGER,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    summary TEXT,
    resumes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ticks (
    tick_id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ticks_by_run ON ticks (run_id, tick_id);
CREATE TABLE IF NOT EXISTS tool_calls (
    id INTEGER PRIMARY KEY,
    tick_id INTEGER NOT NULL REFERENCES ticks (tick_id),
    tool TEXT NOT NULL,
    inputs TEXT NOT NULL,
    output TEXT,
    latency_ms REAL NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS tool_calls_by_tick ON tool_calls (tick_id);
CREATE TABLE IF NOT EXISTS llm_messages (
    id INTEGER PRIMARY KEY,
    tick_id INTEGER NOT NULL REFERENCES ticks (tick_id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    tool_calls TEXT,
    model TEXT
);
CREATE INDEX IF NOT EXISTS llm_messages_by_tick ON llm_messages (tick_id);
CREATE TABLE IF NOT EXISTS intents (
    intent_id INTEGER PRIMARY KEY,
    tick_id INTEGER NOT NULL REFERENCES ticks (tick_id),
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_by_tick ON intents (tick_id);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY,
    tick_id INTEGER NOT NULL REFERENCES ticks (tick_id),
    intent_id INTEGER NOT NULL REFERENCES intents (intent_id),
    approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
    reason_code TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_by_tick ON verdicts (tick_id);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    venue TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    first_tick_id INTEGER NOT NULL REFERENCES ticks (tick_id),
    tick_id INTEGER NOT NULL REFERENCES ticks (tick_id),
    symbol TEXT,
    status TEXT NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (run_id, venue, client_order_id)
);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    tick_id INTEGER NOT NULL REFERENCES ticks (tick_id),
    venue TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    order_id TEXT,
    symbol TEXT,
    side TEXT,
    price REAL,
    amount REAL,
    payload TEXT NOT NULL,
    UNIQUE (run_id, venue, trade_id)
);
CREATE TABLE IF NOT EXISTS pending_exits (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    order_id TEXT NOT NULL,
    intent TEXT NOT NULL,
    PRIMARY KEY (run_id, order_id)
);
CREATE TABLE IF NOT EXISTS equity (
    tick_id INTEGER PRIMARY KEY REFERENCES ticks (tick_id),
    equity REAL NOT NULL,
    by_venue TEXT NOT NULL
);
"""


class JournalError(DefaiError):
    """The journal was asked something inconsistent: unknown run or tick, a bad mode or payload."""


# ---------------------------------------------------------------------------------------- redact

# A key is split into lower-case words ("privateKey" -> private, key; "API_KEY" -> api, key).
_KEY_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# fmt: off
_SECRET_WORDS = frozenset({
    "secret", "secrets", "password", "passphrase", "mnemonic", "authorization", "apikey",
    "privatekey",
})
_SECRET_PAIRS = frozenset({"apikey", "privatekey"})
# "token" ends many credential names (token, access_token, botToken) but also DeFi fields that
# name an asset; those are kept, any other "..._token" is masked (a lost field beats a leak).
_ASSET_TOKEN_PREFIXES = frozenset({
    "base", "quote", "sell", "buy", "from", "to", "in", "out", "input", "output", "pay",
    "receive", "fee", "gas", "reward", "debt", "collateral", "underlying", "native", "wrapped",
    "stake", "staked", "lp", "pool", "asset",
})
# fmt: on


def looks_secret(key: str) -> bool:
    """Whether a mapping key names a credential (api_key, apiKey, secret, password, privateKey,
    mnemonic, token, access_token, ...), case- and style-insensitively."""
    words = [w.lower() for w in _KEY_WORDS.findall(key)]
    if not words:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    if any(a + b in _SECRET_PAIRS for a, b in pairwise(words)):
        return True
    return words[-1] == "token" and (len(words) == 1 or words[-2] not in _ASSET_TOKEN_PREFIXES)


class Redactor:
    """Masks secrets in payloads and texts, and remembers every secret it is given or meets.

    A `SecretStr` met in one payload (the exchange key in the run's config) is learned, so the
    same key echoed later in plain text (an exchange's error message) is scrubbed too.
    """

    def __init__(self, known: Iterable[str | SecretStr] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in known:
            self.add(secret)

    def add(self, secret: str | SecretStr) -> None:
        plain = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if not plain or plain in self._secrets:
            return
        self._secrets.add(plain)
        # Longest first, so a secret containing another is removed whole.
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def scrub(self, text: str) -> str:
        """The text with every known secret replaced by asterisks."""
        return text if self._pattern is None else self._pattern.sub(REDACTED, text)

    def redact(self, value: Any) -> Any:
        """A JSON-able copy of `value` without secrets (see `redact`)."""
        met: set[str] = set()
        cleaned = self._clean(value, met)
        if met - self._secrets:
            # A secret first met in this payload may be echoed earlier in it: clean again.
            for secret in met:
                self.add(secret)
            cleaned = self._clean(value, met)
        return cleaned

    def _clean(self, value: Any, met: set[str]) -> Any:
        if isinstance(value, SecretStr):
            met.add(value.get_secret_value())
            return REDACTED
        if isinstance(value, SecretBytes):
            return REDACTED
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {self.scrub(str(k)): self._clean_item(str(k), v, met) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean(v, met) for v in value]
        return self._clean(_plain(value), met)

    def _clean_item(self, key: str, value: Any, met: set[str]) -> Any:
        """A value under a secret-looking key is masked whole (None stays: nothing is hidden).
        Only a SecretStr there is learned: learning plain values would scrub e.g. a token
        symbol from the whole journal."""
        if value is None or not looks_secret(key):
            return self._clean(value, met)
        if isinstance(value, SecretStr):
            met.add(value.get_secret_value())
        return REDACTED


def _plain(value: Any) -> Any:
    """The JSON-able form of the value types payloads carry (models, dataclasses, numpy...)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):  # pandas.Timestamp included
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise JournalError(f"cannot journal a {type(value).__name__}: not JSON-able")


def redact(value: Any, known: Iterable[str | SecretStr] = ()) -> Any:
    """A JSON-able copy of `value` where SecretStr values, values under secret-looking keys (any
    nesting of mappings and lists) and occurrences of the `known` secrets are asterisks."""
    return Redactor(known).redact(value)


# ---------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RunRecord:
    """A run as journaled; `config` is the redacted copy."""

    run_id: str
    mode: str
    strategy: str
    seed: int | None
    config: dict[str, Any]
    status: str
    started_ms: int
    ended_ms: int | None
    summary: dict[str, Any] | None
    resumes: int


@dataclass(frozen=True)
class TickRecord:
    tick_id: int
    run_id: str
    time_ms: int


@dataclass(frozen=True)
class ToolCallRecord:
    tick_id: int
    tool: str
    inputs: dict[str, Any]
    output: str | None
    latency_ms: float
    error: str | None


@dataclass(frozen=True)
class LlmMessageRecord:
    tick_id: int
    role: str
    content: str
    tool_calls: list[Any] | None
    model: str | None


@dataclass(frozen=True)
class OrderRecord:
    """An order's latest state; `tick_id` is the tick of the last update."""

    venue: str
    client_order_id: str
    status: str
    first_tick_id: int
    tick_id: int
    order: dict[str, Any]


@dataclass(frozen=True)
class FillRecord:
    tick_id: int
    venue: str
    trade_id: str
    trade: dict[str, Any]


# ---------------------------------------------------------------------------------------- journal


def new_run_id() -> str:
    """'20240501T120000123456Z-9f3ac2d1': sorts by start time; the suffix makes it unique."""
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Journal:
    """The agent's record: runs, and per tick tool calls, LLM messages, intents, verdicts,
    orders, fills and equity. One writer; open more instances (or sqlite3) to read meanwhile."""

    def __init__(self, path: str | Path, id_factory: Callable[[], str] = new_run_id) -> None:
        """`id_factory` makes run ids; inject a deterministic one in tests."""
        self.path = Path(path)
        self._new_id = id_factory
        self._redactor = Redactor()
        self._depth = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are begun and ended explicitly by `transaction()`.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        """Create the schema in a new file; check the version of an existing one. A reader
        opening while the agent writes takes no write lock here."""
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            found = None if row is None else row[0]
            raise JournalError(
                f"{self.path}: journal schema version {found}, this defai reads version "
                f"{SCHEMA_VERSION}; use a new journal file"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ secrets

    def register_secret(self, value: str | SecretStr) -> None:
        """Scrub this value from everything written from now on (an exchange key, a wallet key)."""
        self._redactor.add(value)

    def _json(self, value: Any) -> str:
        return json.dumps(self._redactor.redact(value))

    def _text(self, text: str) -> str:
        return self._redactor.scrub(text)

    def _json_text(self, text: str) -> str:
        """A tool's output: JSON is redacted structurally and kept verbatim if nothing was
        secret (a replay then returns the exact text); other text is only scrubbed."""
        try:
            parsed = json.loads(text)
        except ValueError:
            return self._text(text)
        cleaned = self._redactor.redact(parsed)
        return text if cleaned == parsed else json.dumps(cleaned)

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit everything written inside at once, or nothing if it raises (or the process
        dies). Nested uses join the outermost transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        with self.transaction():
            return self._db.execute(sql, params)

    def _insert(self, sql: str, params: tuple[Any, ...]) -> int:
        rowid = self._write(sql, params).lastrowid
        assert rowid is not None  # an INSERT always sets it
        return rowid

    def _require_run(self, run_id: str) -> None:
        if self._db.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
            raise JournalError(f"unknown run {run_id!r} in {self.path}")

    def _run_of(self, tick_id: int) -> str:
        row = self._db.execute("SELECT run_id FROM ticks WHERE tick_id=?", (tick_id,)).fetchone()
        if row is None:
            raise JournalError(f"unknown tick {tick_id}: record the tick with tick() first")
        run_id: str = row[0]
        return run_id

    # ------------------------------------------------------------------ runs

    def start_run(
        self, config: Mapping[str, Any], mode: Mode, strategy: str, seed: int | None
    ) -> str:
        """Open a new run and return its id; the config is stored redacted."""
        if mode not in MODES:
            raise JournalError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        run_id = self._new_id()
        try:
            self._write(
                "INSERT INTO runs (run_id, mode, strategy, seed, config, status, started_ms) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (run_id, mode, self._text(strategy), seed, self._json(dict(config)), _wall_ms()),
            )
        except sqlite3.IntegrityError:
            raise JournalError(f"run id {run_id!r} already exists in {self.path}") from None
        log.info("journal %s: run %s started (%s mode)", self.path, run_id, mode)
        return run_id

    def resume_run(self, run_id: str) -> RunRecord:
        """Continue a run after a restart: it is running again and its resume count goes up."""
        self._require_run(run_id)
        self._write(
            "UPDATE runs SET status='running', ended_ms=NULL, summary=NULL, resumes=resumes+1 "
            "WHERE run_id=?",
            (run_id,),
        )
        log.info("journal %s: run %s resumed", self.path, run_id)
        return self.run(run_id)

    def end_run(self, run_id: str, status: str, summary: Mapping[str, Any]) -> None:
        """Close a run with a final status (completed, failed, stopped...) and its summary."""
        self._require_run(run_id)
        status = self._text(status)
        self._write(
            "UPDATE runs SET status=?, ended_ms=?, summary=? WHERE run_id=?",
            (status, _wall_ms(), self._json(dict(summary)), run_id),
        )
        log.info("journal %s: run %s ended: %s", self.path, run_id, status)

    def run(self, run_id: str) -> RunRecord:
        row = self._db.execute(f"{_RUN_SELECT} WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            raise JournalError(f"unknown run {run_id!r} in {self.path}")
        return _run_record(row)

    def last_run(self, mode: Mode | None = None) -> RunRecord | None:
        """The most recently started run, of one mode if given."""
        where, params = ("WHERE mode=?", (mode,)) if mode else ("", ())
        row = self._db.execute(
            f"{_RUN_SELECT} {where} ORDER BY seq DESC LIMIT 1", params
        ).fetchone()
        return None if row is None else _run_record(row)

    # ------------------------------------------------------------------ per-tick writes

    def tick(self, run_id: str, time_ms: int) -> int:
        """Start a tick at the agent's clock time (simulated in a backtest); returns its id."""
        self._require_run(run_id)
        return self._insert(
            "INSERT INTO ticks (run_id, time_ms) VALUES (?, ?)", (run_id, int(time_ms))
        )

    def tool_call(
        self,
        tick_id: int,
        tool: str,
        inputs: Mapping[str, Any],
        output: str | None,
        latency_ms: float,
        error: str | None = None,
    ) -> None:
        self._run_of(tick_id)
        self._write(
            "INSERT INTO tool_calls (tick_id, tool, inputs, output, latency_ms, error) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                tick_id,
                self._text(tool),
                self._json(dict(inputs)),
                None if output is None else self._json_text(output),
                float(latency_ms),
                None if error is None else self._text(error),
            ),
        )

    def llm_message(
        self,
        tick_id: int,
        role: str,
        content: str,
        tool_calls: Any = None,
        model: str | None = None,
    ) -> None:
        """One chat message (system, human, ai, tool) with the tool calls an AI message asked."""
        self._run_of(tick_id)
        self._write(
            "INSERT INTO llm_messages (tick_id, role, content, tool_calls, model) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                tick_id,
                self._text(role),
                self._text(content),
                self._json(tool_calls) if tool_calls else None,
                None if model is None else self._text(model),
            ),
        )

    def intent(self, tick_id: int, intent: Any) -> int:
        """Record an intent (a mapping, dataclass or pydantic model); returns its intent_id."""
        self._run_of(tick_id)
        return self._insert(
            "INSERT INTO intents (tick_id, payload) VALUES (?, ?)", (tick_id, self._json(intent))
        )

    def verdict(
        self, tick_id: int, intent_id: int, reason_code: str, message: str, approved: bool
    ) -> None:
        self._run_of(tick_id)
        try:
            self._write(
                "INSERT INTO verdicts (tick_id, intent_id, approved, reason_code, message) "
                "VALUES (?, ?, ?, ?, ?)",
                (tick_id, intent_id, int(approved), self._text(reason_code), self._text(message)),
            )
        except sqlite3.IntegrityError:
            raise JournalError(f"verdict on unknown intent {intent_id}") from None

    def order(
        self,
        tick_id: int,
        venue: str,
        client_order_id: str,
        order: Mapping[str, Any],
        status: str,
    ) -> None:
        """Record an order or its new status: one row per (run, venue, client_order_id)."""
        run_id = self._run_of(tick_id)
        clean = self._redactor.redact(dict(order))
        self._write(
            "INSERT INTO orders (run_id, venue, client_order_id, first_tick_id, tick_id, symbol, "
            "status, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, venue, client_order_id) DO UPDATE SET "
            "tick_id=excluded.tick_id, symbol=excluded.symbol, status=excluded.status, "
            "payload=excluded.payload",
            (
                run_id,
                venue,
                self._text(client_order_id),
                tick_id,
                tick_id,
                clean.get("symbol"),
                self._text(status),
                json.dumps(clean),
            ),
        )

    def set_pending_exits(
        self, run_id: str, exits: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """The stop-loss / take-profit orders still waiting for their entry (entry order id,
        the entry intent): replaced as a whole, inside the tick's transaction, so a restart
        places the exits of entries that fill while it was down."""
        self._require_run(run_id)
        with self.transaction():
            self._db.execute("DELETE FROM pending_exits WHERE run_id=?", (run_id,))
            self._db.executemany(
                "INSERT INTO pending_exits (run_id, order_id, intent) VALUES (?, ?, ?)",
                [(run_id, self._text(oid), self._json(dict(intent))) for oid, intent in exits],
            )

    def pending_exits(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT order_id, intent FROM pending_exits WHERE run_id=? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [(order_id, json.loads(intent)) for order_id, intent in rows]

    def fill(self, tick_id: int, venue: str, trade: Mapping[str, Any]) -> bool:
        """Record a trade (ccxt's shape); False if this venue's trade id is already journaled in
        the run, so fills replayed after a restart are not counted twice."""
        run_id = self._run_of(tick_id)
        clean = self._redactor.redact(dict(trade))
        if clean.get("id") is None:
            raise JournalError(f"fill on {venue} without a trade id cannot be de-duplicated")
        cursor = self._write(
            "INSERT INTO fills (run_id, tick_id, venue, trade_id, order_id, symbol, side, price, "
            "amount, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id, venue, trade_id) DO NOTHING",
            (
                run_id,
                tick_id,
                venue,
                str(clean["id"]),
                clean.get("order"),
                clean.get("symbol"),
                clean.get("side"),
                clean.get("price"),
                clean.get("amount"),
                json.dumps(clean),
            ),
        )
        if cursor.rowcount == 0:
            log.debug("journal: fill %s on %s already recorded", clean["id"], venue)
        return cursor.rowcount == 1

    def equity(self, tick_id: int, equity: float, by_venue: Mapping[str, float]) -> None:
        """Total equity after the tick and its split by venue (quote currency)."""
        self._run_of(tick_id)
        try:
            self._write(
                "INSERT INTO equity (tick_id, equity, by_venue) VALUES (?, ?, ?)",
                (tick_id, float(equity), self._json(dict(by_venue))),
            )
        except sqlite3.IntegrityError:
            raise JournalError(f"equity of tick {tick_id} is already recorded") from None

    # ------------------------------------------------------------------ reads

    def ticks(self, run_id: str) -> list[TickRecord]:
        rows = self._db.execute(
            "SELECT tick_id, run_id, time_ms FROM ticks WHERE run_id=? ORDER BY tick_id", (run_id,)
        )
        return [TickRecord(*row) for row in rows]

    def last_tick(self, run_id: str) -> TickRecord | None:
        """The last committed tick: a restart continues after it."""
        row = self._db.execute(
            "SELECT tick_id, run_id, time_ms FROM ticks WHERE run_id=? "
            "ORDER BY tick_id DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        return None if row is None else TickRecord(*row)

    def tool_calls(self, run_id: str, tick: int | None = None) -> list[ToolCallRecord]:
        """In call order, for the run or one of its ticks (by tick_id): what a replay returns."""
        where, params = _tick_filter(run_id, tick)
        rows = self._db.execute(
            "SELECT c.tick_id, c.tool, c.inputs, c.output, c.latency_ms, c.error "
            f"FROM tool_calls c JOIN ticks t USING (tick_id) WHERE {where} ORDER BY c.id",
            params,
        )
        return [
            ToolCallRecord(tick_id, tool, json.loads(inputs), output, latency, error)
            for tick_id, tool, inputs, output, latency, error in rows
        ]

    def llm_messages(self, run_id: str, tick: int | None = None) -> list[LlmMessageRecord]:
        where, params = _tick_filter(run_id, tick)
        rows = self._db.execute(
            "SELECT m.tick_id, m.role, m.content, m.tool_calls, m.model "
            f"FROM llm_messages m JOIN ticks t USING (tick_id) WHERE {where} ORDER BY m.id",
            params,
        )
        return [
            LlmMessageRecord(tick_id, role, content, _loads(calls), model)
            for tick_id, role, content, calls, model in rows
        ]

    def orders(self, run_id: str) -> list[OrderRecord]:
        return self._orders("run_id=?", (run_id,))

    def open_orders(self, run_id: str) -> list[OrderRecord]:
        """Orders a restart must re-fetch from their venue: last status open, pending or unknown."""
        marks = ", ".join("?" * len(OPEN_STATUSES))
        return self._orders(f"run_id=? AND status IN ({marks})", (run_id, *OPEN_STATUSES))

    def _orders(self, where: str, params: tuple[Any, ...]) -> list[OrderRecord]:
        rows = self._db.execute(
            "SELECT venue, client_order_id, status, first_tick_id, tick_id, payload FROM orders "
            f"WHERE {where} ORDER BY id",
            params,
        )
        return [
            OrderRecord(venue, client_id, status, first, last, json.loads(payload))
            for venue, client_id, status, first, last, payload in rows
        ]

    def fills(self, run_id: str) -> list[FillRecord]:
        rows = self._db.execute(
            "SELECT tick_id, venue, trade_id, payload FROM fills WHERE run_id=? ORDER BY id",
            (run_id,),
        )
        return [
            FillRecord(tick_id, venue, trade_id, json.loads(payload))
            for tick_id, venue, trade_id, payload in rows
        ]

    def equity_curve(self, run_id: str) -> pd.DataFrame:
        """Equity after each tick, indexed by tick time (UTC): `equity` and `equity:<venue>`."""
        rows = self._db.execute(
            "SELECT t.time_ms, e.equity, e.by_venue FROM equity e JOIN ticks t USING (tick_id) "
            "WHERE t.run_id=? ORDER BY t.tick_id",
            (run_id,),
        ).fetchall()
        index = pd.DatetimeIndex(
            pd.to_datetime([r[0] for r in rows], unit="ms", utc=True), name="time"
        )
        frame = pd.DataFrame({"equity": [float(r[1]) for r in rows]}, index=index)
        venues = pd.DataFrame([json.loads(r[2]) for r in rows], index=index)
        return frame.join(venues.add_prefix("equity:"))


_RUN_SELECT = (
    "SELECT run_id, mode, strategy, seed, config, status, started_ms, ended_ms, summary, resumes "
    "FROM runs"
)


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, mode, strategy, seed, config, status, started, ended, summary, resumes = row
    return RunRecord(
        run_id=run_id,
        mode=mode,
        strategy=strategy,
        seed=seed,
        config=json.loads(config),
        status=status,
        started_ms=started,
        ended_ms=ended,
        summary=_loads(summary),
        resumes=resumes,
    )


def _tick_filter(run_id: str, tick: int | None) -> tuple[str, tuple[Any, ...]]:
    if tick is None:
        return "t.run_id=?", (run_id,)
    return "t.run_id=? AND t.tick_id=?", (run_id, tick)


__all__ = [
    "OPEN_STATUSES",
    "FillRecord",
    "Journal",
    "JournalError",
    "LlmMessageRecord",
    "OrderRecord",
    "Redactor",
    "RunRecord",
    "TickRecord",
    "ToolCallRecord",
    "looks_secret",
    "new_run_id",
    "redact",
]
