"""A total outage on the real stack: once no event arrives at all, windows close on the wall clock and
the alert rules see the missing traffic (streaming/silence.py); replays and busy streams are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from parrotwatch.db import migrate
from parrotwatch.streaming.job import alert_stage
from parrotwatch.traffic import generate_inference_events
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

RULES = """
version: 1
window: 1m
rules:
  - name: traffic_stopped
    kind: threshold
    severity: critical
    metric: count
    op: "<"
    value: 1
    summary: "{model}/{app} sent no request in the window."
"""


def test_silent_stream_closes_windows_on_the_wall_clock_and_publishes_the_alert(namespace, stream_job,
                                                                                tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    start = (datetime.now(UTC) - timedelta(minutes=4)).replace(second=0, microsecond=0)
    events = generate_inference_events(120, seed=3, start=start, rate_per_s=1.0, models=("m-silent",),
                                       apps=("app",), id_prefix="silence")  # minutes 0-1 of 4
    namespace.produce_events(events)
    job = stream_job(alert_rules=rules, silence_after_seconds=8).start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") == len(events),
             timeout=180, what="the events stored", job=job)
    # while traffic flowed, its windows were evaluated on event time: no alert from them (below)
    wait_for(lambda: namespace.sql("SELECT rule, model, starts_at FROM alerts"), timeout=120,
             what="the silence alert", job=job)
    firing = namespace.sql("SELECT rule, model, app, status, starts_at, sink_batch FROM alerts ORDER BY id")
    assert firing[0][:4] == ("traffic_stopped", "m-silent", "app", "firing"), firing
    assert firing[0][4] >= start + timedelta(minutes=2)  # the first window without traffic
    assert firing[0][5].startswith("silence:")
    assert namespace.scalar("SELECT count(*) FROM alerts WHERE sink_batch NOT LIKE %s", "silence:%") == 0
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM silence_evaluations WHERE alerts > 0 "
                                      "AND published_at IS NULL") == 0, timeout=60,
             what="the silence alerts published", job=job)
    published = [orjson.loads(r.value) for r in namespace.read_topic("llm.alerts.v1", 1)]
    assert [(a["rule"], a["status"], a["labels"]["model"]) for a in published][:1] == [
        ("traffic_stopped", "firing", "m-silent")], published
    # the watermark follows the clock, lagging by the silence, and never ran ahead of it
    base = namespace.scalar("SELECT max_event_time FROM stream_watermarks WHERE sink = 'inference'")
    assert datetime.now(UTC) - timedelta(seconds=60) < base < datetime.now(UTC) - timedelta(seconds=8)


def _watermark(conn, base: datetime, updated: datetime) -> None:
    conn.execute("INSERT INTO stream_watermarks (sink, max_event_time, updated_at) VALUES "
                 "('inference', %s, %s) ON CONFLICT (sink) DO UPDATE SET max_event_time = "
                 "EXCLUDED.max_event_time, updated_at = EXCLUDED.updated_at", (base, updated))


def test_replays_and_recent_traffic_are_not_silences(namespace):
    migrate(namespace.database_url)
    stage = alert_stage(namespace.settings)
    silent_for, horizon = timedelta(minutes=5), timedelta(hours=1)
    with psycopg.connect(namespace.database_url, options="-c TimeZone=UTC") as conn:
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        cases = [  # (watermark base, last stored, moves?)
            (now - timedelta(hours=3), now - timedelta(hours=2), False),  # a replay from long ago
            (now - timedelta(minutes=2), now - timedelta(seconds=30), False),  # data 30 s ago
            (now - timedelta(minutes=8), now - timedelta(minutes=6), True),  # silent, live
            (now - timedelta(minutes=4), now - timedelta(minutes=10), False),  # ahead of now - 5 min
        ]
        for base, updated, moves in cases:
            _watermark(conn, base, updated)
            emitted = stage.evaluate_silence(conn, "silence:test", silent_for, horizon)
            after = conn.execute("SELECT max_event_time, updated_at FROM stream_watermarks").fetchone()
            if moves:
                assert emitted == 0  # no window data here: nothing to alert on
                assert after[0] == pytest.approx(now - silent_for, abs=timedelta(seconds=5))
                assert after[1] == updated  # still silent: the next check moves it on
            else:
                assert emitted is None and after == (base, updated), (base, updated)


def test_a_late_silence_send_skips_transitions_the_sink_replaced(namespace):
    migrate(namespace.database_url)
    stage = alert_stage(namespace.settings)
    rows = [("a1", "firing", "silence:t"), ("a1", "resolved", "sink:7"),  # replaced by the sink
            ("a2", "firing", "silence:t"), ("a2", "resolved", "silence:t")]  # one evaluation: both go
    with psycopg.connect(namespace.database_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO alerts (alert_id, status, rule, severity, starts_at, summary, event, sink_batch) "
            "VALUES (%s, %s, 'r', 'warning', now(), 's', %s, %s)",
            [(a, s, orjson.dumps({"alert_id": a, "status": s}).decode(), tag) for a, s, tag in rows])
        late = [orjson.loads(v) for _, _, v in stage.messages(conn, "silence:t", skip_superseded=True)]
        every = [orjson.loads(v) for _, _, v in stage.messages(conn, "silence:t")]
    assert [(m["alert_id"], m["status"]) for m in late] == [("a2", "firing"), ("a2", "resolved")]
    assert [(m["alert_id"], m["status"]) for m in every] == [("a1", "firing"), ("a2", "firing"),
                                                           ("a2", "resolved")]
