"""``parrotwatch backfill FILE...``: import historical traffic as if it had been live."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, migrated_database, say


def backfill(
    files: Annotated[list[Path], typer.Argument(
        help="Inference events v1 (JSONL), OTLP/JSON traces (one request per line, or a whole "
        "file) or OpenAI request/response logs (JSONL of {request, response, latency_ms?, app?}); "
        "recognised per line.", exists=True, dir_okay=False)],
    name: Annotated[str, typer.Option(
        help="Names the backfill: its watermark, alert state and the 'replay' label of its "
        "alerts. Rerunning a name resumes it (stored requests are skipped).")] = "history",
    model_free: Annotated[bool, typer.Option(
        help="Only the model-free scores (no toxicity, hallucination, drift).")] = False,
    close_all: Annotated[bool, typer.Option(
        help="Also evaluate the windows after the last event (the history is complete); by "
        "default they stay open as in the live stream.")] = False,
    max_days: Annotated[float, typer.Option(
        min=1, help="Events more than this many days before the last one are dead letters (a stray "
        "timestamp must not make the rules walk years of minutes).")] = 92.0,
    publish: Annotated[bool, typer.Option(
        help="Also publish the replayed alerts on llm.alerts.v1 (labelled replay=backfill:NAME); "
        "by default they are stored only, so history pages nobody.")] = False,
    no_progress: Annotated[bool, typer.Option(help="Hide the progress bars.")] = False,
) -> None:
    """Score historical traffic and build its windows, baselines and alert history in event-time
    order, under a watermark of its own: the live stream's watermark and baselines are untouched.
    See docs/streaming.md (Backfill)."""
    from parrotwatch.quality import QualityConfig
    from parrotwatch.streaming.backfill import run_backfill

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        fail(f"--name {name!r}: use 1-64 letters, digits, '_', '.', '-'")
    settings = load_settings()
    url = migrated_database(settings)
    quality = None if model_free else QualityConfig.from_settings(settings)

    def bar(what: str, total: int):
        from tqdm import tqdm
        return tqdm(total=total, desc=what, unit="", disable=no_progress)

    report = run_backfill(settings, url, list(files), name, quality=quality, close_all=close_all,
                          max_days=max_days, progress=bar)
    span = f"{report.first:%Y-%m-%d %H:%M} to {report.last:%Y-%m-%d %H:%M} UTC" if report.first else "-"
    say(f"backfill {name}: {report.records} records, {report.stored} stored "
        f"({report.duplicates} already there), {report.dead_letters} dead letters; events {span}; "
        f"{report.windows_evaluated} minutes evaluated, {report.alerts} alert transitions "
        f"(label replay=backfill:{name})")
    for reason, count in sorted(report.reasons.items(), key=lambda kv: -kv[1])[:10]:
        say(f"  {count:6}  {reason}")
    if publish:
        from parrotwatch.streaming.backfill import publish_alerts
        say(f"published {publish_alerts(settings, url, name)} replayed alert transitions")
