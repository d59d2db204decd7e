"""Retention on real PostgreSQL: settled history older than the policy goes, the rest stays."""

from __future__ import annotations

import threading

import psycopg
import pytest

from parrotwatch.services.dispatcher.config import Retention
from parrotwatch.services.dispatcher.retention import RetentionJob, prune

pytestmark = pytest.mark.integration

ROWS = """
INSERT INTO alert_outbox (idempotency_key, receiver, alert_id, alert_status, event, state, settled_at)
VALUES ('old-delivered', 'r', 'a1', 'firing', '{}', 'delivered', now() - interval '40 days'),
       ('old-dead',      'r', 'a2', 'firing', '{}', 'dead',      now() - interval '31 days'),
       ('new-delivered', 'r', 'a3', 'firing', '{}', 'delivered', now() - interval '2 days'),
       ('old-pending',   'r', 'a4', 'firing', '{}', 'pending',   NULL);
INSERT INTO alert_delivery_log (idempotency_key, receiver, attempt, outcome, latency_ms, attempted_at)
VALUES ('old-delivered', 'r', 1, 'delivered', 1, now() - interval '40 days'),
       ('new-delivered', 'r', 1, 'delivered', 1, now() - interval '2 days'),
       ('old-pending',   'r', 1, 'retry',     1, now() - interval '60 days'),
       ('old-pending',   'r', 2, 'retry',     1, now() - interval '1 day');
INSERT INTO dead_letters (source_topic, kafka_partition, kafka_offset, reason, stored_at)
VALUES ('p.llm.alerts.v1',    0, 1, 'old', now() - interval '40 days'),
       ('p.llm.alerts.v1',    0, 2, 'new', now() - interval '1 day'),
       ('p.llm.inference.v1', 0, 1, 'not ours', now() - interval '400 days');
"""


def test_prune_keeps_pending_recent_and_foreign_rows(namespace):
    with psycopg.connect(namespace.database_url, autocommit=True) as conn:
        conn.execute(ROWS)
        deleted = prune(conn, Retention(batch_rows=1), "p.llm.alerts.v1")  # batches of one row
        assert deleted == {"alert_outbox": 2, "alert_delivery_log": 1, "dead_letters": 1}
        assert prune(conn, Retention(), "p.llm.alerts.v1") == {
            "alert_outbox": 0, "alert_delivery_log": 0, "dead_letters": 0}
    assert sorted(namespace.sql("SELECT idempotency_key FROM alert_outbox")) == [
        ("new-delivered",), ("old-pending",)]
    assert sorted(namespace.sql("SELECT idempotency_key, attempt FROM alert_delivery_log")) == [
        ("new-delivered", 1), ("old-pending", 2)]  # the cascade took old-delivered's log row
    assert sorted(namespace.sql("SELECT source_topic, reason FROM dead_letters")) == [
        ("p.llm.alerts.v1", "new"), ("p.llm.inference.v1", "not ours")]


def test_zero_days_keeps_forever_and_the_job_survives_a_bad_database(namespace):
    with psycopg.connect(namespace.database_url, autocommit=True) as conn:
        conn.execute(ROWS)
        keep = Retention(outbox_days=0, delivery_log_days=0, dead_letters_days=0)
        assert set(prune(conn, keep, "p.llm.alerts.v1").values()) == {0}
    stop = threading.Event()
    job = RetentionJob(Retention(interval_s=0.05), "postgresql://127.0.0.1:1/none", "t", stop)
    thread = threading.Thread(target=job.run)
    thread.start()
    stop.wait(0.3)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and job.runs == 0  # failed every time, logged, never raised
