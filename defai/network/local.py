"""LocalNetwork: the embedded aggregated inference network, offline and deterministic.

Each topic runs Allora's epoch cycle over a feed: at every epoch time workers infer on the
candles closed by then, forecasters predict each worker's loss, the network synthesizes one
inference with a confidence interval; once the horizon has passed, reputers score everything
against the ground truth and regrets, weights, scores, rewards and stakes move on.

On top of Allora (which does not slash), a topic may carry defai's own `SlashingRule`: workers
post a deposit, and one whose loss stays far above the network's loses part of it and, once its
deposit is gone, its seat. State persists in SQLite; a network reopened from its file continues
bit for bit, because the participants are stateless and the ledger is stored exactly.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from defai.errors import NetworkError
from defai.market.feed import Feed
from defai.network.codec import StateCodec
from defai.network.epoch import EpochOutcome, EpochParams, EpochState, score_epoch
from defai.network.reputers import Reputer
from defai.network.rewards import ByTask, select_active
from defai.network.synthesis import (
    BoolArray,
    Regrets,
    Synthesis,
    SynthesisParams,
    SynthesisState,
    ValueBundle,
    ema,
    synthesize,
)
from defai.network.topic import TopicSpec, ground_truth_series
from defai.network.workers import (
    Forecaster,
    Worker,
    WorkerError,
    batch_predict,
    default_forecasters,
    default_zoo,
    safe_forecast,
)
from defai.types import Candles, FloatArray, IntArray, NetworkInference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlashingRule:
    """defai's deposit-and-slash rule; Allora itself only lets bad workers' weight decay.

    Allora's rewards do not starve a random guesser: once its weight is ~0 its one-out score is
    ~0, like everyone's, so it keeps a normal share. This rule makes guessing cost money. Every
    worker posts `deposit`. Its regret trend is a slow EMA (over about `trend_epochs` epochs) of
    its regret against the network, in log10 units (-1: a loss ten times the network's). Once a
    worker has been scored `warmup` times, each epoch its trend is below `regret_floor` counts a
    strike; `patience` strikes in a row cost `fraction` of its deposit, which joins the next
    epoch's reward pool. Below `min_deposit` the worker is suspended: its answers are no longer
    taken. Defaults were set on a year of the synthetic market, where honest built-in workers'
    two-week trends stay above about -1 and a random guesser's sit around -1.2 to -1.7.
    """

    deposit: float = 100.0
    regret_floor: float = -1.0
    trend_epochs: int = 336
    warmup: int = 336
    patience: int = 48
    fraction: float = 0.2
    min_deposit: float = 10.0

    def __post_init__(self) -> None:
        if not (self.deposit > 0 and 0 <= self.min_deposit < self.deposit):
            raise NetworkError("SlashingRule: need deposit > 0 and 0 <= min_deposit < deposit")
        if not (0 < self.fraction <= 1 and self.patience >= 1 and self.regret_floor < 0):
            raise NetworkError(
                "SlashingRule: need 0 < fraction <= 1, patience >= 1 and regret_floor < 0"
            )
        if self.warmup < 0 or self.trend_epochs < 1:
            raise NetworkError("SlashingRule: need warmup >= 0 and trend_epochs >= 1")


@dataclass(frozen=True)
class Topic:
    """A question and everyone who answers, forecasts and judges it."""

    spec: TopicSpec
    workers: tuple[Worker, ...]
    reputers: tuple[Reputer, ...]
    forecasters: tuple[Forecaster, ...] = ()
    params: EpochParams = field(default_factory=EpochParams)
    reward_per_epoch: float = 1.0
    slashing: SlashingRule | None = field(default_factory=SlashingRule)
    loss_history_epochs: int = 128

    def __post_init__(self) -> None:
        where = f"topic {self.spec.name!r}"
        if not self.workers:
            raise NetworkError(f"{where} needs at least one worker")
        if not self.reputers:
            raise NetworkError(f"{where} needs at least one reputer")
        names = self.worker_names + [r.name for r in self.reputers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise NetworkError(f"{where}: participant names must be unique, repeated: {duplicated}")
        if not (math.isfinite(self.reward_per_epoch) and self.reward_per_epoch >= 0):
            raise NetworkError(f"{where}: reward_per_epoch must be finite and >= 0")
        for reputer in self.reputers:
            if reputer.loss_method != self.spec.loss_method:
                raise NetworkError(
                    f"{where} scores with {self.spec.loss_method}, but reputer "
                    f"{reputer.name!r} uses {reputer.loss_method}"
                )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def worker_names(self) -> list[str]:
        """Inferers then forecasters: the order of every per-worker array."""
        return [w.name for w in self.workers] + [f.name for f in self.forecasters]

    def fingerprint(self) -> str:
        """What a saved state must match to be continued: the same question, cast and rules."""
        cast = [repr(p) for p in (*self.workers, *self.forecasters, *self.reputers)]
        rules = (self.spec, self.params, self.reward_per_epoch, self.slashing)
        return repr((rules, cast, self.loss_history_epochs))


@dataclass(frozen=True)
class PendingEpoch:
    """A synthesized epoch waiting for its ground truth."""

    epoch_ms: int
    synthesis: Synthesis


@dataclass(frozen=True)
class Ledger:
    """Everything a topic carries between epochs; immutable, replaced at each step."""

    state: EpochState
    last_epoch_ms: int
    pending: tuple[PendingEpoch, ...]
    loss_history: FloatArray
    """(epochs x inferers) network log-losses, oldest first: what forecasters learn from."""
    reputer_stakes: FloatArray
    deposits: FloatArray
    strikes: IntArray
    slashed: FloatArray
    rewards: FloatArray
    """Cumulative payouts: inferers, forecasters, then reputers."""
    loss_ema: FloatArray
    regret_trend: FloatArray
    """Slow EMA of each worker's regret: what the slashing rule judges."""
    carry_reward: float
    latest_epoch_ms: int
    latest_value: float
    latest_interval: FloatArray
    latest_weights: FloatArray

    @classmethod
    def initial(cls, topic: Topic) -> Ledger:
        n_i, n_f, n_r = len(topic.workers), len(topic.forecasters), len(topic.reputers)
        n_w = n_i + n_f
        deposit = topic.slashing.deposit if topic.slashing else 0.0
        return cls(
            state=EpochState.initial(n_i, n_f, n_r),
            last_epoch_ms=-1,
            pending=(),
            loss_history=np.empty((0, n_i)),
            reputer_stakes=np.array([r.stake for r in topic.reputers], dtype=np.float64),
            deposits=np.full(n_w, deposit),
            strikes=np.zeros(n_w, dtype=np.int64),
            slashed=np.zeros(n_w),
            rewards=np.zeros(n_w + n_r),
            loss_ema=np.full(n_w, np.nan),
            regret_trend=np.full(n_w, np.nan),
            carry_reward=0.0,
            latest_epoch_ms=-1,
            latest_value=math.nan,
            latest_interval=np.empty(0),
            latest_weights=np.empty(0),
        )

    def suspended(self, topic: Topic) -> BoolArray:
        rule = topic.slashing
        if rule is None:
            return np.zeros(self.deposits.shape, dtype=bool)
        return self.deposits < rule.min_deposit


CODEC = StateCodec(
    [
        Ledger,
        PendingEpoch,
        EpochState,
        SynthesisState,
        Regrets,
        ByTask,
        Synthesis,
        ValueBundle,
    ]
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, ledger BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inferences (
    topic TEXT NOT NULL, epoch_ms INTEGER NOT NULL, value REAL NOT NULL,
    interval BLOB NOT NULL, weights BLOB NOT NULL, PRIMARY KEY (topic, epoch_ms)
);
CREATE TABLE IF NOT EXISTS scores (
    topic TEXT NOT NULL, epoch_ms INTEGER NOT NULL, truth REAL NOT NULL,
    network_loss REAL NOT NULL, naive_loss REAL NOT NULL, worker_losses BLOB NOT NULL,
    regrets BLOB NOT NULL, scores BLOB NOT NULL, payouts BLOB NOT NULL,
    PRIMARY KEY (topic, epoch_ms)
);
"""


@dataclass
class _History:
    """Per-epoch records kept for reports; rows not yet written to the database are counted."""

    inferences: list[tuple[int, float, FloatArray, FloatArray]] = field(default_factory=list)
    scores: list[
        tuple[int, float, float, float, FloatArray, FloatArray, FloatArray, FloatArray]
    ] = field(default_factory=list)
    saved_inferences: int = 0
    saved_scores: int = 0


class LocalNetwork:
    """The embedded network: `advance(now, feed)` runs due epochs; `latest(topic)` answers."""

    def __init__(
        self, topics: Sequence[Topic], db: str | Path | None = None, start: int | None = None
    ) -> None:
        """`start` (epoch ms): no epoch before it runs; by default the whole feed's history."""
        if not topics:
            raise NetworkError("a network needs at least one topic")
        self._topics = {t.name: t for t in topics}
        if len(self._topics) != len(topics):
            raise NetworkError("topic names must be unique")
        self._ledgers = {name: Ledger.initial(t) for name, t in self._topics.items()}
        self._history = {name: _History() for name in self._topics}
        self._start = -1 if start is None else start
        self._db: sqlite3.Connection | None = None
        if db is not None:
            self._open(Path(db))

    @classmethod
    def default(
        cls, feed: Feed, symbols: Sequence[str] | None = None, db: str | Path | None = None
    ) -> LocalNetwork:
        """The built-in topics for the feed's symbols (ETH/USDT alone when the feed has it)."""
        available = feed.symbols()
        chosen = (
            list(symbols)
            if symbols
            else (["ETH/USDT"] if "ETH/USDT" in available else available[:1])
        )
        return cls(default_topics(chosen), db=db)

    # ------------------------------------------------------------------ consumer interface

    def topics(self) -> list[TopicSpec]:
        return [t.spec for t in self._topics.values()]

    def topic(self, name: str) -> Topic:
        found = self._topics.get(name)
        if found is None:
            raise NetworkError(f"unknown topic {name!r}; this network has {sorted(self._topics)}")
        return found

    def latest(self, topic: str) -> NetworkInference:
        spec = self.topic(topic)
        ledger = self._ledgers[topic]
        if ledger.latest_epoch_ms < 0:
            raise NetworkError(f"topic {topic!r} has no inference yet: advance the network first")
        weights = ledger.latest_weights
        total = float(np.nansum(weights))
        return NetworkInference(
            topic=topic,
            value=ledger.latest_value,
            timestamp_ms=ledger.latest_epoch_ms,
            ci_percentiles=spec.params.synthesis.confidence_percentiles,
            ci_values=tuple(float(v) for v in ledger.latest_interval),
            weights={
                name: float(w) / total
                for name, w in zip(spec.worker_names, weights, strict=True)
                if np.isfinite(w) and total > 0
            },
            epoch=ledger.latest_epoch_ms // spec.spec.epoch_ms,
            source="local",
            extra={"max_age_ms": spec.spec.epoch_ms},
        )

    # ------------------------------------------------------------------ the epoch cycle

    def advance(self, now_ms: int, feed: Feed) -> int:
        """Run every epoch due by `now_ms` on candles closed by then; returns how many ran."""
        ran = 0
        for name, topic in self._topics.items():
            ledger, made = self._advance_topic(topic, self._ledgers[name], now_ms, feed)
            self._ledgers[name] = ledger
            ran += made
        self.save()
        return ran

    def _advance_topic(
        self, topic: Topic, ledger: Ledger, now_ms: int, feed: Feed
    ) -> tuple[Ledger, int]:
        spec = topic.spec
        history = feed.candles(spec.symbol, spec.timeframe, as_of=now_ms)
        if len(history) == 0:
            return ledger, 0
        close_ts = history.close_ts
        due = np.flatnonzero(
            (close_ts % spec.epoch_ms == 0)
            & (close_ts > ledger.last_epoch_ms)
            & (close_ts >= self._start)
            & (np.arange(len(history)) >= spec.window - 1)
        )
        truth = _ground_truth(history, spec)
        inferences = self._infer(topic, history, due)
        made = 0
        for row, index in enumerate(due):
            epoch_ms = int(close_ts[index])
            ledger = self._score_ready(topic, ledger, history, truth, epoch_ms)
            ledger, synthesized = self._synthesize(
                topic, ledger, history, int(index), inferences[row]
            )
            made += synthesized
        ledger = self._score_ready(topic, ledger, history, truth, now_ms)
        return ledger, made

    def _infer(self, topic: Topic, history: Candles, due: IntArray) -> FloatArray:
        """All inferers' answers at every due epoch at once (vectorised where workers allow)."""
        out = np.full((due.size, len(topic.workers)), np.nan)
        if due.size == 0:
            return out
        for j, worker in enumerate(topic.workers):
            try:
                out[:, j] = batch_predict(worker, history, due, topic.spec)
            except WorkerError as exc:
                log.warning("%s: %s", topic.name, exc)
        return out

    def _synthesize(
        self, topic: Topic, ledger: Ledger, history: Candles, index: int, inferences: FloatArray
    ) -> tuple[Ledger, int]:
        spec = topic.spec
        epoch_ms = int(history.close_ts[index])
        n_i = len(topic.workers)
        seated = ~ledger.suspended(topic)
        active, _ = select_active(
            ledger.state.score_emas.inferers, topic.params.rewards.max_active.inferers
        )
        submitted = np.where(seated[:n_i] & active, inferences, np.nan)
        if np.isnan(submitted).all():
            log.info("%s: no inference at %d, epoch skipped", topic.name, epoch_ms)
            return replace(ledger, last_epoch_ms=epoch_ms), 0
        window = history.slice(max(0, index - spec.window + 1), index + 1)
        forecasts = np.full((len(topic.forecasters), n_i), np.nan)
        for k, forecaster in enumerate(topic.forecasters):
            if not seated[n_i + k]:
                continue
            try:
                forecasts[k] = safe_forecast(forecaster, window, spec, ledger.loss_history)
            except WorkerError as exc:
                log.warning("%s: %s", topic.name, exc)
        synthesis = synthesize(submitted, forecasts, ledger.state.synthesis, topic.params.synthesis)
        value = float(synthesis.values.combined)
        took_part = ~np.isnan(
            np.concatenate([synthesis.values.inferers, synthesis.values.forecast_implied])
        )
        weights = np.where(took_part, synthesis.weights, np.nan)  # absent is not "weight 0"
        self._history[topic.name].inferences.append(
            (epoch_ms, value, synthesis.confidence_interval, weights)
        )
        return (
            replace(
                ledger,
                last_epoch_ms=epoch_ms,
                pending=(*ledger.pending, PendingEpoch(epoch_ms, synthesis)),
                latest_epoch_ms=epoch_ms,
                latest_value=value,
                latest_interval=synthesis.confidence_interval,
                latest_weights=weights,
            ),
            1,
        )

    def _score_ready(
        self, topic: Topic, ledger: Ledger, history: Candles, truth: FloatArray, now_ms: int
    ) -> Ledger:
        """Score, oldest first, every pending epoch whose ground truth is known by `now_ms`."""
        horizon = topic.spec.horizon_ms
        while ledger.pending and ledger.pending[0].epoch_ms + horizon <= now_ms:
            pending, rest = ledger.pending[0], ledger.pending[1:]
            index = int(np.searchsorted(history.close_ts, pending.epoch_ms))
            known = index < len(history) and history.close_ts[index] == pending.epoch_ms
            value = truth[index] if known else math.nan
            if math.isnan(value):
                log.info(
                    "%s: no ground truth for %d (a gap), epoch dropped",
                    topic.name,
                    pending.epoch_ms,
                )
                ledger = replace(ledger, pending=rest)
                continue
            ledger = self._score(topic, replace(ledger, pending=rest), pending, float(value))
        return ledger

    def _score(self, topic: Topic, ledger: Ledger, pending: PendingEpoch, truth: float) -> Ledger:
        synthesis = pending.synthesis
        values = synthesis.values.flat()
        reports = np.stack([r.report(truth, values) for r in topic.reputers])
        losses = ValueBundle.from_flat(
            reports, synthesis.values.n_inferers, synthesis.values.n_forecasters
        )
        outcome = score_epoch(
            synthesis,
            losses,
            ledger.reputer_stakes,
            topic.reward_per_epoch + ledger.carry_reward,
            ledger.state,
            topic.params,
        )
        payouts = _payouts(outcome)
        n_w = len(topic.worker_names)
        worker_losses = np.concatenate([outcome.losses.inferers, outcome.losses.forecast_implied])
        regrets = np.concatenate([outcome.regrets.inferers, outcome.regrets.forecasters])
        loss_ema = ema(topic.params.synthesis.alpha_regret, worker_losses, ledger.loss_ema)
        rule = topic.slashing
        trend = ema(1 / rule.trend_epochs, regrets, ledger.regret_trend) if rule else regrets
        scored = ~np.isnan(worker_losses)
        experienced = outcome.state.inclusions >= (rule.warmup if rule else 0)
        deposits, strikes, slashed_now = _slash(rule, ledger, trend, scored & experienced)
        scores = np.concatenate(
            [outcome.scores.inferers, outcome.scores.forecasters, outcome.scores.reputers]
        )
        self._history[topic.name].scores.append(
            (
                pending.epoch_ms,
                truth,
                float(outcome.losses.combined),
                float(outcome.losses.naive),
                worker_losses,
                regrets,
                scores,
                payouts,
            )
        )
        history_rows = np.vstack([ledger.loss_history, outcome.losses.inferers[None, :]])
        return replace(
            ledger,
            state=outcome.state,
            loss_history=history_rows[-topic.loss_history_epochs :],
            reputer_stakes=ledger.reputer_stakes + payouts[n_w:],
            deposits=deposits,
            strikes=strikes,
            slashed=ledger.slashed + slashed_now,
            rewards=ledger.rewards + payouts,
            loss_ema=loss_ema,
            regret_trend=trend,
            carry_reward=float(slashed_now.sum()),
        )

    # ------------------------------------------------------------------ reports

    def scorecard(self, topic: str) -> pd.DataFrame:
        """One row per participant: how it is doing and what it has earned or lost."""
        spec = self.topic(topic)
        ledger = self._ledgers[topic]
        n_i, n_f = len(spec.workers), len(spec.forecasters)
        state = ledger.state
        weights = (
            ledger.latest_weights if ledger.latest_weights.size else np.full(n_i + n_f, np.nan)
        )
        total = float(np.nansum(weights))
        last = self._history[topic].scores[-1] if self._history[topic].scores else None
        scores = last[6] if last else np.full(n_i + n_f + len(spec.reputers), np.nan)
        suspended = ledger.suspended(spec)
        workers = pd.DataFrame(
            {
                "kind": ["inferer"] * n_i + ["forecaster"] * n_f,
                "status": np.where(suspended, "suspended", "active"),
                "loss_ema": ledger.loss_ema,
                "regret": np.concatenate(
                    [state.synthesis.regrets.inferers, state.synthesis.regrets.forecasters]
                ),
                "weight": weights / total if total > 0 else weights,
                "score": scores[: n_i + n_f],
                "score_ema": np.concatenate(
                    [state.score_emas.inferers, state.score_emas.forecasters]
                ),
                "rewards": ledger.rewards[: n_i + n_f],
                "stake": ledger.deposits,
                "slashed": ledger.slashed,
            },
            index=pd.Index(spec.worker_names, name="participant"),
        )
        n_r = len(spec.reputers)
        reputers = pd.DataFrame(
            {
                "kind": ["reputer"] * n_r,
                "status": "active",
                "loss_ema": np.nan,
                "regret": np.nan,
                "weight": state.listening_coefficients,
                "score": scores[n_i + n_f :],
                "score_ema": state.score_emas.reputers,
                "rewards": ledger.rewards[n_i + n_f :],
                "stake": ledger.reputer_stakes,
                "slashed": 0.0,
            },
            index=pd.Index([r.name for r in spec.reputers], name="participant"),
        )
        return pd.concat([workers, reputers])

    def history(self, topic: str) -> pd.DataFrame:
        """Per epoch: the inference, its interval, each worker's weight, and once scored the
        truth and losses. Indexed by epoch time (UTC)."""
        spec = self.topic(topic)
        records = self._history[topic]
        names = spec.worker_names
        if not records.inferences:
            return pd.DataFrame(columns=["value", *(f"weight:{n}" for n in names)])
        times = [r[0] for r in records.inferences]
        weights = np.vstack([r[3] for r in records.inferences])
        sums = np.nansum(weights, axis=1, keepdims=True)
        frame = pd.DataFrame(
            {"value": [r[1] for r in records.inferences]},
            index=pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="time"),
        )
        intervals = np.vstack([r[2] for r in records.inferences])
        for q, column in zip(
            spec.params.synthesis.confidence_percentiles, intervals.T, strict=True
        ):
            frame[f"ci:{q:g}"] = column
        for name, column in zip(names, (weights / np.where(sums > 0, sums, np.nan)).T, strict=True):
            frame[f"weight:{name}"] = column
        if records.scores:
            scored = pd.DataFrame(
                {
                    "truth": [r[1] for r in records.scores],
                    "network_loss": [r[2] for r in records.scores],
                    "naive_loss": [r[3] for r in records.scores],
                },
                index=pd.DatetimeIndex(
                    pd.to_datetime([r[0] for r in records.scores], unit="ms", utc=True), name="time"
                ),
            )
            losses = np.vstack([r[4] for r in records.scores])
            for name, column in zip(names, losses.T, strict=True):
                scored[f"loss:{name}"] = column
            frame = frame.join(scored)
        return frame

    # ------------------------------------------------------------------ persistence

    def _open(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        for name, fingerprint, blob in self._db.execute(
            "SELECT name, fingerprint, ledger FROM topics"
        ):
            topic = self._topics.get(name)
            if topic is None:
                continue
            if fingerprint != topic.fingerprint():
                raise NetworkError(
                    f"{path}: topic {name!r} was saved with other participants or parameters; "
                    "open it with the same topic definition or use a new file"
                )
            self._ledgers[name] = CODEC.loads(blob)
            self._history[name] = self._load_history(name)

    def _load_history(self, name: str) -> _History:
        assert self._db is not None
        history = _History()
        for epoch_ms, value, interval, weights in self._db.execute(
            "SELECT epoch_ms, value, interval, weights FROM inferences "
            "WHERE topic=? ORDER BY epoch_ms",
            (name,),
        ):
            history.inferences.append((epoch_ms, value, _array(interval), _array(weights)))
        for row in self._db.execute(
            "SELECT epoch_ms, truth, network_loss, naive_loss, worker_losses, regrets, scores, "
            "payouts FROM scores WHERE topic=? ORDER BY epoch_ms",
            (name,),
        ):
            history.scores.append((*row[:4], *(_array(b) for b in row[4:])))
        history.saved_inferences = len(history.inferences)
        history.saved_scores = len(history.scores)
        return history

    def save(self) -> None:
        """Write every topic's ledger and new history rows in one transaction."""
        if self._db is None:
            return
        with self._db:
            for name, topic in self._topics.items():
                self._db.execute(
                    "INSERT OR REPLACE INTO topics (name, fingerprint, ledger) VALUES (?, ?, ?)",
                    (name, topic.fingerprint(), CODEC.dumps(self._ledgers[name])),
                )
                records = self._history[name]
                self._db.executemany(
                    "INSERT OR REPLACE INTO inferences VALUES (?, ?, ?, ?, ?)",
                    [
                        (name, t, v, ci.tobytes(), w.tobytes())
                        for t, v, ci, w in records.inferences[records.saved_inferences :]
                    ],
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (name, *row[:4], *(a.tobytes() for a in row[4:]))
                        for row in records.scores[records.saved_scores :]
                    ],
                )
                records.saved_inferences = len(records.inferences)
                records.saved_scores = len(records.scores)

    def close(self) -> None:
        if self._db is not None:
            self.save()
            self._db.close()
            self._db = None


def _array(blob: bytes) -> FloatArray:
    return np.frombuffer(blob, dtype=np.float64).copy()


def _ground_truth(history: Candles, spec: TopicSpec) -> FloatArray:
    """Truth of the epoch at each candle; NaN where the horizon is not yet closed or has a gap."""
    truth = ground_truth_series(history.close, spec)
    h = spec.horizon
    contiguous = np.zeros(len(history), dtype=bool)
    if len(history) > h:
        contiguous[:-h] = history.ts[h:] - history.ts[:-h] == h * spec.period_ms
    return np.where(contiguous, truth, np.nan)


def _payouts(outcome: EpochOutcome) -> FloatArray:
    paid = outcome.rewards.payouts
    every: FloatArray = np.nan_to_num(
        np.concatenate([paid.inferers, paid.forecasters, paid.reputers])
    )
    return every


def _slash(
    rule: SlashingRule | None, ledger: Ledger, trend: FloatArray, judged: BoolArray
) -> tuple[FloatArray, IntArray, FloatArray]:
    """New deposits, strike counts and what was slashed this epoch.

    Only workers scored this epoch and past their warm-up are judged; a suspended worker is not
    scored, so its deposit stops shrinking.
    """
    if rule is None:
        return ledger.deposits, ledger.strikes, np.zeros(ledger.deposits.shape)
    below = (trend < rule.regret_floor) & judged
    strikes = np.where(below, ledger.strikes + 1, 0)
    due = strikes >= rule.patience
    slashed = np.where(due, ledger.deposits * rule.fraction, 0.0)
    return ledger.deposits - slashed, np.where(due, 0, strikes), slashed


def default_reputers(loss_method: str = "mse") -> tuple[Reputer, ...]:
    """Five honest reputers with unequal stakes."""
    stakes = (1000.0, 800.0, 600.0, 400.0, 200.0)
    return tuple(Reputer(f"reputer-{i}", s, loss_method) for i, s in enumerate(stakes))


def horizon_label(spec: TopicSpec) -> str:
    """'1h', '24h', '2d'... as tools name topics."""
    hours = spec.horizon_ms / 3_600_000
    return f"{hours:g}h" if hours < 48 or hours % 24 else f"{hours / 24:g}d"


def topic_name(symbol: str, target: str, horizon: str) -> str:
    """The naming convention of built-in topics: 'ETH/USDT log_return 1h'."""
    return f"{symbol} {target} {horizon}"


def default_topics(
    symbols: Sequence[str] = ("ETH/USDT",),
    weighting: str = "v0.6",
    extra_workers: Sequence[Worker] = (),
) -> list[Topic]:
    """For each symbol: log-return over 1h and 24h, 24h realised volatility; the built-in zoo.

    The 24h pair (return and volatility at the same horizon) is what the LP-range and leverage
    tools size positions from; the 1h return feeds short-horizon decisions.
    """
    params = EpochParams(synthesis=SynthesisParams(weighting=weighting))  # type: ignore[arg-type]
    topics = []
    for symbol in symbols:
        for target, horizon in (("log_return", 1), ("log_return", 24), ("volatility", 24)):
            spec = TopicSpec(
                name=topic_name(symbol, target, f"{horizon}h"),
                symbol=symbol,
                target=target,  # type: ignore[arg-type]
                timeframe="1h",
                horizon=horizon,
                epoch_length=1,
            )
            topics.append(
                Topic(
                    spec=spec,
                    workers=(*default_zoo(), *extra_workers),
                    forecasters=tuple(default_forecasters()),
                    reputers=default_reputers(spec.loss_method),
                    params=params,
                )
            )
    return topics


__all__ = [
    "LocalNetwork",
    "SlashingRule",
    "Topic",
    "default_reputers",
    "default_topics",
    "horizon_label",
    "topic_name",
]
