"""``parrotwatch audit run|schedule|list|show``: memorization audit jobs from a spec YAML (docs/audits.md)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, migrated_database

app = typer.Typer(help="Memorization audits (canary exposure, membership inference, extraction, "
                       "regurgitation) from a spec YAML; results in PostgreSQL and an HTML report. "
                       "See docs/audits.md.",
                  no_args_is_help=True)

SpecArg = Annotated[Path, typer.Argument(help="Audit spec YAML.", exists=True, dir_okay=False)]
Threads = Annotated[int | None, typer.Option(min=1, help="torch CPU threads (default: torch's; 1 is often "
                                                        "fastest on a busy machine).")]


def _database(settings) -> str:
    return migrated_database(settings, ' (or use `audit run --no-store`)')


def _load(paths: list[Path]):
    from parrotwatch.audits.spec import SpecError, load_spec

    try:
        return [load_spec(p) for p in paths]
    except SpecError as exc:
        fail(str(exc))


def _threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@app.command()
def run(
    spec_path: SpecArg,
    report: Annotated[Path | None, typer.Option("--report", dir_okay=False,
                                                help="Write the HTML report (plots inlined) here.")] = None,
    no_store: Annotated[bool, typer.Option("--no-store",
                                           help="Do not record the run in PostgreSQL.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
    threads: Threads = None,
) -> None:
    """Run the audits of SPEC once.

    Progress bars while it runs; then the run, its metrics and per-sample scores in PostgreSQL, a summary
    table on stdout and, with --report, the HTML report."""
    from parrotwatch.audits.report import summary_table, write_report
    from parrotwatch.audits.runner import execute, run_audits
    from parrotwatch.detectors.models.encoder import MissingModelError

    (spec,) = _load([spec_path])
    settings = load_settings()
    _threads(threads)
    try:
        if no_store:
            result = run_audits(spec, settings.home, progress=progress)
            if report:
                write_report(result, report)
            run_id = None
        else:
            outcome = execute(spec, _database(settings), settings.home, report=report,
                              progress=progress)
            if outcome.status == "skipped":
                fail(f"run {outcome.run_id} {outcome.error}")
            result, run_id = outcome.run, outcome.run_id
    except (ValueError, FileNotFoundError, ImportError, MissingModelError) as exc:
        fail(str(exc))
    typer.echo(summary_table(result))
    where = f"run {run_id} stored" if run_id is not None else "not stored"
    tail = f", report {report}" if report else ""
    typer.echo(f"{spec.name}: {where}, {result.seconds:.1f} s{tail}", err=True)


@app.command()
def schedule(
    specs: Annotated[list[Path], typer.Argument(help="Audit spec YAMLs, each with a 'schedule'.", exists=True,
                                                dir_okay=False)],
    reports: Annotated[Path | None, typer.Option(help="Directory for each run's HTML report (default "
                                                "PARROTWATCH_HOME/reports/audits).", file_okay=False)] = None,
    threads: Threads = None,
) -> None:
    """The scheduler service, in the foreground: runs each spec on its cron schedule.

    Cron in UTC: 5 fields, or 6 with seconds first. Every run is recorded; two runs of one spec never
    overlap (a PostgreSQL advisory lock per spec, across processes). Ctrl-C / SIGTERM: no new run, a run
    in progress finishes (a second Ctrl-C abandons it)."""
    from parrotwatch.audits.scheduler import Scheduler, database_executor, next_fire

    loaded = _load(specs)
    settings = load_settings()
    _threads(threads)
    url = _database(settings)
    report_dir = reports or settings.home / "reports" / "audits"
    try:
        scheduler = Scheduler(loaded, database_executor(url, settings.home, report_dir))
    except ValueError as exc:
        fail(str(exc))
    logging.getLogger("parrotwatch.audits").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    def stop(signum, _frame):
        typer.echo(f"signal {signum}: stopping after the runs in progress", err=True)
        scheduler.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from datetime import UTC, datetime

    for s in loaded:
        first = next_fire(s.schedule, datetime.now(UTC))
        typer.echo(f"{s.name}: '{s.schedule}', next run {first:%Y-%m-%d %H:%M:%S} UTC", err=True)
    scheduler.start()
    while scheduler.alive:
        scheduler.join(timeout=0.5)


@app.command("list")
def list_runs(
    spec: Annotated[str | None, typer.Option(help="Only runs of this spec name.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent runs to show.")] = 20,
) -> None:
    """The latest audit runs, newest first: id, spec, trigger, status, times, error."""
    from parrotwatch.audits.store import AuditStore

    rows = AuditStore(_database(load_settings())).runs(spec, limit)
    if not rows:
        typer.echo("no audit runs")
    for r in rows:
        took = (f"{(r.finished_at - r.started_at).total_seconds():.1f}s"
                if r.started_at and r.finished_at else "")
        when = (r.scheduled_for or r.created_at).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{r.id:6} {r.spec_name[:24]:24} {r.trigger:8} {r.status:9} {when} {took:>8}  "
                   f"{(r.error or '')[:80]}")


@app.command()
def show(run_id: Annotated[int, typer.Argument(help="Run id (see `audit list`).")]) -> None:
    """Every stored metric of one run."""
    from parrotwatch.audits.store import AuditStore

    rows = AuditStore(_database(load_settings())).metrics(run_id)
    if not rows:
        fail(f"run {run_id} has no metrics (unknown, still running, failed or skipped: see `audit list`)")
    for audit, metric, value, lo, hi, labels in rows:
        ci = "" if lo is None else f"  [{lo:.4g}, {hi:.4g}]"
        lab = ", ".join(f"{k}={v}" for k, v in labels.items())
        typer.echo(f"{audit:16} {metric:30} {lab[:60]:60} {'' if value is None else f'{value:.6g}'}{ci}")
