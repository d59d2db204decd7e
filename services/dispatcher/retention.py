"""Retention: the dispatcher deletes settled history older than the receivers file's ``retention``.

What goes (defaults: 30 days each, ``0`` keeps forever; see ``docs/dispatcher.md``):

- ``alert_outbox`` rows that are ``delivered`` or ``dead`` and settled more than ``outbox_days``
  ago, with their ``alert_delivery_log`` rows (ON DELETE CASCADE). Pending rows never go;
- ``alert_delivery_log`` rows older than ``delivery_log_days`` (history of rows still kept);
- ``dead_letters`` rows of the alerts topic older than ``dead_letters_days``. Dead letters of
  the scoring pipeline's topics are not the dispatcher's to delete.

Deletes run in batches of ``batch_rows`` rows, each its own short transaction, so a large backlog
never holds long locks. Several dispatcher replicas may run it at once: deletes are idempotent.
"""

from __future__ import annotations

import logging
import threading

import psycopg

from parrotwatch.services.dispatcher.config import Retention

log = logging.getLogger(__name__)

_OUTBOX = """
DELETE FROM alert_outbox WHERE idempotency_key IN (
    SELECT idempotency_key FROM alert_outbox
    WHERE state <> 'pending' AND settled_at < clock_timestamp() - make_interval(secs => %(age_s)s)
    LIMIT %(batch)s)
"""
_LOG = """
DELETE FROM alert_delivery_log WHERE id IN (
    SELECT id FROM alert_delivery_log
    WHERE attempted_at < clock_timestamp() - make_interval(secs => %(age_s)s) LIMIT %(batch)s)
"""
_DEAD_LETTERS = """
DELETE FROM dead_letters WHERE (source_topic, kafka_partition, kafka_offset) IN (
    SELECT source_topic, kafka_partition, kafka_offset FROM dead_letters
    WHERE source_topic = %(topic)s
      AND stored_at < clock_timestamp() - make_interval(secs => %(age_s)s) LIMIT %(batch)s)
"""


def prune(conn: psycopg.Connection, policy: Retention, alerts_topic: str,
          stop: threading.Event | None = None) -> dict[str, int]:
    """Delete what ``policy`` no longer keeps; returns rows deleted per table. ``conn`` must be in
    autocommit mode (each batch commits on its own)."""
    deleted = {}
    for table, sql, days in (("alert_outbox", _OUTBOX, policy.outbox_days),
                             ("alert_delivery_log", _LOG, policy.delivery_log_days),
                             ("dead_letters", _DEAD_LETTERS, policy.dead_letters_days)):
        deleted[table] = 0
        if days <= 0:
            continue
        params = {"age_s": days * 86_400.0, "batch": policy.batch_rows, "topic": alerts_topic}
        while stop is None or not stop.is_set():
            count = conn.execute(sql, params).rowcount
            deleted[table] += count
            if count < policy.batch_rows:
                break
    return deleted


class RetentionJob:
    """``run()`` (a thread's target): :func:`prune` now and every ``interval_s`` until ``stop``.
    A failure is logged and tried again at the next run; it never stops the dispatcher."""

    def __init__(self, policy: Retention, database_url: str, alerts_topic: str,
                 stop: threading.Event) -> None:
        self.policy = policy
        self.database_url = database_url
        self.alerts_topic = alerts_topic
        self.stop = stop
        self.runs = 0

    def run_once(self) -> dict[str, int]:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SET statement_timeout = 60000")
            deleted = prune(conn, self.policy, self.alerts_topic, self.stop)
        self.runs += 1
        if any(deleted.values()):
            log.info("retention: deleted %s", ", ".join(f"{n} {t}" for t, n in deleted.items()))
        return deleted

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 (retention must never stop delivery)
                log.error("retention run failed (%s: %s); next try in %.0f s", type(exc).__name__,
                          exc, self.policy.interval_s)
            self.stop.wait(self.policy.interval_s)
