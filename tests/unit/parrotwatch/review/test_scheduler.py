from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.review.scheduler import ReviewScheduler, check_cron, next_fire, run_round


def test_a_failing_step_is_logged_and_the_others_run(caplog):
    ran = []

    def boom():
        raise RuntimeError("database away")

    out = run_round([("sample", boom), ("purge", lambda: ran.append("purge")),
                     ("calibrate", lambda: ran.append("calibrate"))])
    assert ran == ["purge", "calibrate"]
    assert out["sample"] == "RuntimeError: database away" and out["purge"] == "ok"
    assert "review sample failed" in caplog.text


def test_rounds_fire_on_the_cron_schedule():
    clock = [datetime(2026, 1, 1, 10, 59, 58, tzinfo=UTC)]
    fired = []

    def now():
        clock[0] += timedelta(seconds=1)
        return clock[0]

    scheduler = ReviewScheduler("0 * * * *", [("sample", lambda: fired.append(clock[0]))], now=now)
    scheduler._stop.wait = lambda _s: None  # the fake clock advances on every read
    scheduler.run(max_rounds=2)
    assert [t.replace(second=0) for t in fired] == [datetime(2026, 1, 1, 11, tzinfo=UTC),
                                                    datetime(2026, 1, 1, 12, tzinfo=UTC)]


def test_stop_ends_the_loop_and_at_start_runs_once_first():
    fired = []
    scheduler = ReviewScheduler("0 0 1 1 *", [("sample", lambda: (fired.append(1), scheduler.stop()))])
    scheduler.run(at_start=True)
    assert fired == [1] and scheduler.rounds == 1


def test_a_bad_cron_is_refused_with_the_syntax():
    with pytest.raises(ValueError, match="5 fields"):
        check_cron("every hour")
    assert next_fire("*/30 * * * * *", datetime(2026, 1, 1, tzinfo=UTC)).second == 30
