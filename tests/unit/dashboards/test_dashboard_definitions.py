"""Structural checks of the dashboards as data: tables exist in the migrations, ids and uids are
unique, time series return a time column, links point at real dashboards and variables."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from parrotwatch.dashboards import DASHBOARDS, build_all
from parrotwatch.dashboards.memorization import MEMORIZATION, SECTIONS
from parrotwatch.db import migrations

# FROM/JOIN <table>, not extract(epoch FROM <column>) nor a function call (LATERAL f(...))
TABLE_REF = re.compile(r"(?<!epoch )\b(?:FROM|JOIN)\s+([a-z_]+)\b(?!\s*\()", re.IGNORECASE)


def migrated_tables() -> set[str]:
    """Tables and views the migrations create."""
    return {m for _v, sql in migrations()
            for m in re.findall(r"CREATE (?:TABLE|(?:OR REPLACE )?VIEW) (\w+)", sql)}


GRANT = re.compile(r"^GRANT SELECT\s+(?:\(([^)]*)\)\s+)?ON\s+([\w,\s]+?)\s+TO parrotwatch_reader;",
                   re.M)


def reader_column_grants() -> dict[str, set[str] | None]:
    """``{relation: granted columns, or None for the whole relation}`` of the dashboards' reader
    role over every migration (012 creates the role; later ones grant their own tables)."""
    out: dict[str, set[str] | None] = {}
    for _v, sql in migrations():
        for columns, relations in GRANT.findall(sql):
            for t in relations.split(","):
                cols = {c.strip() for c in columns.split(",")} if columns else None
                previous = out.get(t.strip(), set())
                out[t.strip()] = None if cols is None or previous is None else previous | cols
    return out


def reader_grants() -> set[str]:
    """Relations the migrations let the dashboards' reader role SELECT (whole or some columns)."""
    return set(reader_column_grants())


def test_panels_name_exactly_the_tables_they_read_and_those_exist():
    tables = migrated_tables()
    assert {"inference_scores", "window_metrics", "alerts", "drift_windows"} <= tables
    for d in DASHBOARDS:
        for p in d.panels():
            read = {t for q in p.queries for t in TABLE_REF.findall(q.sql)} - {"LATERAL"}
            assert read == set(p.tables), (d.uid, p.title, read)
            assert set(p.tables) <= tables, (d.uid, p.title, set(p.tables) - tables)


def test_uids_ids_and_titles_are_unique_and_the_layout_fits_the_grid():
    models = build_all()
    assert len(models) == len(DASHBOARDS) == 9
    assert len({m["title"] for m in models.values()}) == len(models)
    for m in models.values():
        ids = [p["id"] for p in m["panels"]]
        assert len(ids) == len(set(ids))
        for p in m["panels"]:
            assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
            for t in p.get("targets", []):
                assert t["datasource"] == {"type": "grafana-postgresql-datasource",
                                           "uid": "parrotwatch-pg"}


def test_time_series_queries_return_a_time_column():
    for d in DASHBOARDS:
        for p in d.panels():
            for q in p.queries:
                if q.format == "time_series":
                    assert re.search(r'\$__timeGroupAlias\(|\$__time\(|AS "time"', q.sql), p.title


def test_variables_used_exist_and_segment_dashboards_draw_alerts():
    for d in DASHBOARDS:
        names = {v.name for v in d.variables}
        sqls = [q.sql for p in d.panels() for q in p.queries] + [a.sql for a in d.annotations]
        used = {n for s in sqls for n in re.findall(r"\$\{?([a-z]\w*)", s)}
        assert used <= names, (d.uid, used - names)
        if {"model", "app"} <= names:
            assert [a.name for a in d.annotations] == ["Parrotwatch alerts"]


def test_drilldown_links_point_at_the_drilldown_dashboard_and_its_variable():
    models, links = build_all(), []
    for m in models.values():
        for p in m["panels"]:
            for o in p.get("fieldConfig", {}).get("overrides", []):
                links += [link["url"] for prop in o["properties"] if prop["id"] == "links"
                          for link in prop["value"]]
    assert len(links) >= 3
    for url in links:
        parsed = urlparse(url)
        uid = parsed.path.split("/")[2]
        variables = [v["name"] for v in models[uid]["templating"]["list"]]
        assert parse_qs(parsed.query)["var-request_id"] == ["${__data.fields.request_id}"]
        assert variables == ["request_id"]


def test_memorization_sections_are_data_and_empty_ones_are_left_out():
    assert [p.title for p in SECTIONS["Audit runs"]] == [
        "Recent audit runs", "Membership-inference AUC", "Mean canary exposure", "Extraction rate",
        "Regurgitation rate"]
    assert {t for p in SECTIONS["Audit runs"] for t in p.tables} == {"audit_runs", "audit_metrics"}
    assert [r.title for r in MEMORIZATION.rows] == [t for t, p in SECTIONS.items() if p]


def test_the_reader_role_may_read_what_the_dashboards_read_and_no_payloads():
    read = {t for d in DASHBOARDS for p in d.panels() for t in p.tables}
    read |= {t for d in DASHBOARDS for sql in [a.sql for a in d.annotations]
             + [v.query for v in d.variables if v.kind == "query"]
             for t in TABLE_REF.findall(sql)}
    assert read == reader_grants()
    assert "dead_letters" not in read and "dead_letter_reasons" in read
    assert "review_texts" not in read and "review_skips" not in read


def test_the_grants_parser_reads_whole_and_column_grants():
    grants = reader_column_grants()
    assert grants["inference_scores"] is None and grants["calibration_records"] is None
    assert grants["review_labels"] == {"item_id", "labelled_at"}
    assert "reviewer" not in grants["review_labels"] and "labels" not in grants["review_labels"]
