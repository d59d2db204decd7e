"""The audit scheduler service: runs each spec at the times of its cron ``schedule`` and records every run.

Cron syntax (croniter): 5 fields ``minute hour day-of-month month day-of-week``, or 6 with a leading
seconds field (``*/20 * * * * *`` = every 20 seconds, Quartz / Spring order), evaluated in UTC.

One thread per spec computes the next firing time, sleeps until then and calls
:func:`parrotwatch.audits.runner.execute`, which records the run (``scheduled`` -> ``running`` ->
``succeeded`` / ``failed``) under the spec's PostgreSQL advisory lock: two runs of one spec never overlap,
within a process (the thread runs one at a time) or across scheduler processes (the second one finds the
lock taken and records a ``skipped`` run). Firings missed while a run overran are not caught up: the next
firing is the first one after the run ends (logged as missed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from croniter import croniter

from parrotwatch.audits.spec import AuditSpec

log = logging.getLogger(__name__)


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first firing time of ``schedule`` strictly after ``after`` (UTC)."""
    return croniter(schedule, after.astimezone(UTC), second_at_beginning=True).get_next(datetime)


def missed_between(schedule: str, start: datetime, end: datetime) -> int:
    """Firings of ``schedule`` in (start, end]."""
    it, n = croniter(schedule, start.astimezone(UTC), second_at_beginning=True), 0
    while it.get_next(datetime) <= end:
        n += 1
    return n


Execute = Callable[[AuditSpec, datetime], object]


class Scheduler:
    """Fires ``execute(spec, scheduled_for)`` for each spec on its schedule until :meth:`stop`.

    ``now`` is the clock (UTC datetimes); ``execute`` errors are logged and the schedule goes on.
    """

    def __init__(self, specs: Sequence[AuditSpec], execute: Execute,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"spec names must be unique (each has its own lock and history): {names}")
        unscheduled = [s.name for s in specs if not s.schedule]
        if unscheduled:
            raise ValueError(f"spec(s) {unscheduled} have no 'schedule' (a cron string such as '0 3 * * *')")
        self.specs = list(specs)
        self._execute = execute
        self._now = now
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.fired: list[tuple[str, datetime]] = []  # (spec, scheduled_for) of every firing, in order

    def _loop(self, spec: AuditSpec) -> None:
        due = next_fire(spec.schedule, self._now())
        log.info("spec %s: next run at %s", spec.name, due.isoformat())
        while not self._stop.is_set():
            wait = (due - self._now()).total_seconds()
            if wait > 0 and self._stop.wait(wait):
                break
            self.fired.append((spec.name, due))
            try:
                self._execute(spec, due)
            except Exception:  # recorded on the run by execute; the service keeps its schedule
                log.exception("scheduled run of %s for %s failed", spec.name, due.isoformat())
            now = self._now()
            missed = missed_between(spec.schedule, due, now)
            if missed:
                log.warning("spec %s: the run for %s overran %d firing(s); next is the first after now",
                            spec.name, due.isoformat(), missed)
            due = next_fire(spec.schedule, max(now, due))

    def start(self) -> Scheduler:
        for spec in self.specs:
            t = threading.Thread(target=self._loop, args=(spec,), name=f"audit-{spec.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        """No new firing; runs in progress finish (see :meth:`join`)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        """Whether a spec's thread still runs (until :meth:`stop` and the run in progress ends)."""
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout)


def database_executor(url: str, home: Path, report_dir: Path | None) -> Execute:
    """``execute`` for the service: :func:`parrotwatch.audits.runner.execute` with trigger ``schedule`` and
    a report per run under ``report_dir`` (``<spec>-run<id>.html``)."""
    from parrotwatch.audits.runner import execute

    def run(spec: AuditSpec, scheduled_for: datetime):
        outcome = execute(spec, url, home, trigger="schedule", scheduled_for=scheduled_for,
                          report_dir=report_dir, progress=False)
        log.info("spec %s: run %d %s", spec.name, outcome.run_id, outcome.status)
        return outcome

    return run
