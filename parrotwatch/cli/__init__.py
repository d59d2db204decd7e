"""The ``parrotwatch`` command line: the root app, wired from one module per command group.

Every module here imports typer, the standard library and :mod:`parrotwatch.cli.common` only;
a command imports what it needs (Spark, psycopg, torch, scikit-learn...) when it runs, so
``parrotwatch --help`` stays fast (``tests/unit/parrotwatch/cli/test_startup.py``).
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, NoReturn

import typer

from parrotwatch.cli import (
    alerts,
    audit,
    backfill,
    dashboards,
    demo,
    index,
    report,
    review,
    schemas,
    score,
    stack,
    testbed,
)

__all__ = ["app"]

class _App(typer.Typer):
    """The root app: an error of the user's environment or input that no command turned into a message
    (a path that cannot be read or written, a file that is not UTF-8, an unreachable database, a date
    out of range) ends in one ``error:`` line and status 1, not a traceback."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except (OSError, UnicodeDecodeError, OverflowError) as exc:
            _environment_error(exc)
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg") and type(exc).__name__ == "OperationalError":
                _environment_error(exc)
            raise


def _environment_error(exc: BaseException) -> NoReturn:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    sys.exit(1)


app = _App(
    help="Parrotwatch: LLM observability and memorization audits on Kafka, Spark and PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
)

app.command()(stack.up)
app.command()(stack.down)
app.command()(stack.status)
app.command()(score.score)
app.command()(backfill.backfill)
app.command()(demo.demo)
app.command()(schemas.schemas)
app.command()(stack.stream)
app.add_typer(alerts.app, name="alerts")
app.add_typer(testbed.app, name="testbed")
app.add_typer(dashboards.app, name="dashboards")
app.add_typer(audit.app, name="audit")
app.add_typer(index.index_app, name="index")
app.add_typer(index.regurgitation_app, name="regurgitation")
app.add_typer(review.review_app, name="review")
app.add_typer(review.calibrate_app, name="calibrate")
app.command("report")(report.report)


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not verbose:  # readiness probes make kafka-python log every refused connection
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
