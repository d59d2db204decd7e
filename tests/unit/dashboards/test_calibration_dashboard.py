"""The Calibration dashboard as data: it has a panel for each view issue 14 asks for, its record
panels keep the overall ('*') records whatever the segment selection, its review panels name
only the review columns migration 014 grants the reader role, and the x-y plot the report draws
names columns its query returns. tests/integration/test_dashboards_sql.py runs its SQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.calibration import (
    CALIBRATION,
    DIAGONAL,
    RECORD_SEGMENT,
    RELIABILITY,
    RELIABILITY_BINS,
)
from parrotwatch.dashboards.grafana import dashboard
from parrotwatch.dashboards.macros import TimeRange, render
from parrotwatch.db import migrations
from tests.unit.dashboards.test_dashboard_definitions import reader_column_grants

# view -> (table, columns its panel must show)
VIEWS = {
    "kappa with its CI": ("calibration_records", {"kappa", "kappa_low", "kappa_high"}),
    "alpha between reviewers": ("calibration_records", {"alpha"}),
    "AUC": ("calibration_records", {"auc"}),
    "corrected vs raw rate with its CI": ("calibration_records", {
        "raw_rate", "corrected_rate", "corrected_low", "corrected_high"}),
    "reliability diagram": ("calibration_records", {"reliability", "mean_score", "observed"}),
    "precision and recall at the threshold": ("calibration_records", {"precision_at", "recall_at"}),
    "suggested vs current threshold": ("calibration_records", {"suggested_threshold", "threshold"}),
    "review progress": ("review_labels", {"labelled_at", "created_at"}),
    "applied thresholds": ("calibration_applied", {"applied_by", "version", "applied_at"}),
    "ROUGE-L of corrections": ("correction_scores", {"rouge_l_f"}),
    "BLEU of corrections": ("correction_scores", {"bleu"}),
}
REVIEW_TABLES = ("review_items", "review_labels")


def review_columns() -> dict[str, set[str]]:
    """Every column of the review tables, from migration 014's CREATE TABLE."""
    (sql,) = [sql for v, sql in migrations() if v.startswith("014_")]
    out = {}
    for table in REVIEW_TABLES:
        body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.S).group(1)
        out[table] = {m for m in re.findall(r"^\s{4}(\w+)\s", body, re.M)
                      if m not in ("PRIMARY", "UNIQUE", "CHECK")}
    return out


def ungranted_columns(sql: str) -> set[str]:
    """Columns of review_items/review_labels that the reader may not read and ``sql`` names as
    identifiers (outside quoted names and string literals)."""
    grants, code = reader_column_grants(), re.sub(r'"[^"]*"|\'[^\']*\'', " ", sql)
    words = set(re.findall(r"\b[a-z_]+\b", code))
    return {c for t in REVIEW_TABLES if t in words
            for c in review_columns()[t] - (grants[t] or set()) if c in words}


def test_the_calibration_dashboard_is_registered_once():
    assert [d.uid for d in DASHBOARDS].count(CALIBRATION.uid) == 1
    assert {v.name for v in CALIBRATION.variables} == {"model", "app"}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_each_view_of_the_issue_has_a_panel(view):
    table, columns = VIEWS[view]
    panels = [p for p in CALIBRATION.panels() if table in p.tables
              and all(re.search(rf"\b{c}\b", " ".join(q.sql for q in p.queries)) for c in columns)]
    assert panels, f"no panel reads {sorted(columns)} from {table} ({view})"


def test_record_panels_keep_the_overall_records_for_any_segment():
    record_panels = [p for p in CALIBRATION.panels() if p.tables == ("calibration_records",)]
    assert len(record_panels) >= 8
    for p in record_panels:
        assert RECORD_SEGMENT in p.queries[0].sql, p.title
    tr = TimeRange(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))
    sql = render(RECORD_SEGMENT, tr, timedelta(minutes=1), {"model": ["m"], "app": ["a", "b"]},
                 {"model": True, "app": True})
    assert sql == "(model = '*' OR model IN ('m')) AND (app = '*' OR app IN ('a','b'))"


def test_review_panels_name_only_the_columns_the_reader_is_granted():
    review = [p for p in CALIBRATION.panels() if set(p.tables) & set(REVIEW_TABLES)]
    assert len(review) >= 2
    for p in review:
        for q in p.queries:
            assert ungranted_columns(q.sql) == set(), p.title
    # the check sees a forbidden column, and not one that is only a quoted output name
    assert ungranted_columns("SELECT l.reviewer FROM review_labels l") == {"reviewer"}
    assert ungranted_columns("SELECT i.scores FROM review_items i") == {"scores"}
    assert ungranted_columns('SELECT count(*) AS "labels" FROM review_labels') == set()


def test_the_reliability_diagram_is_an_xy_chart_of_the_columns_its_query_returns():
    assert RELIABILITY.kind == "xychart" and RELIABILITY_BINS.kind == "table"
    assert {RELIABILITY, RELIABILITY_BINS} <= set(CALIBRATION.panels())
    xy, sql = RELIABILITY.xy, RELIABILITY.queries[0].sql
    # auto mapping: exactly the series column, then x, then y, each series ordered by x
    outer = re.match(r"\s*SELECT (.*?) FROM", sql).group(1)
    assert [c.strip() for c in outer.split(",")] == [xy.series, xy.x, xy.y]
    assert sql.rstrip().endswith(f"ORDER BY reference, {xy.series}, {xy.x}")
    assert xy.reference == DIAGONAL and f"'{DIAGONAL}', d.p, d.p" in sql  # the y = x line
    (model,) = [p for p in dashboard(CALIBRATION)["panels"] if p["title"] == RELIABILITY.title]
    assert model["type"] == "xychart" and model["options"]["mapping"] == "auto"
    assert model["transformations"][0]["options"]["fields"] == [xy.series]
    assert model["pluginVersion"]  # without it Grafana migrates the options to an empty chart
    (reference,) = model["fieldConfig"]["overrides"]
    assert re.search(reference["matcher"]["options"].strip("/"), f"{xy.y} {DIAGONAL}")
    assert not re.search(reference["matcher"]["options"].strip("/"), f"{xy.y} toxicity")
