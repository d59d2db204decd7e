"""``parrotwatch review sample|purge|schedule`` and ``parrotwatch calibrate [apply|revoke|show]``:
the human review jobs (docs/review.md)."""

from __future__ import annotations

import logging
import signal
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, migrated_database, say

review_app = typer.Typer(help="Human review jobs: draw the review sample of each closed period, "
                              "purge expired review texts, run them on a schedule. See docs/review.md.",
                         no_args_is_help=True)
calibrate_app = typer.Typer(help="Calibrate the detectors against the reviewers' labels and store "
                                 "versioned records (no subcommand); apply, revoke or show their "
                                 "thresholds. See docs/review.md.",
                            invoke_without_command=True)

Seed = Annotated[int | None, typer.Option(help="Seed of the draw (default: a random one, recorded "
                                               "in review_samples.design).")]


def _utc(value: datetime | None) -> datetime | None:
    """A datetime option as UTC (a naive one is read as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _database(settings) -> str:
    return migrated_database(settings)


def _verbose_logs() -> None:
    logging.getLogger("parrotwatch.review").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@review_app.command()
def sample(
    period_start: Annotated[datetime | None, typer.Option(help="Draw this one period [start, end) "
                                                          "(UTC), closed or not, e.g. a demo's run.")] = None,
    period_end: Annotated[datetime | None, typer.Option(help="End of --period-start's period.")] = None,
    seed: Seed = None,
) -> None:
    """Draw the review set of every closed period and segment not drawn yet.

    Periods last review_period_hours, aligned to the Unix epoch (UTC), and count as closed once
    their end is older than the stream's watermark delay plus 15 minutes. Idempotent: a period
    already drawn is left alone, also by a concurrent run. Pool texts not drawn are deleted."""
    from parrotwatch.review.sample import sample_due, sample_period

    if (period_start is None) != (period_end is None):
        fail("give both --period-start and --period-end, or neither")
    settings = load_settings()
    url = _database(settings)
    try:
        if period_start is not None:
            run = sample_period(url, settings, _utc(period_start), _utc(period_end), seed=seed)
        else:
            run = sample_due(url, settings, seed=seed)
    except ValueError as exc:
        fail(exc)
    for o in run.outcomes:
        what = (f"{o.drawn:4d} drawn of {o.pool:5d} pooled ({o.population} requests), "
                f"{o.doubles} for two reviewers" if o.sample_id is not None else f"skipped: {o.skipped}")
        typer.echo(f"{o.model[:30]:30} {o.app[:20]:20} {o.period}  {what}")
    drawn = [o for o in run.outcomes if o.sample_id is not None]
    say(f"{len(drawn)} period(s) and segment(s) drawn, {run.drawn} review item(s), seed {run.seed}"
        if run.outcomes else "nothing to draw: no closed period with pool texts left")


@review_app.command()
def purge() -> None:
    """Delete the texts of expired review items and pool texts older than review_text_days
    (labels, items and statistics stay)."""
    from parrotwatch.review.sample import purge as run_purge

    settings = load_settings()
    out = run_purge(_database(settings), settings)
    typer.echo(f"deleted: {out.expired_texts} expired item text(s), {out.old_pool_texts} old pool "
               f"text(s), {out.late_pool_texts} pool text(s) of periods already drawn")


@review_app.command()
def schedule(
    cron: Annotated[str, typer.Option(help="When to run (UTC cron: 5 fields, or 6 with seconds "
                                           "first).")] = "0 * * * *",
    now: Annotated[bool, typer.Option("--now/--no-now", help="Run one round at start.")] = True,
    days: Annotated[float, typer.Option(min=0.01, help="Days of labels each calibration uses.")] = 7.0,
) -> None:
    """The review scheduler, in the foreground: sample, purge and calibrate on CRON.

    A failing step is logged and the others still run. Ctrl-C / SIGTERM: stops after the step
    in progress."""
    from datetime import timedelta

    from parrotwatch.review.calibration import calibrate_all
    from parrotwatch.review.sample import purge as run_purge
    from parrotwatch.review.sample import sample_due
    from parrotwatch.review.scheduler import ReviewScheduler

    settings = load_settings()
    url = _database(settings)
    _verbose_logs()

    def calibrate_recent():
        end = datetime.now(UTC)
        return calibrate_all(url, settings, start=end - timedelta(days=days), end=end)

    steps = [("sample", lambda: sample_due(url, settings)), ("purge", lambda: run_purge(url, settings)),
             ("calibrate", calibrate_recent)]
    try:
        scheduler = ReviewScheduler(cron, steps)
    except ValueError as exc:
        fail(exc)

    def stop(signum, _frame):
        say(f"signal {signum}: stopping after the step in progress")
        scheduler.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say(f"review scheduler: '{cron}' (UTC), sample + purge + calibrate over {days:g} day(s)")
    scheduler.run(at_start=now)


def _pct(value) -> str:
    return "" if value is None else f"{value:.3f}"


def _records_table(title: str, rows: list[dict]):
    from rich.table import Table

    table = Table(title=title)
    for name in ("version", "detector", "segment", "labels", "AUC", "kappa [CI]", "alpha",
                 "precision", "recall", "raw rate", "corrected [CI]", "threshold", "suggested"):
        table.add_column(name, justify="left" if name in ("detector", "segment") else "right")
    for r in rows:
        kappa = ("" if r.get("kappa") is None else
                 f"{r['kappa']:.2f} [{_pct(r.get('kappa_low'))}, {_pct(r.get('kappa_high'))}]")
        corrected = ("" if r.get("corrected_rate") is None else
                     f"{r['corrected_rate']:.3f} [{_pct(r.get('corrected_low'))}, "
                     f"{_pct(r.get('corrected_high'))}]")
        table.add_row(str(r["version"]), r["detector"], f"{r['model']}/{r['app']}",
                      f"{r['labelled']} ({r['doubly_labelled']}x2)", _pct(r.get("auc")), kappa,
                      _pct(r.get("alpha")), _pct(r.get("precision_at")), _pct(r.get("recall_at")),
                      _pct(r.get("raw_rate")), corrected, _pct(r.get("threshold")),
                      _pct(r.get("suggested_threshold")))
    return table


def _print(renderable) -> None:
    from rich.console import Console

    Console(width=200).print(renderable)


@calibrate_app.callback()
def calibrate(
    ctx: typer.Context,
    since: Annotated[datetime | None, typer.Option(help="Period start (UTC; default: 7 days before "
                                                   "--until).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Period end (UTC; default: now).")] = None,
    target_precision: Annotated[float | None, typer.Option(
        min=0.01, max=0.99, help="Precision the suggested threshold aims for (default: "
        "calibration_target_precision).")] = None,
    target_recall: Annotated[float | None, typer.Option(
        min=0.01, max=0.99, help="Aim the suggested threshold at this recall instead.")] = None,
    min_labels: Annotated[int, typer.Option(min=2, help="Fewest labelled items a segment needs "
                                                        "to be stored.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap intervals.")] = 0,
    publish: Annotated[bool, typer.Option("--publish/--no-publish", help="Publish calibration "
                                          "alerts to Kafka for the dispatcher.")] = True,
    alert: Annotated[bool | None, typer.Option(
        "--alerts/--no-alerts", help="Let the records fire or resolve calibration alerts "
        "(default: only when the window ends about now, not for a backfill).")] = None,
) -> None:
    """Calibrate each detector a label checks, per segment, against the review labels.

    Weighted by each item's inclusion probability: ROC AUC, precision and recall at the threshold
    in force, Cohen's kappa with its CI, Krippendorff's alpha, the threshold meeting the target,
    a calibration map, and the corrected rate of bad answers next to the raw flagged share.
    Stores one versioned record per detector and segment with enough labels, and alerts on low
    agreement or a raw rate that diverges from the corrected one."""
    if ctx.invoked_subcommand is not None:
        return
    from parrotwatch.review.calibration import calibrate_all

    if target_precision is not None and target_recall is not None:
        fail("give --target-precision or --target-recall, not both")
    settings = load_settings()
    url = _database(settings)
    try:
        run = calibrate_all(url, settings, start=_utc(since), end=_utc(until),
                            target_precision=target_precision, target_recall=target_recall,
                            min_labels=min_labels, seed=seed, publish=publish, alert=alert)
    except (ValueError, ImportError) as exc:
        fail(exc)
    title = f"Calibration {run.period_start:%Y-%m-%d %H:%M} .. {run.period_end:%Y-%m-%d %H:%M} UTC"
    if run.records:
        _print(_records_table(title, [r.columns | {"version": r.version} for r in run.records]))
    else:
        typer.echo(f"{title}: no record stored")
    for detector, model, app, why in run.skipped:
        say(f"not stored: {detector} on {model}/{app}: {why}")
    for event in run.alerts:
        say(f"alert {event.status}: {event.summary}")
    if run.alerts and publish and run.published < len(run.alerts):
        say(f"{len(run.alerts) - run.published} alert(s) stored but not published to Kafka (see the log)")
    if run.corrections and (run.corrections.scored or run.corrections.skipped):
        say(f"correction scores: {run.corrections.scored} stored, {run.corrections.skipped} skipped")
    if run.bad_rows:
        say(f"rows skipped: {dict(run.bad_rows)}")


@calibrate_app.command()
def apply(
    version: Annotated[int, typer.Argument(help="Calibration record version (`calibrate show`).")],
    by: Annotated[str, typer.Option("--by", help="Who applies it (kept in the audit trail).")],
) -> None:
    """Apply a record's suggested threshold to its detector's flags (the stream uses it when
    calibration_apply_thresholds is on); revokes the detector's previous one."""
    from parrotwatch.review.applied import ApplyError, apply_record
    from parrotwatch.review.sample import connect_utc

    settings = load_settings()
    with connect_utc(_database(settings)) as conn:
        try:
            new, previous = apply_record(conn, version, by)
        except ApplyError as exc:
            fail(exc)
    typer.echo(f"{new.detector}: threshold {new.threshold:.6g} from record {new.version} applied by "
               f"{new.applied_by} at {new.applied_at:%Y-%m-%d %H:%M:%S} UTC")
    if previous:
        typer.echo(f"revoked: threshold {previous.threshold:.6g} of record {previous.version} "
                   f"(applied by {previous.applied_by})")
    if not settings.calibration_apply_thresholds:
        say("note: the stream flags with the registry's thresholds until "
            "PARROTWATCH_CALIBRATION_APPLY_THRESHOLDS=true")


@calibrate_app.command()
def revoke(
    detector: Annotated[str, typer.Argument(help="Detector score, e.g. toxicity.")],
    by: Annotated[str, typer.Option("--by", help="Who revokes it.")],
) -> None:
    """Revoke a detector's applied threshold: its flags go back to the metric registry's."""
    from parrotwatch.review.applied import ApplyError
    from parrotwatch.review.applied import revoke as revoke_applied
    from parrotwatch.review.sample import connect_utc

    settings = load_settings()
    with connect_utc(_database(settings)) as conn:
        try:
            revoked = revoke_applied(conn, detector, by)
        except ApplyError as exc:
            fail(exc)
    logging.getLogger("parrotwatch.review").warning(
        "calibration threshold of %s (record %s) revoked by %s", detector, revoked.version, by)
    typer.echo(f"{detector}: threshold {revoked.threshold:.6g} of record {revoked.version} revoked by "
               f"{by.strip()} at {revoked.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@calibrate_app.command()
def show(limit: Annotated[int, typer.Option(min=1, help="Applied rows to list.")] = 20) -> None:
    """The latest record of each detector and segment, and the applied thresholds."""
    from parrotwatch.review.applied import history, latest_records
    from parrotwatch.review.sample import connect_utc

    with connect_utc(_database(load_settings())) as conn:
        records, applied = latest_records(conn), history(conn, limit)
    if records:
        _print(_records_table("Latest calibration records", records))
    else:
        typer.echo("no calibration record (run `parrotwatch calibrate`)")
    if not applied:
        typer.echo("no threshold applied")
    for a in applied:
        state = "live" if a.revoked_at is None else f"revoked {a.revoked_at:%Y-%m-%d %H:%M:%S}"
        typer.echo(f"{a.detector:16} {a.threshold:10.6g}  record {a.version:<6} by {a.applied_by[:30]:30} "
                   f"{a.applied_at:%Y-%m-%d %H:%M:%S}  {state}")
