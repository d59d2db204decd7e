"""Helpers every command module shares; light on purpose: typer and the standard library only."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from parrotwatch.settings import Settings


def fail(message: object) -> NoReturn:
    """Print ``error: MESSAGE`` in red on stderr and exit with status 1."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def say(message: str) -> None:
    """A progress line on stderr (stdout stays for results)."""
    typer.echo(message, err=True)


def load_settings() -> Settings:
    """The settings in force; an invalid one ends the command with its message."""
    from parrotwatch.settings import load_settings as _load_settings

    try:
        return _load_settings()
    except ValueError as exc:
        fail(exc)


def migrated_database(settings: Settings, hint: str = "") -> str:
    """The database URL in force, migrated; a clear error (password hidden) when the server
    cannot be reached. ``hint``: another way out, added to the message."""
    import psycopg

    from parrotwatch.db import migrate
    from parrotwatch.stack.urls import database_url, redact_url

    url = database_url(settings)
    try:
        migrate(url)
    except psycopg.OperationalError as exc:
        fail(f"cannot reach PostgreSQL at {redact_url(url)}: {str(exc).strip()}; start the stack "
             f"(`parrotwatch up`) or set PARROTWATCH_DATABASE_URL{hint}")
    return url
