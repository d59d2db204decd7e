"""Reasons for refusing a record (dead letters, unmappable spans): bounded and always storable."""

from __future__ import annotations

from pydantic import ValidationError

from parrotwatch.contracts.storable import text_problem

MAX_REASON_ERRORS = 10
MAX_REASON_CHARS = 2_000


def bounded_reason(reason: str) -> str:
    """A dead-letter reason that any sink can store: at most ``MAX_REASON_CHARS`` characters, with
    NUL and lone surrogates (which a reason may quote from its record) escaped."""
    if len(reason) > MAX_REASON_CHARS:
        reason = f"{reason[:MAX_REASON_CHARS - 40]}... ({len(reason):,} characters in all)"
    if text_problem(reason):
        reason = reason.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()
    return reason


def describe_validation_error(exc: ValidationError, max_errors: int = MAX_REASON_ERRORS,
                              prefix: str = "") -> str:
    """One line naming the bad fields, e.g. ``latency_ms: Input should be a valid number``: the
    first ``max_errors`` and how many more (a 400 KB list of bad tokens has ~10^5 errors)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:max_errors]:
        loc = ".".join(str(p) for p in err["loc"]) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    if exc.error_count() > max_errors:
        parts.append(f"and {exc.error_count() - max_errors:,} more errors")
    return bounded_reason(prefix + "; ".join(parts))
