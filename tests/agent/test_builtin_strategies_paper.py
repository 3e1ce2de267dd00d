"""Each built-in strategy, end to end on paper: `defai run` on the synthetic market, offline."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from defai.cli import app

runner = CliRunner()


@pytest.mark.parametrize("strategy", ["directional", "lp_rebalance", "leverage_loop"])
def test_paper_run_of_each_builtin_strategy(tmp_path: Path, strategy: str) -> None:
    state = tmp_path / strategy
    result = runner.invoke(
        app,
        ["run", "--strategy", strategy, "--days", "24", "--seed", "3", "--state-dir", str(state)],
    )
    assert result.exit_code == 0, result.output
    assert "finished after" in result.output
    with sqlite3.connect(state / "journal.sqlite") as db:
        (status,) = db.execute("SELECT status FROM runs").fetchone()
        ticks = db.execute("SELECT count(*) FROM ticks").fetchone()[0]
        approved = db.execute(
            "SELECT count(*) FROM verdicts v JOIN intents i ON i.intent_id = v.intent_id "
            "WHERE v.approved = 1 AND json_extract(i.payload, '$.kind') != 'hold'"
        ).fetchone()[0]
        equity = [e for (e,) in db.execute("SELECT equity FROM equity")]
    assert status == "finished"
    assert ticks == 24 * 24 - 300 + 1  # one tick per hour after the network's warm-up
    assert approved > 0, f"{strategy} never got an action past the guard"
    assert len(equity) == ticks and all(e > 0 for e in equity)
