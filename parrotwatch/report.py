"""``parrotwatch report``: the Grafana dashboards' panels as one self-contained HTML page.

For people without Grafana: every panel of every dashboard (dashboards/) runs its own SQL, with
Grafana's macros and variables expanded by dashboards.macros (model and app = All), for one
time range. Time series become matplotlib PNGs (inlined as base64) with the alerts shaded as
regions, tables become HTML tables, stats become numbers; the worst requests get their
drill-down. XY charts (Grafana's ``xychart``, e.g. the Calibration dashboard's reliability diagram:
observed share of bad answers against the mean score per bin) become x-y plots of ``panel.xy``.
Each plot is a ``<figure class="plot" data-points="N" data-series="K">`` so that tools (and
tests) can check it has data. The page loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.grafana import XY, Dashboard, Panel
from parrotwatch.dashboards.macros import TimeRange, auto_interval, render
from parrotwatch.dashboards.quality import DRILLDOWN

log = logging.getLogger(__name__)
MAX_TABLE_ROWS = 50
DRILLDOWNS = 5  # worst requests that get their drill-down section
WORST_PANEL = "Worst requests by $worst_by"


@dataclass
class ReportStats:
    plots: int = 0
    tables: int = 0
    stats: int = 0
    empty: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class _Context:
    conn: psycopg.Connection
    time_range: TimeRange
    stats: ReportStats
    drill_ids: list[str] = field(default_factory=list)


def _variables(ctx: _Context, d: Dashboard) -> tuple[dict[str, Any], dict[str, bool]]:
    """All for query variables (every value their query returns), defaults otherwise."""
    values: dict[str, Any] = {}
    multi = {v.name: v.multi for v in d.variables}
    for v in d.variables:
        if v.kind == "query":
            sql = render(v.query, ctx.time_range, auto_interval(ctx.time_range), values, multi)
            values[v.name] = [r[0] for r in ctx.conn.execute(sql)] or ["(none)"]
        else:
            values[v.name] = v.default
    return values, multi


def _query(ctx: _Context, sql: str, values, multi,
           min_interval: str | None = "1m") -> tuple[list[str], list[tuple]]:
    interval = auto_interval(ctx.time_range, max_points=150, min_interval=min_interval)
    cur = ctx.conn.execute(render(sql, ctx.time_range, interval, values, multi))
    return [c.name for c in cur.description], cur.fetchall()


UNIT_SUFFIX = {"ms": " ms", "s": " s", "reqps": " req/s", "rowsps": " rows/s"}


def format_number(value: float, unit: str | None = None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, in plain notation where it is readable, with
    the Grafana ``unit`` of its panel.

    >>> format_number(4.6510256410256410, "reqps")
    '4.651 req/s'
    >>> format_number(0.04154173254102382380)
    '0.04154'
    >>> format_number(0.0312, "percentunit")
    '3.12 %'
    >>> format_number(1234567.8, "ms")
    '1,234,568 ms'
    >>> format_number(2.5e-07)
    '2.5e-07'
    >>> format_number(float("nan"))
    'nan'
    """
    if not math.isfinite(value):
        return str(value)
    if unit == "percentunit":
        return f"{format_number(100 * value, digits=3)} %"
    magnitude = abs(value)
    if magnitude >= 10 ** digits:
        text = f"{value:,.0f}"
    elif magnitude == 0 or magnitude >= 1e-3:
        text = f"{value:.{digits}g}"
        if "e" in text:  # .4g writes 12345 as 1.234e+04; below 10**digits plain is as short
            text = f"{value:.0f}"
    else:
        text = f"{value:.{digits - 1}g}"
    return text + UNIT_SUFFIX.get(unit or "", "")


def _fmt(value: Any, unit: str | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, numbers.Real | Decimal) and not isinstance(value, int | bool):  # float, numeric
        return format_number(float(value), unit)
    if isinstance(value, list | dict):
        import json

        return json.dumps(value)[:300]
    return str(value)[:300]


def _series(results: list[tuple[list[str], list[tuple]]]) -> dict[str, list[tuple[datetime, float]]]:
    """Grafana's long-to-wide conversion: a ``metric`` column names the series, every other
    non-time column is a value series."""
    out: dict[str, list[tuple[datetime, float]]] = {}
    for columns, rows in results:
        value_columns = [c for c in columns[1:] if c != "metric"]
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            t = record["time"]
            t = datetime.fromtimestamp(float(t), UTC) if isinstance(t, numbers.Number) else t
            for c in value_columns:
                if record[c] is None:
                    continue
                name = record.get("metric") or c
                if "metric" in record and len(value_columns) > 1:
                    name = f"{record['metric']} {c}"
                out.setdefault(str(name), []).append((t, float(record[c])))
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _plot(panel: Panel, series: dict[str, list[tuple[datetime, float]]],
          regions: list[tuple[datetime, datetime, str]], tr: TimeRange) -> str:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 2.8))
    ax = fig.subplots()
    bands = ci_bands(list(series))
    in_band = {n for pair in bands.values() for n in pair}
    colors: dict[str, Any] = {}
    for name, points in sorted(series.items()):
        if name in in_band:
            continue
        xs, ys = zip(*sorted(points), strict=True)
        if panel.draw == "points":
            (line,) = ax.plot(xs, ys, "o", ms=3, label=name)
        elif panel.draw == "bars":
            line = ax.bar(xs, ys, width=0.0004, label=name, alpha=0.8).patches[0]
        else:
            (line,) = ax.plot(xs, ys, lw=1.2, marker="." if len(xs) < 20 else None, label=name)
        colors[name] = line.get_facecolor() if panel.draw == "bars" else line.get_color()
    for prefix, (low_name, high_name) in sorted(bands.items()):
        low, high = dict(series[low_name]), dict(series[high_name])
        times = sorted(set(low) & set(high))
        color = colors.get(prefix) or next(
            (c for n, c in sorted(colors.items()) if n.startswith(prefix + " ")), "grey")
        ax.fill_between(times, [low[t] for t in times], [high[t] for t in times], color=color,
                        alpha=0.15, lw=0)
        if len(times) == 1:  # a band of one point is a vertical bar
            ax.vlines(times, [low[times[0]]], [high[times[0]]], color=color, alpha=0.4)
    for start, end, _text in regions:
        ax.axvspan(max(start, tr.start), min(end, tr.end), color="red", alpha=0.08, lw=0)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlim(tr.start, tr.end)
    if panel.unit:
        ax.set_ylabel({"percentunit": "share", "reqps": "req/s", "rowsps": "rows/s"}.get(
            panel.unit, panel.unit))
    ax.grid(alpha=0.3)
    if len(series) - len(in_band) <= 12:
        ax.legend(fontsize=7, loc="upper left", framealpha=0.6)
    return _png(fig)


def ci_bands(names: list[str]) -> dict[str, tuple[str, str]]:
    """``{prefix: (low series, high series)}`` for the series pairs ``<prefix> CI low`` and
    ``<prefix> CI high``, which the plots shade as a band around the ``<prefix>`` series (or
    the one series named ``<prefix> <column>``) instead of drawing two more lines.

    >>> ci_bands(["tox kappa", "tox kappa CI low", "tox kappa CI high", "m CI low"])
    {'tox kappa': ('tox kappa CI low', 'tox kappa CI high')}
    """
    return {n.removesuffix(" CI low"): (n, n.removesuffix(" CI low") + " CI high")
            for n in names if n.endswith(" CI low")
            and n.removesuffix(" CI low") + " CI high" in names}


def xy_series(xy: XY, columns: list[str],
              rows: list[tuple]) -> dict[str, list[tuple[float, float]]]:
    """``{series: [(x, y), ...]}`` of an xychart panel's rows, one series per value of its
    ``xy.series`` column; rows without x or y are left out.

    >>> xy = XY("mean_score", "observed", "series", reference="y = x")
    >>> xy_series(xy, ["series", "mean_score", "observed"],
    ...           [("toxicity", 0.1, 0.05), ("toxicity m/a", 0.2, None), ("toxicity", 0.6, 0.7),
    ...            ("y = x", 0.0, 0.0), ("y = x", 1.0, 1.0)])
    {'toxicity': [(0.1, 0.05), (0.6, 0.7)], 'y = x': [(0.0, 0.0), (1.0, 1.0)]}
    """
    out: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        if record[xy.x] is None or record[xy.y] is None:
            continue
        out.setdefault(str(record[xy.series]), []).append((float(record[xy.x]),
                                                           float(record[xy.y])))
    return out


def _xy_plot(xy: XY, series: dict[str, list[tuple[float, float]]]) -> str:
    """Each series as points joined by lines, the ``xy.reference`` one as a dashed grey line
    (as the Grafana panel draws them)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 3.6))
    ax = fig.subplots()
    for name, points in sorted(series.items(), key=lambda s: s[0] != xy.reference):
        xs, ys = zip(*sorted(points), strict=True)
        if name == xy.reference:
            ax.plot(xs, ys, ls="--", color="grey", lw=1, label=name)
        else:
            ax.plot(xs, ys, marker="o", ms=4, lw=1.2, label=name)
    ax.set_xlabel(xy.x.replace("_", " "))
    ax.set_ylabel(xy.y.replace("_", " "))
    ax.grid(alpha=0.3)
    if len(series) <= 12:
        ax.legend(fontsize=7, loc="upper left", framealpha=0.6)
    return _png(fig)


def _pie(labels: list[str], values: list[float]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 2.8))
    ax = fig.subplots()
    ax.pie(values, labels=labels, autopct="%1.0f%%", textprops={"fontsize": 8})
    return _png(fig)


def _figure(panel: Panel, points: int, series: int, image: str | None) -> str:
    body = (f'<img alt="{html.escape(panel.title)}" src="data:image/png;base64,{image}">'
            if image else '<p class="nodata">No data in this time range.</p>')
    return (f'<figure class="plot" data-panel="{html.escape(panel.title)}" data-points="{points}" '
            f'data-series="{series}">{body}</figure>')


def _table(ctx: _Context, columns: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows[:MAX_TABLE_ROWS]:
        cells = []
        for c, v in zip(columns, row, strict=True):
            text = html.escape(_fmt(v))
            if c == "request_id" and v in ctx.drill_ids:
                text = f'<a href="#req-{html.escape(str(v))}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = (f'<p class="more">{len(rows) - MAX_TABLE_ROWS} more rows not shown.</p>'
            if len(rows) > MAX_TABLE_ROWS else "")
    return (f'<table class="data" data-rows="{len(rows)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>{more}')


def _panel(ctx: _Context, d: Dashboard, panel: Panel, values, multi, regions,
           drilldown: bool = False) -> str:
    title = panel.title.replace("$worst_by", str(values.get("worst_by", "")))
    try:
        results = [_query(ctx, q.sql, values, multi, panel.min_interval) for q in panel.queries]
    except psycopg.Error as exc:
        ctx.stats.failed.append(f"{d.title} / {title}: {exc}")
        log.error("panel %s / %s failed: %s", d.title, title, exc)
        return (f'<section class="panel failed"><h4>{html.escape(title)}</h4>'
                f"<pre>{html.escape(str(exc))}</pre></section>")
    rows = sum(len(r) for _c, r in results)
    if rows == 0 and not drilldown:  # a request without, e.g., feedback is no gap
        ctx.stats.empty.append(f"{d.title} / {title}")
    if panel.kind == "timeseries":
        series = _series(results)
        points = sum(len(p) for p in series.values())
        content = _figure(panel, points, len(series),
                          _plot(panel, series, regions, ctx.time_range) if points else None)
        ctx.stats.plots += 1
    elif panel.kind == "piechart":
        columns, data = results[0]
        content = _figure(panel, len(data), 1, _pie([str(r[0]) for r in data],
                                                    [float(r[1]) for r in data]) if data else None)
        ctx.stats.plots += 1
    elif panel.kind == "stat":
        columns, data = results[0]
        cells = "".join(f'<div class="stat"><span class="value">{html.escape(_fmt(v, panel.unit))}</span>'
                        f'<span class="label">{html.escape(c)}</span></div>'
                        for c, v in zip(columns, data[0] if data else [None] * len(columns),
                                        strict=True))
        content, ctx.stats.stats = cells, ctx.stats.stats + 1
    elif panel.kind == "xychart" and panel.xy is not None:
        series = xy_series(panel.xy, *results[0])
        data = {n: p for n, p in series.items() if n != panel.xy.reference}
        if not data and rows and not drilldown:  # only the reference line: no data
            ctx.stats.empty.append(f"{d.title} / {title}")
        points = sum(len(p) for p in data.values())
        content = _figure(panel, points, len(data), _xy_plot(panel.xy, series) if points else None)
        ctx.stats.plots += 1
    else:
        content = "".join(_table(ctx, c, r) for c, r in results)
        ctx.stats.tables += 1
    description = f'<p class="desc">{html.escape(panel.description)}</p>' if panel.description else ""
    return (f'<section class="panel {panel.kind}"><h4>{html.escape(title)}</h4>{description}'
            f"{content}</section>")


def _dashboard(ctx: _Context, d: Dashboard, values=None, anchor: str | None = None) -> str:
    if values is None:
        values, multi = _variables(ctx, d)
    else:
        multi = {v.name: v.multi for v in d.variables}
    regions = []
    for a in d.annotations:
        _c, rows = _query(ctx, a.sql, values, multi)
        regions += [(r[0], r[1], r[2]) for r in rows]
    parts = [f'<section class="dashboard" id="{anchor or d.uid}"><h2>{html.escape(d.title)}</h2>'
             f'<p class="desc">{html.escape(d.description)}</p>']
    for row in d.rows:
        parts.append(f"<h3>{html.escape(row.title)}</h3><div class=\"row\">")
        parts += [_panel(ctx, d, p, values, multi, regions, drilldown=anchor is not None)
                  for p in row.panels]
        parts.append("</div>")
    return "".join(parts) + "</section>"


def _worst_requests(ctx: _Context) -> list[str]:
    quality = next(d for d in DASHBOARDS if d.uid == "parrotwatch-quality")
    panel = next(p for p in quality.panels() if p.title == WORST_PANEL)
    values, multi = _variables(ctx, quality)
    _columns, rows = _query(ctx, panel.queries[0].sql, values, multi, panel.min_interval)
    return [r[1] for r in rows[:DRILLDOWNS]]


CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1500px}
h2{border-bottom:2px solid #444;margin-top:2em}h3{color:#555;margin:1em 0 .3em}
.row{display:flex;flex-wrap:wrap;gap:12px}.panel{border:1px solid #ddd;border-radius:6px;
padding:8px 10px;flex:1 1 460px;max-width:100%;overflow-x:auto}.panel h4{margin:.1em 0 .3em}
.desc{color:#666;font-size:.85em;margin:.2em 0}figure{margin:0}img{max-width:100%}
table.data{border-collapse:collapse;font-size:.8em}table.data td,table.data th{border:1px solid
#ddd;padding:2px 6px;text-align:left;vertical-align:top}table.data th{background:#f3f3f3}
.stat{display:inline-block;margin-right:2em}.stat .value{font-size:2em;display:block}
.stat .label{color:#666;font-size:.8em}.failed pre{color:#b00;white-space:pre-wrap}
.nodata{color:#999}nav a{margin-right:1em}"""


def build_report(conn: psycopg.Connection, time_range: TimeRange, *,
                 say: Callable[[str], None] = log.info) -> tuple[str, ReportStats]:
    """The HTML page and what it holds. ``conn`` must be autocommit."""
    ctx = _Context(conn, time_range, ReportStats())
    ctx.drill_ids = _worst_requests(ctx)
    boards = [d for d in DASHBOARDS if d.uid != DRILLDOWN.uid]
    sections = []
    for i, d in enumerate(boards, 1):
        started = time.monotonic()
        sections.append(_dashboard(ctx, d))
        say(f"[{i}/{len(boards)}] {d.title}: {len(d.panels())} panels, "
            f"{time.monotonic() - started:.1f} s")
    for rid in ctx.drill_ids:
        sections.append(_dashboard(ctx, DRILLDOWN, {"request_id": rid}, anchor=f"req-{rid}")
                        .replace(html.escape(DRILLDOWN.title),
                                 f"{html.escape(DRILLDOWN.title)}: {html.escape(rid)}", 1))
    tr = time_range
    nav = "".join(f'<a href="#{d.uid}">{html.escape(d.title.split(" / ")[-1])}</a>' for d in boards)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>Parrotwatch report {tr.start:%Y-%m-%d %H:%M} to {tr.end:%Y-%m-%d %H:%M} UTC</title>
<style>{CSS}</style></head><body>
<h1>Parrotwatch report</h1>
<p>{tr.start:%Y-%m-%d %H:%M:%S} to {tr.end:%Y-%m-%d %H:%M:%S} UTC, all models and apps;
generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC from the Grafana dashboards' own queries.
Alerts are shaded red on the time series.</p>
<nav>{nav}</nav>
{"".join(sections)}
</body></html>
"""
    return page, ctx.stats
