"""Kafka -> Spark -> PostgreSQL + Kafka with the real parts: exact counts, DLQ reasons, parity."""

from __future__ import annotations

import math
from datetime import datetime

import orjson
import pytest

from parrotwatch.detectors.metrics import MODEL_FREE_SCORE_NAMES as SCORE_NAMES
from parrotwatch.offline import score_file
from parrotwatch.stack.kafka import produce
from parrotwatch.traffic import encode, generate_inference_events, keyed, malformed_records
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def produce_raw(namespace, payloads: list[tuple[bytes | None, bytes]]) -> None:
    produce(namespace.settings.bootstrap, namespace.topic("llm.inference.v1"), payloads)


def test_valid_and_malformed_events_land_exactly_once(namespace, stream_job, tmp_path):
    events = generate_inference_events(1000, seed=11, id_prefix="pipe")
    bad = malformed_records(50, seed=11, max_event_bytes=namespace.settings.max_event_bytes)
    kinds = {kind for _, kind in bad}
    assert {"bad_json", "missing_field", "wrong_type", "oversize", "invalid_utf8"} <= kinds
    payloads = keyed(events)
    payloads[500:500] = [(None, raw) for raw, _ in bad]  # malformed records mid-stream
    produce_raw(namespace, payloads)

    job = stream_job().start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= 1000
             and namespace.scalar("SELECT count(*) FROM dead_letters") >= 50,
             timeout=240, what="1000 scored rows and 50 dead letters", job=job)

    ids = {r[0] for r in namespace.sql("SELECT request_id FROM inference_scores")}
    assert ids == {e["request_id"] for e in events}
    assert namespace.scalar("SELECT count(*) FROM dead_letters") == 50
    assert namespace.scalar("SELECT count(*) FROM dead_letters WHERE reason = ''") == 0

    scores = namespace.read_topic("llm.scores.v1", expected=1000)
    score_ids = [r.key.decode() for r in scores]
    assert len(score_ids) == 1000 and set(score_ids) == ids

    dlq = [orjson.loads(r.value) for r in namespace.read_topic("llm.dlq.v1", expected=50)]
    assert len(dlq) == 50
    assert all(d["reason"] and d["payload"] is not None for d in dlq)
    assert {d["payload_encoding"] for d in dlq} == {"utf-8", "base64"}  # invalid UTF-8 kept whole
    assert any("over the" in d["reason"] and "limit" in d["reason"] for d in dlq)
    assert any("not valid JSON" in d["reason"] for d in dlq)

    # Window aggregates: counts add up; DDSketch quantiles within their 1% relative accuracy.
    assert namespace.scalar("SELECT sum(requests) FROM window_counts WHERE model <> '*'") == 1000
    assert namespace.scalar("SELECT sum(dead_letters) FROM window_counts") == 50
    latencies: dict[tuple, list[float]] = {}
    for model, app, minute, latency in namespace.sql(
            "SELECT model, app, date_trunc('minute', event_time), latency_ms FROM inference_scores "
            "WHERE latency_ms IS NOT NULL"):
        latencies.setdefault((model, app, minute), []).append(latency)
    windows = {(m, a, w): (n, total, p99) for m, a, w, n, total, p99 in namespace.sql(
        "SELECT model, app, window_start, n, sum, p99 FROM window_metrics "
        "WHERE metric = 'latency_ms'")}
    assert windows.keys() == latencies.keys()
    for key, values in latencies.items():
        n, total, p99 = windows[key]
        values.sort()
        exact = values[int(0.99 * (len(values) - 1))]  # DDSketch's rank: floor(q (n - 1))
        assert n == len(values) and math.isclose(total, sum(values), rel_tol=1e-9)
        assert abs(p99 - exact) <= 0.01 * exact + 1e-9, (key, p99, exact)

    # Parity: `parrotwatch score` on the same events gives the stream's scores exactly.
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"\n".join(encode(e) for e in events) + b"\n")
    report = score_file(jsonl, tmp_path / "scores.jsonl", progress=False)
    assert report.scored == 1000 and not report.errors
    offline = {r["request_id"]: r for r in map(orjson.loads,
                                                (tmp_path / "scores.jsonl").read_bytes().splitlines())}
    published = {orjson.loads(r.value)["request_id"]: orjson.loads(r.value) for r in scores}
    columns = ", ".join(SCORE_NAMES)
    stored = {r[0]: dict(zip(SCORE_NAMES, r[1:], strict=True)) for r in namespace.sql(
        f"SELECT request_id, {columns} FROM inference_scores")}
    for request_id, expected in offline.items():
        for name in SCORE_NAMES:
            want, got_db, got_kafka = expected[name], stored[request_id][name], \
                published[request_id][name]
            if want is None:
                assert got_db is None and got_kafka is None, (request_id, name)
            else:
                assert math.isclose(got_db, want, rel_tol=1e-12), (request_id, name)
                assert math.isclose(got_kafka, want, rel_tol=1e-12), (request_id, name)


def test_duplicate_request_ids_are_stored_and_published_once(namespace, stream_job):
    events = generate_inference_events(40, seed=3, id_prefix="dup")
    retried = keyed(events)
    produce_raw(namespace, retried + retried[:10])  # a client retried 10 of them
    job = stream_job().start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM sink_batches "
                                      "WHERE sink LIKE 'inference-%%' AND rows_in > 0") > 0
             and namespace.scalar("SELECT sum(rows_in) FROM sink_batches "
                                  "WHERE sink LIKE 'inference-%%'") >= 50,
             timeout=180, what="all 50 records processed", job=job)
    assert namespace.scalar("SELECT count(*) FROM inference_scores") == 40
    assert len(namespace.read_topic("llm.scores.v1", expected=40)) == 40


def test_feedback_is_attributed_to_its_request_segment_even_when_it_comes_first(namespace,
                                                                                stream_job):
    import psycopg

    from parrotwatch.streaming.alert_stage import windows_between
    from parrotwatch.traffic import generate_feedback_events

    events = generate_inference_events(300, seed=13, id_prefix="fb-first")
    feedback = generate_feedback_events(events, share=0.3, seed=13)
    namespace.produce_events(feedback, topic="llm.feedback.v1")
    job = stream_job().start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM feedback") >= len(feedback),
             timeout=180, what="feedback stored", job=job)
    # The feedback is stored before any of its requests: its segment is unknown at that point.
    assert namespace.scalar("SELECT count(*) FROM inference_scores") == 0
    namespace.produce_events(events)
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= 300,
             timeout=180, what="requests stored", job=job)
    with psycopg.connect(namespace.database_url, options="-c TimeZone=UTC") as conn:
        first, last = conn.execute("SELECT min(date_trunc('minute', event_time)), "
                                   "max(date_trunc('minute', event_time)) FROM feedback").fetchone()
        windows = windows_between(conn, first, last)
    segment = {e["request_id"]: (e["model"], e["app"]) for e in events}
    expected: dict[tuple, list[int]] = {}
    for f in feedback:
        minute = datetime.fromisoformat(f["timestamp"]).replace(second=0, microsecond=0)
        counts = expected.setdefault((*segment[f["request_id"]], minute), [0, 0])
        counts[0] += 1
        counts[1] += f.get("thumb") == -1
    got = {(w["model"], w["app"], w["window_start"]): [w["feedback_count"], w["thumbs_down"]]
           for w in windows if w["feedback_count"]}
    assert got == expected
