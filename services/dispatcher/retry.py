"""When to try a delivery again: exponential backoff with full jitter, and which failures are final.

Full jitter (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog 2015): after the
n-th failed attempt (n >= 1) wait ``uniform(0, min(cap, base * 2**(n - 1)))`` seconds. Receivers
that come back after an outage are not hit by every queued delivery at the same instant.
"""

from __future__ import annotations

import random
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


def retry_after_s(value: str | None) -> float | None:
    """Seconds asked by a ``Retry-After`` header (delta-seconds or HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def next_delay(
    attempt: int, base_s: float, cap_s: float, retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """The wait after failed attempt ``attempt``, honouring ``Retry-After`` up to ``cap_s``."""
    delay = backoff_delay(attempt, base_s, cap_s, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap_s))
    return delay
