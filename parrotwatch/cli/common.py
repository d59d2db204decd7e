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
