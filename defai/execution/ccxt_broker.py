"""CcxtBroker: live and sandbox trading through any ccxt exchange, safe to retry and to restart.

A trading bot's worst failures are silent: a create whose response was lost and is re-sent (two
orders), a fill that happened while the bot was down (a position it does not know), an API key in
a log file. So this broker
- writes every order to a SQLite journal *before* sending it, under a clientOrderId it chose;
- retries only what ccxt says may succeed on retry (`ccxt.OperationFailed`: network errors,
  timeouts, rate limits, exchange unavailable), with exponential backoff — and before re-sending a
  create or a cancel, asks the exchange whether the first attempt already went through;
- reconciles the journal with the exchange on start: open orders re-fetched, fills it missed
  rebuilt from `fetch_my_trades`, orders the exchange no longer knows marked lost;
- never shows a credential: not in its repr, not in exception texts, not in the journal, and not
  in ccxt's own DEBUG log of request headers (a logging filter redacts them).

Amounts and prices go through ccxt's `amount_to_precision` / `price_to_precision` first, and an
amount that rounds to zero or falls below the market's minimum is refused before anything is sent.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import ccxt
from pydantic import SecretStr

from defai.config import REDACTED, ExchangeSettings, load_settings
from defai.errors import ConfigError
from defai.execution.broker import Balance, Market, Order, Position, Ticker, Trade
from defai.market.ccxt_feed import make_exchange

log = logging.getLogger(__name__)

T = TypeVar("T")

# ccxt's class for "the request failed, but may succeed if repeated": NetworkError (and with it
# RequestTimeout, RateLimitExceeded, DDoSProtection, ExchangeNotAvailable, InvalidNonce) and
# BadResponse (e.g. Binance -1007: "execution status unknown").
RETRYABLE = (ccxt.OperationFailed,)

# Errors by which an exchange refuses an order outright. Any other failure of a create (retries
# given up, an error code ccxt does not map) leaves the order's fate unknown, as Binance says of
# its HTTP 5XX answers: "the execution status is UNKNOWN and could have been a success".
REFUSED = (
    ccxt.InvalidOrder,
    ccxt.InsufficientFunds,
    ccxt.AuthenticationError,
    ccxt.BadRequest,
    ccxt.NotSupported,
    ccxt.ArgumentsRequired,
    ccxt.OperationRejected,
)

# Statuses the journal adds to ccxt's (open, closed, canceled, expired, rejected):
# pending = written, being sent; unknown = sent, outcome unknown; lost = the exchange has no record.
UNSETTLED = ("pending", "unknown", "open")
CREDENTIAL_ATTRIBUTES = ("apiKey", "secret", "password", "privateKey", "token")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_]{1,12}")
SIGNATURE = re.compile(r"(signature=)[^&\s'\"]+")
TRADES_PAGE = 500

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    exchange_id TEXT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    amount REAL NOT NULL,
    price REAL,
    status TEXT NOT NULL,
    filled REAL NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    not_found INTEGER NOT NULL DEFAULT 0,
    last_seen TEXT
);
CREATE INDEX IF NOT EXISTS orders_by_exchange_id ON orders (exchange_id);
CREATE TABLE IF NOT EXISTS trades (
    symbol TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
    exchange_order_id TEXT,
    side TEXT,
    amount REAL,
    price REAL,
    cost REAL,
    fee_cost REAL,
    fee_currency TEXT,
    timestamp INTEGER,
    PRIMARY KEY (symbol, trade_id)
);
"""


@dataclass(frozen=True)
class JournalOrder:
    """One order as the journal last saw it."""

    client_order_id: str
    exchange_id: str | None
    symbol: str
    side: str
    type: str
    amount: float
    price: float | None
    status: str
    filled: float
    created_ms: int
    updated_ms: int
    not_found: int
    last_seen: str | None

    def order(self) -> Order | None:
        """The exchange's order as last fetched, in ccxt's shape; None before it answered."""
        return None if self.last_seen is None else dict(json.loads(self.last_seen))


@dataclass
class ReconcileReport:
    """What a reconciliation found, by clientOrderId."""

    reconciled: list[str] = field(default_factory=list)
    filled_while_down: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    new_trades: int = 0


class OrderJournal:
    """SQLite (WAL) record of the orders a broker sent and their trades; never a credential.

    It is the broker's memory across restarts: what it sent (so a retry is never a second order)
    and what it believes open (so a restart can ask the exchange what happened meanwhile).
    """

    def __init__(self, path: str | Path | None, venue: str, now_ms: int) -> None:
        self.path = None if path is None else Path(path)
        self._db = sqlite3.connect(":memory:" if self.path is None else self.path)
        self._db.row_factory = sqlite3.Row
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
        with self._db:
            self._db.executescript(SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('venue', ?), ('session', ?), ('counter', '0')",
                (venue, f"{now_ms:x}"),
            )
        recorded = self._meta("venue")
        if recorded != venue:
            self._db.close()
            raise ConfigError(
                f"journal {self.path} records orders on {recorded}, not on {venue}: "
                "use one journal per venue (live and sandbox are different venues)"
            )

    def _meta(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row["value"])

    def next_client_order_id(self, name: str) -> str:
        """`<name>-<journal session>-<n>`: unique per journal, the same after a restart."""
        with self._db:
            self._db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'counter'"
            )
        return f"{name}-{self._meta('session')}-{self._meta('counter')}"

    def get(self, client_order_id: str) -> JournalOrder | None:
        row = self._db.execute(
            "SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,)
        ).fetchone()
        return None if row is None else JournalOrder(**dict(row))

    def by_exchange_id(self, exchange_id: object) -> JournalOrder | None:
        row = self._db.execute(
            "SELECT * FROM orders WHERE exchange_id = ?", (str(exchange_id),)
        ).fetchone()
        return None if row is None else JournalOrder(**dict(row))

    def find(self, order: Order) -> JournalOrder | None:
        """The journaled order behind an exchange order, by clientOrderId or exchange id.

        Both are needed: Binance's cancel response carries the cancel's own clientOrderId.
        """
        client_order_id = order.get("clientOrderId")
        found = self.get(client_order_id) if client_order_id else None
        return found or self.by_exchange_id(order.get("id"))

    def orders(self, statuses: tuple[str, ...] | None = None) -> list[JournalOrder]:
        query, args = "SELECT * FROM orders", statuses or ()
        if statuses is not None:
            query += f" WHERE status IN ({','.join('?' * len(statuses))})"
        rows = self._db.execute(query + " ORDER BY created_ms, client_order_id", args)
        return [JournalOrder(**dict(row)) for row in rows]

    def insert(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        type: str,
        amount: float,
        price: float | None,
        now_ms: int,
    ) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO orders (client_order_id, symbol, side, type, amount, price, status,"
                " created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (client_order_id, symbol, side, type, amount, price, now_ms, now_ms),
            )

    def record(self, client_order_id: str, order: Order, last_seen: str, now_ms: int) -> None:
        """The exchange's view of the order; ccxt's status, or still open when it gives none."""
        with self._db:
            self._db.execute(
                "UPDATE orders SET exchange_id = COALESCE(?, exchange_id), status = ?,"
                " filled = COALESCE(?, filled), updated_ms = ?, not_found = 0, last_seen = ?"
                " WHERE client_order_id = ?",
                (
                    None if order.get("id") is None else str(order["id"]),
                    order.get("status") or "open",
                    order.get("filled"),
                    now_ms,
                    last_seen,
                    client_order_id,
                ),
            )

    def set_status(self, client_order_id: str, status: str, now_ms: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE orders SET status = ?, updated_ms = ? WHERE client_order_id = ?",
                (status, now_ms, client_order_id),
            )

    def miss(self, client_order_id: str, now_ms: int) -> int:
        """One more consecutive check that found no such order; return how many in a row."""
        with self._db:
            self._db.execute(
                "UPDATE orders SET not_found = not_found + 1, updated_ms = ?"
                " WHERE client_order_id = ?",
                (now_ms, client_order_id),
            )
        entry = self.get(client_order_id)
        return 0 if entry is None else entry.not_found

    def add_trades(self, client_order_id: str, symbol: str, trades: list[Trade]) -> int:
        """Record trades not yet known (by symbol and trade id); return how many were new."""
        rows = [
            (
                t.get("symbol") or symbol,
                str(t["id"]),
                client_order_id,
                None if t.get("order") is None else str(t["order"]),
                t.get("side"),
                t.get("amount"),
                t.get("price"),
                t.get("cost"),
                (t.get("fee") or {}).get("cost"),
                (t.get("fee") or {}).get("currency"),
                t.get("timestamp"),
            )
            for t in trades
            if t.get("id") is not None
        ]
        with self._db:
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            return self._db.total_changes - before

    def traded_amount(self, client_order_id: str) -> float:
        row = self._db.execute(
            "SELECT COALESCE(SUM(amount), 0) AS total FROM trades WHERE client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        return float(row["total"])

    def trades(self, client_order_id: str | None = None) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM trades WHERE ?1 IS NULL OR client_order_id = ?1"
            " ORDER BY timestamp, trade_id",
            (client_order_id,),
        )
        return [dict(row) for row in rows]

    def close(self) -> None:
        self._db.close()


class _RedactingFilter(logging.Filter):
    """Rewrites log records that contain a credential; ccxt logs request headers at DEBUG."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class CcxtBroker:
    """The Broker protocol over a ccxt exchange, with an order journal, retries and reconciliation.

    `CcxtBroker.from_settings(load_settings().exchange, db="orders.sqlite")` trades the exchange
    configured in defai.toml / DEFAI_EXCHANGE__* ; give `db` so a restart can reconcile.
    """

    def __init__(
        self,
        exchange: ccxt.Exchange | str,
        *,
        api_key: SecretStr | None = None,
        secret: SecretStr | None = None,
        password: SecretStr | None = None,
        sandbox: bool = False,
        db: str | Path | None = None,
        name: str = "defai",
        max_retries: int = 5,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        lost_after: int = 3,
        reconcile_on_start: bool = True,
    ) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f"broker name {name!r}: use 1-12 letters, digits or underscores")
        if max_retries < 0 or backoff_s < 0 or lost_after < 1:
            raise ConfigError("max_retries and backoff_s must be >= 0, lost_after >= 1")
        self.exchange = make_exchange(exchange) if isinstance(exchange, str) else exchange
        self.id: str = self.exchange.id
        for attribute, value in (("apiKey", api_key), ("secret", secret), ("password", password)):
            if value is not None:
                setattr(self.exchange, attribute, value.get_secret_value())
        if sandbox:
            self.exchange.set_sandbox_mode(True)
        if self.exchange.verbose:
            log.warning("%s: ccxt verbose output turned off: it prints API keys", self.id)
            self.exchange.verbose = False
        self.sandbox = bool(getattr(self.exchange, "isSandboxModeEnabled", False))
        self.name = name
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.lost_after = lost_after
        venue = f"{self.id} ({'sandbox' if self.sandbox else 'live'})"
        self.journal = OrderJournal(db, venue, self._now())
        self._log_filter = _RedactingFilter(self._redact)
        self.exchange.logger.addFilter(self._log_filter)
        try:
            self.startup_report = (
                self.reconcile() if db is not None and reconcile_on_start else ReconcileReport()
            )
        except BaseException:
            self.close()  # refuse to start trading on a journal the exchange could not confirm
            raise

    @classmethod
    def from_settings(cls, settings: ExchangeSettings, **kwargs: Any) -> CcxtBroker:
        """The exchange, credentials and sandbox flag of `[exchange]` / DEFAI_EXCHANGE__*."""
        return cls(
            settings.name,
            api_key=settings.api_key,
            secret=settings.secret,
            password=settings.password,
            sandbox=settings.sandbox,
            **kwargs,
        )

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> CcxtBroker:
        """`from_settings` over defai.toml and the DEFAI_* environment (see defai.config)."""
        return cls.from_settings(load_settings(path, environ).exchange, **kwargs)

    def __repr__(self) -> str:
        journal = self.journal.path or ":memory:"
        return f"CcxtBroker({self.id!r}, sandbox={self.sandbox}, journal={str(journal)!r})"

    def __enter__(self) -> CcxtBroker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.journal.close()
        self.exchange.logger.removeFilter(self._log_filter)

    # -- secrets ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for attribute in CREDENTIAL_ATTRIBUTES:
            value = getattr(self.exchange, attribute, None)
            if isinstance(value, str) and value:
                text = text.replace(value, REDACTED)
        return SIGNATURE.sub(rf"\g<1>{REDACTED}", text)

    def _scrubbed(self, exc: ccxt.BaseError) -> ccxt.BaseError:
        """The same error class, its message without credentials (some venues echo the key)."""
        text = str(exc)
        clean = self._redact(text)
        return exc if clean == text else type(exc)(clean)

    # -- retries ---------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.exchange.milliseconds())

    def _retry(
        self,
        what: str,
        call: Callable[[], T],
        recover: Callable[[], T | None] | None = None,
    ) -> T:
        """`call` with backoff on retryable errors; before each retry, `recover` may answer.

        `recover` is how a non-idempotent call is retried safely: it asks the exchange whether
        the previous attempt took effect (and returns its result) before the call is repeated.
        """
        attempt = 0
        while True:
            try:
                if attempt and recover is not None:
                    found = recover()
                    if found is not None:
                        return found
                return call()
            except RETRYABLE as exc:
                if attempt >= self.max_retries:
                    log.error("%s %s: gave up after %d attempts", self.id, what, attempt + 1)
                    raise self._scrubbed(exc) from None
                delay = self.backoff_s * 2**attempt
                log.warning(
                    "%s %s: %s, retry %d/%d in %.2fs",
                    self.id,
                    what,
                    type(exc).__name__,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                self.sleep(delay)
                attempt += 1
            except ccxt.BaseError as exc:
                raise self._scrubbed(exc) from None

    # -- journal bookkeeping ---------------------------------------------------------------

    def _observe(self, orders: list[Order]) -> None:
        """Bring journaled orders up to date with what the exchange just said about them."""
        for order in orders:
            entry = self.journal.find(order)
            if entry is not None:
                self._record(entry.client_order_id, order)

    def _record(self, client_order_id: str, order: Order) -> None:
        last_seen = self._redact(json.dumps(order, default=str))
        self.journal.record(client_order_id, order, last_seen, self._now())
        # fills embedded in an order (Binance's FULL response) leave order, side and time blank
        fills = [
            t
            | {
                "order": t.get("order") or order.get("id"),
                "side": t.get("side") or order.get("side"),
                "timestamp": t.get("timestamp") or order.get("lastTradeTimestamp"),
            }
            for t in order.get("trades") or []
        ]
        self.journal.add_trades(client_order_id, str(order.get("symbol")), fills)

    def _find_by_client_id(self, client_order_id: str, symbol: str, since: int) -> Order | None:
        """The exchange's order with this clientOrderId, or None if the exchange has none.

        Asked directly where ccxt supports it (Binance: origClientOrderId); otherwise the open
        and closed orders since `since` are scanned. An exchange offering neither raises, so an
        order of unknown fate is never re-sent blindly.
        """
        try:
            order: Order = self.exchange.fetch_order(
                None, symbol, {"clientOrderId": client_order_id}
            )
            return order
        except ccxt.OrderNotFound:
            return None
        except (ccxt.NotSupported, ccxt.ArgumentsRequired, ccxt.BadRequest):
            pass
        for fetch in (self.exchange.fetch_open_orders, self.exchange.fetch_closed_orders):
            for candidate in fetch(symbol, since):
                if candidate.get("clientOrderId") == client_order_id:
                    return dict(candidate)
        return None

    # -- Broker protocol -------------------------------------------------------------------

    def load_markets(self, reload: bool = False) -> dict[str, Market]:
        markets: dict[str, Market] = self._retry(
            "load_markets", partial(self.exchange.load_markets, reload)
        )
        return markets

    def fetch_balance(self, params: dict[str, Any] | None = None) -> Balance:
        balance: Balance = self._retry(
            "fetch_balance", partial(self.exchange.fetch_balance, params or {})
        )
        return balance

    def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> Ticker:
        ticker: Ticker = self._retry(
            f"fetch_ticker {symbol}", partial(self.exchange.fetch_ticker, symbol, params or {})
        )
        return ticker

    def fetch_positions(
        self, symbols: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> list[Position]:
        positions: list[Position] = self._retry(
            "fetch_positions", partial(self.exchange.fetch_positions, symbols, params or {})
        )
        return positions

    def _precise(
        self, symbol: str, amount: float, price: float | None
    ) -> tuple[float, float | None]:
        """Amount and price at the market's precision; InvalidOrder if below its minimums."""
        market = self.load_markets().get(symbol)
        if market is None:
            raise ccxt.BadSymbol(f"{self.id} has no market {symbol!r}")
        try:
            precise = float(self.exchange.amount_to_precision(symbol, amount))
        except ccxt.InvalidOrder:
            precise = 0.0
        step = market["precision"]["amount"]
        if precise <= 0:
            raise ccxt.InvalidOrder(
                f"{self.id} {symbol}: amount {amount} rounds to 0 at the market's step {step}"
            )
        limits = market.get("limits") or {}
        min_amount = (limits.get("amount") or {}).get("min")
        if min_amount is not None and precise < min_amount:
            raise ccxt.InvalidOrder(
                f"{self.id} {symbol}: amount {precise} is below the market's minimum {min_amount}"
            )
        if price is None:
            return precise, None
        precise_price = float(self.exchange.price_to_precision(symbol, price))
        min_cost = (limits.get("cost") or {}).get("min")
        if min_cost is not None and precise * precise_price < min_cost:
            raise ccxt.InvalidOrder(
                f"{self.id} {symbol}: order value {precise * precise_price:g} "
                f"({precise} at {precise_price}) is below the market's minimum {min_cost}"
            )
        return precise, precise_price

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> Order:
        """Place an order exactly once, however often the network fails.

        The clientOrderId (the caller's `params["clientOrderId"]`, or the journal's next one) is
        journaled before sending. A retry first looks the id up on the exchange and returns the
        order found there; a caller repeating an id gets the order recorded under it.
        """
        params = dict(params or {})
        amount, price = self._precise(symbol, amount, price)
        client_order_id = str(params.get("clientOrderId") or "")
        entry = self.journal.get(client_order_id) if client_order_id else None
        if entry is not None:
            if (entry.symbol, entry.type, entry.side, entry.amount) != (symbol, type, side, amount):
                raise ccxt.InvalidOrder(
                    f"{self.id}: clientOrderId {client_order_id} was already used for "
                    f"{entry.type} {entry.side} {entry.amount} {entry.symbol}"
                )
            recorded = entry.order()
            if recorded is not None:
                return recorded
            # sent before with an unknown or failed outcome: ask before sending again
            found = self._retry(
                f"find {client_order_id}",
                partial(self._find_by_client_id, client_order_id, symbol, entry.created_ms),
            )
            if found is not None:
                self._record(client_order_id, found)
                return found
        else:
            client_order_id = client_order_id or self.journal.next_client_order_id(self.name)
            self.journal.insert(client_order_id, symbol, side, type, amount, price, self._now())
            entry = self.journal.get(client_order_id)
            assert entry is not None
        params["clientOrderId"] = client_order_id
        sends = 0

        def send() -> Order:
            nonlocal sends
            sends += 1
            order: Order = self.exchange.create_order(symbol, type, side, amount, price, params)
            return order

        log.info(
            "%s create_order %s: %s %s %s %s at %s",
            self.id,
            client_order_id,
            type,
            side,
            amount,
            symbol,
            price,
        )
        try:
            order = self._retry(
                f"create_order {client_order_id}",
                send,
                partial(self._find_by_client_id, client_order_id, symbol, entry.created_ms),
            )
        except ccxt.BaseError as exc:
            refused = isinstance(exc, REFUSED) and sends == 1
            status = "rejected" if refused else "unknown"
            self.journal.set_status(client_order_id, status, self._now())
            log.warning(
                "%s create_order %s: %s, journaled as %s",
                self.id,
                client_order_id,
                exc.__class__.__name__,
                status,
            )
            raise
        self._record(client_order_id, order)
        return order

    def cancel_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Order:
        """Cancel; after a lost response, an order found no longer open counts as done."""

        def settled() -> Order | None:
            order: Order = self.exchange.fetch_order(id, symbol)
            return None if order.get("status") == "open" else order

        order: Order = self._retry(
            f"cancel_order {id}",
            partial(self.exchange.cancel_order, id, symbol, params or {}),
            settled,
        )
        self._observe([order])
        return order

    def fetch_order(
        self, id: str, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> Order:
        order: Order = self._retry(
            f"fetch_order {id}", partial(self.exchange.fetch_order, id, symbol, params or {})
        )
        self._observe([order])
        return order

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Order]:
        orders: list[Order] = self._retry(
            "fetch_open_orders",
            partial(self.exchange.fetch_open_orders, symbol, since, limit, params or {}),
        )
        self._observe(orders)
        return orders

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[Trade]:
        trades: list[Trade] = self._retry(
            "fetch_my_trades",
            partial(self.exchange.fetch_my_trades, symbol, since, limit, params or {}),
        )
        for trade in trades:
            entry = self.journal.by_exchange_id(trade.get("order"))
            if entry is not None:
                self.journal.add_trades(entry.client_order_id, entry.symbol, [trade])
        return trades

    # -- restart ---------------------------------------------------------------------------

    def _order_trades(self, entry: JournalOrder, exchange_id: str, filled: float) -> list[Trade]:
        """The order's trades: fetch_my_trades pages from the order's time until `filled`."""
        found: dict[str, Trade] = {}
        cursor = entry.created_ms
        while True:
            page: list[Trade] = self._retry(
                f"fetch_my_trades {entry.symbol}",
                partial(self.exchange.fetch_my_trades, entry.symbol, cursor, TRADES_PAGE),
            )
            found.update({str(t["id"]): t for t in page if str(t.get("order")) == exchange_id})
            if len(page) < TRADES_PAGE or _covers(sum(t["amount"] for t in found.values()), filled):
                return list(found.values())
            latest = max(int(t["timestamp"]) for t in page)
            cursor = latest if latest > cursor else cursor + 1

    def _fetch_journaled(self, entry: JournalOrder) -> Order | None:
        if entry.exchange_id is None:
            return self._find_by_client_id(entry.client_order_id, entry.symbol, entry.created_ms)
        try:
            order: Order = self.exchange.fetch_order(entry.exchange_id, entry.symbol)
            return order
        except ccxt.OrderNotFound:
            return None

    def reconcile(self) -> ReconcileReport:
        """Ask the exchange about every order the journal believes open.

        Found: the journal takes the exchange's status and fill, and any fill it had not seen is
        rebuilt from the account's trades. Not found: counted; after `lost_after` consecutive
        checks the order is marked lost (never placed, or forgotten by the exchange).
        """
        report = ReconcileReport()
        for entry in self.journal.orders(UNSETTLED):
            cid = entry.client_order_id
            order = self._retry(f"reconcile {cid}", partial(self._fetch_journaled, entry))
            if order is None:
                if self.journal.miss(cid, self._now()) >= self.lost_after:
                    self.journal.set_status(cid, "lost", self._now())
                    report.lost.append(cid)
                    log.error("%s order %s: unknown to the exchange, marked lost", self.id, cid)
                else:
                    report.missing.append(cid)
                continue
            self._record(cid, order)
            report.reconciled.append(cid)
            filled = float(order.get("filled") or 0)
            known = self.journal.traded_amount(cid)
            if not _covers(known, filled):
                report.filled_while_down.append(cid)
                trades = self._order_trades(entry, str(order["id"]), filled)
                report.new_trades += self.journal.add_trades(cid, entry.symbol, trades)
                log.info(
                    "%s order %s: %s filled unseen, trades rebuilt", self.id, cid, filled - known
                )
        log.info(
            "%s reconciled %d orders: %d filled while down, %d missing, %d lost",
            self.id,
            len(report.reconciled),
            len(report.filled_while_down),
            len(report.missing),
            len(report.lost),
        )
        return report


def _covers(traded: float, filled: float) -> bool:
    """Whether trades adding up to `traded` account for an order's `filled` (float sums)."""
    return traded >= filled or math.isclose(traded, filled, rel_tol=1e-9)
