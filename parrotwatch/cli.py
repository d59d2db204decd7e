"""The ``parrotwatch`` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from parrotwatch.report_cli import report as report_command
from parrotwatch.settings import Settings
from parrotwatch.settings import load_settings as _load_settings
from parrotwatch.stack.errors import StackError

app = typer.Typer(
    help="Parrotwatch: LLM observability and memorization audits on Kafka, Spark and PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def load_settings() -> Settings:
    try:
        return _load_settings()
    except ValueError as exc:
        _fail(exc)


def _say(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def up(
    no_stream: Annotated[bool, typer.Option(help="Do not start the streaming job.")] = False,
    no_api: Annotated[bool, typer.Option(help="Do not start the ingestion API.")] = False,
) -> None:
    """Start the local stack (Kafka, PostgreSQL, streaming job, API); idempotent."""
    from parrotwatch.stack.local import LocalStack

    try:
        status = LocalStack(load_settings(), say=_say).up(stream=not no_stream, api=not no_api)
    except StackError as exc:
        _fail(exc)
    typer.echo(json.dumps(status, indent=2))


@app.command()
def down() -> None:
    """Stop the local stack; data stays under PARROTWATCH_HOME."""
    from parrotwatch.stack.local import LocalStack

    LocalStack(load_settings(), say=_say).down()


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False):
    """Show where the stack is and which parts run (the database URL without its password)."""
    from parrotwatch.stack.local import LocalStack
    from parrotwatch.stack.urls import REDACTED

    info = LocalStack(load_settings(), say=_say).status()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key in ("kafka_bootstrap", "database_url", "api_url", "home"):
        typer.echo(f"{key:16} {info[key]}")
    if REDACTED in info["database_url"]:  # status lines never show a password
        typer.echo(f"{'':16} (password hidden: the URL is PARROTWATCH_DATABASE_URL)")
    for name, state in info["components"].items():
        mark = {True: "running", False: "stopped"}.get(state, state)
        typer.echo(f"{name:16} {mark:10} {info['logs'].get(name) or ''}")
    for name, p in info["stream_progress"].items():
        if info["components"]["stream"] and p["batch_id"] is not None:
            rate = p["processed_rows_per_s"] or 0.0
            typer.echo(f"query {name:10} batch {p['batch_id']}: {p['rows']} rows, "
                       f"{rate:,.0f} rows/s processed, at {p['at']}")


@app.command()
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
    report = score_file(input_path, output, max_event_bytes=settings.max_event_bytes,
                        progress=not no_progress,
                        regurgitation_index=settings.regurgitation_index, quality=quality)
    for line, reason in report.errors[:20]:
        typer.secho(f"{input_path}:{line}: {reason}", fg=typer.colors.YELLOW, err=True)
    if len(report.errors) > 20:
        _say(f"... and {len(report.errors) - 20} more bad lines (see {output})")
    _say(f"{report.scored} scored, {len(report.errors)} bad lines, written to {output}")
    if report.errors:
        raise typer.Exit(2)


@app.command()
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

    settings = load_settings()
    if model_free:
        settings = settings.model_copy(update={"quality_detectors": []})
    try:
        run_demo(settings, minutes=minutes, malformed=malformed, seed=seed,
                 timeout=timeout, say=_say)
    except (StackError, TimeoutError) as exc:
        _fail(exc)


@app.command("index-build", hidden=True)  # kept for old scripts: `parrotwatch index build`
def index_build(
    corpus: Annotated[list[Path], typer.Argument(help="Training-corpus text files (one document "
                                                 "each), or JSONL files with a 'text' field.",
                                                 exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index file (.npz).")],
    n: Annotated[int, typer.Option(help="n-gram length in tokens: the shortest overlap seen.")] = 8,
    fpr: Annotated[float, typer.Option(help="Bloom false-positive rate per n-gram; 0 = exact "
                                       "index (8 bytes per distinct n-gram).")] = 1e-6,
) -> None:
    """Build the training-corpus n-gram index for the `regurgitation` score
    (PARROTWATCH_REGURGITATION_INDEX) and the regurgitation audit."""
    import orjson

    from parrotwatch.detectors.audits.ngram_index import BloomIndex, ExactIndex

    def documents():
        for path in corpus:
            if path.suffix == ".jsonl":
                for line in path.read_bytes().splitlines():
                    if line.strip():
                        yield orjson.loads(line)["text"]
            else:
                yield path.read_text(errors="replace")

    docs = list(documents())
    index = (ExactIndex.from_documents(docs, n=n) if fpr == 0
             else BloomIndex.from_documents(docs, n=n, target_fpr=fpr))
    index.save(output)
    _say(f"{len(docs)} documents -> {output} ({index.size_bytes / 2**20:.1f} MiB, n={n}, "
         f"false-positive rate per n-gram {index.false_positive_rate:.2g})")


@app.command()
def schemas(out: Annotated[Path, typer.Option("-o", "--out")] = Path("docs/schemas")) -> None:
    """Write the JSON Schemas of the v1 contracts."""
    from parrotwatch.contracts import export_json_schemas

    for path in export_json_schemas(out):
        typer.echo(path)


@app.command()
def stream() -> None:
    """Run the Spark scoring job in the foreground (what ``up`` starts in the background)."""
    from parrotwatch.streaming.job import main

    raise typer.Exit(main())


def _alerts_app() -> typer.Typer:
    from parrotwatch.alerts_cli import app as alerts

    return alerts


def _testbed_app() -> typer.Typer:
    from parrotwatch.testbed_cli import app as testbed

    return testbed


def _audit_app() -> typer.Typer:
    from parrotwatch.audit_cli import app as audit

    return audit


def _index_app() -> typer.Typer:
    from parrotwatch.index_cli import index_app

    return index_app


def _regurgitation_app() -> typer.Typer:
    from parrotwatch.index_cli import regurgitation_app

    return regurgitation_app


def _dashboards_app() -> typer.Typer:
    from parrotwatch.dashboards_cli import app as dashboards

    return dashboards


app.add_typer(_alerts_app(), name="alerts")
app.add_typer(_testbed_app(), name="testbed")
app.add_typer(_dashboards_app(), name="dashboards")
app.add_typer(_audit_app(), name="audit")
app.add_typer(_index_app(), name="index")
app.add_typer(_regurgitation_app(), name="regurgitation")
app.command("report")(report_command)


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not verbose:  # readiness probes make kafka-python log every refused connection
        logging.getLogger("kafka").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    app()
