"""``parrotwatch demo``: stack up, realistic traffic with incidents, wait for scoring, summary."""

from __future__ import annotations

from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, say


def demo(
    minutes: Annotated[int, typer.Option(help="Minutes of traffic (6 events/s, event time "
                                         "ending now) to play.")] = 60,
    malformed: Annotated[int, typer.Option(help="Malformed records to play.")] = 60,
    seed: Annotated[int, typer.Option(help="Traffic seed.")] = 7,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for scoring.")] = 2400,
    model_free: Annotated[bool, typer.Option(
        help="Model-free scores only (no toxicity, hallucination, drift): about a minute "
        "instead of about 10 minutes on 2 CPU cores. Applies when the stack starts.")] = False,
) -> None:
    """The main job: stack up, realistic traffic with incidents, wait for scoring, summary."""
    from parrotwatch.demo import run_demo
    from parrotwatch.stack.errors import StackError

    settings = load_settings()
    if model_free:
        settings = settings.model_copy(update={"quality_detectors": []})
    try:
        run_demo(settings, minutes=minutes, malformed=malformed, seed=seed,
                 timeout=timeout, say=say)
    except (StackError, TimeoutError) as exc:
        fail(exc)
