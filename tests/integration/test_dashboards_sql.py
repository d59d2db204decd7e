"""Every panel target, variable query and annotation of every dashboard runs against the real
PostgreSQL holding real pipeline output (tests/integration/filled_db.py), with Grafana's macros
and variables expanded as Grafana would (dashboards/macros.py) for a time range covering the data,
as Grafana runs them: logged in as the read-only role parrotwatch_reader (migration 012), with the
password `parrotwatch dashboards push` would give it.

Variables are resolved in dashboard order by running their own queries: ``All`` is every value
the variable's query returns; a second pass selects one concrete value. Custom variables are
tried with each of their options; the drill-down's ``request_id`` with requests that have each
kind of drill-down data.
"""

from __future__ import annotations

import dataclasses
import numbers
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from parrotwatch.audits.report import evidence_verdict
from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.calibration import CALIBRATION, RELIABILITY, RELIABILITY_BINS
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query
from parrotwatch.dashboards.macros import auto_interval, render
from parrotwatch.dashboards.memorization import MEMORIZATION
from parrotwatch.dashboards.overview import OVERVIEW
from parrotwatch.db import READER_ROLE, provision_reader, reader_conninfo
from tests.integration.filled_db import FilledDb, filled_database

# the first test pays for the module fixture (a filled database: streams, testbed, audit run)
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]
CASES = [(d, p) for d in DASHBOARDS for p in d.panels()]


@pytest.fixture(scope="module")
def filled(stack, base_settings, tmp_path_factory) -> FilledDb:
    return filled_database(stack, base_settings, tmp_path_factory.mktemp("filled"))


@pytest.fixture(scope="module")
def reader(filled) -> str:
    """Connection string of the filled database for the reader role, given a login."""
    provision_reader(filled.url, "dashboards-sql-test")
    url = reader_conninfo(filled.url, "dashboards-sql-test")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (READER_ROLE,)
    return url


def run(conn: psycopg.Connection, sql: str) -> tuple[list[str], list[tuple]]:
    cur = conn.execute(sql)
    return [c.name for c in cur.description], cur.fetchall()


def variable_selections(conn, d: Dashboard, filled: FilledDb, drill_ids: list[str]):
    """(values, multi, label, is_all) per selection: All, then one concrete value per query
    variable; each custom option; each drill-down request id."""
    tr, multi = filled.time_range, {v.name: v.multi for v in d.variables}

    def resolve(pick_one: bool) -> dict:
        values: dict = {}
        for v in d.variables:
            if v.kind == "query":
                sql = render(v.query, tr, auto_interval(tr), values, multi)
                options = [r[0] for r in run(conn, sql)[1]]
                assert options, f"variable ${v.name} of {d.uid} has no values"
                values[v.name] = options[:1] if pick_one else options
            elif v.kind == "custom":
                values[v.name] = v.default
            else:
                values[v.name] = v.default
        return values

    for pick_one in (False, True):
        base = resolve(pick_one)
        customs = [v for v in d.variables if v.kind == "custom"]
        if customs:
            for v in customs:
                for option in v.options():
                    yield {**base, v.name: option}, multi, f"{v.name}={option}", not pick_one
        elif "request_id" in base:
            for rid in drill_ids:
                yield {**base, "request_id": rid}, multi, f"request_id={rid}", False
        else:
            yield base, multi, "one" if pick_one else "All", not pick_one


@pytest.fixture(scope="module")
def drill_ids(filled) -> list[str]:
    """Requests with each kind of drill-down data, feedback, and an alert citing them."""
    q = [f"SELECT request_id FROM request_drilldown WHERE jsonb_typeof({c}) = 'array' "
         f"AND jsonb_array_length({c}) > 0 ORDER BY request_id LIMIT 1"
         for c in ("unsupported_spans", "surprising_tokens", "nearest_reference", "pii_entities")]
    q += ["SELECT request_id FROM request_drilldown WHERE injection_match IS NOT NULL ORDER BY 1 LIMIT 1",
          "SELECT request_id FROM feedback WHERE correction IS NOT NULL ORDER BY 1 LIMIT 1",
          "SELECT event->'evidence'->'examples'->>0 FROM alerts ORDER BY id LIMIT 1"]
    ids = [filled.sql(sql)[0][0] for sql in q]
    assert all(ids), ids
    return ids


def check_result(panel: Panel, query: Query, columns: list[str], rows: list[tuple]) -> None:
    assert len(columns) == len(set(columns)), f"duplicate columns {columns}"
    assert "?column?" not in columns, f"unnamed column in {columns}"
    for link in panel.links:
        assert link.column in columns
    if panel.xy is not None:  # the XY chart's auto mapping: series, x, y; each series by x
        assert columns == [panel.xy.series, panel.xy.x, panel.xy.y], columns
        assert all(isinstance(r[0], str) and all(isinstance(v, numbers.Number) for v in r[1:])
                   for r in rows), rows[:3]
        names = [name for i, (name, *_xy) in enumerate(rows) if i == 0 or rows[i - 1][0] != name]
        assert len(names) == len(set(names)), f"series must come one after the other: {names}"
        assert names[-1] == panel.xy.reference, "the reference line comes last"
        for name in names:
            xs = [r[1] for r in rows if r[0] == name]
            assert xs == sorted(xs), f"series {name!r} must come ordered by x"
    if panel.kind == "stat":
        assert len(rows) == 1 and all(isinstance(v, numbers.Number) for v in rows[0]), rows
    if query.format == "time_series":
        assert columns[0] == "time", columns
        times = [r[0] for r in rows]
        assert all(isinstance(t, numbers.Number | datetime) for t in times)
        assert times == sorted(times), "time series must come ordered by time"
        for name, value in zip(columns[1:], rows[0][1:], strict=True):
            if name == "metric":
                assert isinstance(value, str)
            else:
                assert value is None or isinstance(value, numbers.Number), (name, value)


@pytest.mark.parametrize(("dashboard", "panel"), CASES,
                         ids=[f"{d.uid.removeprefix('parrotwatch-')}:{p.title}" for d, p in CASES])
def test_panel_queries_return_rows_on_pipeline_output(filled, reader, drill_ids, dashboard, panel):
    tr = filled.time_range
    interval = auto_interval(tr, min_interval=panel.min_interval)
    with psycopg.connect(reader, autocommit=True) as conn:
        for q in panel.queries:
            filled_selections = []
            for values, multi, label, all_ in variable_selections(conn, dashboard, filled,
                                                                  drill_ids):
                columns, rows = run(conn, render(q.sql, tr, interval, values, multi))
                if rows:
                    check_result(panel, q, columns, rows)
                    filled_selections.append(label)
                elif all_:  # every model and app: the pipeline filled this panel
                    pytest.fail(f"{panel.title!r} returned no rows for All ({label}):\n{q.sql}")
            assert filled_selections, f"{panel.title!r} returned no rows for any selection"


@pytest.mark.parametrize("dashboard", [d for d in DASHBOARDS if d.annotations], ids=lambda d: d.uid)
def test_alert_annotations_return_regions(filled, reader, dashboard):
    tr = filled.time_range
    with psycopg.connect(reader, autocommit=True) as conn:
        values, multi, _label, _all = next(variable_selections(conn, dashboard, filled, []))
        for a in dashboard.annotations:
            columns, rows = run(conn, render(a.sql, tr, auto_interval(tr), values, multi))
            assert columns == ["time", "timeend", "text", "tags"] and rows
            assert all(end >= start for start, end, _t, _g in rows)


def test_a_panel_naming_a_missing_column_or_table_fails(filled, reader):
    """The checks above would catch a typo: the same path raises on a bad column or table."""
    latency = next(p for p in OVERVIEW.panels() if p.title == "Latency p50 / p95 / p99")
    traffic = next(p for p in OVERVIEW.panels() if p.title == "Traffic per model and app")
    bad_column = dataclasses.replace(
        latency, queries=(Query(latency.queries[0].sql.replace("latency_ms", "latency_msec")),))
    bad_table = dataclasses.replace(
        traffic, queries=(Query(traffic.queries[0].sql.replace("window_counts", "window_count")),))
    for panel, error in ((bad_column, errors.UndefinedColumn), (bad_table, errors.UndefinedTable)):
        bad = dataclasses.replace(OVERVIEW, rows=())
        with pytest.raises(error):
            test_panel_queries_return_rows_on_pipeline_output(filled, reader, [], bad, panel)


def test_the_reader_cannot_read_what_no_panel_shows(filled, reader):
    """The negative control of running the panels as the reader: the same path is refused the
    raw dead-letter payloads (the pipeline wrote some: the malformed records)."""
    assert filled.sql("SELECT count(*) FROM dead_letters WHERE payload IS NOT NULL")[0][0] > 0
    overview = next(p for p in OVERVIEW.panels() if p.title == "Dead-letter reasons")
    raw = dataclasses.replace(overview, tables=("dead_letters",), queries=(Query(
        overview.queries[0].sql.replace("dead_letter_reasons", "dead_letters")
        .replace("left(reason, 120)", "left(encode(payload, 'escape'), 120)"), "table"),))
    with pytest.raises(errors.InsufficientPrivilege):
        test_panel_queries_return_rows_on_pipeline_output(filled, reader, [], OVERVIEW, raw)


def _calibration_rows(reader: str, filled: FilledDb, panel: Panel, model: list[str] | None = None):
    """``panel``'s rows as the reader, for every model and app or for the models ``model``."""
    tr = filled.time_range
    with psycopg.connect(reader, autocommit=True) as conn:
        values, multi, _label, _all = next(variable_selections(conn, CALIBRATION, filled, []))
        if model is not None:
            values = {**values, "model": model}
        return run(conn, render(panel.queries[0].sql, tr, auto_interval(tr), values, multi))


def test_the_reliability_diagram_is_the_newest_record_of_each_detector_and_segment(filled, reader):
    columns, rows = _calibration_rows(reader, filled, RELIABILITY_BINS)
    shown = {(r[columns.index("detector")], r[columns.index("model")], r[columns.index("app")]):
             r[columns.index("version")] for r in rows}
    newest: dict[tuple, tuple] = {}
    for version, detector, model, app, at, bins in filled.sql(
            "SELECT version, detector, model, app, computed_at, jsonb_array_length(reliability) "
            "FROM calibration_records"):
        key = (detector, model, app)
        if key not in newest or (at, version) > newest[key][:2]:
            newest[key] = (at, version, bins)
    assert shown == {k: v for k, (_at, v, _b) in newest.items()}
    assert {d for d, _m, _a in shown} == {"toxicity", "hallucination", "ood_score"}
    for key, (_at, _version, bins) in newest.items():  # every bin of it, none of older records
        assert sum(1 for r in rows if tuple(r[:3]) == key) == bins
    # the XY chart: the same bins, one series per detector and segment, plus the diagonal
    xy_columns, xy_rows = _calibration_rows(reader, filled, RELIABILITY)
    detector, model, app, x, y = (columns.index(c) for c in (
        "detector", "model", "app", "mean_score", "observed"))
    bins = {(r[detector] if (r[model], r[app]) == ("*", "*")
             else f"{r[detector]} {r[model]}/{r[app]}", r[x], r[y])
            for r in rows if r[x] is not None and r[y] is not None}
    assert xy_columns == ["series", "mean_score", "observed"]
    reference = RELIABILITY.xy.reference
    assert {tuple(r) for r in xy_rows if r[0] != reference} == bins
    assert [tuple(r[1:]) for r in xy_rows if r[0] == reference] == [(0.0, 0.0), (1.0, 1.0)]


def test_calibration_series_keep_the_overall_records_when_one_model_is_selected(filled, reader):
    kappa = next(p for p in CALIBRATION.panels() if p.title.startswith("Cohen's kappa"))
    (model,) = filled.sql("SELECT model FROM calibration_records WHERE model <> '*' "
                          "ORDER BY model LIMIT 1")[0]
    columns, rows = _calibration_rows(reader, filled, kappa, model=[model])
    series = {r[columns.index("metric")] for r in rows}
    assert {"toxicity", "hallucination", "ood_score"} & series  # the '*' records
    others = {m for (m,) in filled.sql("SELECT DISTINCT model FROM calibration_records "
                                       "WHERE model NOT IN ('*', %s)", model)}
    assert others and not any(o in s for s in series for o in others)
    assert any(model in s for s in series)
    for r in rows:  # the CI brackets its kappa
        low, value, high = (r[columns.index(c)] for c in ("kappa CI low", "kappa", "kappa CI high"))
        assert low is None or low - 1e-9 <= value <= high + 1e-9, r


def _verdicts(conn, filled: FilledDb) -> dict[str, dict]:
    panel = next(p for p in MEMORIZATION.panels() if p.title == "What the newest audit run is evidence of")
    tr = filled.time_range
    values, multi, _label, _all = next(variable_selections(conn, MEMORIZATION, filled, []))
    columns, rows = run(conn, render(panel.queries[0].sql, tr, auto_interval(tr), values, multi))
    return {r[0]: dict(zip(columns, r, strict=True)) for r in rows}


def test_the_memorization_verdict_of_the_pipelines_audit_run(filled, reader):
    with psycopg.connect(reader, autocommit=True) as conn:
        shown = _verdicts(conn, filled)["filled-db"]
    aucs = {labels["method"]: (v, lo) for labels, v, lo in filled.sql(
        "SELECT labels, value, ci_low FROM audit_metrics WHERE run_id = %s AND audit = 'membership' "
        "AND metric = 'auc'", shown["run"])}
    best = max(aucs, key=lambda k: aucs[k][0])
    assert (shown["best attack"], shown["best AUC"], shown["best AUC CI low"]) == (best, *aucs[best])
    (blind,) = filled.sql("SELECT value FROM audit_metrics WHERE run_id = %s AND metric = 'blind_auc'",
                          shown["run"])[0]
    assert shown["blind AUC"] == blind and shown["verdict"].startswith(("evidence", "no evidence"))


# (spec, {metric: (value, ci_low, labels)}) -> the verdict the report would give (docs/audits.md)
VERDICT_CASES = {
    "shifted": ({"auc": (0.9, 0.85, {"method": "loss"}), "blind_auc": (0.88, 0.8, {"method": "blind"}),
                 "blind_guard": (1, None, {"shift": "true", "best_method": "loss"})},
                "no evidence: members and non-members differ in distribution (blind baseline)"),
    "weak": ({"auc": (0.53, 0.47, {"method": "loss"}), "blind_auc": (0.5, 0.45, {"method": "blind"}),
              "blind_guard": (1, None, {"shift": "false", "best_method": "loss"})},
             "no evidence: the attacks do not beat a classifier that never sees the model"),
    "memorised": ({"auc": (0.8, 0.72, {"method": "loss"}), "blind_auc": (0.51, 0.44, {"method": "blind"}),
                   "blind_guard": (0, None, {"shift": "false", "best_method": "loss"})},
                  "evidence of memorization"),
    "set-level": ({"auc": (0.56, 0.49, {"method": "loss"}), "blind_auc": (0.5, 0.44, {"method": "blind"}),
                   "blind_guard": (0, None, {"shift": "false", "best_method": "loss"}),
                   "dataset_inference_rejects": (1, None, {"alpha": "0.05"})},
                  "evidence of memorization"),
    "unguarded": ({"auc": (0.8, 0.72, {"method": "loss"})},
                  "evidence of memorization (blind baseline not run)"),
    "clean": ({"auc": (0.55, 0.48, {"method": "loss"}), "blind_auc": (0.5, 0.44, {"method": "blind"}),
               "blind_guard": (0, None, {"shift": "false", "best_method": "loss"})},
              "no evidence of memorization"),
}


def test_the_memorization_verdict_follows_the_reports_rules(filled):
    """Synthetic runs in a transaction that is rolled back (the filled database is shared)."""
    with psycopg.connect(filled.url) as conn:
        try:
            for spec, (metrics, _verdict) in VERDICT_CASES.items():
                (run_id,) = conn.execute(  # finished inside the range the panels are read over
                    "INSERT INTO audit_runs (spec_name, spec_hash, spec, trigger, status, finished_at) "
                    "VALUES (%s, 'x', '{}', 'manual', 'succeeded', %s) RETURNING id",
                    (spec, filled.time_range.end - timedelta(minutes=1))).fetchone()
                for metric, (value, low, labels) in metrics.items():
                    conn.execute("INSERT INTO audit_metrics (run_id, audit, metric, value, ci_low, labels) "
                                 "VALUES (%s, 'membership', %s, %s, %s, %s)",
                                 (run_id, metric, value, low, Jsonb(labels)))
            shown = _verdicts(conn, filled)
        finally:
            conn.rollback()
    assert {spec: shown[spec]["verdict"] for spec in VERDICT_CASES} == {
        spec: verdict for spec, (_m, verdict) in VERDICT_CASES.items()}
    # the HTML report states the same rules in Python (report.evidence_verdict): one verdict per run
    for spec, (metrics, verdict) in VERDICT_CASES.items():
        guard = metrics.get("blind_guard")
        said = evidence_verdict(metrics["auc"][1],
                                None if guard is None else (guard[0] == 1, guard[2]["shift"] == "true"),
                                "dataset_inference_rejects" in metrics)
        assert said == verdict, spec
