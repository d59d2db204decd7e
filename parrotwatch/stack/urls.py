"""Where the stack's parts are: external URLs from settings, else the embedded defaults."""

from __future__ import annotations

from parrotwatch.settings import Settings
from parrotwatch.stack.postgres import EmbeddedPostgres


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    return EmbeddedPostgres(settings.home, settings.postgres_port).url
