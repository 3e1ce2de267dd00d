"""Journal: runs and ticks round-trip, whole ticks survive SIGKILL, readers never block, and no
secret reaches the database file in any shape.

Run as a script (`python test_journal.py DB PAUSE_AT`) this file is the agent the crash tests
kill: it journals ticks forever, printing each committed tick's number.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from defai.agent.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalError,
    looks_secret,
    new_run_id,
    redact,
)
from defai.config import REDACTED, ExchangeSettings, Settings

MINUTE = 60_000
RUN = "run-0001"


def counter_ids() -> Iterator[str]:
    return (f"run-{i:04d}" for i in itertools.count(1))


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    ids = counter_ids()
    with Journal(tmp_path / "agent.db", id_factory=lambda: next(ids)) as j:
        yield j


def record_tick(journal: Journal, run_id: str, i: int, pause: bool = False) -> int:
    """One full tick: each table gets one row; the tick's order closes the previous one."""
    with journal.transaction():
        tick = journal.tick(run_id, i * MINUTE)
        journal.tool_call(tick, "price_forecast", {"symbol": "ETH/USDT"}, '{"value": 1.5}', 2.0)
        journal.llm_message(tick, "ai", f"buy {i}", [{"name": "price_forecast"}], "fake-model")
        intent = journal.intent(tick, {"kind": "place_order", "amount": 0.1})
        if pause:
            print("paused", flush=True)
            time.sleep(60)
        journal.verdict(tick, intent, "OK", "within limits", approved=True)
        if i:
            journal.order(tick, "paper", f"c{i - 1}", {"symbol": "ETH/USDT"}, "closed")
        journal.order(tick, "paper", f"c{i}", {"symbol": "ETH/USDT", "amount": 0.1}, "open")
        journal.fill(tick, "paper", {"id": f"t{i}", "order": f"c{i}", "price": 2000.0 + i})
        journal.equity(tick, 1000.0 + i, {"paper": 1000.0 + i})
    return tick


def assert_consistent(path: Path, run_id: str) -> int:
    """Every committed tick has all its records; nothing references a missing row. Returns
    the number of ticks."""
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    per_tick = db.execute(
        "SELECT t.tick_id, "
        "(SELECT count(*) FROM tool_calls c WHERE c.tick_id=t.tick_id), "
        "(SELECT count(*) FROM llm_messages m WHERE m.tick_id=t.tick_id), "
        "(SELECT count(*) FROM intents i WHERE i.tick_id=t.tick_id), "
        "(SELECT count(*) FROM verdicts v JOIN intents i USING (intent_id) "
        " WHERE v.tick_id=t.tick_id AND i.tick_id=t.tick_id), "
        "(SELECT count(*) FROM orders o WHERE o.first_tick_id=t.tick_id), "
        "(SELECT count(*) FROM fills f WHERE f.tick_id=t.tick_id), "
        "(SELECT count(*) FROM equity e WHERE e.tick_id=t.tick_id) "
        "FROM ticks t WHERE t.run_id=? ORDER BY t.tick_id",
        (run_id,),
    ).fetchall()
    db.close()
    for row in per_tick:
        assert row[1:] == (1,) * 7, row
    with Journal(path) as journal:
        (open_order,) = journal.open_orders(run_id)
        last = journal.last_tick(run_id)
        assert last is not None and open_order.first_tick_id == last.tick_id
        assert len(journal.equity_curve(run_id)) == len(per_tick)
    return len(per_tick)


# ------------------------------------------------------------------------------- schema, runs


def test_new_file_is_wal_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "agent.db"
    Journal(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.execute("UPDATE meta SET value='999'")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="schema version 999"):
        Journal(path)


def test_runs_start_resume_end_and_last(journal: Journal) -> None:
    backtest = journal.start_run({"symbol": "ETH/USDT"}, "backtest", "lp_rebalance", 7)
    paper = journal.start_run({}, "paper", "directional", None)
    assert (backtest, paper) == (RUN, "run-0002")
    assert journal.last_run() == journal.run(paper)
    last_backtest = journal.last_run("backtest")
    assert last_backtest is not None and last_backtest.seed == 7
    assert last_backtest.config == {"symbol": "ETH/USDT"}
    assert journal.last_run("live") is None

    journal.end_run(backtest, "stopped", {"trades": 3})
    stopped = journal.run(backtest)
    assert (stopped.status, stopped.summary) == ("stopped", {"trades": 3})
    assert stopped.ended_ms is not None and stopped.ended_ms >= stopped.started_ms
    resumed = journal.resume_run(backtest)
    assert (resumed.status, resumed.ended_ms, resumed.summary, resumed.resumes) == (
        "running",
        None,
        None,
        1,
    )


def test_run_errors(journal: Journal) -> None:
    with pytest.raises(JournalError, match="unknown mode"):
        journal.start_run({}, "simulation", "s", None)  # type: ignore[arg-type]
    with pytest.raises(JournalError, match="unknown run"):
        journal.resume_run("nope")
    with pytest.raises(JournalError, match="unknown run"):
        journal.tick("nope", 0)
    with pytest.raises(JournalError, match="unknown tick"):
        journal.equity(42, 1.0, {})
    same = Journal(journal.path, id_factory=lambda: RUN)
    same.start_run({}, "paper", "s", None)
    with pytest.raises(JournalError, match="already exists"):
        same.start_run({}, "paper", "s", None)
    same.close()


def test_default_run_ids_are_unique_and_sort_by_start() -> None:
    ids = [new_run_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert [i.split("-")[0] for i in ids] == sorted(i.split("-")[0] for i in ids)


# ------------------------------------------------------------------------------- ticks


def test_a_tick_round_trips(journal: Journal) -> None:
    run = journal.start_run({}, "paper", "directional", 1)
    ticks = [record_tick(journal, run, i) for i in range(3)]
    assert [t.tick_id for t in journal.ticks(run)] == ticks
    assert journal.last_tick(run) == journal.ticks(run)[-1]
    assert journal.ticks(run)[-1].time_ms == 2 * MINUTE

    calls = journal.tool_calls(run)
    assert len(calls) == 3 and calls[0].inputs == {"symbol": "ETH/USDT"}
    assert (calls[0].output, calls[0].latency_ms, calls[0].error) == ('{"value": 1.5}', 2.0, None)
    assert [c.tick_id for c in journal.tool_calls(run, tick=ticks[1])] == [ticks[1]]
    messages = journal.llm_messages(run)
    assert [m.content for m in messages] == ["buy 0", "buy 1", "buy 2"]
    assert messages[0].tool_calls == [{"name": "price_forecast"}]
    assert messages[0].model == "fake-model"

    orders = journal.orders(run)
    assert [(o.client_order_id, o.status) for o in orders] == [
        ("c0", "closed"),
        ("c1", "closed"),
        ("c2", "open"),
    ]
    assert (orders[0].first_tick_id, orders[0].tick_id) == (ticks[0], ticks[1])
    assert orders[0].order == {"symbol": "ETH/USDT"}
    assert [o.client_order_id for o in journal.open_orders(run)] == ["c2"]
    assert [f.trade_id for f in journal.fills(run)] == ["t0", "t1", "t2"]

    curve = journal.equity_curve(run)
    assert list(curve.columns) == ["equity", "equity:paper"]
    assert curve.index[1] == pd.Timestamp("1970-01-01 00:01", tz="UTC")
    assert curve["equity"].tolist() == [1000.0, 1001.0, 1002.0]


def test_pending_and_unknown_orders_count_as_open(journal: Journal) -> None:
    run = journal.start_run({}, "live", "s", None)
    tick = journal.tick(run, 0)
    for client_id, status in [("a", "pending"), ("b", "unknown"), ("c", "lost"), ("d", "open")]:
        journal.order(tick, "binance", client_id, {}, status)
    assert [o.client_order_id for o in journal.open_orders(run)] == ["a", "b", "d"]


def test_a_replayed_fill_is_recorded_once(journal: Journal) -> None:
    run = journal.start_run({}, "live", "s", None)
    first, later = journal.tick(run, 0), journal.tick(run, MINUTE)
    trade = {"id": 981, "order": "x", "symbol": "ETH/USDT", "side": "buy", "price": 2.0}
    assert journal.fill(first, "binance", trade)
    assert not journal.fill(later, "binance", trade)
    assert journal.fill(later, "kraken", trade)
    assert [(f.tick_id, f.venue, f.trade_id) for f in journal.fills(run)] == [
        (first, "binance", "981"),
        (later, "kraken", "981"),
    ]
    with pytest.raises(JournalError, match="without a trade id"):
        journal.fill(first, "binance", {"price": 1.0})


def test_bad_per_tick_records_are_refused(journal: Journal) -> None:
    run = journal.start_run({}, "paper", "s", None)
    tick = journal.tick(run, 0)
    journal.equity(tick, 1.0, {})
    with pytest.raises(JournalError, match="already recorded"):
        journal.equity(tick, 2.0, {})
    with pytest.raises(JournalError, match="unknown intent"):
        journal.verdict(tick, 999, "X", "", approved=False)
    with pytest.raises(JournalError, match="not JSON-able"):
        journal.intent(tick, object())


def test_intents_may_be_dataclasses_or_models(journal: Journal) -> None:
    @dataclasses.dataclass
    class Swap:
        token_in: str
        amount: float
        when: pd.Timestamp

    run = journal.start_run({}, "paper", "s", None)
    tick = journal.tick(run, 0)
    journal.intent(tick, Swap("USDC", 1.5, pd.Timestamp("2024-01-01", tz="UTC")))
    journal.intent(tick, Settings())
    db = sqlite3.connect(journal.path)
    swap, settings = (json.loads(p) for (p,) in db.execute("SELECT payload FROM intents"))
    assert swap == {"token_in": "USDC", "amount": 1.5, "when": "2024-01-01T00:00:00+00:00"}
    assert settings["exchange"]["name"] == "binance"


def test_a_failed_tick_leaves_nothing(journal: Journal) -> None:
    run = journal.start_run({}, "paper", "s", None)
    record_tick(journal, run, 0)
    with pytest.raises(RuntimeError), journal.transaction():
        tick = journal.tick(run, MINUTE)
        journal.tool_call(tick, "t", {}, None, 1.0, error="boom")
        with journal.transaction():  # nested: joins the tick's transaction
            journal.equity(tick, 1.0, {})
        raise RuntimeError("the venue fell over")
    assert len(journal.ticks(run)) == 1
    assert len(journal.tool_calls(run)) == 1
    assert assert_consistent(journal.path, run) == 1


# ------------------------------------------------------------------------------- crash, readers


def test_sigkill_never_leaves_half_a_tick(tmp_path: Path) -> None:
    """Two agents at once (they take seconds to start): one killed while paused inside tick 5,
    one killed wherever it is once 30 ticks are committed."""
    agents = {
        pause_at: subprocess.Popen(
            [sys.executable, __file__, str(tmp_path / f"{pause_at}.db"), str(pause_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for pause_at in (5, -1)
    }
    committed = {}
    for pause_at, agent in agents.items():
        assert agent.stdout is not None
        committed[pause_at] = 0
        try:
            for line in agent.stdout:
                if line.strip() == "paused" or committed[pause_at] >= 30:
                    break
                committed[pause_at] = int(line) + 1
        finally:
            agent.send_signal(signal.SIGKILL)
            agent.wait(timeout=10)
        assert agent.returncode == -signal.SIGKILL
    assert assert_consistent(tmp_path / "5.db", RUN) == committed[5] == 5
    assert assert_consistent(tmp_path / "-1.db", RUN) >= committed[-1] >= 30


def test_readers_see_committed_ticks_while_the_agent_writes(journal: Journal) -> None:
    run = journal.start_run({}, "paper", "s", None)
    record_tick(journal, run, 0)
    reader = sqlite3.connect(journal.path, timeout=0.1)
    with journal.transaction():
        tick = journal.tick(run, MINUTE)
        journal.equity(tick, 5.0, {"paper": 5.0})
        assert reader.execute("SELECT count(*) FROM ticks").fetchone() == (1,)
        started = time.perf_counter()
        with Journal(journal.path) as second:
            assert [t.time_ms for t in second.ticks(run)] == [0]
            assert second.equity_curve(run)["equity"].tolist() == [1000.0]
        assert time.perf_counter() - started < 1.0
    assert reader.execute("SELECT count(*) FROM ticks").fetchone() == (2,)
    reader.close()


# ------------------------------------------------------------------------------- secrets

EXCHANGE_KEY = "EXKEY7c1f9a2b4d6e8f0a"
EXCHANGE_SECRET = "EXSEC5b3d1f7e9a2c4b6d"
PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe512961708279f2e3e8a5d4b8f3c1e2"
MNEMONIC = "abandon ability able about above absent absorb abstract absurd abuse access"
ALLORA_KEY = "UP-ALLORA9d8c7b6a5f4e"
ACCESS_TOKEN = "TOKa1b2c3d4e5f6a7b8c9"
DB_PASSWORD = "hunter2-correct-horse"
SECRETS = (EXCHANGE_KEY, EXCHANGE_SECRET, PRIVATE_KEY, MNEMONIC, ALLORA_KEY, ACCESS_TOKEN)


def raw_bytes(path: Path) -> bytes:
    """The database file and its -wal (and -shm) as they are on disk."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_no_secret_reaches_the_file_in_any_shape(journal: Journal) -> None:
    @dataclasses.dataclass
    class Login:
        venue: str
        password: SecretStr

    exchange = ExchangeSettings(api_key=SecretStr(EXCHANGE_KEY), secret=SecretStr(EXCHANGE_SECRET))
    settings = Settings(exchange=exchange)
    journal.register_secret(ALLORA_KEY)
    run = journal.start_run(settings.model_dump(), "live", "directional", 3)
    with journal.transaction():
        tick = journal.tick(run, 0)
        journal.tool_call(
            tick,
            "swap_quote",
            {
                "wallet": {"privateKey": PRIVATE_KEY, "token0": "WETH"},
                "accounts": [{"Mnemonic": MNEMONIC}, {"sellToken": "USDC"}],
                "max_tokens": 512,
            },
            json.dumps({"auth": {"access_token": ACCESS_TOKEN}, "quote": 1.5}),
            3.0,
            error=f'binance {{"code":-2022,"msg":"Invalid API-key {EXCHANGE_KEY}"}}',
        )
        journal.tool_call(tick, "price", {}, f"forecast via key={ALLORA_KEY}: 1.2%", 1.0)
        journal.llm_message(
            tick,
            "ai",
            f"I will use {ALLORA_KEY} and {EXCHANGE_SECRET}",
            [{"name": "login", "args": {"apiKey": EXCHANGE_KEY, "password": DB_PASSWORD}}],
            "fake-model",
        )
        intent = journal.intent(tick, Login("binance", SecretStr(DB_PASSWORD)))
        journal.verdict(tick, intent, "AUTH", f"key {EXCHANGE_KEY} refused", approved=False)
        journal.order(tick, "binance", "c1", {"info": {"X-MBX-APIKEY": EXCHANGE_KEY}}, "open")
        journal.fill(tick, "binance", {"id": "1", "info": {"signature_key": EXCHANGE_SECRET}})
        journal.equity(tick, 10.0, {"binance": 10.0})
    journal.end_run(run, "failed", {"error": f"auth failed for {EXCHANGE_KEY}"})

    for _ in range(2):  # while open (pages in the -wal), then after close (checkpointed)
        data = raw_bytes(journal.path)
        assert REDACTED.encode() in data
        for secret in (*SECRETS, DB_PASSWORD):
            assert secret.encode() not in data, secret
        journal.close()
        journal = Journal(journal.path)

    (call, text_call) = journal.tool_calls(run)
    assert call.inputs["wallet"] == {"privateKey": REDACTED, "token0": "WETH"}
    assert call.inputs["accounts"] == [{"Mnemonic": REDACTED}, {"sellToken": "USDC"}]
    assert call.inputs["max_tokens"] == 512
    assert json.loads(call.output or "") == {"auth": {"access_token": REDACTED}, "quote": 1.5}
    assert text_call.output == f"forecast via key={REDACTED}: 1.2%"
    config = journal.run(run).config
    assert config["exchange"]["api_key"] == REDACTED and config["exchange"]["name"] == "binance"
    assert journal.run(run).seed == 3
    journal.close()


def test_a_tool_output_without_secrets_is_kept_verbatim(journal: Journal) -> None:
    run = journal.start_run({}, "paper", "s", None)
    tick = journal.tick(run, 0)
    output = '{ "value" : 1.50, "ci": [1, 2] }'
    journal.tool_call(tick, "t", {}, output, 1.0)
    assert journal.tool_calls(run)[0].output == output


@pytest.mark.parametrize(
    "key",
    [
        *("api_key", "apiKey", "APIKEY", "X-MBX-APIKEY", "secret", "client_secret", "secretKey"),
        *("password", "private_key", "privateKey", "MNEMONIC", "token", "access_token", "botToken"),
    ],
)
def test_secret_looking_keys(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize(
    "key",
    [
        *("token0", "tokenIn", "token_out", "sellToken", "base_token", "tokenId", "max_tokens"),
        *("tokens", "seed", "key", "symbol", "keys_total"),
    ],
)
def test_keys_that_only_look_close(key: str) -> None:
    assert not looks_secret(key)


def test_redact_keeps_none_and_learns_secrets_met_later_in_the_payload() -> None:
    payload = {"echo": "x=s3cr3t-value", "api_key": None, "nested": [SecretStr("s3cr3t-value")]}
    assert redact(payload) == {
        "echo": f"x={REDACTED}",
        "api_key": None,
        "nested": [REDACTED],
    }


# "sk-" as real keys have: a secret that could also be a number's digits would prove nothing.
api_keys = st.text("abcdefABCDEF0123456789", min_size=8).map(lambda s: "sk-" + s)
json_like = st.recursive(
    st.none() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@given(secret=api_keys, payload=json_like, prefix=st.text(max_size=10))
def test_a_registered_secret_never_survives_redaction(
    secret: str, payload: object, prefix: str
) -> None:
    wrapped = {"data": payload, "echo": [prefix + secret + prefix, {prefix: secret}]}
    assert secret not in json.dumps(redact(wrapped, [secret]), ensure_ascii=False)


if __name__ == "__main__":
    # The agent the crash tests kill: ticks forever, pausing inside tick PAUSE_AT if given.
    db_path, pause_at = sys.argv[1], int(sys.argv[2])
    agent = Journal(db_path, id_factory=lambda: RUN)
    run_id = agent.start_run({}, "paper", "crash", None)
    for i in itertools.count():
        record_tick(agent, run_id, i, pause=i == pause_at)
        print(i, flush=True)
