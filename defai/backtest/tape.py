"""NetworkTape: the embedded network's answers over a history, recorded once and replayed.

The network is a function of the candles and its cast, not of the strategy: a backtest, a sweep
over strategy parameters or a look-ahead re-run all see the same inferences. So each topic runs
once over the feed (workers see only candles closed by each epoch, exactly as when the network
advances tick by tick) and `latest(topic)` answers from the recording at the clock's time.
Recordings are cached on disk by a digest of the topic's cast and the candles it read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
import pandas as pd

from defai.errors import NetworkError
from defai.market.feed import Feed
from defai.market.view import Clock
from defai.network.local import LocalNetwork, Topic
from defai.network.topic import TopicSpec
from defai.types import NetworkInference, epoch_ms

_CHUNK = 500  # epochs run between two progress reports
PARALLEL_EPOCHS = 20_000  # below this, starting worker processes costs more than it saves
_FORMAT = 1  # bump when the recording's layout changes: old cache files are then ignored


@dataclass(frozen=True)
class Recording:
    """One topic's history as `LocalNetwork.history` gives it: per epoch, the inference, its
    interval, each worker's weight and, once scored, the truth and the losses."""

    topic: Topic
    frame: pd.DataFrame

    @property
    def times(self) -> np.ndarray:
        return epoch_ms(self.frame.index)


class NetworkTape:
    """An InferenceSource replaying recordings at a clock's time (no epoch runs while replaying)."""

    def __init__(self, recordings: Sequence[Recording], clock: Clock) -> None:
        self.recordings = {r.topic.name: r for r in recordings}
        self.clock = clock
        self._times = {name: r.times for name, r in self.recordings.items()}
        self._columns = {name: _Columns.of(r) for name, r in self.recordings.items()}

    @classmethod
    def record(
        cls,
        topics: Sequence[Topic],
        feed: Feed,
        until_ms: int,
        clock: Clock,
        cache_dir: Path | None = None,
        progress: Callable[[int, int], None] | None = None,
        processes: int | None = None,
    ) -> NetworkTape:
        """Run each topic over the feed up to `until_ms` (or load its cached recording);
        `progress(epochs done, epochs to run)` follows the topics that have to run. Topics are
        independent: with `processes` > 1 (by default, one per core once there are
        PARALLEL_EPOCHS epochs to run) they run in separate processes, with the same result."""
        paths = [_cache_path(t, feed, until_ms, cache_dir) for t in topics]
        todo = [
            (t, _due_epochs(t, feed, until_ms))
            for t, path in zip(topics, paths, strict=True)
            if path is None or not path.exists()
        ]
        total = sum(len(due) for _, due in todo)
        workers = min(len(todo), os.cpu_count() or 1) if processes is None else processes
        if workers > 1 and len(todo) > 1 and (processes is not None or total >= PARALLEL_EPOCHS):
            recorded = _record_apart(todo, feed, until_ms, workers, total, progress)
        else:
            recorded, done = {}, 0
            for topic, due in todo:
                recorded[topic.name] = _record_one(
                    topic, due, feed, until_ms, done, total, progress
                )
                done += len(due)
        recordings = []
        for topic, path in zip(topics, paths, strict=True):
            frame = recorded.get(topic.name)
            if frame is None:
                assert path is not None
                frame = _load(path)
            elif path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                _save(frame, path)
            recordings.append(Recording(topic, frame))
        return cls(recordings, clock)

    def topics(self) -> list[TopicSpec]:
        return [r.topic.spec for r in self.recordings.values()]

    def latest(self, topic: str) -> NetworkInference:
        """What `LocalNetwork.latest` answered at this time when advanced tick by tick."""
        times = self._times.get(topic)
        if times is None:
            raise NetworkError(f"unknown topic {topic!r}; this network has {sorted(self._times)}")
        now = self.clock.now_ms()
        index = int(np.searchsorted(times, now, side="right")) - 1
        if index < 0:
            raise NetworkError(f"topic {topic!r} has no inference yet at {now}")
        spec = self.recordings[topic].topic
        value, interval, weights = self._columns[topic].row(index)
        epoch_ms = int(times[index])
        return NetworkInference(
            topic=topic,
            value=value,
            timestamp_ms=epoch_ms,
            ci_percentiles=spec.params.synthesis.confidence_percentiles,
            ci_values=interval,
            weights=weights,
            epoch=epoch_ms // spec.spec.epoch_ms,
            source="local",
            extra={"max_age_ms": spec.spec.epoch_ms},
        )


@dataclass(frozen=True)
class _Columns:
    """A recording as plain arrays: what `latest` reads on every call."""

    names: tuple[str, ...]
    values: np.ndarray
    intervals: np.ndarray
    weights: np.ndarray

    @classmethod
    def of(cls, recording: Recording) -> _Columns:
        frame, topic = recording.frame, recording.topic
        ci = [f"ci:{q:g}" for q in topic.params.synthesis.confidence_percentiles]
        names = tuple(topic.worker_names)
        if not len(frame):
            return cls(names, np.empty(0), np.empty((0, len(ci))), np.empty((0, len(names))))
        return cls(
            names,
            frame["value"].to_numpy(dtype=np.float64),
            frame[ci].to_numpy(dtype=np.float64),
            frame[[f"weight:{n}" for n in names]].to_numpy(dtype=np.float64),
        )

    def row(self, i: int) -> tuple[float, tuple[float, ...], Mapping[str, float]]:
        weights = self.weights[i].tolist()
        return (
            float(self.values[i]),
            tuple(self.intervals[i].tolist()),
            {n: w for n, w in zip(self.names, weights, strict=True) if w == w},  # NaN: absent
        )


def _record_one(
    topic: Topic,
    due: np.ndarray,
    feed: Feed,
    until_ms: int,
    done: int = 0,
    total: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """One topic's history, run in chunks so progress can be told (same ledger as at once)."""
    network = LocalNetwork([topic])
    for chunk in range(0, len(due), _CHUNK):
        network.advance(int(due[min(chunk + _CHUNK, len(due)) - 1]), feed)
        if progress is not None:
            progress(done + min(chunk + _CHUNK, len(due)), total)
    network.advance(until_ms, feed)
    return network.history(topic.name)


def _record_apart(
    todo: Sequence[tuple[Topic, np.ndarray]],
    feed: Feed,
    until_ms: int,
    workers: int,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, pd.DataFrame]:
    """Each topic in its own process (a fresh one from the fork server: no inherited threads
    or locks); progress moves as topics finish."""
    methods = get_all_start_methods()
    context = get_context("forkserver" if "forkserver" in methods else "spawn")
    recorded, done = {}, 0
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_record_one, t, due, feed, until_ms) for t, due in todo]
        for (topic, due), future in zip(todo, futures, strict=True):
            recorded[topic.name] = future.result()
            done += len(due)
            if progress is not None:
                progress(done, total)
    return recorded


def _cache_path(topic: Topic, feed: Feed, until_ms: int, cache_dir: Path | None) -> Path | None:
    """Where the recording of `topic` over these very candles is kept (None: no cache)."""
    if cache_dir is None:
        return None
    spec = topic.spec
    candles = feed.candles(spec.symbol, spec.timeframe, as_of=until_ms)
    digest = hashlib.sha256(f"{_FORMAT}|{topic.fingerprint()}|{until_ms}".encode())
    for column in (candles.close_ts, candles.open, candles.high, candles.low, candles.close):
        digest.update(np.ascontiguousarray(column).tobytes())
    digest.update(np.ascontiguousarray(candles.volume).tobytes())
    return cache_dir / f"network-{digest.hexdigest()[:24]}.npz"


def _due_epochs(topic: Topic, feed: Feed, until_ms: int) -> np.ndarray:
    """Close times of the topic's epochs up to `until_ms`: the recording's work to do."""
    spec = topic.spec
    close_ts = feed.candles(spec.symbol, spec.timeframe, as_of=until_ms).close_ts
    return np.asarray(close_ts[close_ts % spec.epoch_ms == 0], dtype=np.int64)


def _save(frame: pd.DataFrame, path: Path) -> None:
    """Exact floats (npz), column names as text: no pickle in a cache anyone may hand us."""
    temporary = path.with_suffix(".tmp.npz")
    np.savez(
        temporary,
        time=epoch_ms(frame.index),
        columns=np.array(frame.columns, dtype=str),
        values=frame.to_numpy(dtype=np.float64),
    )
    temporary.replace(path)


def _load(path: Path) -> pd.DataFrame:
    with np.load(path, allow_pickle=False) as stored:
        index = pd.DatetimeIndex(pd.to_datetime(stored["time"], unit="ms", utc=True), name="time")
        return pd.DataFrame(stored["values"], index=index, columns=list(stored["columns"]))
