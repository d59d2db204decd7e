"""``parrotwatch alerts list`` and ``parrotwatch alerts test-rules RULES.yaml``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings

app = typer.Typer(help="Alerts: list what fired, dry-run rules on stored aggregates.",
                  no_args_is_help=True)


@app.command("list")
def list_alerts(
    limit: Annotated[int, typer.Option(help="Most recent transitions to show.")] = 20,
    firing: Annotated[bool, typer.Option(help="Only alerts still firing.")] = False,
) -> None:
    """The latest alert transitions (firing / resolved), newest first."""
    import psycopg

    from parrotwatch.stack.urls import database_url

    query = ("SELECT DISTINCT ON (alert_id, starts_at) emitted_at, status, severity, rule, model, "
             "app, starts_at, ends_at, summary, event->'labels' ? 'replay' AS replayed FROM alerts "
             "ORDER BY alert_id, starts_at, id DESC")
    query = ("SELECT emitted_at, status, severity, rule, model, app, starts_at, ends_at, summary "
             f"FROM ({query}) a")
    if firing:  # replayed history (parrotwatch backfill) is not firing now
        query += " WHERE status = 'firing' AND NOT replayed"
    query += " ORDER BY emitted_at DESC LIMIT %s"
    with psycopg.connect(database_url(load_settings()), autocommit=True) as conn:
        rows = conn.execute(query, (limit,)).fetchall()
    if not rows:
        typer.echo("no alerts")
    for _emitted, status, severity, rule, model, app_, starts, ends, summary in rows:
        span = f"{starts:%Y-%m-%d %H:%M}" + (f" - {ends:%H:%M}" if ends else " - now")
        typer.echo(f"{status:9} {severity:8} {rule:20} {model}/{app_:16} {span:26} {summary}")


@app.command("test-rules")
def test_rules(
    rules: Annotated[Path, typer.Argument(help="Rules YAML to try.", exists=True, dir_okay=False)],
    hours: Annotated[float, typer.Option(help="How far back to replay stored windows.")] = 6.0,
    why: Annotated[bool, typer.Option(help="Also print every bad observation.")] = False,
) -> None:
    """Dry run: replay stored window aggregates through RULES and print what would fire, and why.
    Nothing is written or sent."""
    import psycopg

    from parrotwatch.detectors.alerting import Evaluator, RulesError, load_rules
    from parrotwatch.stack.urls import database_url
    from parrotwatch.streaming.alert_stage import windows_between

    try:
        ruleset = load_rules(rules)
    except RulesError as exc:
        fail(exc)
    with psycopg.connect(database_url(load_settings()), autocommit=True,
                         options="-c TimeZone=UTC") as conn:
        first, last = conn.execute("SELECT min(window_start), max(window_start) FROM window_counts "
                                   "WHERE model <> '*'").fetchone()
        if last is None:
            typer.echo("no stored windows yet: run traffic through the stream first")
            return
        windows = windows_between(conn, max(first, last - timedelta(hours=hours)), last)
    evaluator = Evaluator(ruleset)
    events = evaluator.evaluate(windows)
    typer.echo(f"{len(windows)} segment-windows, {len(ruleset.rules)} rules: "
               f"{sum(e['status'] == 'firing' for e in events)} would fire")
    for e in events:
        when = datetime.fromisoformat(e["ends_at"] or e["starts_at"])
        typer.echo(f"{e['status']:9} {e['rule']:20} {e['labels']['model']}/{e['labels']['app']:16}"
                   f" {when:%Y-%m-%d %H:%M}  {e['summary']}")
    if why:
        for rule, labels, obs in evaluator.last_observations:
            if obs.condition:
                typer.echo(f"  bad  {rule:20} {labels['model']}/{labels['app']:16} "
                           f"{obs.window_end:%H:%M} value={obs.value} baseline={obs.baseline} "
                           f"p={obs.p_value}")
