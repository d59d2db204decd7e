"""Delivery engine: due outbox rows -> HTTP, one lane per receiver, every attempt logged.

Each receiver has its own lane: its own HTTP client, its own database connection and at most
``concurrency`` (default ``delivery.workers``) requests in flight. A receiver that is down,
refuses or never answers only ever fills its own lane; the other receivers' deliveries go on
at their own pace. All lanes run as asyncio tasks in one thread.

No transaction is open during an HTTP call. A lane leases due rows with one short statement
(:data:`~parrotwatch.services.dispatcher.outbox.CLAIM_SQL`: ``locked_until = now + timeout_s +
lease_margin_s``, ``claimed_by`` = a token), sends them, and records each outcome with another
(:data:`~parrotwatch.services.dispatcher.outbox.RECORD_SQL`, fenced by the token). A dispatcher that dies
mid-call leaves leases that expire; the rows are then claimed again (at-least-once: receivers
deduplicate on ``Idempotency-Key``). Workers of several dispatcher replicas never send one row
concurrently while its lease holds.

A failure in one delivery is that delivery's outcome (:mod:`parrotwatch.services.dispatcher.attempt`), a
failure to record it is logged and retried, and a database outage pauses the lane with backoff:
nothing here stops the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from dataclasses import dataclass, field

import httpx
import psycopg

from parrotwatch.services.dispatcher.attempt import Outcome, attempt
from parrotwatch.services.dispatcher.config import Receiver, ReceiversFile
from parrotwatch.services.dispatcher.outbox import (
    CLAIM_SQL,
    RECORD_SQL,
    Claimed,
    claim_params,
    new_token,
    record_params,
)
from parrotwatch.services.dispatcher.redact import storable_text

log = logging.getLogger(__name__)
STATEMENT_TIMEOUT_MS = 15_000


@dataclass(eq=False)
class Lane:
    """One receiver's share of the engine."""

    receiver: Receiver
    limit: int
    lease_s: float
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: set[asyncio.Task] = field(default_factory=set)
    conn: psycopg.AsyncConnection | None = None
    conn_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: httpx.AsyncClient | None = None


class DeliveryEngine:
    """``run()`` (a thread's target) until ``stop`` is set; ``wake()`` (any thread) cuts the idle
    wait short when rows arrive. ``run_once()`` sends what is due now and returns (tests, tools)."""

    def __init__(self, config: ReceiversFile, database_url: str, stop: threading.Event,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.policy = config.delivery
        self.database_url = database_url
        self.stop = stop
        self.rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lanes: list[Lane] = []

    # -- entry points ---------------------------------------------------------------------------
    def run(self) -> None:
        asyncio.run(self._main())

    def run_once(self) -> int:
        """Claim every lane's due rows (up to its limit), send them, record; returns how many."""
        return asyncio.run(self._once())

    def wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        for lane in self._lanes:
            lane.wake.set()

    # -- the loop ---------------------------------------------------------------------------------
    def _make_lanes(self) -> list[Lane]:
        lanes = []
        for r in self.config.receivers:
            limit = r.max_in_flight(self.policy)
            lane = Lane(r, limit, r.timeout_s + self.policy.lease_margin_s)
            lane.client = httpx.AsyncClient(follow_redirects=False, limits=httpx.Limits(
                max_connections=limit, max_keepalive_connections=limit))
            lanes.append(lane)
        return lanes

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._lanes = self._make_lanes()
        try:
            watcher = asyncio.create_task(self._watch_stop())
            await asyncio.gather(*(self._run_lane(lane) for lane in self._lanes))
            watcher.cancel()
        finally:
            await self._close()
            self._loop = None

    async def _once(self) -> int:
        self._lanes = self._make_lanes()
        try:
            sent = 0
            for lane in self._lanes:
                for row in await self._claim(lane, lane.limit):
                    self._spawn(lane, row)
                    sent += 1
            await asyncio.gather(*(t for lane in self._lanes for t in lane.in_flight))
            return sent
        finally:
            await self._close()

    async def _watch_stop(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(0.2)
        self._wake_all()

    async def _run_lane(self, lane: Lane) -> None:
        failures = 0
        while not self.stop.is_set():
            free = lane.limit - len(lane.in_flight)
            if free > 0:
                try:
                    for row in await self._claim(lane, free):
                        self._spawn(lane, row)
                    failures = 0
                except Exception as exc:  # noqa: BLE001 (an outage or a bug: pause this lane only)
                    failures += 1
                    delay = min(2.0 ** failures, 30.0)
                    log.error("lane %s: cannot claim deliveries (%s: %s); retrying in %.0f s",
                              lane.receiver.name, type(exc).__name__, storable_text(str(exc), 300),
                              delay)
                    await self._drop_conn(lane)
                    await self._sleep(lane, delay)
                    continue
            await self._sleep(lane, self.policy.poll_interval_s)
        if lane.in_flight:  # finish what was sent, bounded; the rest is sent again after its lease
            await asyncio.wait(lane.in_flight, timeout=min(lane.receiver.timeout_s + 5.0, 25.0))

    async def _sleep(self, lane: Lane, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(lane.wake.wait(), seconds)
        lane.wake.clear()

    def _spawn(self, lane: Lane, row: Claimed) -> None:
        task = asyncio.create_task(self._deliver(lane, row), name=f"deliver-{row.key[:12]}")
        lane.in_flight.add(task)

        def done(t: asyncio.Task) -> None:
            lane.in_flight.discard(t)
            lane.wake.set()

        task.add_done_callback(done)

    # -- one delivery -------------------------------------------------------------------------------
    async def _deliver(self, lane: Lane, row: Claimed) -> None:
        try:
            outcome = await attempt(lane.client, lane.receiver, row, self.policy, self.rng)
        except Exception:  # noqa: BLE001 (attempt() does not raise; belt and braces)
            log.exception("delivery %s to %s: unexpected error", row.key, lane.receiver.name)
            outcome = Outcome("dead", None, "internal error (see the dispatcher log)", 0.0,
                              why_dead="internal error")
        await self._record(lane, row, outcome)
        _log_outcome(lane.receiver, row, outcome, self.policy.max_attempts)

    async def _record(self, lane: Lane, row: Claimed, outcome: Outcome) -> None:
        """Record ``outcome``; a database outage is retried until the lease would end (after that
        the row is claimed and sent again anyway); a data error is recorded as a bare reason."""
        params = record_params(row, outcome=outcome.outcome, status_code=outcome.status_code,
                               error=outcome.error, latency_ms=outcome.latency_ms,
                               delay_s=outcome.delay_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + lane.lease_s
        delay = 0.5
        while True:
            try:
                conn = await self._conn(lane)
                cur = await conn.execute(RECORD_SQL, params)
                if await cur.fetchone() is None:
                    log.warning("delivery %s to %s: lease lost before its outcome (%s) was recorded;"
                                " another claim owns it now", row.key, lane.receiver.name,
                                outcome.outcome)
                return
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                await self._drop_conn(lane)
                if loop.time() + delay > deadline:
                    log.error("delivery %s to %s: cannot record its outcome (%s); it will be sent "
                              "again when its lease ends", row.key, lane.receiver.name, exc)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as exc:  # noqa: BLE001 (a data error: record the failure without it)
                if params.get("error") == "outcome not storable":
                    log.exception("delivery %s to %s: cannot record its outcome", row.key,
                                  lane.receiver.name)
                    return
                log.error("delivery %s to %s: outcome not storable (%s); recording it without "
                          "its error text", row.key, lane.receiver.name, type(exc).__name__)
                params["error"] = "outcome not storable"

    # -- database -------------------------------------------------------------------------------
    async def _claim(self, lane: Lane, limit: int) -> list[Claimed]:
        conn = await self._conn(lane)
        params = claim_params([lane.receiver.name], limit, lane.lease_s, new_token())
        cur = await conn.execute(CLAIM_SQL, params)
        return [Claimed(*r) for r in await cur.fetchall()]

    async def _conn(self, lane: Lane) -> psycopg.AsyncConnection:
        async with lane.conn_lock:
            if lane.conn is None or lane.conn.closed:
                lane.conn = await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, connect_timeout=10,
                    application_name=f"parrotwatch-dispatcher:{lane.receiver.name}"[:63])
                await lane.conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            return lane.conn

    async def _drop_conn(self, lane: Lane) -> None:
        conn, lane.conn = lane.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                await conn.close()

    async def _close(self) -> None:
        for lane in self._lanes:
            for task in list(lane.in_flight):
                task.cancel()
            await self._drop_conn(lane)
            if lane.client is not None:
                await lane.client.aclose()


def _log_outcome(receiver: Receiver, row: Claimed, outcome: Outcome, max_attempts: int) -> None:
    event = row.event if isinstance(row.event, dict) else {}
    where = storable_text(f"{event.get('rule')} {event.get('status')} alert {event.get('alert_id')} "
                          f"-> {receiver.name}", 300)
    number = row.attempts + 1
    if outcome.outcome == "delivered":
        log.info("delivered %s (HTTP %d, attempt %d, %.0f ms)", where, outcome.status_code, number,
                 outcome.latency_ms)
    elif outcome.outcome == "dead":
        log.error("DELIVERY DEAD (%s) after %d attempt(s): %s: %s [key %s]. Fix the receiver, then "
                  "`python -m parrotwatch.services.dispatcher --receivers FILE --requeue-dead`",
                  outcome.why_dead, number, where, outcome.error, row.key)
    else:
        # attempts 1, 2, 4, 8, ... at WARNING (every attempt is in alert_delivery_log)
        level = logging.WARNING if number & (number - 1) == 0 else logging.DEBUG
        log.log(level, "delivery failed (attempt %d/%d): %s: %s; retry in %.1f s",
                number, max_attempts, where, outcome.error, outcome.delay_s)
