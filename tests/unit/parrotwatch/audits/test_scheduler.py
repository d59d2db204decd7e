"""The scheduler's timing logic (cron next-fire times, missed firings) and its loop in real time with a
stand-in for the audit run; tests/integration/test_audits.py runs real audits, processes and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.audits.scheduler import Scheduler, missed_between, next_fire
from parrotwatch.audits.spec import parse_spec

T0 = datetime(2025, 3, 1, 2, 59, 30, tzinfo=UTC)


def _spec(name: str = "s", schedule: str | None = "* * * * * *"):
    return parse_spec({"name": name, "model": "/m", "data": {"members": "m", "non_members": "n"},
                       "audits": {"membership": {}}, "schedule": schedule})


def test_next_fire_five_and_six_fields_in_utc():
    assert next_fire("0 3 * * *", T0) == datetime(2025, 3, 1, 3, 0, tzinfo=UTC)
    assert next_fire("* * * * *", T0) == datetime(2025, 3, 1, 3, 0, tzinfo=UTC)  # every minute
    assert next_fire("*/20 * * * * *", T0) == datetime(2025, 3, 1, 2, 59, 40, tzinfo=UTC)  # seconds first
    assert next_fire("*/20 * * * * *", T0 + timedelta(seconds=10)) == datetime(2025, 3, 1, 3, 0, tzinfo=UTC)
    # strictly after: a run that ends exactly on a firing time waits for the next one
    at_three = datetime(2025, 3, 1, 3, 0, tzinfo=UTC)
    assert next_fire("0 3 * * *", at_three) == at_three + timedelta(days=1)
    other_zone = T0.astimezone(datetime.now().astimezone().tzinfo)
    assert next_fire("0 3 * * *", other_zone) == datetime(2025, 3, 1, 3, 0, tzinfo=UTC)


def test_missed_firings_are_counted_in_the_half_open_interval():
    assert missed_between("* * * * *", T0, T0 + timedelta(minutes=3)) == 3
    assert missed_between("* * * * *", T0, T0 + timedelta(seconds=29)) == 0
    assert missed_between("*/20 * * * * *", T0, T0 + timedelta(seconds=30)) == 2  # :40 and :00


def test_scheduler_refuses_unscheduled_or_duplicate_specs():
    with pytest.raises(ValueError, match="no 'schedule'"):
        Scheduler([_spec(schedule=None)], execute=lambda s, t: None)
    with pytest.raises(ValueError, match="unique"):
        Scheduler([_spec("a"), _spec("a")], execute=lambda s, t: None)


def _wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.05)


def test_fires_on_every_second_and_a_failing_run_does_not_stop_the_schedule():
    calls: list[datetime] = []

    def execute(spec, due):
        calls.append(due)
        raise RuntimeError("boom")  # recorded by the real executor; the loop must go on

    scheduler = Scheduler([_spec(schedule="* * * * * *")], execute).start()
    started = time.monotonic()
    _wait_until(lambda: len(calls) >= 3, timeout=10)
    scheduler.stop()
    scheduler.join(5)
    took = time.monotonic() - started
    assert not scheduler.alive
    assert 3 <= len(calls) <= took + 1  # at most one firing per second
    assert all(t.microsecond == 0 and t.tzinfo is not None for t in calls)
    gaps = [(b - a).total_seconds() for a, b in zip(calls, calls[1:], strict=False)]
    # every second; a thread stalled for over a second on a loaded machine skips (never queues) a firing
    assert 1.0 in gaps and all(g == int(g) >= 1 for g in gaps), gaps


def test_an_overrunning_run_is_never_overlapped_and_missed_firings_are_skipped():
    running, overlaps, spans = threading.Lock(), [], []

    def execute(spec, due):
        if not running.acquire(blocking=False):
            overlaps.append(due)
            return
        start = time.monotonic()
        time.sleep(1.3)  # longer than the 1-second period
        spans.append((due, start, time.monotonic()))
        running.release()

    scheduler = Scheduler([_spec(schedule="* * * * * *")], execute).start()
    time.sleep(3.8)
    scheduler.stop()
    scheduler.join(5)
    assert not overlaps and len(spans) >= 2
    dues = [d for d, _, _ in spans]
    # the firing that came due during each 1.3 s run was skipped, not queued
    assert all((b - a).total_seconds() >= 2 for a, b in zip(dues, dues[1:], strict=False))
    assert all(s2 >= e1 for (_, _, e1), (_, s2, _) in zip(spans, spans[1:], strict=False))


def test_two_specs_run_on_their_own_schedules():
    seen: dict[str, int] = {"fast": 0, "slow": 0}
    scheduler = Scheduler([_spec("fast", "* * * * * *"), _spec("slow", "0 0 3 1 1 *")],
                          lambda spec, due: seen.__setitem__(spec.name, seen[spec.name] + 1)).start()
    _wait_until(lambda: seen["fast"] >= 2, timeout=10)
    scheduler.stop()
    scheduler.join(5)
    assert seen["fast"] >= 2 and seen["slow"] == 0
    assert {name for name, _ in scheduler.fired} == {"fast"}
