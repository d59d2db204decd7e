"""The demo waits for the rules up to the last window its own traffic closes, not up to "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parrotwatch.demo import last_closed_window_end


def test_last_closed_window_end_follows_the_traffic_not_the_clock():
    last = datetime(2026, 11, 28, 11, 52, 59, 830000, tzinfo=UTC)  # an hour of traffic ending 11:53
    until = last_closed_window_end(last, 30)
    # watermark 11:52:29.8 (delay 30 s): window [11:51, 11:52) is the last one closed
    assert until == datetime(2026, 11, 28, 11, 52, tzinfo=UTC)
    # and it is closed even where a partition's last event came 3 s before the overall last one
    assert until <= last - timedelta(seconds=3 + 30)
    # 5 s to spare: a last event just past a minute boundary waits for one window less
    edge = datetime(2026, 11, 28, 11, 53, 32, tzinfo=UTC)
    assert last_closed_window_end(edge, 30) == datetime(2026, 11, 28, 11, 52, tzinfo=UTC)
