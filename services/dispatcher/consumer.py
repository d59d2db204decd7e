"""Kafka ``llm.alerts.v1`` -> outbox rows, then the offset commit (never the other way round).

Per polled batch: validate each record as Alert event v1, write one outbox row per matching
receiver (and a ``dead_letters`` row per invalid record) in ONE PostgreSQL transaction, and only
then commit the Kafka offsets. A crash between the two re-reads the batch; the idempotency keys
make the re-inserted rows no-ops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.settings import ALERTS_TOPIC, Settings
from services.dispatcher.config import ReceiversFile
from services.dispatcher.outbox import OutboxRow, enqueue, idempotency_key

log = logging.getLogger(__name__)


class AlertConsumer:
    """One consumer thread: ``run()`` until ``stop`` is set. ``on_enqueued`` wakes the workers."""

    def __init__(self, settings: Settings, config: ReceiversFile, database_url: str,
                 stop: threading.Event, on_enqueued: Callable[[], None] = lambda: None) -> None:
        self.topic = settings.topic(ALERTS_TOPIC)
        self.group = f"{settings.topic_prefix}{config.delivery.consumer_group}"
        self.bootstrap = settings.bootstrap
        self.config = config
        self.database_url = database_url
        self.stop = stop
        self.on_enqueued = on_enqueued

    def _consumer(self) -> KafkaConsumer | None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                return KafkaConsumer(
                    self.topic, bootstrap_servers=self.bootstrap, group_id=self.group,
                    client_id="parrotwatch-dispatcher", enable_auto_commit=False,
                    isolation_level="read_committed",
                    auto_offset_reset=self.config.delivery.auto_offset_reset,
                    # a crashed replica's partitions move after 10 s (kafka-python default: 45 s)
                    session_timeout_ms=10_000, heartbeat_interval_ms=3_000)
            except KafkaError as exc:
                log.warning("Kafka at %s not reachable (%s); retrying in %.0f s", self.bootstrap, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 30.0)
        return None

    def run(self) -> None:
        consumer = self._consumer()
        if consumer is None:
            return
        log.info("consuming %s as group %s", self.topic, self.group)
        conn: psycopg.Connection | None = None
        failures = 0
        try:
            while not self.stop.is_set():
                batch = consumer.poll(timeout_ms=500)
                if not batch:
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.database_url, autocommit=True)
                    self.store(conn, batch)
                except psycopg.Error as exc:
                    failures += 1
                    delay = min(2.0 ** failures, 30.0)
                    log.error("cannot write the outbox (%s); re-reading the batch in %.0f s", exc, delay)
                    if conn is not None:
                        conn.close()
                    conn = None
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
        """Outbox rows and dead letters of one polled batch, in one transaction; new rows count."""
        rows, dead, alerts = [], [], 0
        for records in batch.values():
            for record in records:
                try:
                    event = AlertEventV1.model_validate_json(record.value or b"")
                except ValidationError as exc:
                    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}"
                                         for e in exc.errors(include_url=False))
                    reason = f"invalid alert event v1: {problems}"[:2000]
                    log.error("%s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
                    kafka_time = (datetime.fromtimestamp(record.timestamp / 1000, UTC)
                                  if record.timestamp and record.timestamp > 0 else None)
                    dead.append((record.topic, record.partition, record.offset, reason,
                                 record.value, kafka_time))
                    continue
                alerts += 1
                matched = [r.name for r in self.config.receivers if r.match.matches(event)]
                if not matched:
                    log.info("alert %s (%s %s) matches no receiver", event.alert_id, event.rule,
                             event.status)
                rows += [OutboxRow(idempotency_key(event, name), name, event, record.partition,
                                   record.offset) for name in matched]
        new = enqueue(conn, rows, dead)
        log.info("stored %d alert(s): %d deliveries queued, %d duplicate(s) ignored, %d invalid",
                 alerts, new, len(rows) - new, len(dead))
        return new
