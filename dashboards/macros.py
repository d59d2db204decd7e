"""Grafana's PostgreSQL macros and template variables, expanded the way Grafana 11 does.

Grafana sends a panel's SQL through three steps; :func:`render` does the same, so that tests and
``parrotwatch report`` run exactly the SQL Grafana would run:

1. template variables (frontend, ``SqlDatasource.interpolateVariable``): a multi-value or
   include-All variable becomes a list of quoted literals (``'a','b'``; All = every option);
   a single-value variable is inserted raw with ``'`` doubled;
2. global variables (backend ``sqleng.Interpolate``): ``$__interval_ms``, ``$__interval``,
   ``$__unixEpochFrom()``, ``$__unixEpochTo()``;
3. macros (backend ``postgresMacroEngine``, pattern ``\\$(\\w+)\\(([^)]*)\\)``): ``$__time``,
   ``$__timeEpoch``, ``$__timeFilter``, ``$__timeFrom``, ``$__timeTo``, ``$__timeGroup``,
   ``$__timeGroupAlias``, ``$__unixEpochFilter``, ``$__unixEpochGroup``,
   ``$__unixEpochGroupAlias``. Anything else is an error, as in Grafana ("unknown macro").

A ``$`` left over after the three steps is an error too (an unknown variable or macro).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
# Grafana's interval rounding (``roundInterval``): a computed interval snaps to one of these.
_NICE_SECONDS = (1, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800,
                 21600, 43200, 86400, 604800)


class MacroError(ValueError):
    """An unknown or malformed macro or variable: Grafana would refuse the query too."""


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty time range {self.start} .. {self.end}")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def parse_interval(text: str) -> timedelta:
    """``gtime.ParseInterval`` for the units a dashboard uses: ``500ms``, ``30s``, ``1m``, ``2h``..."""
    m = _INTERVAL.match(text.strip().strip("'"))
    if not m:
        raise MacroError(f"error parsing interval {text!r}: expected e.g. 30s, 1m, 1h, 1d")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def format_interval(interval: timedelta) -> str:
    """``gtime.FormatInterval``: the largest whole unit (``1m``, ``30s``, ``2h``, ``500ms``)."""
    ms = round(interval.total_seconds() * 1000)
    for unit, size in (("w", 604800_000), ("d", 86400_000), ("h", 3600_000), ("m", 60_000),
                       ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def auto_interval(time_range: TimeRange, max_points: int = 300,
                  min_interval: str | None = "1m") -> timedelta:
    """``$__interval`` for a panel: range / points, snapped up to a round value, at least the
    panel's min interval (Grafana divides by the panel's width in pixels)."""
    raw = time_range.seconds / max_points
    nice = next((s for s in _NICE_SECONDS if s >= raw), math.ceil(raw / 86400) * 86400)
    floor = parse_interval(min_interval).total_seconds() if min_interval else 0
    return timedelta(seconds=max(nice, floor))


def _rfc3339(t: datetime) -> str:
    """Go's RFC3339Nano in UTC: no trailing zeros in the fraction, ``Z`` suffix."""
    text = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.astimezone(UTC).microsecond:06d}".rstrip("0")
    return text + "Z"


def _seconds(td: timedelta) -> str:
    s = td.total_seconds()
    return str(int(s)) if s == int(s) else repr(s)


def _macro(name: str, args: list[str], tr: TimeRange) -> str:
    def column() -> str:
        if not args or not args[0]:
            raise MacroError(f"missing time column argument for macro {name}")
        return args[0]

    if name == "__time":
        return f'{column()} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {column()}) as "time"'
    if name == "__timeFilter":
        return f"{column()} BETWEEN '{_rfc3339(tr.start)}' AND '{_rfc3339(tr.end)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339(tr.start)}'"
    if name == "__timeTo":
        return f"'{_rfc3339(tr.end)}'"
    if name in ("__timeGroup", "__timeGroupAlias", "__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        if len(args) == 3:
            raise MacroError(f"{name}: fill values are not supported by this expander")
        step = _seconds(parse_interval(args[1]))
        group = (f"floor(extract(epoch from {args[0]})/{step})*{step}" if "Epoch" not in name
                 else f"floor(({args[0]})/{step})*{step}")
        return group + (' AS "time"' if name.endswith("Alias") else "")
    if name == "__unixEpochFilter":
        col = column()
        return (f"{col} >= {int(tr.start.timestamp())} AND {col} <= {int(tr.end.timestamp())}")
    raise MacroError(f"unknown macro {name!r}")


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def interpolate_variables(sql: str, values: Mapping[str, str | list[str]],
                          multi: Mapping[str, bool]) -> str:
    """Step 1: ``$name`` / ``${name}`` from ``values``; ``multi[name]`` selects quoting."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name.startswith("__"):
            return m.group(0)  # a global variable or macro: later steps
        if name not in values:
            raise MacroError(f"unknown variable ${name}; known: {sorted(values)}")
        value = values[name]
        if isinstance(value, list):
            if not value:
                raise MacroError(f"variable ${name} has no value (no options?)")
            return ",".join(quote_literal(v) for v in value)
        return quote_literal(value) if multi.get(name) else value.replace("'", "''")

    return VARIABLE.sub(sub, sql)


def render(sql: str, time_range: TimeRange, interval: timedelta,
           values: Mapping[str, str | list[str]] | None = None,
           multi: Mapping[str, bool] | None = None) -> str:
    """The SQL Grafana would send to PostgreSQL for this range, interval and variables."""
    sql = interpolate_variables(sql, values or {}, multi or {})
    sql = (sql.replace("$__interval_ms", str(round(interval.total_seconds() * 1000)))
              .replace("$__interval", format_interval(interval))
              .replace("$__unixEpochFrom()", str(int(time_range.start.timestamp())))
              .replace("$__unixEpochTo()", str(int(time_range.end.timestamp()))))
    sql = MACRO.sub(lambda m: _macro(m.group(1), [a.strip() for a in m.group(2).split(",")],
                                     time_range), sql)
    left = re.search(r"\$\{?\w+", sql)
    if left:
        raise MacroError(f"unexpanded {left.group(0)!r} in query (unknown macro or variable)")
    return sql
