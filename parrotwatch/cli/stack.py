"""``parrotwatch up|down|status|stream``: the local stack (Kafka, PostgreSQL, streaming job, API)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from parrotwatch.cli.common import fail, load_settings, say


def up(
    no_stream: Annotated[bool, typer.Option(help="Do not start the streaming job.")] = False,
    no_api: Annotated[bool, typer.Option(help="Do not start the ingestion API.")] = False,
) -> None:
    """Start the local stack (Kafka, PostgreSQL, streaming job, API); idempotent."""
    from parrotwatch.stack.errors import StackError
    from parrotwatch.stack.local import LocalStack

    try:
        status = LocalStack(load_settings(), say=say).up(stream=not no_stream, api=not no_api)
    except StackError as exc:
        fail(exc)
    typer.echo(json.dumps(status, indent=2))


def down() -> None:
    """Stop the local stack; data stays under PARROTWATCH_HOME."""
    from parrotwatch.stack.local import LocalStack

    LocalStack(load_settings(), say=say).down()


def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False):
    """Show where the stack is and which parts run (the database URL without its password)."""
    from parrotwatch.stack.local import LocalStack
    from parrotwatch.stack.urls import REDACTED

    info = LocalStack(load_settings(), say=say).status()
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


def stream() -> None:
    """Run the Spark scoring job in the foreground (what ``up`` starts in the background)."""
    from parrotwatch.streaming.job import main

    raise typer.Exit(main())
