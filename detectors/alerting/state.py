"""Explicit, versioned JSON state for everything the alerting core keeps between batches.

Whatever outlives a process is plain JSON (``to_state()`` / ``from_state()``), never a pickle:
a pickle runs code on load and breaks on any change of the classes it names. Each state is a
dict with an integer ``version``; ``from_state`` migrates an older version step by step
(``upgrade``) or raises :class:`StateError` naming the reason, as it does for anything malformed
(a missing or unknown key, a wrong type, a raw NaN, an invariant broken). The caller decides
what a reset means (the stream logs it and starts afresh).

Floats round-trip exactly: a finite float is a JSON number (``repr`` is exact and PostgreSQL's
jsonb keeps the decimal text), while NaN, the infinities and ``-0.0`` (which jsonb refuses or
turns into ``0``) are the strings ``"nan"`` / ``"-nan"`` (NaN's sign shows through
``copysign``), ``"inf"``, ``"-inf"`` and ``"-0.0"``.
Datetimes are ISO 8601 text with their UTC offset; durations are whole microseconds; ordered
maps are arrays of pairs (jsonb sorts an object's keys).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

_SPECIAL = {"nan": math.copysign(math.nan, 1.0), "-nan": math.copysign(math.nan, -1.0),
            "inf": math.inf, "-inf": -math.inf, "-0.0": -0.0}
_MICROSECOND = timedelta(microseconds=1)
_MAX_INT = 2**53

Migration = Callable[[dict[str, Any]], dict[str, Any]]


class StateError(ValueError):
    """A stored state that cannot be restored; the message names where and why."""


def encode_float(x: float) -> float | str:
    """A float as a JSON value that jsonb keeps exactly (see the module docstring)."""
    x = float(x)
    if math.isnan(x):  # its sign shows through copysign: keep it
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0 and math.copysign(1.0, x) < 0:
        return "-0.0"
    return x


def decode_float(value: Any, where: str) -> float:
    """Inverse of :func:`encode_float`; an int is accepted (jsonb prints ``1e308`` as digits)."""
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateError(f"{where}: expected a number, got {value!r:.80}")
    if isinstance(value, float) and math.isnan(value):
        raise StateError(f"{where}: a raw NaN (an encoded state writes 'nan')")
    try:
        return float(value)
    except OverflowError:
        raise StateError(f"{where}: {value!r:.40} is out of a float's range") from None


def _int(value: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(f"{where}: expected an integer, got {value!r:.80}")
    if abs(value) > _MAX_INT:
        raise StateError(f"{where}: {value!r:.40} is beyond 2**53 (counts are divided as floats)")
    if minimum is not None and value < minimum:
        raise StateError(f"{where}: expected an integer >= {minimum}, got {value}")
    return value


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise StateError(f"{where}: expected an ISO 8601 time, got {value!r:.80}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise StateError(f"{where}: not an ISO 8601 time: {value!r:.80}") from None
    if moment.tzinfo is None:
        raise StateError(f"{where}: time {value!r} has no UTC offset")
    try:
        moment.astimezone(UTC)  # alert events carry it in UTC
    except OverflowError:
        raise StateError(f"{where}: time {value!r} is out of range in UTC") from None
    return moment


def _micros(value: Any, where: str) -> timedelta:
    try:
        return _int(value, where) * _MICROSECOND
    except OverflowError:
        raise StateError(f"{where}: {value} microseconds is out of a duration's range") from None


def _labels(value: Any, where: str) -> dict[str, str]:
    """Labels are ``[[key, value], ...]``: jsonb would reorder an object's keys."""
    pairs = value if isinstance(value, list) else [None]
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs):
        raise StateError(f"{where}: expected [key, value] pairs of strings, got {value!r:.80}")
    labels = dict(pairs)
    if len(labels) != len(pairs):
        raise StateError(f"{where}: a label key is repeated")
    return labels


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{where}: expected a string, got {value!r:.80}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise StateError(f"{where}: expected true or false, got {value!r:.80}")
    return value


_DECODERS: dict[str, Callable[[Any, str], Any]] = {
    "float": decode_float,
    "int": _int,
    "count": lambda v, w: _int(v, w, 0),
    "positive": lambda v, w: _int(v, w, 1),
    "bool": _bool,
    "str": _str,
    "time": _time,
    "labels": _labels,
    "micros": _micros,
}
_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "float": encode_float,
    "time": lambda t: t.isoformat(),
    "labels": lambda labels: [[k, v] for k, v in labels.items()],
    "micros": lambda d: d // _MICROSECOND,
}


def encode(kind: str, value: Any) -> Any:
    """``value`` as JSON for a field of ``kind`` (e.g. ``"float"``, ``"time?"``: ``?`` allows null)."""
    if value is None and kind.endswith("?"):
        return None
    return _ENCODERS.get(kind.rstrip("?"), lambda v: v)(value)


def decode(kind: str, value: Any, where: str) -> Any:
    """Inverse of :func:`encode`; raises :class:`StateError` for a value of the wrong type."""
    if value is None and kind.endswith("?"):
        return None
    return _DECODERS[kind.rstrip("?")](value, where)


def mapping(value: Any, where: str, keys: set[str] | frozenset[str]) -> Mapping[str, Any]:
    """``value`` as an object with exactly ``keys``: a missing or unknown key is malformed."""
    if not isinstance(value, Mapping):
        raise StateError(f"{where}: expected an object, got {type(value).__name__}")
    missing, unknown = sorted(keys - set(value)), sorted(set(value) - keys)
    if missing or unknown:
        raise StateError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    return value


def sequence(value: Any, where: str) -> list[Any]:
    """``value`` as a JSON array."""
    if not isinstance(value, list):
        raise StateError(f"{where}: expected an array, got {type(value).__name__}")
    return value


def upgrade(state: Any, where: str, current: int, migrations: Mapping[int, Migration]) -> dict[str, Any]:
    """``state`` brought to version ``current``: ``migrations[v]`` turns version v into v + 1.

    A version newer than ``current`` (state written by a later release) or one no chain of
    migrations reaches is a :class:`StateError` naming it; so is a state without a version.
    """
    if not isinstance(state, Mapping):
        raise StateError(f"{where}: expected an object, got {type(state).__name__}")
    version = state.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise StateError(f"{where}: no integer 'version' (got {version!r:.40})")
    if version > current:
        raise StateError(f"{where}: state version {version} is newer than this code's {current}")
    state = dict(state)
    while version < current:
        step = migrations.get(version)
        if step is None:
            note = f" ({state['dropped']})" if isinstance(state.get("dropped"), str) else ""
            raise StateError(f"{where}: state version {version}{note} cannot be migrated to {current}")
        state = {**step(state), "version": version + 1}
        version += 1
    return state


class Snapshot:
    """Mixin: ``to_state`` / ``from_state`` for a class described by two tables.

    ``_PARAMS`` maps constructor arguments (stored as attributes of the same name) to a field
    kind, ``_VARS`` maps private state attributes to theirs; the state is
    ``{"version", "params", "vars"}`` with the leading underscore dropped from var names.
    ``_check_state()`` may raise :class:`StateError` on a broken invariant after a restore.
    """

    STATE_VERSION: ClassVar[int] = 1
    _PARAMS: ClassVar[dict[str, str]] = {}
    _VARS: ClassVar[dict[str, str]] = {}
    _MIGRATIONS: ClassVar[dict[int, Migration]] = {}

    def to_state(self) -> dict[str, Any]:
        """This object's parameters and state as JSON-safe data, with its ``version``."""
        return {
            "version": self.STATE_VERSION,
            "params": {k: encode(t, getattr(self, k)) for k, t in self._PARAMS.items()},
            "vars": {k.lstrip("_"): encode(t, getattr(self, k)) for k, t in self._VARS.items()},
        }

    @classmethod
    def from_state(cls, state: Any, where: str | None = None) -> Self:
        """An object equal in behaviour to the one whose ``to_state()`` gave ``state``."""
        where = where or cls.__name__
        state = mapping(upgrade(state, where, cls.STATE_VERSION, cls._MIGRATIONS), where,
                        {"version", "params", "vars"})
        params = mapping(state["params"], f"{where}.params", set(cls._PARAMS))
        names = {k.lstrip("_"): k for k in cls._VARS}
        values = mapping(state["vars"], f"{where}.vars", set(names))
        kwargs = {k: decode(t, params[k], f"{where}.params.{k}") for k, t in cls._PARAMS.items()}
        try:
            obj = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise StateError(f"{where}.params: {exc}") from None
        for name, attr in names.items():
            setattr(obj, attr, decode(cls._VARS[attr], values[name], f"{where}.vars.{name}"))
        obj._check_state(where)
        return obj

    def _check_state(self, where: str) -> None:
        """Invariants of a restored state; none by default."""
