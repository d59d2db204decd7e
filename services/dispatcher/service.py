"""The dispatcher as one object: a consumer thread, a delivery thread (one lane per receiver, see
:mod:`.worker`) and a retention thread."""

from __future__ import annotations

import logging
import threading

import psycopg

from parrotwatch.services.dispatcher.config import ReceiversFile
from parrotwatch.services.dispatcher.consumer import AlertConsumer
from parrotwatch.services.dispatcher.outbox import pending_elsewhere
from parrotwatch.services.dispatcher.redact import redact_url
from parrotwatch.services.dispatcher.retention import RetentionJob
from parrotwatch.services.dispatcher.retry import expected_window_s
from parrotwatch.services.dispatcher.worker import DeliveryEngine
from parrotwatch.settings import ALERTS_TOPIC, Settings

log = logging.getLogger(__name__)


class Dispatcher:
    """``start()``, then ``stop()`` (or use it as a context manager). Tables must be migrated."""

    def __init__(self, settings: Settings, config: ReceiversFile, database_url: str) -> None:
        self.settings = settings
        self.config = config
        self.database_url = database_url
        self.stop_event = threading.Event()
        self.engine = DeliveryEngine(config, database_url, self.stop_event)
        self.consumer = AlertConsumer(settings, config, database_url, self.stop_event, self.engine.wake)
        self.retention = RetentionJob(config.retention, database_url, settings.topic(ALERTS_TOPIC),
                                      self.stop_event)
        self._threads: list[threading.Thread] = []
        self.failed = False

    def start(self) -> Dispatcher:
        policy = self.config.delivery
        for r in self.config.receivers:
            log.info("receiver %s: %s %s (match %s; %d in flight at most, %g s per attempt)", r.name,
                     r.kind, redact_url(r.url), r.match.model_dump(exclude_defaults=True) or "all",
                     r.max_in_flight(policy), r.timeout_s)
        window = expected_window_s(policy.max_attempts, policy.backoff_base_s, policy.backoff_cap_s)
        log.info("retries: up to %d attempts, backoff cap %g s: a receiver may be down about %.0f min "
                 "before deliveries are declared dead", policy.max_attempts, policy.backoff_cap_s,
                 window / 60)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for name, count in pending_elsewhere(conn, [r.name for r in self.config.receivers]).items():
                log.warning("%d pending deliveries for receiver %r, which is not configured: they wait "
                            "until it is", count, name)
        targets = [("consumer", self.consumer.run), ("delivery", self.engine.run),
                   ("retention", self.retention.run)]
        for name, target in targets:
            thread = threading.Thread(target=self._guard, args=(name, target), name=f"dispatcher-{name}")
            thread.start()
            self._threads.append(thread)
        return self

    def _guard(self, name: str, target) -> None:
        try:
            target()
        except BaseException:
            log.exception("dispatcher thread %s crashed; stopping the dispatcher", name)
            self.failed = True
            self.stop_event.set()
            self.engine.wake()
            raise

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped (a signal, ``stop()`` or a crashed thread); True if stopped."""
        return self.stop_event.wait(timeout)

    def wake(self) -> None:
        """Cut the delivery lanes' idle wait short (any thread)."""
        self.engine.wake()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.engine.wake()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                log.error("thread %s did not stop within %.0f s", thread.name, timeout)

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
