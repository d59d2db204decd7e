"""Audit jobs against the real PostgreSQL: ``parrotwatch audit run|list|show`` record runs, metrics and
bounded samples; the per-spec advisory lock keeps runs apart; two real scheduler processes on one
every-30-seconds spec (``*/30 * * * * *``, seconds first) run it twice, each firing once, never two runs at
once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from parrotwatch.audits.runner import execute
from parrotwatch.audits.spec import load_spec, parse_spec
from parrotwatch.audits.store import AuditStore
from parrotwatch.stack.local import REPO_ROOT
from tests.integration import filled_db

pytestmark = pytest.mark.integration

TESTBED = {"testbed": {"preset": "tiny", "seed": 0}, "batch_size": 64}
PERIOD = 30  # seconds between the scheduler test's firings (a 6-field cron with leading seconds)


@pytest.fixture(scope="module")
def audit_home(base_settings):
    """The session's audit PARROTWATCH_HOME with the tiny testbed built once (one torch thread: faster
    on a shared CPU); the filled database of the dashboard tests audits the same testbed there."""
    import torch

    from parrotwatch.audits.inputs import ensure_testbed
    from parrotwatch.audits.spec import TestbedRef

    home = filled_db.audit_home(base_settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ensure_testbed(home, TestbedRef(preset="tiny", seed=0), progress=False)
    yield home
    torch.set_num_threads(threads)


def _write_spec(path: Path, **spec) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_audit_run_cli_records_run_metrics_bounded_samples_and_report(namespace, audit_home, tmp_path,
                                                                      monkeypatch):
    from parrotwatch.cli.audit import app

    spec_path = _write_spec(
        tmp_path / "cli.yaml", name="cli-run", model=TESTBED, data="testbed",
        audits={"canary_exposure": {"n_sample": 500, "n_fresh": 40},
                "membership": {"methods": ["loss", "min_k"], "n_bootstrap": 200},
                "extraction": {"prefix_tokens": 32, "min_suffix_tokens": 10}},
        storage={"max_samples_per_audit": 50})
    monkeypatch.setenv("PARROTWATCH_DATABASE_URL", namespace.database_url)
    monkeypatch.setenv("PARROTWATCH_HOME", str(audit_home))
    report = tmp_path / "audit.html"
    result = CliRunner().invoke(app, ["run", str(spec_path), "--report", str(report), "--no-progress",
                                      "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "method=loss" in result.stdout and "extractable_rate" in result.stdout

    (run,) = namespace.sql("SELECT id, spec_name, spec_hash, trigger, status, started_at < finished_at, "
                           "error, report_path FROM audit_runs")
    run_id = run[0]
    assert run[1:] == ("cli-run", load_spec(spec_path).spec_hash(), "manual", "succeeded", True, None,
                       str(report))
    assert report.read_text().count("data:image/png;base64,") == 3
    auc, low, high = namespace.sql("SELECT value, ci_low, ci_high FROM audit_metrics WHERE run_id = %s AND "
                                   "audit = 'membership' AND metric = 'auc' AND labels->>'method' = 'loss'",
                                   run_id)[0]
    assert 0.5 < auc <= 1 and low <= auc <= high
    exposure = dict(namespace.sql("SELECT labels->>'repetitions', value FROM audit_metrics WHERE run_id = %s "
                                  "AND metric = 'exposure_mean'", run_id))
    assert exposure["0"] <= 3 and (exposure["16"] + exposure["64"]) / 2 >= 10
    counts = dict(namespace.sql("SELECT audit, count(*) FROM audit_samples WHERE run_id = %s GROUP BY audit",
                                run_id))
    # canary_exposure: 4 canaries + 40 never-inserted; membership 128 texts, extraction ~120: bounded to 50
    assert counts == {"canary_exposure": 44, "membership": 50, "extraction": 50}
    labels = dict(namespace.sql("SELECT label, count(*) FROM audit_samples WHERE run_id = %s AND "
                                "audit = 'membership' GROUP BY label", run_id))
    assert labels == {"member": 25, "non-member": 25}

    listed = CliRunner().invoke(app, ["list"])
    assert listed.exit_code == 0 and f"{run_id:6} cli-run" in listed.stdout and "succeeded" in listed.stdout
    shown = CliRunner().invoke(app, ["show", str(run_id)])
    assert shown.exit_code == 0 and "auc" in shown.stdout and "method=loss" in shown.stdout


def test_a_run_never_overlaps_another_of_its_spec_and_failures_are_recorded(namespace, audit_home):
    url = namespace.database_url
    spec = parse_spec({"name": "locked", "model": TESTBED, "data": "testbed",
                       "audits": {"membership": {"methods": ["loss"], "n_bootstrap": 50}}})
    store = AuditStore(url)
    dead = store.create_run(spec, "schedule")  # a process that died mid-run: 'running', but no lock
    store.start(dead)
    with store.spec_lock(spec.name) as held:  # another process is running the spec right now
        assert held
        skipped = execute(spec, url, audit_home, progress=False)
    assert skipped.status == "skipped" and f"run {dead} of spec 'locked' is still running" in skipped.error
    ran = execute(spec, url, audit_home, progress=False)
    assert ran.status == "succeeded" and ran.run.result("membership").metric("auc", method="loss").value > 0.5
    rows = dict((r[0], r[1:]) for r in namespace.sql("SELECT id, status, error FROM audit_runs"))
    assert rows[dead] == ("failed", "abandoned: its process ended without finishing the run")
    assert rows[skipped.run_id][0] == "skipped" and rows[ran.run_id] == ("succeeded", None)

    broken = parse_spec({"name": "broken", "model": "/nonexistent/model", "data": {"members": "/m",
                                                                                  "non_members": "/n"},
                         "audits": {"membership": {}}})
    with pytest.raises(Exception, match="not a local model directory"):
        execute(broken, url, audit_home, progress=False)
    status, error, finished = namespace.sql("SELECT status, error, finished_at IS NOT NULL FROM audit_runs "
                                            "WHERE spec_name = 'broken'")[0]
    assert status == "failed" and "not a local model directory" in error and finished


def test_two_scheduler_processes_run_each_firing_once_and_never_overlap(namespace, audit_home, tmp_path):
    spec_path = _write_spec(
        tmp_path / "sched.yaml", name="every-30s", schedule=f"*/{PERIOD} * * * * *", model=TESTBED,
        data="testbed", audits={  # light audits: the test is about the schedule, each run must fit its period
            "canary_exposure": {"n_sample": 200, "n_fresh": 40},
            "membership": {"methods": ["loss"], "n_bootstrap": 100, "blind_baseline": False,
                           "dataset_inference": False}},
        storage={"sample_runs_kept": 1})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")}
    env.update(PARROTWATCH_DATABASE_URL=namespace.database_url, PARROTWATCH_HOME=str(audit_home))
    reports = tmp_path / "reports"
    logs = [(tmp_path / f"scheduler-{i}.log").open("wb") for i in range(2)]  # noqa: SIM115 - closed below
    procs = [subprocess.Popen([sys.executable, "-m", "parrotwatch.cli", "audit", "schedule", str(spec_path),
                               "--threads", "1", "--reports", str(reports)],
                              cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    started, most_running, launched = time.monotonic(), 0, datetime.now(UTC)
    try:
        while time.monotonic() - started < 200:  # > 90 s to the first firing + 30 + a run
            assert all(p.poll() is None for p in procs), (tmp_path / "scheduler-0.log").read_text()
            counts = dict(namespace.sql("SELECT status, count(*) FROM audit_runs GROUP BY status"))
            most_running = max(most_running, counts.get("running", 0))
            if counts.get("succeeded", 0) >= 2:
                break
            time.sleep(0.5)
        took = time.monotonic() - started
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(120) for p in procs]
        for log in logs:
            log.close()
    output = "\n".join((tmp_path / f"scheduler-{i}.log").read_text() for i in range(2))
    assert codes == [0, 0], output
    runs = namespace.sql("SELECT id, status, trigger, scheduled_for, started_at, finished_at, pid, error "
                         "FROM audit_runs ORDER BY id")
    done = [r for r in runs if r[1] == "succeeded"]
    assert len(done) >= 2, (took, runs, output)
    # the first firing is at one of the first three boundaries after launch (the processes import torch
    # first), the next PERIOD later (below), and each run ends within its period; wall-clock time from
    # launch to the second run is PERIOD + up to 3 x PERIOD to the first boundary + start-up and run
    # time, so it is not asserted as such (a tight bound failed when a slow start met a late boundary)
    assert done[0][3] - launched < timedelta(seconds=3 * PERIOD), (launched, runs)
    assert all(r[5] - r[3] < timedelta(seconds=PERIOD) for r in done), (took, runs)
    assert most_running <= 1 and {r[2] for r in runs} == {"schedule"}
    assert {r[1] for r in runs} <= {"succeeded", "skipped"}, runs
    assert all(r[3].second % PERIOD == 0 and r[3].microsecond == 0 for r in runs)
    gaps = [(b[3] - a[3]).total_seconds() for a, b in zip(done, done[1:], strict=False)]
    assert gaps == [float(PERIOD)] * (len(done) - 1)
    # never two at once: the runs that got the lock, in start order, each start after the previous finished
    ran = sorted((r for r in runs if r[4] is not None), key=lambda r: r[4])
    assert all(b[4] >= a[5] for a, b in zip(ran, ran[1:], strict=False)), ran
    # each firing ran once, however many schedulers fired it; both processes took part
    fired: dict = {}
    for r in runs:
        fired.setdefault(r[3], []).append(r[1])
    assert all(statuses.count("succeeded") == 1 for statuses in fired.values()), fired
    assert len({r[6] for r in runs}) == 2 and any("skipped" in s for s in fired.values())
    # samples are kept for the newest run only (storage.sample_runs_kept: 1); a report per run
    assert [r[0] for r in namespace.sql("SELECT DISTINCT run_id FROM audit_samples")] == [done[-1][0]]
    assert sorted(p.name for p in reports.iterdir()) == sorted(f"every-30s-run{r[0]}.html" for r in done)
