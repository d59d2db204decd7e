"""``parrotwatch report --from --to -o FILE.html``: the dashboards as one HTML page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.cli.common import load_settings

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdw]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, now: datetime) -> datetime:
    """``now``, ``now-90m``/``now-6h``/``now-2d`` (Grafana's relative times), or an ISO 8601
    timestamp (UTC when it names no offset)."""
    m = _RELATIVE.match(text.strip())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}) if m.group(1) else now
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected now, now-6h, now-30m, now-2d or an ISO "
                                 "timestamp such as 2025-01-01T12:00") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def report(
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.",
                                         dir_okay=False)],
    from_: Annotated[str, typer.Option("--from", help="Start: now-6h, now-30m, now-2d or an ISO "
                                       "timestamp (UTC unless it has an offset).")] = "now-6h",
    to: Annotated[str, typer.Option("--to", help="End: now or an ISO timestamp.")] = "now",
) -> None:
    """Render every Grafana dashboard's panels for a time range as one self-contained HTML page
    (plots, alerts, worst requests and their drill-down), from the PostgreSQL the stream fills
    (PARROTWATCH_DATABASE_URL or the embedded server). For people without Grafana."""
    import psycopg

    from parrotwatch.dashboards.macros import TimeRange
    from parrotwatch.report import build_report
    from parrotwatch.stack.urls import database_url

    now = datetime.now(UTC).replace(microsecond=0)
    start, end = parse_time(from_, now), parse_time(to, now)
    if end <= start:
        raise typer.BadParameter(f"--to ({end:%Y-%m-%d %H:%M:%S}) must be after --from "
                                 f"({start:%Y-%m-%d %H:%M:%S})")
    url = database_url(load_settings())
    typer.echo(f"report {start:%Y-%m-%d %H:%M:%S} .. {end:%Y-%m-%d %H:%M:%S} UTC", err=True)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            page, stats = build_report(conn, TimeRange(start, end),
                                       say=lambda m: typer.echo(m, err=True))
    except psycopg.OperationalError as exc:
        typer.secho(f"error: cannot reach PostgreSQL: {exc}; is the stack up (`parrotwatch "
                    "status`) or PARROTWATCH_DATABASE_URL set?", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {output} ({len(page.encode()) / 1024:.0f} KiB): {stats.plots} plots, "
               f"{stats.tables} tables, {stats.stats} stats; {len(stats.empty)} panels without "
               f"data in the range", err=True)
    for problem in stats.failed:
        typer.secho(f"panel failed: {problem}", fg=typer.colors.RED, err=True)
    if stats.failed:
        raise typer.Exit(1)
