"""``parrotwatch review schedule``: the review jobs on a cron cadence, in the foreground.

Each firing (croniter, UTC; 5 fields, or 6 with seconds first) runs, in order: the review sample
of every closed period (:func:`.sample.sample_due`), the retention purge (:func:`.sample.purge`)
and the calibration of the last days (:func:`.calibration.calibrate_all`). A step that fails is
logged with its error and the others still run; the loop goes on until :meth:`ReviewScheduler.stop`.
Firings missed while a round overran are not caught up. Two schedulers may run at once: the
sample is idempotent under its advisory locks, and a calibration run only adds a version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import croniter

log = logging.getLogger(__name__)

DEFAULT_CRON = "0 * * * *"  # every hour, on the hour

Step = tuple[str, Callable[[], object]]


def next_fire(cron: str, after: datetime) -> datetime:
    """The first firing of ``cron`` strictly after ``after`` (UTC).

    >>> next_fire("0 * * * *", datetime(2026, 1, 1, 10, 30, tzinfo=UTC)).isoformat()
    '2026-01-01T11:00:00+00:00'
    """
    return croniter(cron, after.astimezone(UTC), second_at_beginning=True).get_next(datetime)


def check_cron(cron: str) -> str:
    if not croniter.is_valid(cron, second_at_beginning=True):
        raise ValueError(f"{cron!r} is not a cron schedule: 5 fields (minute hour day month "
                         "weekday, e.g. '0 * * * *') or 6 with seconds first")
    return cron


def run_round(steps: list[Step]) -> dict[str, str]:
    """Run each step, logging its outcome; returns {step: "ok" | the error}. Never raises."""
    outcomes = {}
    for name, step in steps:
        try:
            result = step()
        except Exception as exc:  # noqa: BLE001 (one failing step must not stop the schedule)
            outcomes[name] = f"{type(exc).__name__}: {exc}"
            log.exception("review %s failed; the other steps go on", name)
        else:
            outcomes[name] = "ok"
            log.info("review %s done: %s", name, summary_of(result))
    return outcomes


def summary_of(result: object) -> str:
    for attr in ("records", "outcomes"):
        if hasattr(result, attr):
            n = len(getattr(result, attr))
            return f"{n} {attr}"
    return str(result)[:300]


class ReviewScheduler:
    """Fires the ``steps`` on ``cron`` until :meth:`stop`; ``now`` is the clock."""

    def __init__(self, cron: str, steps: list[Step],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.cron, self.steps, self.now = check_cron(cron), steps, now
        self._stop = threading.Event()
        self.rounds = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, at_start: bool = False, max_rounds: int | None = None) -> None:
        """Loop until stopped (or ``max_rounds`` rounds ran); ``at_start``: one round at once."""
        if at_start and not self._stop.is_set():
            self._round()
        while not self._stop.is_set() and (max_rounds is None or self.rounds < max_rounds):
            fire = next_fire(self.cron, self.now())
            log.info("next review round at %s UTC", fire.strftime("%Y-%m-%d %H:%M:%S"))
            while not self._stop.is_set():
                left = (fire - self.now()).total_seconds()
                if left <= 0:
                    break
                self._stop.wait(min(left, 5.0))
            if self._stop.is_set():
                break
            self._round()

    def _round(self) -> None:
        self.rounds += 1
        log.info("review round %d: %s", self.rounds, ", ".join(n for n, _ in self.steps))
        run_round(self.steps)
