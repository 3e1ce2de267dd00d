"""Backtest reports: real backtests of the built-in strategies, written and read back.

Three short backtests (20 synthetic days, about 180 hourly bars each) go into one report; the
tests check that every PNG is a real, non-blank image of a sensible size, that the page links
exactly the PNGs written and nothing outside the folder, that the metrics are on it, and that
text from a result is escaped.
"""

from __future__ import annotations

import math
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from defai.backtest import Backtest, BacktestResult
from defai.backtest.report import format_metric, write_report
from defai.backtest.report_plots import health_figure
from defai.market.synthetic import SyntheticFeed
from defai.plugins import STRATEGIES_GROUP, resolve

STRATEGIES = ("directional", "lp_rebalance", "leverage_loop")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[BacktestResult]:
    feed = SyntheticFeed(seed=3, days=20)
    cache = tmp_path_factory.mktemp("network-cache")
    return [
        Backtest(resolve(STRATEGIES_GROUP, name)(), feed, cache_dir=cache).run()
        for name in STRATEGIES
    ]


@pytest.fixture(scope="module")
def report(results: list[BacktestResult], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(results, tmp_path_factory.mktemp("report") / "out", title="Three ways")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        if tag == "img" and values.get("src"):
            self.images.append(str(values["src"]))
        if values.get("href"):
            self.links.append(str(values["href"]))


def parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_every_png_is_a_real_nonblank_image(report: Path) -> None:
    pngs = sorted(report.parent.glob("*.png"))
    assert pngs
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC, png.name
        assert len(data) > 15_000, f"{png.name}: {len(data)} bytes, suspiciously small"
        pixels = matplotlib.image.imread(png)
        height, width = pixels.shape[:2]
        assert 900 <= width <= 1200 and 300 <= height <= 900, (png.name, width, height)
        ink = (pixels[..., :3] < 0.85).any(axis=-1).mean()  # share of non-white pixels
        assert ink > 0.02, f"{png.name} is nearly blank ({ink:.1%} ink)"


def test_page_links_exactly_the_pngs_written(report: Path) -> None:
    folder = report.parent
    links = parse(report)
    written = {p.name for p in folder.glob("*.png")}
    assert set(links.images) == written
    for target in links.images + [h for h in links.links if not h.startswith("#")]:
        assert "/" not in target and ":" not in target, target  # beside the page, relative
        assert (folder / target).is_file(), target
    anchors = {h[1:] for h in links.links if h.startswith("#")}
    page = report.read_text(encoding="utf-8")
    assert all(f'id="{a}"' in page for a in anchors) and len(anchors) == len(STRATEGIES)


def test_each_strategy_gets_its_plots_or_a_note(report: Path) -> None:
    written = {p.name for p in report.parent.glob("*.png")}
    for name in ("directional", "lp-rebalance", "leverage-loop"):
        assert {f"{name}-equity.png", f"{name}-price.png"} <= written
    # only the leverage loop ever borrows: the others say so instead of drawing an empty chart
    assert "leverage-loop-health.png" in written
    assert "directional-health.png" not in written and "lp-rebalance-health.png" not in written
    page = report.read_text(encoding="utf-8")
    assert page.count("never owed anything: no health factor to plot") == 2
    # the three runs share the network's recording: drawn once, shown in every section
    network = sorted(n for n in written if "-network-" in n)
    assert network == [
        "directional-network-eth-usdt-log-return-24h.png",
        "directional-network-eth-usdt-volatility-24h.png",
    ]
    assert all(parse(report).images.count(n) == len(STRATEGIES) for n in network)


def test_page_is_self_contained(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    links = parse(report)
    assert "script" not in links.tags and "link" not in links.tags and "iframe" not in links.tags
    assert "http://" not in page and "https://" not in page and "url(" not in page
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page


def test_metrics_and_tables_are_on_the_page(report: Path, results: list[BacktestResult]) -> None:
    page = report.read_text(encoding="utf-8")
    assert "<h1>Three ways</h1>" in page and "Comparison" in page
    for result in results:
        assert f"<h2>{result.strategy}</h2>" in page
        for name, row in result.metrics_table().iterrows():
            text = format_metric(str(name), float(row["value"]), result.quote)
            assert f'<td>{row["label"]}</td><td class="num">{text}</td>' in page, name
        for code, count in result.verdicts.items():
            assert f'<td>{code}</td><td class="num">{count:,}</td>' in page
    leverage = results[2]
    refused = leverage.actions["error"].map(lambda e: isinstance(e, str)).sum()
    assert refused > 0  # the paper wallet refuses swaps that leave nothing for gas
    assert f"{refused:,} refused actions" in page
    assert "InsufficientBalanceError" in page
    assert "No round trip closed (25 fills, never back to flat)" in page  # directional


def test_text_from_a_result_is_escaped(results: list[BacktestResult], tmp_path: Path) -> None:
    evil = replace(results[0], strategy="<script>alert('pwned')</script>", network={})
    page = write_report([evil], tmp_path, title="<b>bold</b> & co")
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "<b>bold" not in text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text
    assert "<title>&lt;b&gt;bold&lt;/b&gt; &amp; co</title>" in text
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "script-alert-pwned-script-equity.png",
        "script-alert-pwned-script-price.png",
    }
    assert "no inference network (plain strategy): no network plot" in text
    assert "Comparison" not in text  # one result: its own metrics table is enough


def test_same_names_get_distinct_deterministic_files(
    results: list[BacktestResult], tmp_path: Path
) -> None:
    plain = replace(results[0], network={})
    write_report([plain, plain], tmp_path)
    first, second = tmp_path / "directional-equity.png", tmp_path / "directional-2-equity.png"
    assert first.read_bytes() == second.read_bytes()  # same result, same bytes


def test_liquidations_are_marked_on_the_health_factor(results: list[BacktestResult]) -> None:
    leverage = results[2]
    when = leverage.equity.index[100]
    event = {
        "time_ms": int(when.value // 1_000_000),
        "debt_asset": "USDT",
        "collateral_asset": "ETH",
        "health_factor": 0.97,
        "health_factor_after": 1.2,
    }
    figure = health_figure(replace(leverage, liquidations=pd.DataFrame([event])))
    assert figure is not None
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "liquidation (1)" in labels and "liquidation (HF 1)" in labels
    assert any(label.startswith("borrow") for label in labels)
    never = replace(leverage, health_factor=leverage.health_factor * np.nan)
    assert health_figure(never) is None


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("total_return", 0.05433, "5.43%"),
        ("max_drawdown", 0.2, "20.00%"),
        ("end_equity", 10543.2954, "10,543.30 USDT"),
        ("trades", 25.0, "25"),
        ("sharpe", 7.0534, "7.05"),
        ("win_rate", math.nan, "–"),
        ("profit_factor", math.inf, "∞"),
    ],
)
def test_format_metric(name: str, value: float, shown: str) -> None:
    assert format_metric(name, value, "USDT") == shown
