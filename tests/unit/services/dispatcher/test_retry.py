"""Backoff schedule bounds and which HTTP answers are retried (no network)."""

from __future__ import annotations

import random

import pytest

from parrotwatch.services.dispatcher.config import DeliveryPolicy
from parrotwatch.services.dispatcher.retry import (
    backoff_ceiling,
    backoff_delay,
    expected_window_s,
    is_retryable,
    next_delay,
    retry_after_s,
)


def test_ceiling_doubles_then_caps():
    assert [backoff_ceiling(n, 1.0, 60.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_ceiling(10_000, 0.5, 5.0) == 5.0  # no overflow on huge attempt counts
    with pytest.raises(ValueError, match="1-based"):
        backoff_ceiling(0, 1.0, 60.0)


def test_full_jitter_stays_within_bounds_and_spreads():
    rng = random.Random(7)
    for attempt in range(1, 30):
        ceiling = backoff_ceiling(attempt, 0.5, 20.0)
        delays = [backoff_delay(attempt, 0.5, 20.0, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # full jitter: the draws cover the range rather than cluster at the ceiling
        assert min(delays) < 0.1 * ceiling and max(delays) > 0.9 * ceiling


def test_default_policy_outlasts_a_ten_minute_outage():
    p = DeliveryPolicy()
    assert expected_window_s(p.max_attempts, p.backoff_base_s, p.backoff_cap_s) > 20 * 60
    rng = random.Random(1)
    totals = [sum(backoff_delay(n, p.backoff_base_s, p.backoff_cap_s, rng) for n in range(1, p.max_attempts))
              for _ in range(2000)]
    assert min(totals) > 10 * 60, f"shortest simulated retry window {min(totals):.0f} s"


def test_retry_after_is_honoured_up_to_the_cap():
    rng = random.Random(3)
    assert all(next_delay(1, 1.0, 60.0, retry_after=30.0, rng=rng) >= 30.0 for _ in range(50))
    assert all(next_delay(1, 1.0, 60.0, retry_after=3600.0, rng=rng) == 60.0 for _ in range(50))
    assert retry_after_s("12") == 12.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert retry_after_s("soon") is None and retry_after_s(None) is None


@pytest.mark.parametrize(("status", "retry"), [
    (None, True), (500, True), (502, True), (503, True), (429, True), (408, True), (301, True),
    (400, False), (401, False), (404, False), (422, False),
])
def test_retryable_statuses(status, retry):
    assert is_retryable(status) is retry
