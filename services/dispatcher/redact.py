"""Keeping secrets out of logs and stored errors, and keeping stored text storable.

A receiver URL is a credential more often than not: a Slack incoming webhook is
``https://hooks.slack.com/services/T…/B…/<token>``, other services put tokens in the path or the
query, and ``user:password@`` may sit in front of the host. :func:`redact_url` keeps what an
operator needs to tell receivers apart (scheme, host, port) and hides the rest;
:func:`redact_text` removes a receiver's URL and its secret parts from any message (an HTTP
client's error text, a receiver's answer) before it is logged or stored.

PostgreSQL ``text`` and ``jsonb`` cannot hold NUL, and UTF-8 cannot encode a lone surrogate:
:func:`storable_text` escapes both, so that an error text a receiver controls can always be
stored (a receiver answering a NUL must not make recording its own failure fail).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SURROGATE = re.compile("[\ud800-\udfff]")
_MIN_SECRET_PART = 6  # path segments / query values at least this long are hidden in free text


def redact_url(url: object) -> str:
    """``scheme://host[:port]/…`` with the path, query, fragment and userinfo hidden.

    ``https://hooks.slack.com/services/T0/B0/XXXX`` -> ``https://hooks.slack.com/***``;
    ``http://127.0.0.1:9093`` (nothing secret) stays as it is; an unparsable URL -> ``<url>``.
    """
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<url>"
    if not parts.scheme or not host:
        return "<url>"
    host = f"[{host}]" if ":" in host else host
    hidden = parts.path.strip("/") or parts.query or parts.fragment
    return f"{parts.scheme}://{host}{port}" + ("/***" if hidden else "")


def secret_parts(url: object) -> list[str]:
    """The substrings of ``url`` that must not appear in a log: the URL itself, its path, query,
    userinfo, and each long path segment or query value (longest first, for replacement)."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return [text]
    found = {text, text.rstrip("/"), parts.path, parts.query, parts.fragment}
    if "@" in parts.netloc:
        found.add(parts.netloc.rsplit("@", 1)[0])
    found.update(p for p in parts.path.split("/") if len(p) >= _MIN_SECRET_PART)
    for pair in parts.query.split("&"):
        found.update(p for p in pair.split("=") if len(p) >= _MIN_SECRET_PART)
    found.discard("")
    found.discard("/")
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, urls: list[object], secrets: list[str] = ()) -> str:
    """``text`` with every secret part of ``urls`` and every string of ``secrets`` replaced by
    ``***`` (the URLs themselves by their :func:`redact_url` form)."""
    for url in urls:
        text = text.replace(str(url), redact_url(url))
        for part in secret_parts(url):
            text = text.replace(part, "***")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def storable_text(text: str, limit: int = 2000) -> str:
    """``text`` cut to ``limit`` characters, NUL written as ``\\x00`` and lone surrogates as
    ``\\udXXX``: always storable in a PostgreSQL ``text`` column and encodable as UTF-8."""
    text = text[:limit].replace("\x00", "\\x00")
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
