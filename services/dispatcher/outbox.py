"""The durable outbox (``alert_outbox``) and the delivery log (``alert_delivery_log``) in PostgreSQL.

Tables: ``parrotwatch/sql/002_alert_delivery.sql`` and ``011_dispatcher_hardening.sql``. A row
moves ``pending -> delivered`` or ``pending -> dead``; every attempt adds one log row in the same
statement as the state change. Claims are leases (``locked_until``, ``claimed_by``) taken and
released by single short statements: no transaction stays open across an HTTP call.
"""

from __future__ import annotations

import hashlib
import uuid
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
    token: str = ""  # claimed_by: the lease's fencing token


_INSERT = """
INSERT INTO alert_outbox (idempotency_key, receiver, alert_id, alert_status, event,
                          kafka_partition, kafka_offset)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (idempotency_key) DO NOTHING
"""

DEAD_LETTER_SQL = """
INSERT INTO dead_letters (source_topic, kafka_partition, kafka_offset, reason, payload, kafka_timestamp)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""

# Lease up to %(limit)s due rows of the given receivers, oldest first, whose earlier transitions
# of the same alert are settled (so that a `resolved` never overtakes its `firing` at a receiver),
# skipping rows another claim is writing (SKIP LOCKED) or holds a live lease on. One statement
# (the CTE is MATERIALIZED: evaluated once): its row locks last for the statement only, never
# across an HTTP call.
CLAIM_SQL = """
WITH due AS MATERIALIZED (
    SELECT c.idempotency_key FROM alert_outbox c
    WHERE c.state = 'pending' AND c.next_attempt_at <= clock_timestamp()
      AND c.receiver = ANY(%(receivers)s)
      AND (c.locked_until IS NULL OR c.locked_until <= clock_timestamp())
      AND NOT EXISTS (SELECT 1 FROM alert_outbox p
                      WHERE p.receiver = c.receiver AND p.alert_id = c.alert_id
                        AND p.state = 'pending' AND p.seq < c.seq)
    ORDER BY c.next_attempt_at, c.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE alert_outbox o
SET locked_until = clock_timestamp() + make_interval(secs => %(lease_s)s::float8),
    claimed_by = %(token)s
FROM due WHERE o.idempotency_key = due.idempotency_key
RETURNING o.idempotency_key, o.receiver, o.event, o.attempts, o.claimed_by
"""

# The outcome of one attempt, fenced by the lease token, and its log row: one statement, so one
# short transaction in autocommit mode. No row back: the lease was lost (expired and claimed again).
RECORD_SQL = """
WITH moved AS (
    UPDATE alert_outbox SET
        state = %(state)s, attempts = %(attempt)s, last_status = %(status)s, last_error = %(error)s,
        next_attempt_at = CASE WHEN %(delay_s)s::float8 IS NULL THEN next_attempt_at
                          ELSE clock_timestamp() + make_interval(secs => %(delay_s)s::float8) END,
        delivered_at = CASE WHEN %(state)s = 'delivered' THEN clock_timestamp() END,
        settled_at = CASE WHEN %(state)s <> 'pending' THEN clock_timestamp() END,
        locked_until = NULL, claimed_by = NULL
    WHERE idempotency_key = %(key)s AND state = 'pending'
      AND claimed_by IS NOT DISTINCT FROM %(token)s
    RETURNING idempotency_key, receiver, next_attempt_at)
INSERT INTO alert_delivery_log (idempotency_key, receiver, attempt, outcome, status_code, error,
                                latency_ms, next_attempt_at)
SELECT idempotency_key, receiver, %(attempt)s, %(outcome)s, %(status)s, %(error)s, %(latency_ms)s,
       CASE WHEN %(outcome)s = 'retry' THEN next_attempt_at END
FROM moved
RETURNING next_attempt_at
"""

STATES = {"delivered": "delivered", "retry": "pending", "dead": "dead"}


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
            cur.execute(DEAD_LETTER_SQL, letter)
    return new


def new_token() -> str:
    """A fencing token for one claim: only its holder can record that claim's outcome."""
    return uuid.uuid4().hex


def claim_params(receivers: list[str], limit: int, lease_s: float, token: str) -> dict:
    return {"receivers": receivers, "limit": limit, "lease_s": lease_s, "token": token}


def claim(conn: psycopg.Connection, receivers: list[str], lease_s: float = 60.0,
          token: str | None = None) -> Claimed | None:
    """Lease and return one due row (see :data:`CLAIM_SQL`); None when nothing is due."""
    found = claim_many(conn, receivers, 1, lease_s, token)
    return found[0] if found else None


def claim_many(conn: psycopg.Connection, receivers: list[str], limit: int, lease_s: float,
               token: str | None = None) -> list[Claimed]:
    """Lease up to ``limit`` due rows, oldest first."""
    rows = conn.execute(CLAIM_SQL, claim_params(receivers, limit, lease_s, token or new_token()))
    return [Claimed(*r) for r in rows.fetchall()]


def record_params(row: Claimed, *, outcome: str, status_code: int | None, error: str | None,
                  latency_ms: float, delay_s: float | None = None) -> dict:
    return {"state": STATES[outcome], "outcome": outcome, "attempt": row.attempts + 1,
            "status": status_code, "error": error, "latency_ms": latency_ms,
            "delay_s": delay_s if outcome == "retry" else None, "key": row.key,
            "token": row.token or None}


def record(conn: psycopg.Connection, row: Claimed, *, outcome: str, status_code: int | None,
           error: str | None, latency_ms: float, delay_s: float | None = None) -> bool:
    """Log one attempt and move the row: ``delivered``, ``retry`` (pending again in ``delay_s``,
    by the database clock) or ``dead``; the lease ends. False if the lease was lost meanwhile."""
    params = record_params(row, outcome=outcome, status_code=status_code, error=error,
                           latency_ms=latency_ms, delay_s=delay_s)
    return conn.execute(RECORD_SQL, params).fetchone() is not None


def pending_elsewhere(conn: psycopg.Connection, receivers: list[str]) -> dict[str, int]:
    """Pending rows of receivers no longer configured (they wait until the receiver returns)."""
    rows = conn.execute("SELECT receiver, count(*) FROM alert_outbox WHERE state = 'pending' "
                        "AND NOT (receiver = ANY(%s)) GROUP BY receiver", (receivers,)).fetchall()
    return dict(rows)


def requeue_dead(conn: psycopg.Connection, receiver: str | None = None) -> int:
    """Make dead deliveries pending again (after fixing a receiver); returns how many."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE alert_outbox SET state = 'pending', attempts = 0, next_attempt_at = clock_timestamp(), "
            "settled_at = NULL, locked_until = NULL, claimed_by = NULL "
            "WHERE state = 'dead' AND (%s::text IS NULL OR receiver = %s)", (receiver, receiver))
        return cur.rowcount
