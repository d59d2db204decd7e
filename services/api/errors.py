"""Bounded 4xx answers: a 422 lists the first errors and counts the rest.

A batch of two million empty events has ten million errors; listing them all made a 210 MB
answer. :func:`capped` keeps the first :data:`MAX_ERRORS` (each one shortened) within
:data:`ERRORS_BUDGET_BYTES`, so that a whole answer stays under :data:`MAX_RESPONSE_BYTES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

MAX_RESPONSE_BYTES = 65_536
MAX_ERRORS = 50
ERRORS_BUDGET_BYTES = 32_768
_MAX_LOC_TEXT = 100
_MAX_MSG = 500


class ErrorItem(BaseModel):
    """One reason a request was refused, in FastAPI's validation error shape."""

    type: str = Field(description="Machine-readable kind, e.g. 'missing' or 'json_too_deep'.")
    loc: list[str | int] = Field(description="Where: 'body', then the event index (in a batch) "
                                             "and the field path.")
    msg: str = Field(description="What is wrong and how to fix it.")


class RejectedPublic(BaseModel):
    """A 422: the request's events break the contract; nothing was written."""

    detail: list[ErrorItem] = Field(description=f"The first errors (at most {MAX_ERRORS}).")
    error_count: int = Field(description="How many errors were found in all.")
    errors_omitted: int = Field(description="Errors found but not listed (error_count minus "
                                            "the listed ones).")


class ErrorPublic(BaseModel):
    """Any other refusal (401, 413, 503): what happened and what to do."""

    detail: str


class EventsRejected(Exception):
    """Raised by the ingestion path; answered as a 422 :class:`RejectedPublic`."""

    def __init__(self, errors: list[dict[str, Any]], count: int | None = None) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors
        self.count = len(errors) if count is None else count


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _item(error: dict[str, Any]) -> dict[str, Any]:
    loc = [part if isinstance(part, int) else _short(str(part), _MAX_LOC_TEXT)
           for part in error.get("loc", ())]
    return {"type": _short(str(error.get("type", "invalid")), _MAX_LOC_TEXT), "loc": loc,
            "msg": _short(str(error.get("msg", "")), _MAX_MSG)}


def capped(errors: Iterable[dict[str, Any]], count: int) -> dict[str, Any]:
    """The body of a 422: the first errors, shortened, within the byte budget, and the count.

    The first error is always listed (shortened, it is a few KB at most: a ``loc`` is bounded
    by the JSON depth limit).
    """
    listed: list[dict[str, Any]] = []
    used = 0
    for error in errors:
        if len(listed) >= MAX_ERRORS:
            break
        item = _item(error)
        size = len(orjson.dumps(item))
        if listed and used + size > ERRORS_BUDGET_BYTES:
            break
        listed.append(item)
        used += size
    return {"detail": listed, "error_count": count, "errors_omitted": count - len(listed)}


async def events_rejected_handler(request: Request, exc: Exception) -> JSONResponse:
    """The 422 answer of :class:`EventsRejected`."""
    assert isinstance(exc, EventsRejected)
    return JSONResponse(capped(exc.errors, exc.count), status_code=422)


def listing(items: list[str], total: int, limit: int = 10) -> str:
    """``a, b, c and 7 more``: a bounded enumeration for a message."""
    shown = ", ".join(items[:limit])
    return shown if total <= limit else f"{shown} and {total - limit} more"
