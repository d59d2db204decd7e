"""Kafka ``llm.alerts.v1`` -> outbox rows, then the offset commit (never the other way round).

Per polled batch: validate each record as Alert event v1 (:mod:`.records`), write one outbox row
per matching receiver (and a ``dead_letters`` row per invalid record) in ONE PostgreSQL
transaction, and only then commit the Kafka offsets. A crash between the two re-reads the batch;
the idempotency keys make the re-inserted rows no-ops.

No record can fail a batch twice: records that cannot be stored are dead letters by
:func:`.records.parse`, and if the database still refuses a batch on its data, the batch is
stored record by record and the refused record becomes a dead letter. Only an outage (database
away: ``OperationalError``/``InterfaceError``) re-reads the batch, with backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from parrotwatch.services.dispatcher.config import ReceiversFile
from parrotwatch.services.dispatcher.outbox import enqueue
from parrotwatch.services.dispatcher.records import Parsed, dead_letter, parse
from parrotwatch.services.dispatcher.redact import storable_text
from parrotwatch.settings import ALERTS_TOPIC, Settings
from parrotwatch.stack.kafka_auth import consumer_when_reachable

log = logging.getLogger(__name__)


class AlertConsumer:
    """One consumer thread: ``run()`` until ``stop`` is set. ``on_enqueued`` wakes the workers."""

    def __init__(self, settings: Settings, config: ReceiversFile, database_url: str,
                 stop: threading.Event, on_enqueued: Callable[[], None] = lambda: None) -> None:
        self.topic = settings.topic(ALERTS_TOPIC)
        self.group = f"{settings.topic_prefix}{config.delivery.consumer_group}"
        self.settings = settings  # Kafka bootstrap and security
        self.config = config
        self.database_url = database_url
        self.stop = stop
        self.on_enqueued = on_enqueued
        self.seeks = 0  # batches re-read after a failed store (an outage): 0 on poison records
        self.isolated_batches = 0  # batches the database refused on their data, stored record by record

    def _consumer(self) -> KafkaConsumer | None:
        return consumer_when_reachable(
            self.stop, self.topic, self.settings, log, group_id=self.group,
            client_id="parrotwatch-dispatcher", enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset=self.config.delivery.auto_offset_reset,
            # a crashed replica's partitions move after 10 s (kafka-python default: 45 s)
            session_timeout_ms=10_000, heartbeat_interval_ms=3_000)

    def run(self) -> None:
        consumer = self._consumer()
        if consumer is None:
            return
        log.info("consuming %s as group %s", self.topic, self.group)
        conn: psycopg.Connection | None = None
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    batch = consumer.poll(timeout_ms=500)
                except Exception as exc:  # noqa: BLE001 (the delivery side keeps running)
                    log.warning("Kafka poll failed (%s: %s); polling again in 1 s",
                                type(exc).__name__, exc)
                    self.stop.wait(1.0)
                    continue
                if not batch:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)
                    self.store(conn, batch)
                except Exception as exc:  # noqa: BLE001 (an outage, or a bug: never a crash)
                    failures += 1
                    delay = min(2.0 ** failures, 30.0)
                    if isinstance(exc, OUTAGE):
                        log.error("cannot write the outbox (%s); re-reading the batch in %.0f s",
                                  exc, delay)
                    else:
                        log.exception("unexpected error storing a batch; re-reading it in %.0f s", delay)
                    if conn is not None:
                        conn.close()
                    conn = None
                    self.seeks += 1
                    for tp, records in batch.items():  # the offsets were not committed: go back
                        consumer.seek(tp, records[0].offset)
                    self.stop.wait(delay)
                    continue
                failures = 0
                self.on_enqueued()
                self._commit(consumer, batch)
        finally:
            consumer.close(autocommit=False, timeout_ms=5_000)
            if conn is not None:
                conn.close()
            log.info("consumer stopped")

    def _commit(self, consumer: KafkaConsumer, batch: dict) -> None:
        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in batch.items()}
        try:
            consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The rows are stored; a redelivered batch collapses on the idempotency keys.
            log.warning("offset commit failed (%s); the batch may be read again, duplicates collapse", exc)

    def store(self, conn: psycopg.Connection, batch: dict[TopicPartition, list]) -> int:
        """Outbox rows and dead letters of one polled batch, in one transaction; new rows count.

        If the database refuses the batch on its data (anything but an outage), each record is
        stored again on its own, and a record refused on its own becomes a dead letter with the
        database's reason: no record can fail a batch twice. An outage raises (the caller re-reads
        the batch)."""
        parsed = [(record, parse(record, self.config)) for records in batch.values()
                  for record in records]
        try:
            new = _write(conn, [p for _, p in parsed])
        except OUTAGE:
            raise
        except Exception as exc:  # noqa: BLE001 (a data error: isolate the records)
            self.isolated_batches += 1
            log.warning("the database refused a batch of %d alert record(s) (%s: %s); storing them "
                        "one by one", len(parsed), type(exc).__name__, storable_text(str(exc), 300))
            new = sum(self._store_alone(conn, record, one) for record, one in parsed)
        rows = sum(len(p.rows) for _, p in parsed if p.dead_letter is None)
        dead = [(r, p) for r, p in parsed if p.dead_letter is not None]
        for record, one in dead:
            log.error("%s[%d]@%d: dead letter: %s", record.topic, record.partition, record.offset,
                      storable_text(one.dead_letter[3], 500))
        for _, one in parsed:
            if one.event is not None and not one.rows:
                log.info("alert %s (%s %s) matches no receiver", one.event.alert_id, one.event.rule,
                         one.event.status)
        log.info("stored %d alert(s): %d deliveries queued, %d duplicate(s) ignored, %d invalid",
                 len(parsed) - len(dead), new, max(rows - new, 0), len(dead))
        return new

    def _store_alone(self, conn: psycopg.Connection, record, one: Parsed) -> int:
        try:
            return _write(conn, [one])
        except OUTAGE:
            raise
        except Exception as exc:  # noqa: BLE001 (this record is the one the database refuses)
            reason = f"the database refused this alert record: {type(exc).__name__}: {exc}"
            one.rows, one.event = [], None
            one.dead_letter = dead_letter(record, reason)
        try:
            _write(conn, [one])
        except OUTAGE:
            raise
        except Exception as exc:  # noqa: BLE001 (even its dead letter: skip it, loudly)
            log.error("%s[%d]@%d: cannot store the record nor its dead letter (%s); skipped",
                      record.topic, record.partition, record.offset, type(exc).__name__)
        return 0


OUTAGE = (psycopg.OperationalError, psycopg.InterfaceError)


def _write(conn: psycopg.Connection, parsed: list[Parsed]) -> int:
    rows = [row for p in parsed for row in p.rows]
    dead = [p.dead_letter for p in parsed if p.dead_letter is not None]
    return enqueue(conn, rows, dead)
