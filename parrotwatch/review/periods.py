"""Review periods: fixed-length intervals aligned to the Unix epoch, in UTC.

A period of ``hours`` hours starts at ``floor(t / P) * P`` seconds since 1970-01-01T00:00Z
(``P = hours * 3600``), so every process (and SQL) computes the same boundaries; with 24 h the
periods are UTC days. A period is *closed* once its end is older than a grace delay: events of
it may still arrive until the stream's watermark passes its end, plus a margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, order=True)
class Period:
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%M:%SZ}..{self.end:%Y-%m-%dT%H:%M:%SZ}"


def period_seconds(hours: float) -> float:
    if not hours > 0 or not math.isfinite(hours):
        raise ValueError(f"a review period must last a positive number of hours, got {hours}")
    return hours * 3600.0


def period_of(t: datetime, hours: float) -> Period:
    """The period that holds ``t``.

    >>> p = period_of(datetime(2026, 3, 5, 13, 7, tzinfo=UTC), 6)
    >>> str(p)
    '2026-03-05T12:00:00Z..2026-03-05T18:00:00Z'
    """
    if t.tzinfo is None:
        raise ValueError(f"{t} has no time zone; pass an aware datetime (UTC)")
    p = period_seconds(hours)
    index = math.floor((t - EPOCH).total_seconds() / p)
    start = EPOCH + timedelta(seconds=index * p)
    return Period(start, start + timedelta(seconds=p))


def last_closed_end(now: datetime, hours: float, grace: timedelta) -> datetime:
    """The end of the latest period whose end is at least ``grace`` before ``now``: every
    period ending at or before it may be drawn.

    >>> now = datetime(2026, 3, 5, 0, 10, tzinfo=UTC)
    >>> last_closed_end(now, 24, timedelta(minutes=5)).isoformat()
    '2026-03-05T00:00:00+00:00'
    >>> last_closed_end(now, 24, timedelta(minutes=15)).isoformat()
    '2026-03-04T00:00:00+00:00'
    """
    return period_of(now - grace, hours).start
