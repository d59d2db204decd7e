"""Run an audit spec: :func:`run_audits` computes (no database), :func:`execute` records it.

``execute`` is what ``parrotwatch audit run`` and the scheduler call: it inserts the run as ``scheduled``,
takes the spec's PostgreSQL advisory lock (held on its own connection for the whole run, so two runs of one
spec never overlap, across processes and machines), marks it ``running``, runs the audits, stores metrics
and samples, writes the report, and ends it ``succeeded`` or ``failed`` with the error. A run that finds the
lock taken ends ``skipped`` at once, and so does a scheduled run whose firing time another scheduler
process has already run (so several schedulers of one spec run each firing once).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from parrotwatch.audits.results import AuditResult
from parrotwatch.audits.spec import AuditSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditRun:
    """The results of every audit of a spec, in spec order, and the wall time of the whole run."""

    spec: AuditSpec
    results: tuple[AuditResult, ...]
    seconds: float
    load_seconds: float

    def result(self, audit: str) -> AuditResult:
        for r in self.results:
            if r.audit == audit:
                return r
        raise KeyError(f"no {audit} result; ran {[r.audit for r in self.results]}")


def progress_bars(enabled: bool) -> Callable:
    """``bar(total, desc)``: a tqdm context manager (disabled when not ``enabled``)."""
    from tqdm.auto import tqdm

    @contextmanager
    def bar(total: int, desc: str):
        with tqdm(total=total, desc=desc, unit="item", disable=not enabled, leave=True) as b:
            yield b

    return bar


def run_audits(spec: AuditSpec, home: Path, progress: bool = True) -> AuditRun:
    """Load the spec's model(s) and data, run each configured audit, return the results."""
    from parrotwatch.audits.canary_exposure_audit import run_canary_exposure
    from parrotwatch.audits.extraction_audit import run_extraction
    from parrotwatch.audits.inputs import load_inputs
    from parrotwatch.audits.membership_audit import run_membership
    from parrotwatch.audits.pii_leakage_audit import run_pii_leakage
    from parrotwatch.audits.regurgitation_audit import run_regurgitation

    t0 = time.perf_counter()
    if spec.audits.pii_leakage is not None:  # a missing or malformed file fails before anything loads
        from parrotwatch.audits.pii_leakage_audit import read_distractors

        read_distractors(spec.audits.pii_leakage)
    inputs = load_inputs(spec, home, progress)
    loaded = time.perf_counter() - t0
    bar = progress_bars(progress)
    jobs = {"canary_exposure": run_canary_exposure, "membership": run_membership,
            "extraction": run_extraction, "regurgitation": run_regurgitation, "pii_leakage": run_pii_leakage}
    results = []
    for name, job in jobs.items():
        cfg = getattr(spec.audits, name)
        if cfg is not None:
            results.append(job(inputs, cfg, bar))
            log.info("audit %s of %s: %.1f s", name, spec.name, results[-1].seconds)
    return AuditRun(spec, tuple(results), time.perf_counter() - t0, loaded)


@dataclass(frozen=True)
class RunOutcome:
    """How :func:`execute` ended: ``status`` (succeeded, failed, skipped), the run, the report path."""

    run_id: int
    status: str
    run: AuditRun | None = None
    error: str | None = None
    report: Path | None = None


def execute(spec: AuditSpec, url: str, home: Path, *, trigger: str = "manual",
            scheduled_for: datetime | None = None, report: Path | None = None,
            report_dir: Path | None = None, progress: bool = True) -> RunOutcome:
    """Run ``spec`` once under its advisory lock and record it in the database at ``url``; the HTML report
    goes to ``report``, or to ``report_dir/<spec>-run<id>.html``, or nowhere."""
    from parrotwatch.audits.store import AuditStore

    store = AuditStore(url)
    run_id = store.create_run(spec, trigger=trigger, scheduled_for=scheduled_for)
    if report is None and report_dir is not None:
        report = Path(report_dir) / f"{spec.name}-run{run_id}.html"
    with store.spec_lock(spec.name) as held:
        if not held:
            other = store.running_run(spec.name)
            msg = f"skipped: run {other} of spec {spec.name!r} is still running" if other else \
                f"skipped: another process holds the lock of spec {spec.name!r}"
            store.finish(run_id, "skipped", error=msg)
            log.warning("audit run %d: %s", run_id, msg)
            return RunOutcome(run_id, "skipped", error=msg)
        done = store.ran_for(spec.name, scheduled_for, exclude=run_id) if scheduled_for else None
        if done is not None:  # another scheduler process already ran this firing
            msg = f"skipped: run {done} already ran spec {spec.name!r} for {scheduled_for.isoformat()}"
            store.finish(run_id, "skipped", error=msg)
            return RunOutcome(run_id, "skipped", error=msg)
        store.reap_abandoned(spec.name, keep=run_id)
        store.start(run_id)
        try:
            run = run_audits(spec, home, progress)
            store.save_results(run_id, run, spec.storage)
            if report is not None:
                from parrotwatch.audits.report import write_report

                write_report(run, report, run_id=run_id)
                store.set_report(run_id, report)
        except Exception as exc:  # recorded on the run, then re-raised for the caller to report
            error = "".join(traceback.format_exception_only(exc)).strip()
            store.finish(run_id, "failed", error=error[:4000])
            log.error("audit run %d of %s failed: %s", run_id, spec.name, error)
            raise
        store.finish(run_id, "succeeded")
    return RunOutcome(run_id, "succeeded", run, None, report)
