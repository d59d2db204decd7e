"""Where the stack's parts are: external URLs from settings, else the embedded defaults; and their
printable forms, with passwords hidden."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from parrotwatch.settings import Settings
from parrotwatch.stack.postgres import EmbeddedPostgres

REDACTED = "***"
# query parameters / conninfo keywords whose value is a credential
_SECRET_KEYS = frozenset({"password", "passwd", "pass", "pwd", "secret", "token", "api_key",
                          "apikey", "key", "sslpassword", "access_token", "sasl_password"})
# key=value connection strings (libpq): a value is a bare word or a single-quoted string
_KV_SECRET = re.compile(r"(?i)\b(" + "|".join(sorted(_SECRET_KEYS)) +
                        r")(\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def database_url(settings: Settings) -> str:
    """The database URL in force, credentials included: for connecting, never for printing."""
    if settings.database_url:
        return settings.database_url
    return EmbeddedPostgres(settings.home, settings.postgres_port).url


def redact_url(url: str | None) -> str | None:
    """``url`` with its password (``user:PASSWORD@``) and secret query values replaced by
    ``***``; host, port, database and user stay, so that a reader knows where it points.
    Works on libpq ``key=value`` strings too. ``None`` stays ``None``."""
    if url is None:
        return None
    if "://" not in url:
        return _KV_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED  # unparsable: show nothing rather than a secret
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{host}" if sep else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_KEYS for k, _v in pairs):
            query = urlencode([(k, REDACTED if k.lower() in _SECRET_KEYS else v)
                               for k, v in pairs], safe="*/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

