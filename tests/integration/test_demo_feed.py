"""The demo's live feed on a real database: the first scored requests once, then each alert
transition as it is stored, never twice, and the times it reports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from parrotwatch.demo import LiveFeed

pytestmark = pytest.mark.integration
T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_feed_prints_first_rows_once_and_each_alert_once(namespace):
    lines: list[str] = []
    with psycopg.connect(namespace.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO alerts (alert_id, status, rule, severity, model, app, metric, starts_at, "
                     "summary, event, sink_batch) VALUES ('old', 'firing', 'r0', 'info', 'm', 'a', 'x', %s, "
                     "'before the demo', '{}', 't')", (T,))
        feed = LiveFeed(conn, "demo-1", T - timedelta(minutes=5), time.monotonic(), lines.append)
        feed.poll(0)
        assert lines == [] and feed.first_scored_s is None
        conn.execute("INSERT INTO inference_scores (request_id, event_time, model, app, surprisal_mean, "
                     "latency_ms, kafka_partition, kafka_offset, sink_batch) "
                     "VALUES ('demo-1-0001', %s, 'gpt', 'search', 0.52, 812, 0, 1, 't')", (T,))
        conn.execute("INSERT INTO alerts (alert_id, status, rule, severity, model, app, metric, starts_at, "
                     "summary, event, sink_batch) VALUES ('a1', 'firing', 'latency_p99_spike', 'warning', "
                     "'gpt', 'search', 'latency_ms', %s, 'p99 latency 9.1 s', '{}', 't')", (T,))
        feed.poll(1)
        feed.poll(1)
    assert lines[0].startswith("first scored requests,")
    assert "demo-1-0001" in lines[1] and "gpt/search" in lines[1] and "0.52" in lines[1]
    alerts = [line for line in lines if "alert" in line and "first" not in line]
    assert len(alerts) == 1 and "latency_p99_spike" in alerts[0] and "p99 latency 9.1 s" in alerts[0]
    assert "before the demo" not in "".join(lines)  # an alert stored before the feed started
    assert feed.first_scored_s is not None and feed.first_alert_s is not None
