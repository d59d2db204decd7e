"""Pieces shared by the dashboards: the model/app variables, the alert annotation, the link to
the drill-down, and the panel shapes that repeat over window aggregates."""

from __future__ import annotations

import re

from parrotwatch.dashboards.grafana import Annotation, Link, Panel, Query, Variable
from parrotwatch.detectors.metrics import Metric

SEGMENT = "model IN ($model) AND app IN ($app)"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
DRILLDOWN_UID = "parrotwatch-drilldown"
DRILLDOWN_URL = (f"/d/{DRILLDOWN_UID}/parrotwatch-request-drill-down"
                 "?var-request_id=${__data.fields.request_id}&${__url_time_range}")
DRILLDOWN_LINK = Link("request_id", "Drill down into this request", DRILLDOWN_URL)

MODEL = Variable("model", "Model", "query", description="Models seen in the time range.", query="""
SELECT DISTINCT model FROM window_counts
WHERE $__timeFilter(window_start) AND model NOT IN ('*', 'unknown') ORDER BY 1""")
APP = Variable("app", "App", "query", description="Apps of the selected models in the time range.",
               query="""
SELECT DISTINCT app FROM window_counts
WHERE $__timeFilter(window_start) AND model IN ($model) AND app NOT IN ('*', 'unknown') ORDER BY 1""")
SEGMENT_VARIABLES = (MODEL, APP)

# One row per incident (alert_id, starts_at), its latest transition; drawn as a region from
# starts_at to ends_at (or now while firing) on every time series of the dashboard.
ALERTS_ANNOTATION = Annotation("Parrotwatch alerts", """
SELECT a.starts_at AS "time", coalesce(a.ends_at, now()) AS timeend,
       '[' || a.severity || '] ' || a.rule || ' on ' || coalesce(a.model, '*') || '/'
         || coalesce(a.app, '*') || ': ' || a.summary AS text,
       concat_ws(',', a.rule, a.severity, a.status) AS tags
FROM (SELECT DISTINCT ON (alert_id, starts_at) * FROM alerts
      WHERE starts_at <= $__timeTo() ORDER BY alert_id, starts_at, id DESC) a
WHERE coalesce(a.ends_at, now()) >= $__timeFrom()
  AND (a.model IS NULL OR a.model IN ($model)) AND (a.app IS NULL OR a.app IN ($app))
ORDER BY 1""")


def window_metric(title: str, metric: str, description: str, unit: str | None = None,
                  stat: str = "mean", by: str = "model", width: int = 12) -> Panel:
    """A score's per-window aggregate over time, one series per ``by`` (model or segment).

    ``stat``: ``mean`` (n-weighted over windows and segments) or ``flagged`` (share of requests
    over the score's flag threshold, parrotwatch.detectors.metrics)."""
    value = {"mean": "sum(sum) / nullif(sum(n), 0)",
             "flagged": "sum(flagged)::float8 / nullif(sum(n), 0)"}[stat]
    series = {"model": "model", "segment": "model || ' / ' || app"}[by]
    sql = f"""
SELECT $__timeGroupAlias(window_start, $__interval), {series} AS metric, {value} AS "{stat}"
FROM window_metrics
WHERE metric = '{metric}' AND $__timeFilter(window_start) AND {SEGMENT}
GROUP BY 1, 2 ORDER BY 1, 2"""
    return Panel(title, "timeseries", (Query(sql),), ("window_metrics",), description, unit=unit,
                 width=width, max_value=1.0 if stat == "flagged" else None)


def grafana_unit(m: Metric) -> str | None:
    """The panel unit of a score: its registered unit, or none set for ``"none"`` (Grafana
    formats a field without a unit as ``none``)."""
    return None if m.unit == "none" else m.unit


def score_panel(m: Metric, width: int = 12) -> Panel:
    """The n-weighted mean of a registered score over time, per model: title, description and
    unit from the metric registry."""
    return window_metric(m.title, m.name, m.definition, unit=grafana_unit(m), width=width)


def allow_listed(variable: str, names: tuple[str, ...], table: str) -> str:
    """SQL picking ``table.<name>`` for the value of ``$variable`` when it is one of ``names``,
    else NULL. The value only ever appears inside a string literal (Grafana doubles its quotes;
    the reader role keeps standard_conforming_strings on)."""
    bad = [n for n in (table, *names) if not _IDENTIFIER.fullmatch(n)]
    if bad or not names:
        raise ValueError(f"not plain SQL identifiers: {bad or 'no names'}")
    whens = " ".join(f"WHEN '{n}' THEN {table}.{n}" for n in names)
    return f"CASE '${variable}' {whens} END"
