"""defai beside a peer, backtesting.py: the same SMA(10/30) crossover, trade for trade, and speed.

Both engines run one rule on Binance ETH/USDT 1h candles (../shared), 2018-01-01 to 2021-06-01:
long only, all in, a 0.1% commission on each fill's cost, market orders filled at the next bar's
open with no spread and no impact. Printed: trade count and entry/exit times compared pairwise,
each final equity and their relative difference (goal < 1e-6), and bars per second of
backtesting.py, of defai with the plain strategy (`SmaCross`, no network), and of the full agent
(`ForecastDirectional` on the embedded network and its built-in workers, on 2021-01-01 to
2021-06-01 unless the whole range fits in about 5 minutes: the slice is printed). The full agent
is timed cold (the run first records the network's tape over the whole history up to the end)
and warm (tape cached: the tick loop alone). Numbers only: nothing is asserted.

backtesting.py is not a defai dependency: on first use this script makes `.venv-peer` beside
the project (python -m venv, then pip install -r tests/benchmarks/peer/requirements.txt, exact
pins) and runs tests/benchmarks/peer/run_backtesting_py.py there on the very candles defai's
CsvFeed reads (exported to a temporary CSV), so the two sides cannot read the file differently.

One rule on both sides (the sizing rule is `SmaCross`'s, documented there):
- signal on candle t's close: SMA10 crosses SMA30 (strictly, backtesting.lib.crossover's test),
  the order fills at candle t+1's open; decisions start at the candle closing at the start
  (defai's first tick), earlier candles only warm the averages up;
- buy `floor(0.98 x free quote / close_t x 1e6) / 1e6` ETH (whole micro-ETH: backtesting.py's
  FractionalBacktest with fractional_unit=1e-6 trades the same integers), sell the whole holding;
- fee: 0.1% of each fill's cost (PaperExchange taker=0.001; backtesting.py commission=0.001,
  charged at entry and at exit); spread, impact and slippage reservation 0 on defai's exchange,
  volume share 1 (the most it allows), amount step 1e-8, no minimum order value; the guard's
  limits are out of the way (notional 1e12 per order, drawdown breaker at 100%);
- a candle with zero volume fills nothing on defai's exchange (an order waits for the next one
  that traded); the peer script submits its order on the candle before the first one that
  traded, so both fill at the same open (the candles of 2018-2021 have a few such signals);
- the end: positions still open stay open; equity is marked at the last close on both sides.
Run: python tests/benchmarks/bench_vs_backtesting_py.py
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from defai.agent.guard import RiskLimits
from defai.backtest import Backtest, BacktestResult
from defai.execution.paper import MarketRules
from defai.market.csv import CsvFeed
from defai.types import timeframe_ms, to_ms, to_timestamp
from strategies.directional import ForecastDirectional
from strategies.sma_cross import SmaCross

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "binance_ETHUSDT_1h.csv.gz"
PEER = Path(__file__).resolve().parent / "peer"
PEER_VENV = ROOT / ".venv-peer"
SYMBOL = "ETH/USDT"
START, END = "2018-01-01", "2021-06-01"
AGENT_SLICE = ("2021-01-01", "2021-06-01")  # the full agent, when the whole range is too slow
AGENT_BUDGET_S = 300.0  # the whole range for the full agent only if it fits in this
CAPITAL = 10_000.0
COMMISSION = 0.001
STRATEGY = SmaCross(symbol=SYMBOL, fast=10, slow=30, fraction=0.98, decimals=6)
HOUR_MS = timeframe_ms("1h")

EXCHANGE = {
    "taker": COMMISSION,
    "spread_bps": 0.0,
    "impact": 0.0,
    "max_slippage": 0.0,
    "max_volume_share": 1.0,
    "markets": {SYMBOL: MarketRules(price_tick=1e-8, amount_step=1e-8, min_cost=0.0)},
}
LIMITS = RiskLimits(
    max_notional_per_order=1e12, max_notional_per_day=1e15, max_drawdown=1.0, max_leverage=1.0
)


@dataclass(frozen=True)
class Side:
    name: str
    bars: int
    seconds: float
    trades: list[tuple[int, int | None, float]]  # entry ms, exit ms (None: open), units
    final_equity: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.bars / self.seconds if self.seconds > 0 else float("nan")


def main() -> int:
    if not DATA.exists():
        print(f"SKIPPED: {DATA} is absent (this benchmark needs ../shared beside the project)")
        return 0
    logging.disable(logging.WARNING)
    feed = CsvFeed(DATA)
    python = peer_python()
    peer = run_peer(python, feed)
    plain = run_defai_plain(feed)
    cold, warm = run_full_agent(feed)
    report(peer, plain, cold, warm)
    return 0


# ---- the peer ---------------------------------------------------------------------------------


def peer_python() -> Path:
    """.venv-peer's python, made and filled from the pinned requirements when missing or stale."""
    python = PEER_VENV / "bin" / "python"
    wanted = (PEER / "requirements.txt").read_text()
    stamp = PEER_VENV / ".installed-from-requirements"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"making {PEER_VENV.name} for backtesting.py (once) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "-r", str(PEER / "requirements.txt")], capture_output=True, text=True
    )
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(f"could not install the peer's requirements into {PEER_VENV}")
    stamp.write_text(wanted)
    return python


def run_peer(python: Path, feed: CsvFeed) -> Side:
    """backtesting.py on the candles defai reads: `slow` warm-up candles before the first decision
    candle (the one closing at START), through the last candle closed at END."""
    start, end = to_ms(START), to_ms(END)
    first_decision = start - HOUR_MS
    window = feed.candles(SYMBOL, "1h", as_of=end)
    frame = pd.DataFrame(
        {
            "time_ms": window.ts,
            "Open": window.open,
            "High": window.high,
            "Low": window.low,
            "Close": window.close,
            "Volume": window.volume,
        }
    )
    warm = int(frame["time_ms"].searchsorted(first_decision)) - STRATEGY.slow
    frame = frame.iloc[max(warm, 0) :]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "candles.csv"
        frame.to_csv(path, index=False)
        command = [
            str(python),
            str(PEER / "run_backtesting_py.py"),
            f"--csv={path}",
            f"--start-ms={start}",
            f"--cash={CAPITAL}",
            f"--commission={COMMISSION}",
            f"--fast={STRATEGY.fast}",
            f"--slow={STRATEGY.slow}",
            f"--fraction={STRATEGY.fraction}",
            f"--decimals={STRATEGY.decimals}",
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    trades = [(t["entry_ms"], t["exit_ms"], t["units"]) for t in out["trades"]]
    return Side(
        f"backtesting.py {out['version']}",
        out["bars"],
        out["elapsed_s"],
        trades,
        out["final_equity"],
        f"{out['bars_total'] - out['bars']} warm-up candles",
    )


# ---- defai ------------------------------------------------------------------------------------


def run_defai_plain(feed: CsvFeed) -> Side:
    result = Backtest(
        STRATEGY,
        feed,
        start=START,
        end=END,
        capital=CAPITAL,
        network=None,
        limits=LIMITS,
        exchange=EXCHANGE,
    ).run()
    return Side(
        "defai, SmaCross (no network)",
        result.bars,
        result.elapsed_s,
        round_trips(result),
        float(result.equity.iloc[-1]),
    )


def run_full_agent(feed: CsvFeed) -> tuple[Side, Side]:
    """ForecastDirectional on the embedded network, twice on AGENT_SLICE: cold (the run records
    the network's tape over the feed up to the slice's end first, as any first backtest does)
    and warm (the tape is cached: the agent's tick loop alone, what a re-run or a sweep costs).
    The whole range is then run warm too when the cold slice's figures say it all fits in
    AGENT_BUDGET_S (recording once + every tick)."""
    strategy = ForecastDirectional(symbol=SYMBOL)
    name = "defai, full agent (ForecastDirectional + network)"
    with tempfile.TemporaryDirectory() as cache:

        def run(start: str, end: str) -> BacktestResult:
            return Backtest(
                strategy,
                feed,
                start=start,
                end=end,
                capital=CAPITAL,
                network="local",
                exchange={"taker": COMMISSION},
                cache_dir=Path(cache),
            ).run()

        cold = run(*AGENT_SLICE)
        warm = run(*AGENT_SLICE)
        recording = max(cold.elapsed_s - warm.elapsed_s, 0.0)
        whole_bars = (to_ms(END) - to_ms(START)) // HOUR_MS + 1
        whole_s = recording + whole_bars * warm.elapsed_s / warm.bars
        span = AGENT_SLICE
        if whole_s < AGENT_BUDGET_S:
            warm, span = run(START, END), (START, END)
    tag = f"{span[0]} to {span[1]}, {len(warm.trades)} fills"
    return (
        Side(
            f"{name}, cold",
            cold.bars,
            cold.elapsed_s,
            [],
            float(cold.equity.iloc[-1]),
            f"{AGENT_SLICE[0]} to {AGENT_SLICE[1]}, recording the network's tape included",
        ),
        Side(
            f"{name}, warm",
            warm.bars,
            warm.elapsed_s,
            [],
            float(warm.equity.iloc[-1]),
            f"{tag}, tape cached (whole range est. {whole_s:,.0f} s cold)",
        ),
    )


def round_trips(result: BacktestResult) -> list[tuple[int, int | None, float]]:
    """Entry and exit fill times of each buy-then-sell, one row per order (partial fills of an
    order are one entry or exit, at its first fill)."""
    fills = result.trades.groupby("order_id", sort=False).agg(
        time=("time", "first"), side=("side", "first"), amount=("amount", "sum")
    )
    trips: list[tuple[int, int | None, float]] = []
    entry: tuple[int, float] | None = None
    times = fills["time"].to_numpy(dtype="datetime64[ms]").astype("int64")
    for ms, side, amount in zip(times.tolist(), fills["side"], fills["amount"], strict=True):
        if side == "buy":
            entry = (ms, float(amount))
        elif entry is not None:
            trips.append((entry[0], ms, entry[1]))
            entry = None
    if entry is not None:
        trips.append((entry[0], None, entry[1]))
    return trips


# ---- the table --------------------------------------------------------------------------------


def report(peer: Side, plain: Side, cold: Side, warm: Side) -> None:
    print(f"SMA({STRATEGY.fast}/{STRATEGY.slow}) crossover, long only, all in, {COMMISSION:.1%} ")
    print(f"commission, next-open fills; {SYMBOL} 1h {START} to {END}, capital {CAPITAL:,.0f}\n")
    print(f"{'engine':<58} {'bars':>7} {'seconds':>9} {'bars/s':>9}  note")
    for side in (peer, plain, cold, warm):
        print(
            f"{side.name:<58} {side.bars:>7} {side.seconds:>9.2f} {side.rate:>9,.0f}  {side.note}"
        )
    print()
    count_equal = len(peer.trades) == len(plain.trades)
    pairs = list(zip(peer.trades, plain.trades, strict=False))
    entries = sum(a[0] == b[0] for a, b in pairs)
    exits = sum(a[1] == b[1] for a, b in pairs)
    units = max((abs(a[2] - b[2]) for a, b in pairs), default=0.0)
    times_equal = count_equal and entries == exits == len(pairs)
    print(f"trades: backtesting.py {len(peer.trades)}, defai {len(plain.trades)}")
    print(f"  count equal: {count_equal}; entry/exit times equal pairwise: {times_equal}")
    print(f"  ({entries}/{len(pairs)} entries, {exits}/{len(pairs)} exits equal; ", end="")
    print(f"largest unit difference {units:.2g} ETH)")
    for a, b in pairs:
        if a[:2] != b[:2]:
            print(f"  first difference: peer {_when(a)} vs defai {_when(b)}")
            break
    diff = abs(plain.final_equity - peer.final_equity) / abs(peer.final_equity)
    print(f"final equity: backtesting.py {peer.final_equity:,.6f}, defai {plain.final_equity:,.6f}")
    print(f"  relative difference {diff:.3g} (goal < 1e-6: {'met' if diff < 1e-6 else 'NOT met'})")
    print(f"speed: defai plain / backtesting.py = {plain.rate / peer.rate:.2f}x (goal >= 1)")
    print(f"       full agent {warm.rate:,.0f} bars/s warm, {cold.rate:,.0f} cold (goal >= 20,000)")
    print(f"       full agent final equity {warm.final_equity:,.2f} ({warm.note})")


def _when(trade: tuple[int, int | None, float]) -> str:
    entry, exit_, _ = trade
    shown = "open" if exit_ is None else f"{to_timestamp(exit_):%Y-%m-%d %H:%M}"
    return f"{to_timestamp(entry):%Y-%m-%d %H:%M} -> {shown}"


if __name__ == "__main__":
    sys.exit(main())
