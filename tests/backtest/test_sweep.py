"""Sweeps and walk-forward: grid order, row errors, and the same rows for any process count."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from defai.backtest import Backtest
from defai.backtest.sweep import RunResult, best_row, grid, splits, sweep, walk_forward
from defai.errors import ConfigError
from defai.market.synthetic import SyntheticFeed
from defai.plugins import STRATEGIES_GROUP, resolve

HOUR = 3_600_000
GRID = grid(kelly_fraction=(0.25, 0.5), rebalance_threshold=(0.05, 0.1))


@pytest.fixture(scope="module")
def feed() -> SyntheticFeed:
    return SyntheticFeed(seed=3, days=20)


@pytest.fixture(scope="module")
def directional() -> object:
    return resolve(STRATEGIES_GROUP, "directional")()


@pytest.fixture(scope="module")
def swept(feed: SyntheticFeed, tmp_path_factory: pytest.TempPathFactory) -> dict[int, pd.DataFrame]:
    """The same sweep with the embedded network, in this process and over two workers."""
    cache = tmp_path_factory.mktemp("network")
    return {p: sweep("directional", feed, GRID, processes=p, cache_dir=cache) for p in (1, 2)}


def test_grid_is_the_cartesian_product_in_keyword_order() -> None:
    assert grid(a=(1, 2), b=("x", "y")) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    assert grid(b="xy", a=range(2)) == [{"b": "xy", "a": 0}, {"b": "xy", "a": 1}]
    assert grid() == [{}]
    with pytest.raises(ConfigError, match="no values for 'a'"):
        grid(a=[])


def test_an_unknown_parameter_is_refused_naming_the_fields(feed: SyntheticFeed) -> None:
    with pytest.raises(ConfigError, match=r"no parameter\(s\) \['kelly'\].*kelly_fraction"):
        sweep("directional", feed, [{"kelly_fraction": 0.5}, {"kelly": 0.5}], network=None)


def test_a_value_the_strategy_rejects_is_that_rows_error(feed: SyntheticFeed) -> None:
    frame = sweep("directional", feed, grid(kelly_fraction=(2.0, 0.5)), network=None)
    assert list(frame["kelly_fraction"]) == [2.0, 0.5]
    assert "kelly_fraction must be in (0, 1]" in frame["error"][0]
    assert math.isnan(frame["sharpe"][0]) and frame["trade_hash"][0] is None
    assert frame["error"][1] is None and frame["bars"][1] > 0


def test_rows_are_the_same_for_one_and_two_processes(swept: dict[int, pd.DataFrame]) -> None:
    one, two = (swept[p].drop(columns="elapsed_s") for p in (1, 2))
    pd.testing.assert_frame_equal(one, two)
    assert one[["kelly_fraction", "rebalance_threshold"]].to_dict("records") == GRID
    assert one["error"].isna().all()
    assert one["trade_hash"].nunique() > 1  # the parameters change the trades


def test_each_row_is_what_a_single_backtest_gives(
    swept: dict[int, pd.DataFrame], feed: SyntheticFeed, directional: object, tmp_path: Path
) -> None:
    for row, params in zip(swept[2].itertuples(), GRID, strict=True):
        strategy = dataclasses.replace(directional, **params)  # type: ignore[type-var]
        result = Backtest(strategy, feed, cache_dir=tmp_path).run()
        assert row.trade_hash == result.trade_hash
        assert row.bars == result.bars
        for name in ("total_return", "sharpe", "max_drawdown", "trades", "exposure"):
            assert getattr(row, name) == pytest.approx(result.metrics[name], nan_ok=True, rel=0)


def test_walk_forward_tiles_the_range_with_the_train_best(
    feed: SyntheticFeed, directional: object, tmp_path: Path
) -> None:
    first, last = Backtest(directional, feed).span()  # type: ignore[arg-type]
    wf = walk_forward("directional", feed, GRID, train="3D", test="2D", cache_dir=tmp_path)
    table = wf.splits
    assert len(table) == 3 and table["error"].isna().all()
    assert table["test_start"][0] == pd.Timestamp(first + 72 * HOUR, unit="ms", tz="UTC")
    assert table["test_end"].iloc[-1] == pd.Timestamp(last, unit="ms", tz="UTC")
    assert (table["test_start"] == table["train_end"] + pd.Timedelta(hours=1)).all()
    gaps = table["test_start"].iloc[1:].to_numpy() - table["test_end"].iloc[:-1].to_numpy()
    assert (gaps == pd.Timedelta(hours=1)).all()  # back to back: no overlap, no hole
    for k, split in table.iterrows():
        trained = wf.train[wf.train["split"] == k].reset_index(drop=True)
        scores = trained["sharpe"].fillna(-math.inf)
        best = trained.loc[scores.idxmax()]  # idxmax: the first of equal maxima
        chosen = {p: split[p] for p in ("kelly_fraction", "rebalance_threshold")}
        assert chosen == {p: best[p] for p in chosen}
        assert split["train_sharpe"] == best["sharpe"]
    # The stitched curve: each test window as a plain backtest, scaled by the last window's end.
    assert wf.equity.index.is_monotonic_increasing and wf.equity.index.is_unique
    assert len(wf.equity) == table["test_bars"].sum()
    scale = 1.0
    for _, split in table.iterrows():
        params = {p: split[p] for p in ("kelly_fraction", "rebalance_threshold")}
        result = Backtest(
            dataclasses.replace(directional, **params),  # type: ignore[type-var]
            feed,
            start=split["test_start"],
            end=split["test_end"],
            cache_dir=tmp_path / "alone",
        ).run()
        assert result.trade_hash == split["test_trade_hash"]
        piece = wf.equity.loc[split["test_start"] : split["test_end"]]
        pd.testing.assert_series_equal(piece, result.equity * scale, check_names=False)
        scale = piece.iloc[-1] / result.capital
    assert wf.metrics["total_return"] == pytest.approx(wf.equity.iloc[-1] / 10_000 - 1)
    again = walk_forward(
        "directional", feed, GRID, train="3D", test="2D", processes=2, cache_dir=tmp_path
    )
    pd.testing.assert_frame_equal(again.splits, wf.splits)
    pd.testing.assert_series_equal(again.equity, wf.equity)


def test_splits_rolling_anchored_and_refused() -> None:
    rolling = splits(0, 9 * HOUR, "4h", "2h")
    assert rolling == [
        (0, 3 * HOUR, 4 * HOUR, 5 * HOUR),
        (2 * HOUR, 5 * HOUR, 6 * HOUR, 7 * HOUR),
        (4 * HOUR, 7 * HOUR, 8 * HOUR, 9 * HOUR),
    ]
    anchored = splits(0, 9 * HOUR, "4h", "2h", anchored=True)
    assert [w[0] for w in anchored] == [0, 0, 0]
    assert [w[2:] for w in anchored] == [w[2:] for w in rolling]
    assert splits(0, 6 * HOUR, "4h", "4h") == [(0, 3 * HOUR, 4 * HOUR, 6 * HOUR)]  # cut at end
    with pytest.raises(ConfigError, match="step must be >= test"):
        splits(0, 9 * HOUR, "4h", "2h", step="1h")
    with pytest.raises(ConfigError, match="leaves no test tick"):
        splits(0, 3 * HOUR, "4h", "2h")
    with pytest.raises(ConfigError, match="whole number"):
        splits(0, 9 * HOUR, "90min", "2h")


def test_best_row_ranks_nan_and_failures_last_and_ties_by_grid_order() -> None:
    def row(sharpe: float, error: str | None = None) -> RunResult:
        return RunResult({"sharpe": sharpe, "max_drawdown": -sharpe}, "h", 1, 0.0, error)

    assert best_row([row(math.nan), row(1.0), row(2.0, "bad"), row(1.0)], "sharpe") == 1
    assert best_row([row(1.0), row(2.0)], "max_drawdown", maximize=False) == 1
    assert best_row([row(math.nan), row(math.nan)], "sharpe") == 0
    assert best_row([row(1.0, "bad")], "sharpe") is None
