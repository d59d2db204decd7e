"""The metric registry (parrotwatch.detectors.metrics) is the one list of per-request scores.

Each place that holds a score list either derives it from the registry or is checked against it
here: the scoring code (what is actually computed), the migrations (inference_scores' columns, in
order), the sink and Arrow schemas, the llm.scores.v1 message, the flag thresholds, the alert rules'
metric validation, the dashboards, and docs/scores.md's score table. A score missing from any of them,
or one of them naming an unregistered score, fails a test.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.quality import DRILLDOWN, QUALITY, WORST_BY_SCORES
from parrotwatch.db import migrations
from parrotwatch.detectors import metrics
from parrotwatch.detectors.alerting.rules import SCORE_STATS, RulesError, check_metric, load_rules
from parrotwatch.detectors.audits.ngram_index import ExactIndex
from parrotwatch.detectors.flags import FLAGS, Flag
from parrotwatch.detectors.metrics import (
    METRICS,
    MODEL_FREE_SCORE_NAMES,
    MODEL_SCORE_NAMES,
    SCORE_NAMES,
    markdown_table,
)
from parrotwatch.detectors.request import RequestScores
from parrotwatch.scoring import parse_inference, score_events
from parrotwatch.streaming.messages import score_message
from parrotwatch.streaming.records import INFERENCE_SCHEMA, TS
from parrotwatch.streaming.sinks import INFERENCE_TABLE
from parrotwatch.streaming.windows import partials
from parrotwatch.traffic import encode, generate_inference_events

ROOT = Path(__file__).resolve().parents[3]
GRAFANA_UNITS = {"none", "ms", "s", "percentunit", "short", "currencyUSD"}
SEGMENT_COLUMNS = ("request_id", "event_time", "model", "app")


def test_registry_entries_are_complete_and_unique():
    assert len(SCORE_NAMES) == len(set(SCORE_NAMES)) == len(METRICS)
    # every score is one or the other; columns are append-only, so cost_usd (model-free, issue 16)
    # comes after the model-based scores of earlier issues
    assert sorted((*MODEL_FREE_SCORE_NAMES, *MODEL_SCORE_NAMES)) == sorted(SCORE_NAMES)
    uids = {d.uid for d in DASHBOARDS}
    for m in METRICS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", m.name), m.name
        assert m.title and m.definition.endswith("."), m.name
        assert "\n" not in m.definition, f"{m.name}: one line"
        assert m.unit in GRAFANA_UNITS, m.name
        assert m.direction in (metrics.HIGHER_IS_WORSE, metrics.LOWER_IS_WORSE), m.name
        assert m.threshold is None or math.isfinite(m.threshold), m.name
        assert m.panel.dashboard in uids, m.name
        module, _, attr = m.detector.partition(":")
        assert callable(getattr(importlib.import_module(f"parrotwatch.detectors.{module}"), attr))
        assert (ROOT / m.detector_path.partition(":")[0]).is_file(), m.detector_path


def test_scores_are_the_double_precision_columns_of_inference_scores_in_order():
    """Every score is a column (added by a migration), and every float column is a score."""
    columns = []
    for _version, sql in migrations():
        create = re.search(r"CREATE TABLE inference_scores \((.*?)\n\);", sql, re.S)
        if create:
            columns += re.findall(r"^\s+(\w+)\s+double precision", create.group(1), re.M)
        columns += re.findall(r"ALTER TABLE inference_scores ADD COLUMN (\w+) double precision", sql)
        assert not re.search(r"ALTER TABLE inference_scores (DROP|RENAME)", sql)
    assert tuple(columns) == SCORE_NAMES


def _events(n: int = 60) -> list:
    return [parse_inference(encode(e)) for e in generate_inference_events(n, seed=3)]


def test_the_scoring_code_produces_exactly_the_registered_scores():
    events = _events()
    assert [f.name for f in dataclasses.fields(RequestScores)] == list(MODEL_FREE_SCORE_NAMES)
    index = ExactIndex.from_documents([e.response for e in events[:5]], n=8)
    scored = score_events(events, index)
    assert all(tuple(s.scores) == SCORE_NAMES for s in scored)
    produced = {k for s in scored for k, v in s.scores.items() if v is not None}
    # without models, every model-free score is computed for some request, no model-based one
    assert produced == set(MODEL_FREE_SCORE_NAMES)


def _assigned_scores(module: str) -> set[str]:
    """Score names the model-based code writes: ``scores["x"] =``, ``scores.update(x=...)``,
    ``r["x"] = float(...)`` (the drift stage's rows)."""
    source = inspect.getsource(importlib.import_module(module))
    names = set(re.findall(r"scores\[\"(\w+)\"\]\s*=", source))
    names |= {k for args in re.findall(r"scores\.update\(([^)]*)\)", source)
              for k in re.findall(r"(\w+)=", args)}
    names |= set(re.findall(r"\br\[\"(\w+)\"\]\s*=\s*float\(", source))
    return names


def test_the_model_based_code_writes_only_registered_scores_and_all_model_based_ones():
    quality = _assigned_scores("parrotwatch.quality")
    drift = _assigned_scores("parrotwatch.streaming.drift_stage")
    joint = _assigned_scores("parrotwatch.scoring")  # from a model-free and a model-based score together
    assert {"toxicity", "hallucination", "surprisal_mean"} <= quality  # the scan finds them
    assert drift == {"ood_score"} and joint == {"regurgitation", "pii_regurgitated"}
    assert quality | drift | joint <= set(SCORE_NAMES)
    assert set(MODEL_SCORE_NAMES) <= quality | drift | joint


def test_sink_arrow_and_message_columns_are_the_registry_in_order():
    n = len(SCORE_NAMES)
    assert INFERENCE_TABLE.columns[:4 + n] == (*SEGMENT_COLUMNS, *SCORE_NAMES)
    assert not set(INFERENCE_TABLE.columns[4 + n:]) & set(SCORE_NAMES)
    assert INFERENCE_SCHEMA.names[:4 + n] == [*SEGMENT_COLUMNS, *SCORE_NAMES]
    assert all(INFERENCE_SCHEMA.field(name).type == pa.float64() for name in SCORE_NAMES)
    row = pa.table({"request_id": ["r"], "event_time": pa.array([datetime(2026, 1, 1, tzinfo=UTC)], TS),
                    "model": ["m"], "app": ["a"],
                    **{k: pa.array([1.0], pa.float64()) for k in SCORE_NAMES}}).to_pylist()[0]
    assert list(orjson.loads(score_message(row)))[4:] == list(SCORE_NAMES)


def test_flags_are_the_registry_thresholds():
    expected = {m.name: Flag(m.threshold, "above" if m.higher_is_worse else "below")
                for m in METRICS if m.threshold is not None}
    assert expected == FLAGS
    for m in METRICS:
        flag = FLAGS.get(m.name)
        t = m.threshold
        probes = [None] if t is None else [None, t, t - 1e-9, t + 1e-9, t - 1, t + 1]
        for v in probes:
            assert m.flagged(v) == (flag.flagged(v) if flag else False), (m.name, v)
        if t is not None:
            assert not flag.flagged(t)  # strictly beyond the threshold
            assert flag.flagged(t + 1) == m.higher_is_worse


def test_window_aggregates_count_flags_for_every_flagged_score():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    bad = {m.name: (m.threshold + 1 if m.higher_is_worse else m.threshold - 1)
           for m in METRICS if m.threshold is not None}
    rows = [{"request_id": "r", "model": "m", "app": "a", "event_time": t0, **bad}]
    (part,) = partials(rows, SCORE_NAMES).values()
    assert {name: p.flagged for name, p in part.metrics.items()} == dict.fromkeys(bad, 1)


def test_unchanged_thresholds():
    """The thresholds of detectors/flags.py before the registry: moving them is a decision."""
    assert {k: (f.threshold, f.direction) for k, f in FLAGS.items()} == {
        "surprisal_mean": (3.0, "above"), "entropy_mean": (2.0, "above"),
        "repetition_rate": (0.5, "above"), "compression_ratio": (4.0, "above"),
        "distinct_2": (0.3, "below"), "latency_ms": (10_000.0, "above"),
        "tokens_per_s": (5.0, "below"), "toxicity": (0.5, "above"),
        "hallucination": (0.5, "above"), "ood_score": (1.0, "above"),
        "regurgitation": (49.5, "above"),
        # issue 18: 1 = the response's language is one the detector does not read
        "toxicity_unread": (0.5, "above"), "hallucination_unread": (0.5, "above"),
        # issue 17: one PII span repeated from the training corpus is a privacy incident
        "pii_regurgitated": (0.5, "above")}


@pytest.mark.parametrize("name", SCORE_NAMES)
def test_rules_accept_every_registered_score(name):
    for stat in SCORE_STATS:
        assert check_metric(f"{name}_{stat}") == f"{name}_{stat}"


@pytest.mark.parametrize("name", ["made_up_score_p99", "time_to_first_token_ms_p99", "toxicity",
                                  "toxicity_p42"])
def test_rules_reject_an_unregistered_score(name):
    with pytest.raises(ValueError, match=f"unknown metric '{name}'") as info:
        check_metric(name)
    assert ", ".join(SCORE_NAMES) in str(info.value)  # names the registered ones
    with pytest.raises(RulesError, match="unknown metric"):
        load_rules({"rules": [{"name": "r", "kind": "threshold", "metric": name, "op": ">",
                               "value": 1}]})


def _sql(panel) -> str:
    return "\n".join(q.sql for q in panel.queries)


def test_every_score_has_a_panel_on_its_registered_dashboard_row():
    by_uid = {d.uid: d for d in DASHBOARDS}
    for m in METRICS:
        rows = [r for r in by_uid[m.panel.dashboard].rows if r.title.startswith(m.panel.row)]
        assert len(rows) == 1, (m.name, m.panel)
        assert any(re.search(rf"\b{m.name}\b", _sql(p)) for p in rows[0].panels), (m.name, m.panel)


def test_the_drilldown_lists_every_score_and_the_quality_row_its_scores():
    (scores,) = [p for p in DRILLDOWN.panels() if p.title == "Scores"]
    assert re.findall(r"\('(\w+)', s\.(\w+)\)", _sql(scores)) == [(n, n) for n in SCORE_NAMES]
    row = metrics.shown_on(metrics.QUALITY_SCORES)
    (quality_row,) = [r for r in QUALITY.rows if r.title.startswith(metrics.QUALITY_SCORES.row)]
    assert [p.title for p in quality_row.panels[:len(row)]] == [m.title for m in row]
    assert [p.description for p in quality_row.panels[:len(row)]] == [m.definition for m in row]
    (flagged,) = [p for p in quality_row.panels if p.title == "Flagged share by score"]
    assert re.findall(r"'(\w+)'", _sql(flagged)) == [m.name for m in row if m.threshold is not None]
    assert all(metrics.metric(n).higher_is_worse for n in WORST_BY_SCORES)


def test_panel_units_come_from_the_registry():
    for d in DASHBOARDS:
        for p in d.panels():
            for m in METRICS:
                if p.title == m.title and re.search(rf"'{m.name}'", _sql(p)):
                    assert p.unit == (None if m.unit == "none" else m.unit), (d.uid, p.title)
    latency = [p for d in DASHBOARDS for p in d.panels() if "latency" in p.title.lower()
               and re.search(r"ORDER BY latency_ms\)", _sql(p))]
    assert latency and all(p.unit == metrics.metric("latency_ms").unit for p in latency)


def test_docs_score_table_is_generated_from_the_registry():
    text = (ROOT / "docs" / "scores.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- score-table:[^\n]*-->\n(.*?)<!-- /score-table -->", text, re.S)
    assert table, "docs/scores.md has lost its score-table markers"
    assert table.group(1) == markdown_table(), (
        "docs/scores.md's score table is stale: paste `python -m parrotwatch.detectors.metrics`")
    listed = re.findall(r"^\| `(\w+)` \|", table.group(1), re.M)
    assert listed == list(SCORE_NAMES)


def test_unknown_score_lookups_name_the_registered_ones():
    with pytest.raises(KeyError, match="registered: surprisal_mean"):
        metrics.metric("time_to_first_token_ms")


#: Scores a registered scorer computes that are not stored per request, and why.
UNSTORED = {"self_inconsistency": "kept in the drill-down only: needs sampled answers, rarely logged",
            "pii_prompt_count": "the stored pii_count is both sides; the drill-down says which side",
            "pii_response_count": "the stored pii_count is both sides; the drill-down says which side"}


def test_request_scorers_and_the_registry_agree():
    """Every name a registered per-request scorer gives is a registered score (or a documented
    unstored one), and every registered score whose detector module has a registered scorer is
    among that scorer's names."""
    from parrotwatch.detectors.protocols import REGISTRY, registered

    scorers = registered("request")
    given = {name for cls in scorers.values() for name in cls.score_names}
    assert given - set(SCORE_NAMES) == set(UNSTORED)
    by_module: dict[str, set[str]] = {}
    for key, path in REGISTRY["request"].items():
        by_module.setdefault(path.partition(":")[0], set()).update(scorers[key].score_names)
    for m in METRICS:
        module = m.detector.partition(":")[0]
        if module in by_module:
            assert m.name in by_module[module], (m.name, m.detector)
