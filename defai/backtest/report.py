"""Backtest reports: PNG plots and one self-contained HTML page that shows them with the metrics.

`write_report([result, ...], folder)` draws each result's plots beside the page (equity and
drawdown, prices with trades and LP ranges, health factor, network weights) and writes
`index.html`: a comparison table when there are several results, then one section per result
with its metrics, the guard's verdicts, the last round trips and the actions venues refused.
The page has inline CSS only (no script, nothing fetched) and links its images relatively, so
the folder can be moved, zipped or served as is. Every text that came from a result is escaped.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from defai.backtest import report_plots as plots
from defai.backtest.result import METRIC_LABELS, PERCENT_METRICS, BacktestResult

DEFAULT_TITLE = "defai backtest report"
PAGE = "index.html"
MONEY_METRICS = frozenset({"start_equity", "end_equity", "fees", "lp_fees", "impermanent_loss"})
COUNT_METRICS = frozenset({"trades", "round_trips", "liquidations"})
COMPARED = (
    "end_equity",
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "exposure",
    "trades",
    "fees",
    "lp_fees",
    "liquidations",
)
LAST_ROUND_TRIPS = 20
REFUSED_SHOWN = 20
DASH = "–"


def write_report(
    results: Sequence[BacktestResult], folder: Path, title: str = DEFAULT_TITLE
) -> Path:
    """Write the plots and `index.html` into `folder` (created if needed); return the page.

    File names depend only on the strategies' names and their order: `<strategy>-equity.png`,
    `-price.png`, `-health.png`, `-network-<topic>.png` (a topic whose recording is identical
    to one already drawn for an earlier result links that file instead of drawing it again).
    """
    if not results:
        raise ValueError("write_report needs at least one BacktestResult")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    slugs = _unique([slug(r.strategy) for r in results])
    drawn: dict[str, _Figure] = {}
    sections = [
        _section(result, name, folder, drawn) for result, name in zip(results, slugs, strict=True)
    ]
    page = folder / PAGE
    page.write_text(_page(title, results, slugs, sections), encoding="utf-8")
    return page


def format_metric(name: str, value: float, quote: str = "") -> str:
    """A metric as the report prints it: percentages, money with 2 decimals, NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if name in PERCENT_METRICS:
        return f"{value * 100:,.2f}%"
    if name in MONEY_METRICS:
        return f"{value:,.2f} {quote}".rstrip()
    if name in COUNT_METRICS:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def slug(name: str) -> str:
    """A file-name-safe form of a strategy or topic name (lowercase, dashes)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "strategy"


@dataclass(frozen=True)
class _Figure:
    file: str
    alt: str
    caption: str
    note: str = ""


@dataclass
class _Section:
    anchor: str
    html: list[str] = field(default_factory=list)


def _section(
    result: BacktestResult, name: str, folder: Path, drawn: dict[str, _Figure]
) -> _Section:
    section = _Section(anchor=name)
    out = section.html.append
    out(f'<section id="{escape(name)}">')
    out(f"<h2>{escape(result.strategy)}</h2>")
    out(_run_summary(result))
    out('<div class="columns"><div>')
    out("<h3>Metrics</h3>")
    out(_metrics_table(result))
    out("</div><div>")
    out("<h3>Guard verdicts</h3>")
    out(_verdicts_table(result.verdicts))
    out("<h3>Venue actions</h3>")
    out(_actions_summary(result.actions))
    out("</div></div>")
    out("<h3>Plots</h3>")
    for figure in _figures(result, name, folder, drawn):
        out(_figure_html(figure))
    out(f"<h3>Last round trips (at most {LAST_ROUND_TRIPS})</h3>")
    out(_round_trips_table(result))
    out("<h3>Actions venues refused</h3>")
    out(_refused_table(result.actions))
    out("</section>")
    return section


def _figures(
    result: BacktestResult, name: str, folder: Path, drawn: dict[str, _Figure]
) -> Iterable[_Figure | str]:
    """Each plot drawn and saved, or a note saying why there is none."""
    who = result.strategy
    if not result.bars:
        yield "The run has no bars: nothing to plot."
        return
    yield _draw(
        plots.equity_figure(result),
        folder,
        f"{name}-equity.png",
        f"{who}: equity, drawdown and exposure",
        f"Equity in {result.quote} after each bar (dashed: the starting capital), drawdown "
        "below the running peak in %, and gross exposure (market value at risk over equity).",
    )
    price = plots.price_figure(result)
    if price is None:
        yield "No prices were recorded: no price plot."
    else:
        yield _draw(
            price,
            folder,
            f"{name}-price.png",
            f"{who}: prices with fills, swaps and LP ranges",
            "Close of each traded symbol; filled triangles are exchange fills, hollow ones "
            "executed swaps (up: buy, down: sell the base), grey crosses actions a venue "
            "refused; shaded bands are LP ranges (lower to upper price, from opening to "
            "closing or the end of the run).",
        )
    health = plots.health_figure(result)
    if health is None:
        yield "The lending account never owed anything: no health factor to plot."
    else:
        yield _draw(
            health,
            folder,
            f"{name}-health.png",
            f"{who}: health factor",
            "Health factor of the lending account while it owes something (gaps: no debt); "
            "triangles mark borrows (up) and repays (down) at the health factor they left; the "
            "dashed line at 1 is where liquidation starts; crosses mark liquidations.",
        )
    if not result.network:
        yield "The run had no inference network (plain strategy): no network plot."
        return
    topic_files: set[str] = set()
    for topic, frame in result.network.items():
        key = _digest(topic, frame)
        if key in drawn:
            earlier = drawn[key]
            note = "the same recording as in an earlier section: the same file"
            yield _Figure(earlier.file, earlier.alt, earlier.caption, note)
            continue
        figure = plots.network_figure(who, topic, frame)
        if figure is None:
            yield f"Topic {topic}: no epochs in this run, nothing to plot."
            continue
        file = _unique([*sorted(topic_files), f"{name}-network-{slug(topic)}.png"])[-1]
        topic_files.add(file)
        drawn[key] = _draw(
            figure,
            folder,
            file,
            f"network weights by worker, {topic}",
            f"Topic {topic}: each worker's share of the network's weight at each epoch "
            "(stacked, sums to 1) and, below, the network's loss against the naive "
            "inference's and the best single worker's once epochs are scored.",
        )
        yield drawn[key]


def _draw(figure: Any, folder: Path, file: str, alt: str, caption: str) -> _Figure:
    plots.save(figure, folder / file)
    return _Figure(file, alt, caption)


def _figure_html(figure: _Figure | str) -> str:
    if isinstance(figure, str):
        return f'<p class="note">{escape(figure)}</p>'
    caption = f"{figure.caption} ({figure.note})" if figure.note else figure.caption
    return (
        f'<figure><a href="{escape(figure.file)}"><img src="{escape(figure.file)}" '
        f'alt="{escape(figure.alt)}"></a><figcaption>{escape(caption)}</figcaption>'
        "</figure>"
    )


def _run_summary(result: BacktestResult) -> str:
    index = result.equity.index
    span = f"{_when(index[0])} → {_when(index[-1])}" if len(index) else DASH
    timeframe = _timeframe(index)
    items = [
        ("Span", span),
        ("Bars", f"{result.bars:,}" + (f" of {timeframe}" if timeframe else "")),
        ("Capital", f"{result.capital:,.2f} {result.quote}"),
        ("Trade hash", result.trade_hash[:16] or DASH),
        ("Run time", DASH if math.isnan(result.elapsed_s) else f"{result.elapsed_s:.1f} s"),
    ]
    cells = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f'<dl class="run">{cells}</dl>'


def _metrics_table(result: BacktestResult) -> str:
    table = result.metrics_table()
    if not len(table):
        return '<p class="note">No metrics (the run has no bars).</p>'
    rows = [
        (str(label), format_metric(str(name), row_value(value), result.quote))
        for name, label, value in zip(table.index, table["label"], table["value"], strict=True)
    ]
    return _table(["Metric", "Value"], rows, numeric={1})


def _verdicts_table(verdicts: Mapping[str, int]) -> str:
    if not verdicts:
        return '<p class="note">The policy proposed nothing.</p>'
    total = sum(verdicts.values())
    rows = [
        (code, f"{count:,}", f"{100 * count / total:.1f}%")
        for code, count in sorted(verdicts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return _table(["Verdict", "Proposals", "Share"], rows, numeric={1, 2})


def _actions_summary(actions: pd.DataFrame) -> str:
    if not len(actions):
        return '<p class="note">No venue action (holds are not counted).</p>'
    refused = actions["error"].map(_refused)
    rows = []
    for kind in sorted(actions["kind"].astype(str).unique()):
        mine = actions["kind"] == kind
        rows.append((kind, f"{int((mine & ~refused).sum()):,}", f"{int((mine & refused).sum()):,}"))
    return _table(["Action", "Executed", "Refused"], rows, numeric={1, 2})


def _round_trips_table(result: BacktestResult) -> str:
    trips = result.round_trips
    if not len(trips):
        fills = len(result.trades)
        why = "no exchange fill" if not fills else f"{fills:,} fills, never back to flat"
        return f'<p class="note">No round trip closed ({escape(why)}).</p>'
    last = trips.tail(LAST_ROUND_TRIPS)
    rows = [
        (
            str(t["symbol"]),
            str(t["side"]),
            _when(t["opened"]),
            _when(t["closed"]),
            f"{float(t['pnl']):,.2f} {result.quote}",
        )
        for t in last.to_dict("records")
    ]
    caption = f"{len(last)} of {len(trips):,}" if len(trips) > len(last) else ""
    return _table(["Symbol", "Side", "Opened", "Closed", "PnL"], rows, numeric={4}, caption=caption)


def _refused_table(actions: pd.DataFrame) -> str:
    """Refused actions, a run of the same action refused with the same error on one row."""
    refused = actions[actions["error"].map(_refused)] if len(actions) else actions
    if not len(refused):
        return '<p class="note">None: every action that reached a venue was executed.</p>'
    runs: list[list[Any]] = []  # first time, last time, count, kind, reason, error
    for a in refused.to_dict("records"):
        when = pd.Timestamp(int(a["time_ms"]), unit="ms", tz="UTC")
        kind, error = str(a["kind"]), str(a["error"])
        if runs and runs[-1][3] == kind and runs[-1][5] == error:
            runs[-1][1], runs[-1][2] = when, runs[-1][2] + 1
            continue
        intent = a["intent"] if isinstance(a["intent"], dict) else {}
        runs.append([when, when, 1, kind, _shorten(str(intent.get("reason", ""))), error])
    shown = runs[:REFUSED_SHOWN]
    rows = [
        (_when(first), _when(last) if count > 1 else "", f"{count:,}", kind, reason, error)
        for first, last, count, kind, reason, error in shown
    ]
    caption = (
        f"{len(refused):,} refused actions; a run of the same action refused with the same "
        "error is one row"
        + (f"; the first {len(shown)} of {len(runs):,} rows" if len(runs) > len(shown) else "")
    )
    return _table(
        ["From", "To", "Times", "Action", "Why the policy wanted it (first)", "Venue's error"],
        rows,
        numeric={2},
        caption=caption,
    )


def _comparison(results: Sequence[BacktestResult], slugs: Sequence[str]) -> str:
    headers = ["Strategy", *(METRIC_LABELS.get(n, n) for n in COMPARED), "Refused actions"]
    rows: list[list[str | _Raw]] = []
    for result, name in zip(results, slugs, strict=True):
        refused = int(result.actions["error"].map(_refused).sum()) if len(result.actions) else 0
        cells = [format_metric(n, row_value(result.metrics.get(n)), result.quote) for n in COMPARED]
        link = f'<a href="#{escape(name)}">{escape(result.strategy)}</a>'
        rows.append([_Raw(link), *cells, f"{refused:,}"])
    return _table(headers, rows, numeric=set(range(1, len(headers))))


def _page(
    title: str,
    results: Sequence[BacktestResult],
    slugs: Sequence[str],
    sections: Sequence[_Section],
) -> str:
    from defai import __version__

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if len(results) > 1:
        parts += ["<h2>Comparison</h2>", _comparison(results, slugs)]
    for section in sections:
        parts += section.html
    parts.append(
        f"<footer>Written by defai {escape(__version__)}. Times are UTC. Percentages are of "
        "equity; money is in each run's quote currency.</footer>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class _Raw:
    """Markup built here from escaped parts: put in a table cell as is."""

    html: str


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str | _Raw]],
    numeric: set[int] | frozenset[int] = frozenset(),
    caption: str = "",
) -> str:
    def cell(tag: str, i: int, value: str | _Raw) -> str:
        text = value.html if isinstance(value, _Raw) else escape(value)
        attribute = ' class="num"' if i in numeric else ""
        return f"<{tag}{attribute}>{text}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    top = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{top}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def row_value(value: Any) -> float:
    """A metric cell as a float (missing: NaN)."""
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _refused(error: Any) -> bool:
    return isinstance(error, str) and bool(error)


def _when(value: Any) -> str:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def _timeframe(index: pd.Index) -> str:
    if len(index) < 2:
        return ""
    step = pd.Series(pd.DatetimeIndex(index)).diff().dropna().median()
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unique(names: Sequence[str]) -> list[str]:
    """The names with -2, -3... appended to repeats, in order."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}-{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _digest(topic: str, frame: pd.DataFrame) -> str:
    digest = hashlib.sha256(topic.encode())
    digest.update("|".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
max-width:1100px;margin:1.5em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #ddd}
h3{margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.9em}
caption{caption-side:top;text-align:left;color:#666;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
dl.run{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.5em 0}
dt{font-weight:600}dd{margin:0}
.columns{display:flex;flex-wrap:wrap;gap:0 2.5em}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}.note{color:#666;font-style:italic}
footer{margin-top:3em;color:#888;font-size:.85em}
"""
