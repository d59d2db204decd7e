"""Delivery workers: due outbox rows -> HTTP, every attempt logged, retries with backoff.

Each worker holds one row lock (``FOR UPDATE SKIP LOCKED``) for the length of one HTTP call, so
workers and dispatcher replicas never send the same row concurrently; a crash mid-call releases
the lock and the row is sent again (at-least-once: receivers deduplicate on ``Idempotency-Key``).
"""

from __future__ import annotations

import logging
import random
import threading
import time

import httpx
import psycopg

from parrotwatch.contracts.events import AlertEventV1
from services.dispatcher.config import Receiver, ReceiversFile
from services.dispatcher.outbox import Claimed, claim, record
from services.dispatcher.payloads import build_request
from services.dispatcher.retry import is_retryable, is_success, next_delay, retry_after_s

log = logging.getLogger(__name__)


class DeliveryWorker:
    """``run()`` until ``stop`` is set; ``wake`` cuts the idle wait short when rows arrive."""

    def __init__(self, name: str, config: ReceiversFile, database_url: str, stop: threading.Event,
                 wake: threading.Event, rng: random.Random | None = None) -> None:
        self.name = name
        self.receivers: dict[str, Receiver] = {r.name: r for r in config.receivers}
        self.policy = config.delivery
        self.database_url = database_url
        self.stop = stop
        self.wake = wake
        self.rng = rng or random.Random()
        self.client = httpx.Client(follow_redirects=False)

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.database_url, autocommit=True)
                    busy = self.deliver_one(conn)
                    failures = 0
                except psycopg.Error as exc:
                    failures += 1
                    delay = min(2.0 ** failures, 30.0)
                    log.error("%s: database error (%s); retrying in %.0f s", self.name, exc, delay)
                    if conn is not None:
                        conn.close()
                    conn = None
                    self.stop.wait(delay)
                    continue
                if not busy and self.wake.wait(self.policy.poll_interval_s):
                    self.wake.clear()
        finally:
            self.client.close()
            if conn is not None:
                conn.close()

    def deliver_one(self, conn: psycopg.Connection) -> bool:
        """Claim one due row and attempt it; False when nothing is due."""
        with conn.transaction():
            row = claim(conn, list(self.receivers))
            if row is None:
                return False
            self._attempt(conn, row)
        return True

    def _attempt(self, conn: psycopg.Connection, row: Claimed) -> None:
        receiver = self.receivers[row.receiver]
        attempt = row.attempts + 1
        status, error, retry_after = None, None, None
        started = time.perf_counter()
        try:
            event = AlertEventV1.model_validate(row.event)
            request = build_request(receiver, event, row.key)
        except Exception as exc:  # a stored row we cannot turn into a request: never retryable
            log.exception("%s: cannot build the request for %s to %s", self.name, row.key, receiver.name)
            record(conn, row, outcome="dead", status_code=None, error=f"cannot build request: {exc!r}",
                   latency_ms=0.0)
            return
        try:
            response = self.client.post(
                request.url, content=request.body, headers=request.headers | {
                    "X-Parrotwatch-Delivery-Attempt": str(attempt)},
                timeout=httpx.Timeout(receiver.timeout_s, connect=receiver.connect_timeout_s))
            status = response.status_code
            if not is_success(status):
                error = f"HTTP {status}: {response.text[:500]}"
                retry_after = retry_after_s(response.headers.get("Retry-After"))
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        latency_ms = (time.perf_counter() - started) * 1000
        where = f"{event.rule} {event.status} alert {event.alert_id} -> {receiver.name}"
        if status is not None and is_success(status):
            record(conn, row, outcome="delivered", status_code=status, error=None, latency_ms=latency_ms)
            log.info("delivered %s (HTTP %d, attempt %d, %.0f ms)", where, status, attempt, latency_ms)
        elif not is_retryable(status) or attempt >= self.policy.max_attempts:
            record(conn, row, outcome="dead", status_code=status, error=error, latency_ms=latency_ms)
            why = "rejected, not retryable" if not is_retryable(status) else "out of attempts"
            log.error("DELIVERY DEAD (%s) after %d attempt(s): %s: %s [key %s]. Fix the receiver, then "
                      "`python -m services.dispatcher --receivers FILE --requeue-dead`",
                      why, attempt, where, error, row.key)
        else:
            delay = next_delay(attempt, self.policy.backoff_base_s, self.policy.backoff_cap_s,
                               retry_after, self.rng)
            record(conn, row, outcome="retry", status_code=status, error=error, latency_ms=latency_ms,
                   delay_s=delay)
            # attempts 1, 2, 4, 8, ... at WARNING (every attempt is in alert_delivery_log)
            level = logging.WARNING if attempt & (attempt - 1) == 0 else logging.DEBUG
            log.log(level, "delivery failed (attempt %d/%d): %s: %s; retry in %.1f s",
                    attempt, self.policy.max_attempts, where, error, delay)
