"""The one rule for text that reaches storage or a topic: what PostgreSQL and JSON can hold.

Every string of an event (ids, segment names, prompt, message roles and contents, response,
logprob tokens, sources, samples, feedback text, metadata keys and values, producers' extra
fields) is checked, at any depth, for:

* the NUL character U+0000: PostgreSQL ``text`` and ``jsonb`` cannot store it (one such value
  failed a whole micro-batch, and its replay failed again, forever);
* lone UTF-16 surrogates U+D800..U+DFFF: they have no UTF-8 encoding, so neither PostgreSQL, nor
  Kafka's JSON, nor orjson can write them (the JSON parsers of the stream and the API already
  refuse them as invalid JSON; this catches events built in Python, e.g. by an adapter);
* nesting deeper than :data:`MAX_DEPTH` levels: orjson refuses to re-encode past 254, Python's
  recursion past ~1,000, and no label needs more than a few;
* numbers JSON tools cannot carry (checked in the free-form values, where the typed fields' own
  rules do not reach): integers outside -2^63 .. 2^64 - 1 (orjson, and so every re-encoding of the
  event, refuses them) and non-finite floats (``NaN`` and ``1e400`` parse, then re-encode as null).

Such an event is **rejected** with a reason naming the field (``metadata.note: contains NUL``),
not escaped: escaping would silently change the user's text (a prompt's ``\\u0000`` could be a
literal part of an attack the operator must see), while a rejection keeps the record whole on the
source topic and in the dead letters, and tells the producer what to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "contains NUL (\\u0000), which PostgreSQL text cannot store"
    if not text.isascii() and _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate, which has no UTF-8 encoding"
    return None


def _printable(key: Any, limit: int = 80) -> str:
    """A path component fit for a reason: NUL and lone surrogates escaped (a reason must itself be
    storable, and pydantic cannot carry a message holding a surrogate), at most ``limit``
    characters."""
    text = str(key)
    if text_problem(text):
        text = text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()
    return text if len(text) <= limit else f"{text[:limit]}..."


def unstorable(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The first reason ``value`` (a JSON-like tree, or pydantic models / msgspec structs of one)
    cannot be stored, as ``"path: reason"``; None when it can."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{path or '(value)'}: {problem}" if problem else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -(2**63) <= value < 2**64 else (
            f"{path or '(value)'}: integer outside the 64-bit range JSON tools carry")
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path or '(value)'}: {value} is not finite"
    if depth >= MAX_DEPTH:
        return f"{path or '(value)'}: nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    elif hasattr(value, "__struct_fields__"):  # msgspec struct
        items = ((f, getattr(value, f)) for f in value.__struct_fields__)
    elif hasattr(value, "__pydantic_fields__"):  # pydantic model, extra fields included
        items = [*((f, getattr(value, f)) for f in type(value).__pydantic_fields__),
                 *(value.model_extra or {}).items()]
    else:
        return None  # datetimes and the like: the parsers made them, they encode
    for key, item in items:
        where = f"{path}.{_printable(key)}" if path else _printable(key)
        if isinstance(key, str):
            problem = text_problem(key)
            if problem:
                return f"{where} (a key): {problem}"
        reason = unstorable(item, where, depth + 1)
        if reason:
            return reason
    return None
