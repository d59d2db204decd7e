"""Durations and spans in rules files: ``"30s"``, ``"3m"``, ``"1h30m"``, or a number of windows."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["Duration", "Span", "parse_duration", "span_windows"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+[smhd])+$")


def _duration(value: Any) -> Any:
    if isinstance(value, str) and _DURATION.match(value):
        return value
    raise ValueError(f"expected a duration such as '30s', '3m' or '1h30m', got {value!r}")


def _span(value: Any) -> Any:
    if (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
        isinstance(value, str) and _DURATION.match(value)
    ):
        return value
    raise ValueError(f"expected a number of windows (>= 1) or a duration such as '3m', got {value!r}")


Duration = Annotated[str, BeforeValidator(_duration)]
#: A number of windows (int) or a duration such as ``"3m"`` or ``"1h30m"`` (rounded up to windows).
Span = Annotated[int | str, BeforeValidator(_span)]


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> ``timedelta(hours=1, minutes=30)``; units s, m, h, d."""
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhd])", text)))


def span_windows(span: int | str, window: timedelta = timedelta(minutes=1)) -> int:
    """A ``Span`` as a number of windows of length ``window``: an int as is, a duration rounded up.

    >>> span_windows(3), span_windows("1h"), span_windows("90s")
    (3, 60, 2)
    """
    if isinstance(span, int):
        return span
    return max(1, math.ceil(parse_duration(span) / window))
