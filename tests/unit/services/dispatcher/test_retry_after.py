"""``Retry-After`` per RFC 9110 section 10.2.3: delay-seconds (ASCII digits) or an HTTP-date,
anything else ignored, every result bounded, nothing raises; and the delay it leads to."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.services.dispatcher.retry import RETRY_AFTER_MAX_S, next_delay, retry_after_s

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [
    ("0", 0.0), ("120", 120.0), (" 7 ", 7.0), ("007", 7.0),
    ("86400", 86_400.0), ("86401", RETRY_AFTER_MAX_S), ("999999999999", RETRY_AFTER_MAX_S),
    ("1" + "0" * 30, RETRY_AFTER_MAX_S),  # 10**30: clamped, not parsed as a big integer
    ("9" * 10_000, RETRY_AFTER_MAX_S),  # past int()'s 4,300-digit limit: still no exception
])
def test_delay_seconds(value, seconds):
    assert retry_after_s(value, NOW) == seconds


@pytest.mark.parametrize("value", [
    None, "", "   ", "²", "١٢",  # superscript two and Arabic-Indic digits: str.isdigit() is True
    "-1", "+5", "1e9", "1.5", "0x10", "inf", "nan", "12 s", "soon", "120, 120",
    "Wed, 21 Oct 99999 07:28:00 GMT", "Mon, 99 Foo 2015 07:28:00 GMT", "x" * 10_000,
])
def test_anything_else_is_ignored(value):
    assert retry_after_s(value, NOW) is None


@pytest.mark.parametrize("value", [
    "Wed, 21 Oct 2015 07:28:00 GMT",  # IMF-fixdate in the past
    "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 form
    "Sun Nov  6 08:49:37 1994",  # obsolete asctime form (no zone: UTC)
])
def test_a_date_in_the_past_means_now(value):
    assert retry_after_s(value, NOW) == 0.0


def test_a_date_in_the_future_counts_down_and_is_clamped():
    soon = NOW + timedelta(seconds=90)
    assert retry_after_s(soon.strftime("%a, %d %b %Y %H:%M:%S GMT"), NOW) == 90.0
    assert retry_after_s("Fri, 31 Dec 9999 23:59:59 GMT", NOW) == RETRY_AFTER_MAX_S


@pytest.mark.parametrize("asked", [None, 0.0, -5.0, float("nan"), float("inf"), 1e300, 30.0])
def test_next_delay_is_always_within_the_cap(asked):
    rng = random.Random(5)
    for attempt in (1, 2, 10, 10_000):
        delay = next_delay(attempt, 0.5, 20.0, asked, rng)
        assert 0.0 <= delay <= 20.0
    if asked == 30.0 or asked == 1e300:
        assert next_delay(1, 0.5, 20.0, asked, rng) == 20.0  # honoured, up to the cap
