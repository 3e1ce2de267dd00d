"""A PaperExchange restarted from its SQLite state continues exactly as one never stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ccxt

from defai.execution.paper import PaperExchange
from defai.market.synthetic import SyntheticFeed

HOUR = 3_600_000
FEED = SyntheticFeed(seed=3, days=3, symbols=["BTC/USDT", "ETH/USDT"])
SETTINGS: dict[str, Any] = {"balances": {"USDT": 50_000.0}, "max_volume_share": 0.0002}


def act(ex: PaperExchange, step: int) -> str:
    """One scripted action per step, cycling through every order kind; returns what happened."""
    kind = step % 7
    if kind == 6:
        open_orders = ex.fetch_open_orders()
        return ex.cancel_order(open_orders[0]["id"])["status"] if open_orders else "none"
    if kind == 3 and not ex.fetch_positions(["ETH/USDT:USDT"]):
        return "flat"
    eth = ex.fetch_ticker("ETH/USDT")["last"]
    btc = ex.fetch_ticker("BTC/USDT")["last"]
    params = {"clientOrderId": f"s{step}"}
    exit_side = "sell" if step % 14 < 7 else "buy"
    stop = round(eth * (0.99 if exit_side == "sell" else 1.01), 2)
    order = [
        ("ETH/USDT", "market", "buy", 1.5, None, params),
        ("ETH/USDT", "limit", "sell", 0.7, round(eth * 1.003, 2), params),
        ("ETH/USDT:USDT", "market", "buy" if step % 14 < 7 else "sell", 3.0, None, params),
        ("ETH/USDT:USDT", "market", exit_side, 3.0, None, {"stopLossPrice": stop}),
        ("BTC/USDT:USDT", "limit", "buy", 0.2, round(btc * 0.999, 1), params),
        ("BTC/USDT:USDT", "market", "sell", 0.1, None, {"triggerPrice": round(btc * 0.998, 1)}),
    ][kind]
    try:
        return str(ex.create_order(*order)["id"])
    except (ccxt.InsufficientFunds, ccxt.InvalidOrder) as error:
        return type(error).__name__


def run(db: Path | None, restarts: set[int]) -> dict[str, Any]:
    ex = PaperExchange(FEED, db=db, **SETTINGS)
    ex.advance(ex.now + 3 * HOUR)
    ex.set_leverage(10.0, "ETH/USDT:USDT")
    log: list[str | int] = []
    for step in range(40):
        if step in restarts:
            ex.close()
            ex = PaperExchange(FEED, db=db, **SETTINGS)
        log.append(act(ex, step))
        log.append(len(ex.advance(ex.now + HOUR)))
    ids = {t["order"] for t in ex.fetch_my_trades()} | {o["id"] for o in ex.fetch_open_orders()}
    return {
        "log": log,
        "trades": ex.fetch_my_trades(),
        "orders": [ex.fetch_order(i) for i in sorted(i for i in ids if i is not None)],
        "open": ex.fetch_open_orders(),
        "balance": ex.fetch_balance(),
        "positions": ex.fetch_positions(),
        "equity": ex.equity(),
        "now": ex.now,
        "replayed": ex.create_order(
            "ETH/USDT", "market", "buy", 1.0, None, {"clientOrderId": "s0"}
        ),
    }


def test_a_restarted_exchange_continues_identically(tmp_path: Path) -> None:
    uninterrupted = run(None, set())
    restarted = run(tmp_path / "paper.sqlite", {5, 17, 18, 31})
    assert restarted == uninterrupted
    # the script exercised what a restart must carry
    kinds = {(t["symbol"], t["takerOrMaker"]) for t in uninterrupted["trades"]}
    assert {("ETH/USDT", "taker"), ("ETH/USDT", "maker"), ("ETH/USDT:USDT", "taker")} <= kinds
    assert uninterrupted["open"] and uninterrupted["positions"]
    assert uninterrupted["replayed"]["clientOrderId"] == "s0"
