"""`defai run --live` through the CLI against the loopback Binance (ccxt's real client code),
on a simulated wall clock: consent, credentials, ticks, orders, journal, restart, stale data."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest
from live_support import START, SimWall, binance_on
from loopback_binance import API_KEY, HOUR, SECRET, BinanceLike
from typer.testing import CliRunner

from defai.cli import app

runner = CliRunner()
LIVE = ["run", "--live", "--exchange", "binance", "--strategy", "live_support:BuyEachTick"]


@pytest.fixture
def live(binance, make_binance, monkeypatch, tmp_path):
    """The loopback exchange, a simulated clock, and the CLI's environment pointed at both."""
    state, url = binance
    clock = SimWall()
    made: list[str] = []

    def exchange(name: str):
        made.append(name)
        return binance_on(make_binance, url, clock)

    monkeypatch.setattr("defai.cli.live.make_exchange", exchange)
    monkeypatch.setattr("defai.cli.live.wall", lambda: (clock, clock.sleep))
    monkeypatch.setenv("DEFAI_DATA__DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEFAI_AGENT__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DEFAI_EXCHANGE__API_KEY", API_KEY)
    monkeypatch.setenv("DEFAI_EXCHANGE__SECRET", SECRET)
    monkeypatch.delenv("DEFAI_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./defai.toml of the developer's
    return state, clock, made, tmp_path / "state"


def untouched(state: BinanceLike, made: list[str]) -> bool:
    return not made and not state.kline_requests and not state.private_requests


def posted_orders(state: BinanceLike) -> list[dict[str, str]]:
    return [q for m, p, q in state.private_requests if (m, p) == ("POST", "/api/v3/order")]


def test_refuses_without_confirmation_before_any_connection(live) -> None:
    state, _, made, folder = live
    result = runner.invoke(app, [*LIVE, "--max-ticks", "1"])
    assert result.exit_code == 2
    assert "refusing to trade live without confirmation" in result.output
    assert "--confirm-live" in result.output and "DEFAI_AGENT__LIVE_CONFIRMED" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert untouched(state, made)
    assert not (folder / "journal.sqlite").exists()


def test_missing_credentials_are_named_never_shown(live, monkeypatch) -> None:
    state, _, made, _ = live
    monkeypatch.delenv("DEFAI_EXCHANGE__SECRET")
    result = runner.invoke(app, [*LIVE, "--confirm-live", "--max-ticks", "1"])
    assert result.exit_code == 2
    assert "needs its API credentials: set DEFAI_EXCHANGE__SECRET" in result.output
    assert API_KEY not in result.output
    assert untouched(state, made)


def test_config_key_confirms(live, monkeypatch) -> None:
    state, _, made, _ = live
    monkeypatch.setenv("DEFAI_AGENT__LIVE_CONFIRMED", "true")
    result = runner.invoke(app, [*LIVE, "--max-ticks", "1"])
    assert result.exit_code == 0, result.output
    assert made == ["binance"] and len(posted_orders(state)) == 1


def test_live_ticks_trade_journal_and_resume_without_sending_twice(live) -> None:
    state, clock, _, folder = live
    first = runner.invoke(app, [*LIVE, "--confirm-live", "--max-ticks", "2"])
    assert first.exit_code == 0, first.output
    assert "stopped after 2 ticks" in first.output
    assert len(posted_orders(state)) == 2
    # each tick came 10 s after a candle close, and the first waited for the next close
    assert clock.now == tick_time(2)

    second = runner.invoke(app, [*LIVE, "--confirm-live", "--max-ticks", "1"])
    assert second.exit_code == 0, second.output
    assert "(resumed)" in second.output

    posted = posted_orders(state)
    client_ids = [q["newClientOrderId"] for q in posted]
    assert len(posted) == 3 and len(set(client_ids)) == 3  # one order a tick, none re-sent
    assert len(state.orders) == 3
    with sqlite3.connect(folder / "journal.sqlite") as db:
        runs = db.execute("SELECT run_id, mode, status, resumes FROM runs").fetchall()
        times = [t for (t,) in db.execute("SELECT time_ms FROM ticks ORDER BY tick_id")]
        journaled = [c for (c,) in db.execute("SELECT client_order_id FROM orders")]
        fills = [t for (t,) in db.execute("SELECT trade_id FROM fills")]
        verdicts = db.execute("SELECT reason_code, message FROM verdicts").fetchall()
    assert [r[1:] for r in runs] == [("live", "stopped", 1)]
    assert times == [tick_time(k) for k in (1, 2, 3)]
    assert sorted(journaled) == sorted(client_ids)
    # the first two trades were journaled by the next tick; the third by none yet
    assert sorted(fills) == sorted(str(t["id"]) for t in state.trades[:2])
    # no lending venue is live: the guard refuses the Supply of every tick
    supply = ("UNKNOWN_SYMBOL", "the lending market lists no ETH reserve")
    assert verdicts.count(supply) == 3 and [v for v in verdicts if v[0] == "APPROVED"]
    for path in folder.iterdir():
        data = path.read_bytes()
        assert API_KEY.encode() not in data and SECRET.encode() not in data, path
    for output in (first.output, second.output):
        assert API_KEY not in output and SECRET not in output


def tick_time(k: int) -> int:
    """Time of the k-th tick (1-based): the k-th candle close after START, 10 s settled."""
    return START - START % HOUR + k * HOUR + 10_000


def test_stale_candles_place_no_order(live) -> None:
    state, _, _, folder = live
    del state.klines[300:]  # the exchange stops publishing: the last close is T0 + 300h
    result = runner.invoke(app, [*LIVE, "--confirm-live", "--max-ticks", "2"])
    assert result.exit_code == 0, result.output
    assert "refused STALE_PRICE, UNKNOWN_SYMBOL" in result.output
    assert posted_orders(state) == []
    with sqlite3.connect(folder / "journal.sqlite") as db:
        assert db.execute("SELECT count(*) FROM ticks").fetchone() == (2,)


def test_sigint_while_waiting_stops_the_run_cleanly(live) -> None:
    state, clock, _, folder = live
    clock.on_sleep = lambda: os.kill(os.getpid(), signal.SIGINT) if state.trades else None
    result = runner.invoke(app, [*LIVE, "--confirm-live"])
    assert result.exit_code == 0, result.output
    assert "stopped after 1 ticks" in result.output
    with sqlite3.connect(folder / "journal.sqlite") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("stopped",)]
