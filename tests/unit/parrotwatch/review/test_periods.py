from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.review.periods import last_closed_end, period_of


@pytest.mark.parametrize("hours", [24, 6, 1, 0.25, 7])
def test_periods_tile_time_aligned_to_the_epoch(hours):
    t = datetime(2026, 5, 17, 13, 41, 7, tzinfo=UTC)
    p = period_of(t, hours)
    assert p.start <= t < p.end
    assert p.end - p.start == timedelta(hours=hours)
    assert (p.start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() % (hours * 3600) == 0
    assert period_of(p.end, hours).start == p.end  # the next one starts where this one ends


def test_a_day_period_is_the_utc_day_whatever_the_input_zone():
    from zoneinfo import ZoneInfo

    t = datetime(2026, 5, 17, 1, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 23:30 UTC the day before
    assert period_of(t, 24).start == datetime(2026, 5, 16, tzinfo=UTC)


def test_a_period_is_closed_only_once_its_end_is_older_than_the_grace():
    end = datetime(2026, 5, 17, tzinfo=UTC)
    assert last_closed_end(end + timedelta(minutes=14), 24, timedelta(minutes=15)) == end - timedelta(days=1)
    assert last_closed_end(end + timedelta(minutes=15), 24, timedelta(minutes=15)) == end


def test_naive_times_and_bad_lengths_are_refused():
    with pytest.raises(ValueError, match="time zone"):
        period_of(datetime(2026, 1, 1), 24)
    with pytest.raises(ValueError, match="positive"):
        period_of(datetime(2026, 1, 1, tzinfo=UTC), 0)
