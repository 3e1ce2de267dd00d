"""A paper run killed with SIGKILL mid-run and started again: nothing twice, nothing lost."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from defai.execution.paper import PaperExchange
from defai.market.synthetic import SyntheticFeed

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [
    sys.executable,
    "-m",
    "defai",
    "run",
    "--strategy",
    "tests/buy_then_borrow.py:BuyThenBorrow",
    "--days",
    "20",
]


def ticks_journaled(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(journal, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM ticks").fetchone()[0])
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def test_sigkill_mid_run_then_restart_duplicates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = state / "journal.sqlite"
    command = [*COMMAND, "--state-dir", str(state)]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while ticks_journaled(journal) < 40 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = ticks_journaled(journal)
    assert 40 <= killed_at < 181

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "finished after" in second.stdout

    with sqlite3.connect(journal) as db:
        runs = db.execute("SELECT run_id, status, resumes FROM runs").fetchall()
        times = [t for (t,) in db.execute("SELECT time_ms FROM ticks ORDER BY tick_id")]
        client_ids = [c for (c,) in db.execute("SELECT client_order_id FROM orders")]
        trade_ids = [t for (t,) in db.execute("SELECT trade_id FROM fills")]
    assert len(runs) == 1 and runs[0][1] == "finished" and runs[0][2] == 1  # one run, resumed once
    assert len(times) == 181 and np.all(np.diff(times) == 3_600_000)  # every hour exactly once
    assert len(client_ids) == len(set(client_ids)) and client_ids
    assert len(trade_ids) == len(set(trade_ids))

    # the journal and the exchange's own state agree on every fill
    exchange = PaperExchange(SyntheticFeed(seed=7, days=20), db=state / "exchange.sqlite")
    venue_trades = {t["id"] for t in exchange.fetch_my_trades()}
    exchange.close()
    assert venue_trades == set(trade_ids)
