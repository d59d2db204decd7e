"""PostgreSQL faults mid-stream on the real parts: stopped for 30 s, and paused (SIGSTOP of every
server process) for 60 s. Either way the stream recovers on its own, and exactly the produced set
is stored and published. Each test prints its time to recover (from the database's return to
the next stored batch)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from parrotwatch.traffic import generate_inference_events
from tests.integration.conftest import wait_for
from tests.integration.test_recovery import _assert_exactly, _stored

pytestmark = pytest.mark.integration

N = 3000


def _server_pids(data: Path) -> list[int]:
    """The postmaster (first line of postmaster.pid) and every child of it."""
    postmaster = int((data / "postmaster.pid").read_text().splitlines()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def _recovered_after(namespace, before: int, job) -> float:
    back = time.monotonic()
    wait_for(lambda: _stored(namespace) > before, timeout=240, what="a batch after the fault",
             job=job)
    return time.monotonic() - back


def _through_a_fault(namespace, stream_job, seed: int, fault) -> float:
    """Stream N events, run ``fault()`` once the first batches are stored, and check that exactly
    the produced set is stored and published; returns the time to the first batch after it."""
    events = generate_inference_events(N, seed=seed, id_prefix=f"fault{seed}")
    namespace.produce_events(events)
    job = stream_job(max_offsets_per_trigger=300).start()
    wait_for(lambda: _stored(namespace) >= 300, timeout=180, what="first batches", job=job)
    fault()
    before = _stored(namespace)
    assert before < N, "the job finished before the fault; the test proves nothing"
    recovery = _recovered_after(namespace, before, job)
    wait_for(lambda: _stored(namespace) >= N, timeout=300, what="all events", job=job)
    _assert_exactly(namespace, events)
    assert job.process.alive()
    return recovery


def test_postgres_stopped_for_30_s_mid_stream(namespace, stream_job, stack):
    def stop_30_s():
        stack.postgres.stop()
        try:
            time.sleep(30)
        finally:
            stack.postgres.start()

    recovery = _through_a_fault(namespace, stream_job, 41, stop_30_s)
    print(f"\npostgres stopped 30 s: first batch {recovery:.1f} s after it came back")


def test_postgres_paused_for_60_s_mid_stream(namespace, stream_job, stack):
    def pause_60_s():
        pids = _server_pids(stack.postgres.data)
        assert len(pids) > 1
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # a backend that was already exiting
                os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(60)
        finally:
            for pid in pids:  # the postmaster, resumed first, may reap a backend that was exiting
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    recovery = _through_a_fault(namespace, stream_job, 42, pause_60_s)
    print(f"\npostgres paused 60 s: first batch {recovery:.1f} s after it resumed")
