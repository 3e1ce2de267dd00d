"""`defai run --live`: the paper agent, on the wall clock, an exchange's candles and its account.

Real funds are at stake, so nothing connects before the user has consented (--confirm-live or
`agent.live_confirmed`) and credentials are present. The run then ticks once per closed candle
(defai.agent.live.LiveLoop); the journal, its run id and the resume after a restart work as on
paper, and the broker's own order journal makes sure a restart never sends an order twice.
Only the exchange is live: no AMM or lending venue is, so intents that need one are refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ccxt

from defai.agent.agent import TickReport, Venues
from defai.agent.guard import RiskLimits
from defai.agent.journal import Journal
from defai.agent.live import LiveLoop, live_limits
from defai.agent.policy import Policy, Strategy
from defai.agent.runs import build_agent, close_all, open_run
from defai.cli.common import console, stop_on_signals
from defai.config import ExchangeSettings, Settings
from defai.errors import ConfigError, ExecutionError
from defai.execution.live import LiveExchange
from defai.market.ccxt_feed import CcxtFeed, make_exchange
from defai.market.view import Clock, MarketView, WallClock
from defai.network.base import InferenceSource
from defai.types import timeframe_ms, to_timestamp

TIMEFRAME = "1h"
LOOKBACK = 720  # candles loaded at start: the agent's window (256) and the network's warm-up
# A live run in a folder is one open-ended run: started again, it continues whatever ended it.
RESUMABLE = ("running", "stopped", "failed")


def require_consent(settings: Settings, confirmed: bool) -> None:
    """Refuse, before anything connects, unless the user said to trade real funds."""
    if not (confirmed or settings.agent.live_confirmed):
        raise ConfigError(
            "refusing to trade live without confirmation: add --confirm-live, or set "
            "agent.live_confirmed = true (DEFAI_AGENT__LIVE_CONFIRMED=true)"
        )


def connect(settings: ExchangeSettings, symbols: Sequence[str], cache_dir: Path) -> CcxtFeed:
    """The exchange's recent candles; credentials checked first, so a run that could not trade
    asks the exchange nothing."""
    missing = [
        f"DEFAI_EXCHANGE__{name.upper()}"
        for name, value in (("api_key", settings.api_key), ("secret", settings.secret))
        if value is None or not value.get_secret_value()
    ]
    if missing:
        raise ConfigError(
            f"live trading on {settings.name} needs its API credentials: set "
            f"{' and '.join(missing)} (or api_key / secret under [exchange] in the config file)"
        )
    exchange = make_exchange(settings.name)
    if settings.sandbox:
        exchange.set_sandbox_mode(True)
    since = int(exchange.milliseconds()) - LOOKBACK * timeframe_ms(TIMEFRAME)
    return CcxtFeed(exchange, list(symbols), TIMEFRAME, since=since, cache_dir=cache_dir)


def wall() -> tuple[Clock, Callable[[float], None]]:
    """The clock and the sleep of a live run (tests substitute simulated ones)."""
    return WallClock(), time.sleep


def run_live(
    strategy: Strategy,
    settings: ExchangeSettings,
    feed: CcxtFeed,
    network: InferenceSource,
    folder: Path,
    limits: RiskLimits,
    policy: Policy | None,
    max_ticks: int | None,
) -> None:
    """Open (or resume) the folder's live run and tick it until a signal or `max_ticks`."""
    clock, sleep = wall()
    journal = Journal(folder / "journal.sqlite")
    for secret in (settings.api_key, settings.secret, settings.password):
        if secret is not None:
            journal.register_secret(secret)
    config = {"strategy": strategy.name, "exchange": settings.name, "sandbox": settings.sandbox}
    run = open_run(journal, "live", strategy, config, RESUMABLE)
    try:
        exchange = LiveExchange(
            feed.exchange,
            symbols=strategy.symbols,
            market=MarketView(feed, clock),
            trades_since=clock.now_ms() if run.last_tick_ms is None else run.last_tick_ms,
            api_key=settings.api_key,
            secret=settings.secret,
            password=settings.password,
            db=folder / "orders.sqlite",
        )
    except ccxt.BaseError as exc:  # already scrubbed of credentials by the broker
        journal.end_run(run.run_id, "failed", {"ticks": 0})
        journal.close()
        raise ExecutionError(f"{settings.name}: {type(exc).__name__}: {exc}") from None
    agent = build_agent(
        strategy,
        clock=clock,
        feed=feed,
        network=network,
        venues=Venues(exchange=exchange),
        limits=live_limits(limits),
        journal=journal,
        run=run,
        policy=policy,
    )
    mode = "sandbox" if exchange.sandbox else "LIVE"
    console.print(
        f"[bold]{mode} run[/] {run.run_id}{' (resumed)' if run.resumed else ''}: "
        f"{strategy.name} on {exchange.id}, a tick per closed {TIMEFRAME} candle, state in {folder}"
    )

    ticks, equity = 0, None

    def tick() -> None:
        nonlocal ticks, equity
        feed.refresh()
        report = agent.tick()
        ticks, equity = ticks + 1, report.equity
        _print(report)

    status = "failed"
    with stop_on_signals() as stop:
        loop = LiveLoop(tick, clock, timeframe_ms(TIMEFRAME), lambda: stop.requested, sleep)
        try:
            loop.run(max_ticks)
            status = "stopped"
        except ccxt.BaseError as exc:
            raise ExecutionError(f"{exchange.id}: {type(exc).__name__}: {exc}") from None
        finally:
            journal.end_run(run.run_id, status, {"ticks": ticks, "equity": equity})
            close_all((exchange, network))
            journal.close()
    console.print(f"{status} after {ticks} ticks")


def _print(report: TickReport) -> None:
    refused = sorted({str(v.code) for v in report.verdicts if not v.approved})
    orders = sum(1 for e in report.executions if e.result.get("order"))
    errors = [e.error for e in report.executions if e.error]
    console.print(
        f"{to_timestamp(report.time_ms):%Y-%m-%d %H:%M:%S}: {orders} orders, "
        f"{len(report.fills)} fills, refused {', '.join(refused) or 'none'}"
        f"{', venue errors: ' + '; '.join(errors) if errors else ''}; "
        f"equity {report.equity:,.2f}",
        highlight=False,
    )
