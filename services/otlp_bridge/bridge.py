"""The bridge's loop: poll a batch of OTLP records, write what they give, then commit the offsets.

Per polled batch: :func:`~.translate.translate` every record (never raises), write the events to
``llm.inference.v1`` and the dead letters to ``llm.dlq.v1`` with ``acks=all``, and only once Kafka
acknowledged all of them commit the batch's offsets. A crash or an outage between the two re-reads
the batch: the events are written again under the same keys (request id = trace id - span id),
and the stream's sink stores a request id once, so a replay adds nothing. Only an outage (Kafka not
acknowledging) re-reads a batch; a record's content never can.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from parrotwatch.services.api.producer import KafkaEventProducer
from parrotwatch.services.otlp_bridge.translate import Encoding, translate
from parrotwatch.settings import DLQ_TOPIC, INFERENCE_TOPIC, Settings
from parrotwatch.stack.kafka_auth import client_options, consumer_when_reachable

log = logging.getLogger(__name__)
#: records per poll (each at most the broker's message limit), so that what one poll gives is
#: acknowledged well within the producer's 120 s bound
MAX_POLL_RECORDS = 50


@dataclass
class BridgeCounts:
    """What the bridge has done since it started."""

    records: int = 0  # OTLP records translated (a re-read batch counts again)
    events: int = 0  # inference events written
    dead_letters: int = 0
    skipped_spans: int = 0  # non-LLM spans
    retries: int = 0  # batches re-read after Kafka did not acknowledge


class OtlpBridge:
    """Consume ``topic`` (OTLP traces records in ``encoding``) as ``group`` until ``stop`` is set."""

    def __init__(self, settings: Settings, stop: threading.Event, *, topic: str | None = None,
                 encoding: Encoding | None = None, group: str = "parrotwatch-otlp-bridge") -> None:
        self.settings = settings
        self.stop = stop
        self.topic = topic or settings.topic(settings.otlp_kafka_topic)
        self.encoding: Encoding = encoding or settings.otlp_kafka_encoding
        self.group = f"{settings.topic_prefix}{group}"
        self.counts = BridgeCounts()
        security = {k: v for k, v in client_options(settings).items() if k != "bootstrap_servers"}
        # room for the key and the record-batch framing around the largest event; a polled batch
        # may take a while to acknowledge (the API's 9 s bound is for one HTTP request)
        self.producer = KafkaEventProducer(
            settings.bootstrap, max_request_bytes=settings.max_event_bytes + 65_536,
            client_id="parrotwatch-otlp-bridge", security=security, ack_timeout_s=120.0,
            delivery_timeout_ms=55_000, request_timeout_ms=20_000)

    def _consumer(self) -> KafkaConsumer | None:
        return consumer_when_reachable(
            self.stop, self.topic, self.settings, log, group_id=self.group,
            client_id="parrotwatch-otlp-bridge", enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="earliest",
            max_partition_fetch_bytes=self.settings.max_request_bytes,
            # a polled batch must be acknowledged within ack_timeout_s, whatever it holds
            max_poll_records=MAX_POLL_RECORDS, session_timeout_ms=10_000, heartbeat_interval_ms=3_000)

    def run(self) -> None:
        consumer = self._consumer()
        if consumer is None:
            return
        log.info("bridging %s (%s) to %s as group %s", self.topic, self.encoding,
                 self.settings.topic(INFERENCE_TOPIC), self.group)
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    batch = consumer.poll(timeout_ms=500)
                except Exception as exc:  # noqa: BLE001 (keep polling)
                    log.warning("Kafka poll failed (%s: %s); polling again in 1 s", type(exc).__name__, exc)
                    self.stop.wait(1.0)
                    continue
                if not batch:
                    continue
                try:
                    self.write(batch)
                except Exception as exc:  # noqa: BLE001 (an outage, or a bug: re-read, never exit)
                    failures += 1
                    self.counts.retries += 1
                    delay = min(2.0 ** failures, 30.0)
                    log.error("the batch was not written (%s: %s); re-reading it in %.0f s",
                              type(exc).__name__, exc, delay)
                    assigned = consumer.assignment()
                    for tp, records in batch.items():  # not committed: read it again (if still ours)
                        if tp in assigned:
                            consumer.seek(tp, records[0].offset)
                    self.stop.wait(delay)
                    continue
                failures = 0
                self._commit(consumer, batch)
        finally:
            consumer.close(autocommit=False, timeout_ms=5_000)
            self.producer.close()
            log.info("bridge stopped: %s", self.counts)

    def write(self, batch: dict) -> None:
        """Translate and write one polled batch; returns once Kafka acknowledged every message."""
        events, dead = [], []
        for records in batch.values():
            for record in records:
                out = translate(record, encoding=self.encoding,
                                app_attribute=self.settings.otlp_app_attribute,
                                max_event_bytes=self.settings.max_event_bytes,
                                redact_pii=self.settings.redact_pii)
                events += out.events
                dead += out.dead
                self.counts.records += 1
                self.counts.skipped_spans += out.skipped
        if events:
            self.producer.send_all(self.settings.topic(INFERENCE_TOPIC), events)
        if dead:
            self.producer.send_all(self.settings.topic(DLQ_TOPIC), dead)
        self.counts.events += len(events)
        self.counts.dead_letters += len(dead)

    def _commit(self, consumer: KafkaConsumer, batch: dict) -> None:
        offsets = {tp: OffsetAndMetadata(records[-1].offset + 1, "", -1) for tp, records in batch.items()}
        try:
            consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("offset commit failed (%s); the batch may be read again, duplicates collapse "
                        "on their request ids", exc)
