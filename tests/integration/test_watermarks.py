"""The stream's event-time watermark on real PostgreSQL: the least of the Kafka partitions' largest event
times (partitions idle past the timeout left out), never moving back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from parrotwatch.streaming.window_store import advance_watermark

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _rows(partition: int, *seconds: int) -> list[dict]:
    return [{"partition": partition, "event_time": T + timedelta(seconds=s)} for s in seconds]


def test_watermark_is_the_slowest_active_partition(namespace):
    def advance(rows, idle=timedelta(seconds=60)):
        with psycopg.connect(namespace.database_url) as conn:
            advance_watermark(conn, "inference", rows, idle_after=idle)
        return namespace.scalar("SELECT max_event_time FROM stream_watermarks WHERE sink = 'inference'")

    # one micro-batch read unevenly: partition 1 lags 20 s behind partition 0
    assert advance(_rows(0, 5, 30) + _rows(1, 10) + _rows(2, 20, 3)) == T + timedelta(seconds=10)
    assert advance(_rows(1, 40)) == T + timedelta(seconds=20)  # now partition 2 is the slowest
    # partition 2 received nothing for two minutes: idle, it no longer holds the others back
    with psycopg.connect(namespace.database_url, autocommit=True) as conn:
        conn.execute("UPDATE stream_partition_watermarks SET updated_at = now() - interval '2 minutes' "
                     "WHERE kafka_partition = 2")
    assert advance(_rows(0, 50)) == T + timedelta(seconds=40)
    # a partition that starts late with old events does not move the watermark back
    assert advance(_rows(3, 1)) == T + timedelta(seconds=40)
    assert advance([]) == T + timedelta(seconds=40)
    per_partition = dict(namespace.sql(
        "SELECT kafka_partition, max_event_time FROM stream_partition_watermarks"))
    assert per_partition == {0: T + timedelta(seconds=50), 1: T + timedelta(seconds=40),
                             2: T + timedelta(seconds=20), 3: T + timedelta(seconds=1)}
