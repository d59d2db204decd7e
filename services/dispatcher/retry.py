"""When to try a delivery again: exponential backoff with full jitter, and which failures are final.

Full jitter (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog 2015): after the
n-th failed attempt (n >= 1) wait ``uniform(0, min(cap, base * 2**(n - 1)))`` seconds. Receivers
that come back after an outage are not hit by every queued delivery at the same instant.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_4XX = frozenset({408, 425, 429})


def backoff_ceiling(attempt: int, base_s: float, cap_s: float) -> float:
    """Upper bound of the wait after failed attempt ``attempt`` (1-based)."""
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    return min(cap_s, base_s * 2.0 ** min(attempt - 1, 62))


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt``: full jitter under :func:`backoff_ceiling`."""
    return (rng or random).uniform(0.0, backoff_ceiling(attempt, base_s, cap_s))


def expected_window_s(max_attempts: int, base_s: float, cap_s: float) -> float:
    """Mean time from the first to the last attempt before a delivery is declared dead."""
    return sum(backoff_ceiling(n, base_s, cap_s) / 2 for n in range(1, max_attempts))


def is_success(status: int) -> bool:
    return 200 <= status < 300


def is_retryable(status: int | None) -> bool:
    """No response, 3xx, 5xx, 408/425/429: try again. Any other 4xx: the receiver rejects this
    request as such (bad payload, bad signature, wrong URL) and a retry would get the same answer."""
    if status is None:
        return True
    return not (400 <= status < 500) or status in RETRYABLE_4XX


#: The longest wait a ``Retry-After`` header can ask for before the policy's cap applies (a day);
#: larger values, and dates further ahead, are clamped to it, never rejected.
RETRY_AFTER_MAX_S = 86_400.0
_DELAY_SECONDS = re.compile(r"[0-9]+")  # RFC 9110 delay-seconds = 1*DIGIT, ASCII digits only


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds asked by a ``Retry-After`` header per RFC 9110 section 10.2.3, or None to ignore it.

    Two forms only: ``delay-seconds`` (one or more ASCII digits: ``"120"``; not ``"²"``, which
    ``str.isdigit`` accepts, not ``"-1"``, ``"1e9"`` or ``"1.5"``) and an ``HTTP-date`` (IMF-fixdate
    ``"Wed, 21 Oct 2015 07:28:00 GMT"`` and the two obsolete forms, read by
    :func:`email.utils.parsedate_to_datetime`; a date without a zone is UTC). A date in the past
    gives 0. Anything else (empty, garbage, an unreadable date) gives None: the caller falls back
    to its backoff. The result is clamped to [0, :data:`RETRY_AFTER_MAX_S`], so ``10**30`` digits
    are cheap (no big-integer parsing) and finite. Never raises.
    """
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        digits = value.lstrip("0") or "0"
        return RETRY_AFTER_MAX_S if len(digits) > 9 else min(float(digits), RETRY_AFTER_MAX_S)
    if len(value) > 64 or not any(c.isalpha() for c in value):  # no HTTP-date is longer or digit-only
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, seconds), RETRY_AFTER_MAX_S)


def next_delay(
    attempt: int, base_s: float, cap_s: float, retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """The wait after failed attempt ``attempt``, honouring ``Retry-After`` up to ``cap_s``: always
    within [0, ``cap_s``], whatever the receiver asked (a NaN or negative ask is ignored)."""
    delay = backoff_delay(attempt, base_s, cap_s, rng)
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, cap_s))
    return min(max(delay, 0.0), cap_s)
