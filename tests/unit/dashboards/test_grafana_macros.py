"""The macro expander against Grafana's own expansions (golden values from the PostgreSQL
datasource's macro engine and the SQL datasource's variable interpolation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.macros import (
    MacroError,
    TimeRange,
    auto_interval,
    format_interval,
    parse_interval,
    render,
)

TR = TimeRange(datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC), datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC))
MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(("sql", "expected"), [
    ("$__time(t)", 't AS "time"'),
    ("$__timeEpoch(t)", 'extract(epoch from t) as "time"'),
    ("$__timeFilter(t)", "t BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
    ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
    ("$__timeTo()", "'2017-04-21T05:06:17Z'"),
    ("$__timeGroup(t, '5m')", "floor(extract(epoch from t)/300)*300"),
    ("$__timeGroupAlias(t, $__interval)", 'floor(extract(epoch from t)/60)*60 AS "time"'),
    ("$__unixEpochFilter(e)", "e >= 1492750877 AND e <= 1492751177"),
    ("$__unixEpochGroupAlias(e, 1h)", 'floor((e)/3600)*3600 AS "time"'),
    ("$__unixEpochFrom() $__unixEpochTo()", "1492750877 1492751177"),
    ("x / $__interval_ms", "x / 60000"),
])
def test_macros_expand_as_grafana_does(sql, expected):
    assert render(sql, TR, MINUTE) == expected


def test_fractional_seconds_follow_rfc3339nano():
    tr = TimeRange(datetime(2025, 1, 1, 0, 0, 0, 250000, tzinfo=UTC), datetime(2025, 1, 1, 1, tzinfo=UTC))
    assert render("$__timeFrom()", tr, MINUTE) == "'2025-01-01T00:00:00.25Z'"


@pytest.mark.parametrize("sql", ["$__timeFilterz(t)", "$__rate(x)", "$__timeGroup(t)", "$__time()",
                                 "$__timeGroup(t, 'fast')", "$__timeGroup(t, 1m, 0)",
                                 "SELECT $__unknown", "$model"])
def test_unknown_or_malformed_macros_and_variables_fail(sql):
    with pytest.raises(MacroError):
        render(sql, TR, MINUTE)


def test_variables_follow_the_sql_datasource_quoting():
    multi = {"model": True, "worst_by": False}
    values = {"model": ["gpt-4o", "o'brien"], "worst_by": "toxicity", "rid": "a'b"}
    assert render("m IN ($model) ORDER BY s.${worst_by}", TR, MINUTE, values, multi) == \
        "m IN ('gpt-4o','o''brien') ORDER BY s.toxicity"
    assert render("m IN ($model)", TR, MINUTE, {"model": "x"}, {"model": True}) == "m IN ('x')"
    assert render("id = '$rid'", TR, MINUTE, values, multi) == "id = 'a''b'"
    with pytest.raises(MacroError, match="no value"):
        render("m IN ($model)", TR, MINUTE, {"model": []}, multi)


def test_intervals():
    assert [format_interval(timedelta(seconds=s)) for s in (0.5, 30, 60, 90, 7200, 86400)] == \
        ["500ms", "30s", "1m", "90s", "2h", "1d"]
    assert parse_interval("'5m'") == timedelta(minutes=5) and parse_interval("100ms").total_seconds() == 0.1
    day = TimeRange(TR.start, TR.start + timedelta(days=1))
    assert auto_interval(day) == timedelta(minutes=5)  # 86400 s / 300 points = 288 s -> 5m
    assert auto_interval(TR) == MINUTE  # a panel's min interval wins
    assert auto_interval(TR, min_interval=None) == timedelta(seconds=1)


def test_every_macro_the_dashboards_use_is_expanded():
    used = set()
    for d in DASHBOARDS:
        sqls = [q.sql for p in d.panels() for q in p.queries]
        sqls += [v.query for v in d.variables if v.kind == "query"] + [a.sql for a in d.annotations]
        for sql in sqls:
            used |= set(re.findall(r"\$(__\w+)", sql))
            values = {v.name: ["x"] if v.multi else v.default or "x" for v in d.variables}
            out = render(sql, TR, MINUTE, values, {v.name: v.multi for v in d.variables})
            assert "$" not in out
    assert {"__timeFilter", "__timeGroupAlias", "__interval", "__interval_ms", "__time",
            "__timeFrom", "__timeTo"} <= used
