"""The durable outbox (``alert_outbox``) and the delivery log (``alert_delivery_log``) in PostgreSQL.

Tables: ``parrotwatch/sql/002_alert_delivery.sql``. A row moves ``pending -> delivered`` or
``pending -> dead``; every attempt adds one log row in the same transaction as the state change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC

import psycopg
from psycopg.types.json import Jsonb

from parrotwatch.contracts.events import AlertEventV1


def idempotency_key(event: AlertEventV1, receiver: str) -> str:
    """sha256 of alert_id, status, starts_at (UTC, RFC 3339), the evaluated window's end (so a
    renotification is a new delivery) and the receiver name, joined by a separator that cannot
    occur in them, so that re-sent copies of one transition collapse."""
    starts = event.starts_at.astimezone(UTC).isoformat()
    window = event.evidence.get("window")
    window_end = str(window.get("end", "")) if isinstance(window, dict) else ""
    renotify = window_end if event.status == "firing" else ""
    text = "\x1f".join((event.alert_id, event.status, starts, renotify, receiver))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class OutboxRow:
    key: str
    receiver: str
    event: AlertEventV1
    kafka_partition: int | None = None
    kafka_offset: int | None = None


@dataclass(frozen=True)
class Claimed:
    key: str
    receiver: str
    event: dict
    attempts: int  # attempts made before this one


_INSERT = """
INSERT INTO alert_outbox (idempotency_key, receiver, alert_id, alert_status, event,
                          kafka_partition, kafka_offset)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (idempotency_key) DO NOTHING
"""

_DEAD_LETTER = """
INSERT INTO dead_letters (source_topic, kafka_partition, kafka_offset, reason, payload, kafka_timestamp)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""

# The oldest due row of a configured receiver whose earlier transitions of the same alert are
# settled, so that a `resolved` never overtakes its `firing` at a receiver.
_CLAIM = """
SELECT o.idempotency_key, o.receiver, o.event, o.attempts
FROM alert_outbox o
WHERE o.state = 'pending' AND o.next_attempt_at <= clock_timestamp() AND o.receiver = ANY(%s)
  AND NOT EXISTS (SELECT 1 FROM alert_outbox p
                  WHERE p.receiver = o.receiver AND p.alert_id = o.alert_id
                    AND p.state = 'pending' AND p.seq < o.seq)
ORDER BY o.next_attempt_at, o.seq
LIMIT 1
FOR UPDATE SKIP LOCKED
"""


def enqueue(conn: psycopg.Connection, rows: list[OutboxRow],
            dead_letters: list[tuple] = ()) -> int:
    """Insert outbox rows (duplicates ignored) and dead letters ``(topic, partition, offset,
    reason, payload, kafka_timestamp)`` in ONE transaction; returns the number of new rows."""
    new = 0
    with conn.transaction(), conn.cursor() as cur:
        for row in rows:
            cur.execute(_INSERT, (row.key, row.receiver, row.event.alert_id, row.event.status,
                                  Jsonb(row.event.model_dump(mode="json")),
                                  row.kafka_partition, row.kafka_offset))
            new += cur.rowcount
        for letter in dead_letters:
            cur.execute(_DEAD_LETTER, letter)
    return new


def claim(conn: psycopg.Connection, receivers: list[str]) -> Claimed | None:
    """Lock and return one due row; call inside a transaction that :func:`record` ends."""
    found = conn.execute(_CLAIM, (receivers,)).fetchone()
    return Claimed(*found) if found else None


def record(conn: psycopg.Connection, row: Claimed, *, outcome: str, status_code: int | None,
           error: str | None, latency_ms: float, delay_s: float | None = None) -> None:
    """Log one attempt and move the row: ``delivered``, ``retry`` (pending again in ``delay_s``,
    by the database clock) or ``dead``."""
    attempt = row.attempts + 1
    state = {"delivered": "delivered", "retry": "pending", "dead": "dead"}[outcome]
    next_at = conn.execute(
        "UPDATE alert_outbox SET state = %s, attempts = %s, last_status = %s, last_error = %s, "
        "next_attempt_at = CASE WHEN %s::float8 IS NULL THEN next_attempt_at "
        "  ELSE clock_timestamp() + make_interval(secs => %s::float8) END, "
        "delivered_at = CASE WHEN %s THEN clock_timestamp() END "
        "WHERE idempotency_key = %s RETURNING next_attempt_at",
        (state, attempt, status_code, error, delay_s, delay_s, outcome == "delivered", row.key),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO alert_delivery_log (idempotency_key, receiver, attempt, outcome, status_code, "
        "error, latency_ms, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (row.key, row.receiver, attempt, outcome, status_code, error, latency_ms,
         next_at if outcome == "retry" else None))


def pending_elsewhere(conn: psycopg.Connection, receivers: list[str]) -> dict[str, int]:
    """Pending rows of receivers no longer configured (they wait until the receiver returns)."""
    rows = conn.execute("SELECT receiver, count(*) FROM alert_outbox WHERE state = 'pending' "
                        "AND NOT (receiver = ANY(%s)) GROUP BY receiver", (receivers,)).fetchall()
    return dict(rows)


def requeue_dead(conn: psycopg.Connection, receiver: str | None = None) -> int:
    """Make dead deliveries pending again (after fixing a receiver); returns how many."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE alert_outbox SET state = 'pending', attempts = 0, next_attempt_at = clock_timestamp() "
            "WHERE state = 'dead' AND (%s::text IS NULL OR receiver = %s)", (receiver, receiver))
        return cur.rowcount
