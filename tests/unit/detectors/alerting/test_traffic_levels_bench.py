"""The pure parts of bench/alert_traffic_levels.py (issue 19's replay bench), and one short run."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[4] / "bench" / "alert_traffic_levels.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("alert_traffic_levels", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_creep_is_linear_to_4x_and_crosses_2_5x_at_30_minutes(bench):
    assert [bench.creep_factor(t) for t in (-5, 0, 30, 60, 90)] == [1.0, 1.0, 2.5, 4.0, 4.0]
    assert bench.creep_crossing() == pytest.approx(30.0)
    assert bench.creep_factor(bench.creep_crossing(3.1)) == pytest.approx(3.1)


def test_arrivals_are_poisson_within_their_minute(bench):
    rng, t0 = np.random.default_rng(0), datetime(2026, 1, 1, tzinfo=UTC)
    counts = []
    for m in range(3000):
        start = t0 + timedelta(minutes=m)
        times = bench.arrivals(rng, 5.0, start)
        assert all(start <= t < start + timedelta(minutes=1) for t in times)
        assert times == sorted(times)
        counts.append(len(times))
    # Poisson(5): mean and variance 5; over 3,000 minutes the mean's standard error is 0.04
    assert np.mean(counts) == pytest.approx(5.0, abs=0.2)
    assert np.var(counts) == pytest.approx(5.0, rel=0.15)


def test_closed_windows_zero_fill_a_silent_segment(bench):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"request_id": f"r{i}", "model": "m", "app": "busy", "event_time": t0 + timedelta(seconds=i),
             "latency_ms": float(100 * (i + 1)), "repetition_rate": 0.9 if i < 3 else 0.0}
            for i in range(10)]
    busy, silent = bench.closed_windows(rows, [("m", "busy"), ("m", "quiet")], t0)
    assert (busy.count, silent.count) == (10, 0)
    assert silent.metrics == {} and silent.window_end == t0 + timedelta(minutes=1)
    # DDSketch: the value of rank floor(0.99 (n - 1)) = 8 (0-based) of 100..1000, to 1 %
    assert busy.metrics["latency_ms"].p99 == pytest.approx(900.0, rel=0.01)
    assert busy.metrics["repetition_rate"].flagged == 3


def test_scaled_latency_slows_the_request_and_keeps_the_pool(bench):
    row = {"latency_ms": 200.0, "tokens_per_s": 30.0, "toxicity": None}
    slow = bench.scaled_latency(row, 2.5)
    assert slow == {"latency_ms": 500.0, "tokens_per_s": 12.0, "toxicity": None}
    assert row["latency_ms"] == 200.0


def test_detection_delay_counts_only_the_target_rule_on_the_segment_in_time(bench):
    run = bench.Run(firings=[
        bench.Firing("repetition_loop", "a", 100),       # before the incident
        bench.Firing("latency_p99_spike", "a", 123),     # another rule
        bench.Firing("repetition_loop", "b", 122),       # another segment
        bench.Firing("repetition_loop", "a", 127),
        bench.Firing("repetition_loop", "a", 125),
    ])
    assert bench.detection_delay(run, "a", ("repetition_loop",), at=120, minutes=30) == 5
    assert bench.detection_delay(run, "a", ("repetition_loop",), at=110, minutes=1) is None  # past grace
    assert bench.detection_delay(run, "c", ("repetition_loop",), at=120, minutes=30) is None


def test_summarise_and_table(bench):
    cell = bench.summarise([None, 3, 1, 5])
    assert (cell["rate"], cell["median_delay"], cell["max_delay"]) == (0.75, 3, 5)
    none = bench.summarise([None, None])
    assert (none["rate"], none["median_delay"]) == (0.0, None)
    table = bench.markdown_table({"loop": {1: none, 100: cell}}, (1, 100))
    assert table.splitlines()[-1] == "| loop | 0% | 75% · 3 / 5 min |"


def test_a_loop_at_100_per_minute_is_caught_and_clean_traffic_is_quiet(bench):
    pools = {k: bench.score_pool(k, 300, seed=i) for i, k in enumerate(("clean", "repetition_loop"))}
    spec = bench.INCIDENTS["repetition_loop"]
    run = bench.simulate(pools, (100,), 60, seed=3, incident=spec, at=45)
    delay = bench.detection_delay(run, bench.segment_app(100), spec.targets, 45, spec.minutes)
    assert delay is not None and 1 <= delay <= 3, run.firings
    clean = bench.simulate(pools, (100,), 60, seed=3)
    assert clean.firings == [] and 5000 < clean.requests[bench.segment_app(100)] < 7000


def test_within_limit_counts_detections_no_later_than_the_limit(bench):
    shares = bench.within_limit({1: [3, 15, 16, None], 5: [1, 2]}, limit=15)
    assert shares == {1: 0.5, 5: 1.0}


def test_a_loop_at_1_per_minute_is_caught_within_15_minutes(bench):
    # the sparse path end to end: pooled spans, the borrowed baseline of the busier segment
    pools = {k: bench.score_pool(k, 300, seed=i) for i, k in enumerate(("clean", "repetition_loop"))}
    spec = bench.INCIDENTS["repetition_loop"]
    run = bench.simulate(pools, (1, 100), 150, seed=4, incident=spec, at=120)
    delay = bench.detection_delay(run, bench.segment_app(1), spec.targets, 120, spec.minutes)
    assert delay is not None and delay <= bench.SHARE_LIMIT, run.firings
    assert all(f.minute > 120 for f in run.firings)  # nothing before the incident
