"""A cached, bounded view of whether Kafka answers, for ``/healthz`` and ``/readyz``.

A probe must answer within its timeout (1 s by default in Kubernetes) whatever Kafka does, and
it must not queue behind request work. So the Kafka check (a metadata request, up to
:data:`PING_TIMEOUT_S`) runs in a thread of its own, at most one at a time, at most once per
:data:`REFRESH_AFTER_S`; a probe reads the last result, ``/readyz`` waiting at most
:data:`READY_WAIT_S` for a check under way.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from parrotwatch.services.api.producer import EventSink

REFRESH_AFTER_S = 2.0
PING_TIMEOUT_S = 2.0
READY_WAIT_S = 0.5
#: a result older than this (the check itself hangs) no longer counts as ready
STALE_AFTER_S = 15.0


@dataclass(frozen=True)
class KafkaState:
    """The last finished check: ``ok`` is None before the first one; ``age_s`` its age."""

    ok: bool | None
    age_s: float | None


class KafkaReadiness:
    """Last result of ``producer.ping``, refreshed in the background when probes ask."""

    def __init__(self) -> None:
        self._ok: bool | None = None
        self._checked_at: float | None = None
        self._task: asyncio.Future[bool] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-ready")

    def record(self, ok: bool) -> None:
        """Store a result obtained elsewhere (the connection attempt at start-up)."""
        self._ok, self._checked_at = ok, time.monotonic()

    def state(self) -> KafkaState:
        if self._checked_at is None:
            return KafkaState(None, None)
        return KafkaState(self._ok, time.monotonic() - self._checked_at)

    def _refresh(self, producer: EventSink) -> asyncio.Future[bool] | None:
        """The check under way, started now when none runs and the last one is stale."""
        if self._task is not None and not self._task.done():
            return self._task
        state = self.state()
        if state.age_s is not None and state.age_s < REFRESH_AFTER_S:
            return None
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(self._executor, producer.ping, PING_TIMEOUT_S)
        task.add_done_callback(self._done)
        self._task = task
        return task

    def _done(self, task: asyncio.Future[bool]) -> None:
        ok = not task.cancelled() and task.exception() is None and bool(task.result())
        self.record(ok)

    def peek(self, producer: EventSink) -> KafkaState:
        """The last result at once; starts a refresh in the background if it is stale."""
        self._refresh(producer)
        return self.state()

    async def check(self, producer: EventSink) -> KafkaState:
        """The last result, after waiting at most :data:`READY_WAIT_S` for a fresh one."""
        task = self._refresh(producer)
        if task is not None:
            await asyncio.wait({task}, timeout=READY_WAIT_S)
        return self.state()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
