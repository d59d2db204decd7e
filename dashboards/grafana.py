"""Small builders for Grafana 11.6 dashboard JSON (schemaVersion 41) over a PostgreSQL datasource.

Panels are frozen dataclasses of plain data; :func:`dashboard` lays them out on Grafana's 24-column
grid and emits the JSON that Grafana itself exports. Every query is raw SQL for Grafana's
PostgreSQL datasource (plugin id ``grafana-postgresql-datasource``), with its macros
(``$__timeFilter``, ``$__timeGroupAlias``, ...) expanded by Grafana, or by
:mod:`parrotwatch.dashboards.macros` for tests and the HTML report.

Why not grafana-foundation-sdk: its newest typed flavour (``1769699379!11.6.0``) has no
PostgreSQL/SQL query type, and its ``AnnotationTarget`` serialises only the built-in Grafana
annotation fields (``limit``, ``matchAny``, ``tags``, ``type``), dropping ``rawSql``: the SQL
alert annotations on every dashboard could not be expressed without patching generated code.
These builders are checked against Grafana 11.6's own schema instead (tests/unit/dashboards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

DATASOURCE_UID = "parrotwatch-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"  # Grafana >= 10.3 id of the built-in plugin
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
SCHEMA_VERSION = 41  # Grafana 11.6
GRAFANA_VERSION = "11.6"
GRID_WIDTH = 24

PanelKind = Literal["timeseries", "table", "stat", "piechart", "xychart"]
Format = Literal["time_series", "table"]


@dataclass(frozen=True)
class Query:
    """One raw-SQL target. ``time_series``: a ``time`` column, string columns naming the series,
    numeric columns as values; ``table``: any columns."""

    sql: str
    format: Format = "time_series"

    def to_json(self, ref_id: str) -> dict[str, Any]:
        return {"refId": ref_id, "datasource": dict(DATASOURCE), "editorMode": "code",
                "format": self.format, "rawQuery": True, "rawSql": self.sql.strip()}


@dataclass(frozen=True)
class Link:
    """A data link on one column of a table: ``url`` may use ``${__data.fields.<column>}``."""

    column: str
    title: str
    url: str


@dataclass(frozen=True)
class XY:
    """How an ``xychart`` panel reads its one table query: ``y`` against ``x`` (numeric
    columns), one series per distinct value of the text column ``series``.

    The query returns exactly ``series, x, y`` in that order, ordered by series then x. Grafana's
    "Partition by values" transformation splits the frame into one frame per ``series`` value
    (the column itself dropped), and the XY chart in auto mapping draws, per frame, the second
    numeric field (y) against the first (x): no field matcher to go stale. ``reference``: the
    ``series`` value of rows the query adds as a reference line (e.g. the diagonal y = x), drawn
    dashed and grey.
    """

    x: str
    y: str
    series: str
    reference: str | None = None


@dataclass(frozen=True)
class Panel:
    """A panel: its title, visualisation, SQL targets and display hints.

    ``tables`` names the PostgreSQL tables the queries read (checked against the migrations by
    the tests). ``min_interval`` bounds ``$__interval`` from below (one-minute windows).
    """

    title: str
    kind: PanelKind
    queries: tuple[Query, ...]
    tables: tuple[str, ...]
    description: str = ""
    unit: str | None = None
    width: int = 12
    height: int = 8
    min_interval: str | None = "1m"
    links: tuple[Link, ...] = ()
    decimals: int | None = None
    max_value: float | None = None
    draw: Literal["line", "bars", "points"] = "line"
    xy: XY | None = None  # the columns of an ``xychart`` panel

    def __post_init__(self) -> None:
        if not self.queries:
            raise ValueError(f"panel {self.title!r} has no query")
        if (self.kind == "xychart") != (self.xy is not None):
            raise ValueError(f"panel {self.title!r}: an xychart panel, and only one, needs xy=XY(...)")
        if self.kind == "xychart" and [q.format for q in self.queries] != ["table"]:
            raise ValueError(f"xychart panel {self.title!r} needs exactly one table query")
        if self.kind == "timeseries" and any(q.format != "time_series" for q in self.queries):
            raise ValueError(f"time series panel {self.title!r} needs time_series queries")


@dataclass(frozen=True)
class Variable:
    """A dashboard variable. ``query``: values from SQL (multi-select with All); ``textbox``:
    free text; ``custom``: a fixed comma-separated list of options."""

    name: str
    label: str
    kind: Literal["query", "textbox", "custom"]
    query: str = ""  # SQL for ``query``, comma-separated options for ``custom``
    default: str = ""
    description: str = ""

    @property
    def multi(self) -> bool:
        return self.kind == "query"

    def options(self) -> list[str]:
        if self.kind != "custom":
            raise ValueError(f"variable {self.name!r} has no fixed options")
        return [o.strip() for o in self.query.split(",")]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind, "name": self.name, "label": self.label,
                               "description": self.description, "hide": 0, "skipUrlSync": False}
        if self.kind == "query":
            out |= {"datasource": dict(DATASOURCE), "query": self.query.strip(), "refresh": 2,
                    "multi": True, "includeAll": True, "sort": 1, "regex": "", "options": [],
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}
        elif self.kind == "textbox":
            out |= {"query": self.default, "options": [],
                    "current": {"text": self.default, "value": self.default}}
        else:
            opts = self.options()
            default = self.default or opts[0]
            out |= {"query": self.query, "multi": False, "includeAll": False,
                    "options": [{"text": o, "value": o, "selected": o == default} for o in opts],
                    "current": {"text": default, "value": default}}
        return out


@dataclass(frozen=True)
class Annotation:
    """Events drawn on every time series of the dashboard from SQL (``time``, ``timeend``,
    ``text``, ``tags`` columns)."""

    name: str
    sql: str
    color: str = "red"

    def to_json(self) -> dict[str, Any]:
        # limit/matchAny/tags/type are the schema's required fields of the built-in annotation
        # target (Grafana's UI writes them for every datasource); the rest is the SQL query.
        target = {"limit": 100, "matchAny": False, "tags": [], "type": "dashboard",
                  **Query(self.sql, "table").to_json("Anno")}
        return {"name": self.name, "datasource": dict(DATASOURCE), "enable": True, "hide": False,
                "iconColor": self.color, "target": target}


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    tags: tuple[str, ...] = ("parrotwatch",)
    time_from: str = "now-6h"

    def panels(self) -> list[Panel]:
        return [p for row in self.rows for p in row.panels]

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"dashboard {self.uid} has no variable {name!r}")


_TIMESERIES_CUSTOM = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "auto",
                      "pointSize": 4, "spanNulls": False, "lineInterpolation": "linear",
                      "axisPlacement": "auto", "axisBorderShow": False, "barAlignment": 0,
                      "gradientMode": "none", "stacking": {"group": "A", "mode": "none"},
                      "scaleDistribution": {"type": "linear"}, "thresholdsStyle": {"mode": "off"},
                      "hideFrom": {"legend": False, "tooltip": False, "viz": False}}
# points joined by lines; the axes are probabilities here but stay Grafana's auto range
_XYCHART_CUSTOM = {"show": "points+lines", "pointSize": {"fixed": 6}, "pointShape": "circle",
                   "pointStrokeWidth": 1, "fillOpacity": 50, "lineWidth": 2,
                   "lineStyle": {"fill": "solid"}, "axisPlacement": "auto",
                   "axisBorderShow": False, "scaleDistribution": {"type": "linear"},
                   "hideFrom": {"legend": False, "tooltip": False, "viz": False}}
_REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}
_OPTIONS: dict[str, dict[str, Any]] = {
    "timeseries": {"legend": {"calcs": ["mean", "max"], "displayMode": "table",
                              "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}},
    "table": {"showHeader": True, "cellHeight": "sm", "frameIndex": 0,
              "footer": {"show": False, "reducer": ["sum"], "countRows": False, "fields": []}},
    "stat": {"colorMode": "value", "graphMode": "area", "justifyMode": "auto",
             "orientation": "auto", "percentChangeColorMode": "standard", "reduceOptions": _REDUCE,
             "showPercentChange": False, "textMode": "auto", "wideLayout": True},
    "piechart": {"displayLabels": ["percent"], "pieType": "pie", "orientation": "auto",
                 "legend": {"calcs": [], "displayMode": "table", "placement": "right",
                            "showLegend": True, "values": ["value", "percent"]},
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
                 "tooltip": {"mode": "single", "sort": "none"}},
    # auto mapping, one default series config: per frame, x = the first numeric field and a
    # series for each other one (Grafana 11.6's xychart prepSeries)
    "xychart": {"mapping": "auto", "series": [{}],
                "legend": {"calcs": [], "displayMode": "list", "placement": "bottom",
                           "showLegend": True},
                "tooltip": {"mode": "single", "sort": "none"}},
}


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"},
                                "thresholds": {"mode": "absolute",
                                               "steps": [{"color": "green", "value": None}]}}
    if panel.kind == "timeseries":
        defaults["custom"] = _TIMESERIES_CUSTOM | {"drawStyle": panel.draw}
    elif panel.kind == "table":
        defaults["custom"] = {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}
    elif panel.kind == "xychart":
        defaults["custom"] = _XYCHART_CUSTOM
    for key, value in (("unit", panel.unit), ("decimals", panel.decimals), ("max", panel.max_value)):
        if value is not None:
            defaults[key] = value
    overrides = [{"matcher": {"id": "byName", "options": link.column},
                  "properties": [{"id": "links", "value": [{"title": link.title, "url": link.url}]}]}
                 for link in panel.links]
    if panel.xy is not None and panel.xy.reference:
        overrides.append(_reference_line(panel.xy.reference))
    out: dict[str, Any] = {
        "id": panel_id, "type": panel.kind, "title": panel.title, "description": panel.description,
        "datasource": dict(DATASOURCE),
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [q.to_json(chr(ord("A") + i)) for i, q in enumerate(panel.queries)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": _OPTIONS[panel.kind],
    }
    if panel.min_interval:
        out["interval"] = panel.min_interval
    if panel.xy is not None:
        # Without a pluginVersion Grafana runs the xychart's pre-10.4 option migration, which
        # turns these options into an empty manual mapping.
        out["pluginVersion"] = "11.6.0"
        out["transformations"] = [{"id": "partitionByValues", "options": {
            "fields": [panel.xy.series], "keepFields": False, "naming": {"asLabels": True}}}]
    return out


def _reference_line(series: str) -> dict[str, Any]:
    r"""Override drawing the rows of the ``series`` value ``series`` as a dashed grey line without
    points. After the partition their y field carries the label ``series``, so its display name
    ends with that value; ``byRegexp`` tests display names, a ``/.../`` pattern unanchored.

    >>> _reference_line("y = x (a/b)")["matcher"]["options"]
    '/y = x \\(a\\/b\\)$/'
    """
    pattern = "/" + "".join("\\" + c if c in "\\.^$|?*+()[]{}/" else c for c in series) + "$/"
    return {"matcher": {"id": "byRegexp", "options": pattern},
            "properties": [{"id": "custom.show", "value": "lines"},
                           {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                           {"id": "custom.lineWidth", "value": 1},
                           {"id": "color", "value": {"mode": "fixed", "fixedColor": "gray"}}]}


def dashboard(d: Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model, panels laid out left to right, rows top to bottom."""
    panels: list[dict[str, Any]] = []
    y, next_id = 0, 1
    for row in d.rows:
        panels.append({"type": "row", "id": next_id, "title": row.title, "collapsed": False,
                       "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y}, "panels": []})
        next_id, y = next_id + 1, y + 1
        x, row_height = 0, 0
        for p in row.panels:
            if x + p.width > GRID_WIDTH:
                x, y, row_height = 0, y + row_height, 0
            panels.append(panel_json(p, next_id, x, y))
            next_id, x, row_height = next_id + 1, x + p.width, max(row_height, p.height)
        y += row_height
    builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
               "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
               "name": "Annotations & Alerts", "type": "dashboard"}
    return {
        "uid": d.uid, "title": d.title, "description": d.description, "tags": list(d.tags),
        "timezone": "utc", "editable": True, "graphTooltip": 1, "schemaVersion": SCHEMA_VERSION,
        "time": {"from": d.time_from, "to": "now"}, "refresh": "1m", "fiscalYearStartMonth": 0,
        "liveNow": False, "weekStart": "",
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m", "1h"]},
        "templating": {"list": [v.to_json() for v in d.variables]},
        "annotations": {"list": [builtin, *(a.to_json() for a in d.annotations)]},
        # every Parrotwatch dashboard, as a menu keeping the time range and the variables
        "links": [{"title": "Parrotwatch", "type": "dashboards", "tags": ["parrotwatch"],
                   "icon": "external link", "asDropdown": True, "includeVars": True,
                   "keepTime": True, "targetBlank": False, "tooltip": "", "url": ""}],
        "panels": panels,
    }
