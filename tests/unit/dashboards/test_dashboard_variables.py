"""Dashboard variables cannot change the shape of the SQL Grafana sends.

Grafana's SQL datasource quotes each value of a multi-value or include-All variable, and inserts a
single-value variable raw with ``'`` doubled (dashboards/macros.py). So a single-value variable is
safe only inside a string literal (``'$name'``), and the reader role keeps
standard_conforming_strings on so that a backslash cannot escape the doubled quote. These tests
check every query of every dashboard: each use of a single-value variable is quoted, every
custom variable's options are an allow-list of score columns, and rendering a crafted value
leaves the SQL outside string literals exactly as with a plain value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.common import allow_listed
from parrotwatch.dashboards.grafana import Dashboard
from parrotwatch.dashboards.macros import TimeRange, render
from parrotwatch.dashboards.quality import QUALITY, WORST_BY, WORST_BY_SCORES
from parrotwatch.detectors.metrics import SCORE_NAMES

TR = TimeRange(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, 6, tzinfo=UTC))
USE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
CRAFTED = ["toxicity; DROP TABLE x --", "x' OR '1'='1", "\\'; DROP TABLE x; --",
           "toxicity, (SELECT pg_sleep(5))", "$$; DROP TABLE x; $$", "a'/*", "*/ --\n'",
           "toxicity\x00", "' UNION SELECT payload FROM dead_letters --"]


def queries(d: Dashboard) -> list[str]:
    """Every SQL text of a dashboard: panel targets, annotations, variable queries."""
    return ([q.sql for p in d.panels() for q in p.queries] + [a.sql for a in d.annotations]
            + [v.query for v in d.variables if v.kind == "query"])


def uses(sql: str) -> list[tuple[str, bool]]:
    """``(variable, quoted)`` for each ``$name`` / ``${name}`` that is not a global (``$__``)."""
    out = []
    for m in USE.finditer(sql):
        name = m.group(1) or m.group(2)
        if not name.startswith("__"):
            quoted = sql[m.start() - 1:m.start()] == "'" and sql[m.end():m.end() + 1] == "'"
            out.append((name, quoted))
    return out


def shape(sql: str) -> str:
    """``sql`` with every standard string literal replaced by ``'?'``: what PostgreSQL parses as
    code. Raises on an unterminated literal."""
    out, i = [], 0
    while i < len(sql):
        if sql[i] != "'":
            out.append(sql[i])
            i += 1
            continue
        j = i + 1
        while True:
            k = sql.find("'", j)
            assert k != -1, f"unterminated string literal in {sql[i:i + 80]!r}"
            if sql[k + 1:k + 2] == "'":
                j = k + 2
                continue
            break
        out.append("'?'")
        i = k + 1
    return "".join(out)


def test_custom_variables_are_allow_lists_of_score_columns():
    customs = [(d.uid, v) for d in DASHBOARDS for v in d.variables if v.kind == "custom"]
    assert customs == [(QUALITY.uid, WORST_BY)]
    assert WORST_BY.options() == list(WORST_BY_SCORES)
    assert set(WORST_BY_SCORES) <= set(SCORE_NAMES)
    assert len(WORST_BY_SCORES) == 8 and WORST_BY.default == "toxicity"


def test_single_value_variables_are_used_only_inside_string_literals():
    checked = set()
    for d in DASHBOARDS:
        multi = {v.name: v.multi for v in d.variables}
        for sql in queries(d):
            assert not re.search(r"[eE]'\$", sql), "no escape-string literal around a variable"
            for name, quoted in uses(sql):
                if not multi[name]:  # Grafana quotes multi-value ones itself
                    assert quoted, f"{d.uid}: ${name} unquoted in:\n{sql}"
                    checked.add(name)
    assert checked == {"worst_by", "request_id", "alert_id"}


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_crafted_values_leave_the_sql_outside_literals_unchanged(dashboard):
    multi = {v.name: v.multi for v in dashboard.variables}
    plain = {v.name: ["a", "b"] if v.multi else (v.default or "plain") for v in dashboard.variables}
    for sql in queries(dashboard):
        expected = shape(render(sql, TR, timedelta(minutes=1), plain, multi))
        for name in multi:
            for value in CRAFTED:
                crafted = [value, "b"] if multi[name] else value
                got = render(sql, TR, timedelta(minutes=1), {**plain, name: crafted}, multi)
                assert shape(got) == expected, (name, value, got)


def test_the_shape_check_would_catch_a_raw_identifier():
    """Negative control: the old ``s.$worst_by`` breaks out of the SQL with a crafted value."""
    raw = "SELECT s.$worst_by FROM inference_scores s ORDER BY s.$worst_by DESC"
    plain = shape(render(raw, TR, timedelta(minutes=1), {"worst_by": "toxicity"}, {}))
    crafted = render(raw, TR, timedelta(minutes=1), {"worst_by": CRAFTED[0]}, {})
    assert shape(crafted) != plain and "DROP TABLE x" in shape(crafted)


def test_allow_listed_refuses_names_that_are_not_identifiers():
    assert allow_listed("v", ("a", "b_2"), "s") == "CASE '$v' WHEN 'a' THEN s.a WHEN 'b_2' THEN s.b_2 END"
    for names in (("a; DROP",), ("A",), ()):
        with pytest.raises(ValueError):
            allow_listed("v", names, "s")
