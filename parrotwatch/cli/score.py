"""``parrotwatch score EVENTS.jsonl -o SCORES.jsonl``: offline scoring with the stream's detectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, say


def score(
    input_path: Annotated[Path, typer.Argument(help="Inference events v1, one JSON per line.",
                                               exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Scores, one line per input.")],
    no_progress: Annotated[bool, typer.Option(help="Hide the progress bar.")] = False,
    model_free: Annotated[bool, typer.Option(
        help="Only the model-free scores (skip toxicity, hallucination, reference LM).")] = False,
) -> None:
    """Score inference events offline with the same detectors as the stream.

    ``ood_score`` stays null: it needs the stream's per-segment drift reference."""
    from dataclasses import replace

    from parrotwatch.offline import score_file
    from parrotwatch.quality import QualityConfig

    settings = load_settings()
    quality = None
    if not model_free:
        quality = QualityConfig.from_settings(settings)
        quality = replace(quality, detectors=tuple(d for d in quality.detectors if d != "drift"),
                          load_log=None)
    try:  # a bad index or output path is refused before any line is read; bad lines are reported
        report = score_file(input_path, output, max_event_bytes=settings.max_event_bytes,
                            progress=not no_progress,
                            regurgitation_index=settings.regurgitation_index, quality=quality)
    except ValueError as exc:
        fail(exc)
    for line, reason in report.errors[:20]:
        typer.secho(f"{input_path}:{line}: {reason}", fg=typer.colors.YELLOW, err=True)
    if len(report.errors) > 20:
        say(f"... and {len(report.errors) - 20} more bad lines (see {output})")
    say(f"{report.scored} scored, {len(report.errors)} bad lines, written to {output}")
    if report.errors:
        raise typer.Exit(2)
