"""A thin wrapper around kafka-python's ``KafkaProducer`` that reports only acknowledged writes.

The API answers 2xx only after the broker acknowledged every record (``acks="all"``, idempotent
producer). When no broker answers at start-up the producer is created lazily: every call retries
the creation, so the API recovers by itself once Kafka is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from parrotwatch.settings import Settings
from parrotwatch.stack.kafka_auth import client_options

log = logging.getLogger(__name__)

Record = tuple[bytes, bytes]
"""``(key, value)`` of one Kafka message."""


class EventSink(Protocol):
    """What the routes need from a producer (tests substitute an in-memory recorder)."""

    def send_all(self, topic: str, records: Sequence[Record]) -> None:
        """Write every record and return once all are acknowledged; raise ``KafkaError`` else."""

    def ping(self, timeout_s: float = 2.0) -> bool:
        """True when a metadata request to the cluster succeeds within ``timeout_s``."""


class KafkaEventProducer:
    """Idempotent, ``acks="all"`` producer with timeouts short enough for an HTTP request.

    ``bootstrap_timeout_ms`` bounds the creation of the underlying producer, ``max_block_ms`` the
    wait for topic metadata in ``send`` and ``ack_timeout_s`` the whole acknowledgement wait of one
    :meth:`send_all`, so a down broker surfaces as ``KafkaError`` within about ten seconds.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        max_request_bytes: int = 1_048_576,
        bootstrap_timeout_ms: int = 3_000,
        request_timeout_ms: int = 5_000,
        max_block_ms: int = 5_000,
        delivery_timeout_ms: int = 8_000,
        ack_timeout_s: float = 9.0,
        client_id: str = "parrotwatch-api",
        security: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.ack_timeout_s = ack_timeout_s
        self._config = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 0,
            "max_request_size": max_request_bytes,
            "bootstrap_timeout_ms": bootstrap_timeout_ms,
            "request_timeout_ms": request_timeout_ms,
            "max_block_ms": max_block_ms,
            "delivery_timeout_ms": delivery_timeout_ms,
            **(security or {}),  # kafka_auth.client_options minus bootstrap_servers
        }
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._last_failure: tuple[float, KafkaError] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaEventProducer:
        # Room for the key and the record-batch framing around the largest accepted event.
        security = {k: v for k, v in client_options(settings).items() if k != "bootstrap_servers"}
        return cls(settings.bootstrap, max_request_bytes=settings.max_event_bytes + 65_536,
                   security=security)

    @property
    def connected(self) -> bool:
        """Whether the underlying ``KafkaProducer`` exists (it was created against a broker)."""
        return self._producer is not None

    def connect(self, bootstrap_timeout_ms: int | None = None) -> KafkaProducer:
        """The underlying producer, created now if needed; raises ``KafkaError`` without a broker.

        Callers that waited while another thread's attempt failed get that failure at once
        instead of queueing one more bootstrap timeout each.
        """
        asked_at = time.monotonic()
        with self._lock:
            if self._closed:
                raise KafkaError("the producer is closed (the API is shutting down)")
            if self._producer is not None:
                return self._producer
            if self._last_failure is not None and self._last_failure[0] >= asked_at:
                cause = self._last_failure[1]
                raise KafkaError(f"Kafka at {self.bootstrap} is unreachable: {cause}")
            config = dict(self._config)
            if bootstrap_timeout_ms is not None:
                config["bootstrap_timeout_ms"] = bootstrap_timeout_ms
            try:
                self._producer = KafkaProducer(**config)
            except KafkaError as exc:
                self._last_failure = (time.monotonic(), exc)
                raise
            log.info("Kafka producer connected to %s", self.bootstrap)
            return self._producer

    def try_connect(self, bootstrap_timeout_ms: int | None = None) -> bool:
        """:meth:`connect`, logging instead of raising; used at start-up and by :meth:`ping`."""
        try:
            self.connect(bootstrap_timeout_ms)
        except KafkaError as exc:
            log.warning("Kafka at %s is not reachable yet (%s); will retry per request",
                        self.bootstrap, exc)
            return False
        return True

    def send_all(self, topic: str, records: Sequence[Record]) -> None:
        producer = self.connect()
        deadline = time.monotonic() + self.ack_timeout_s
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        for future in futures:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaTimeoutError(f"no acknowledgement within {self.ack_timeout_s:g} s")
            future.get(timeout=remaining)

    def ping(self, timeout_s: float = 2.0) -> bool:
        producer = self._producer
        if producer is None:
            # Creating the producer bootstraps, i.e. fetches metadata from the cluster.
            return self.try_connect(bootstrap_timeout_ms=int(timeout_s * 1000))
        # kafka-python has no public "refresh metadata now"; this is what its own
        # ``KafkaProducer._wait_on_metadata`` does: flag an update, wake the loop, wait.
        done = threading.Event()
        future = producer._metadata.request_update()
        future.add_both(lambda *_: done.set())
        done.wait(timeout_s)
        return future.is_done and future.succeeded()

    def close(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=timeout_s)
