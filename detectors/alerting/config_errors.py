"""Readable errors for strict configuration models: name the bad key and list the valid ones.

pydantic's ``extra="forbid"`` says "Extra inputs are not permitted" without the keys that are
permitted; this turns each error of a ``ValidationError`` into one line that says where (which
rule, by index and name), what is wrong, and what would be valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError


def valid_keys(model: type[BaseModel]) -> list[str]:
    """The keys a file may use for ``model``: field aliases where given, else field names."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _field_message(error: Mapping[str, Any], loc: tuple, model: type[BaseModel], what: str) -> str:
    keys = valid_keys(model)
    if len(loc) == 1 and error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[0]), keys, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key {loc[0]!r}{hint}; valid keys for {what}: {', '.join(keys)}"
    if len(loc) == 1 and error["type"] == "missing":
        return f"missing required key {loc[0]!r}; valid keys for {what}: {', '.join(keys)}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in loc)
    got = "" if error["type"] == "value_error" else f" (got {error['input']!r})"
    return f"{where}: {msg}{got}" if where else msg


def explain(
    error: ValidationError,
    data: Any,
    top: type[BaseModel],
    kinds: Mapping[str, type[BaseModel]],
    list_key: str = "rules",
) -> list[str]:
    """One line per error: ``rules[3] 'latency_p99' (threshold): unknown key 'valu' ...``.

    ``top`` is the file's model; ``kinds`` maps each ``kind`` tag of the discriminated union
    under ``list_key`` to its model.
    """
    lines: dict[str, list[str]] = {}
    items = data.get(list_key) if isinstance(data, Mapping) else None
    for err in error.errors():
        # a union member tag such as "constrained-int" is not a key: drop it, merge the members
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("-" in p or "[" in p)))
        if len(loc) < 2 or loc[0] != list_key or not isinstance(loc[1], int) or not isinstance(items, list):
            head, msg = f"{list_key} file", _field_message(err, loc, top, "the top level")
            lines.setdefault(head + str(loc), []).append(f"{head}: {msg}")
            continue
        raw = items[loc[1]]
        name = raw.get("name") if isinstance(raw, Mapping) else None
        where = f"{list_key}[{loc[1]}]" + (f" {name!r}" if name else "")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            invalid = err["type"] == "union_tag_invalid"
            got = f"unknown kind {raw.get('kind')!r}" if invalid else "missing key 'kind'"
            line = f"{where}: {got}; valid kinds: {', '.join(kinds)}"
        elif len(loc) == 2:
            line = f"{where}: each entry must be a mapping with a 'kind', got {raw!r}"
        else:
            kind = str(loc[2])
            line = f"{where} ({kind}): {_field_message(err, loc[3:], kinds[kind], f'{kind} rules')}"
        lines.setdefault(where + str(loc), []).append(line)
    return [group[0] if len(group) == 1 else " -- or -- ".join(group) for group in lines.values()]
