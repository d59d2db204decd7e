"""Hostile window aggregates through the pooled rules: extreme and non-finite values, huge counts,
segments that go silent. Nothing may raise, every alert must stay valid JSON, and the state must
round-trip (a poison window must never fail the stream's batch, let alone twice)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.detectors.alerting import Evaluator, load_default_rules
from parrotwatch.detectors.alerting.checks import MetricStats, WindowAggregate
from parrotwatch.detectors.alerting.stats import theil_sen_slope

T0 = datetime(2026, 3, 1, tzinfo=UTC)
POISON = [math.inf, -math.inf, math.nan, 1e308, -1e308, -5.0, 0.0, 5e-324]


def window(minute: int, app: str, count: int, latency: float, share: tuple[int, int]) -> WindowAggregate:
    k, n = share
    metrics = {
        "latency_ms": MetricStats(n=count, mean=latency, p50=latency, p95=latency, p99=latency, flagged=0),
        "toxicity": MetricStats(n=n, mean=0.1, flagged=k),
        "surprisal_mean": MetricStats(n=count, mean=latency / 1000, flagged=0),
    }
    start = T0 + timedelta(minutes=minute)
    return WindowAggregate(start, start + timedelta(minutes=1), model="m", app=app, count=count,
                           feedback_count=0, thumbs_down=0, metrics=metrics if count else {})


def test_theil_sen_of_non_finite_values_does_not_raise():
    for bad in POISON:
        slope = theil_sen_slope([0.0, 1.0, 2.0, 3.0], [0.0, bad, 1.0, 2.0])
        assert slope is None or isinstance(slope, float)


@pytest.mark.parametrize("poison", POISON)
def test_poison_values_in_sparse_segments_never_raise_and_alerts_stay_valid(poison):
    rng = np.random.default_rng(1)
    ev = Evaluator(load_default_rules())
    events = []
    for m in range(240):
        windows = []
        for app, rate in (("tiny", 1), ("small", 5), ("busy", 100)):
            n = int(rng.poisson(rate))
            latency = poison if m % 37 == 5 and app != "busy" else float(rng.lognormal(7, 0.4))
            toxic = (int(2**31 - 1), int(2**31 - 1)) if m == 100 and app == "small" else (0, n)
            windows.append(window(m, app, n if m != 100 else max(n, 1), latency, toxic))
        events += ev.evaluate(windows)
        if m in (60, 150):
            state = json.loads(json.dumps(ev.to_state(), allow_nan=False))
            ev = Evaluator.from_state(ev.ruleset, state)
    for e in events:
        AlertEventV1.model_validate(e)
        json.dumps(e, allow_nan=False)


def test_a_segment_that_goes_silent_forever_resolves_its_drop_and_stays_quiet():
    rng = np.random.default_rng(2)
    ev = Evaluator(load_default_rules())
    statuses = []
    for m in range(400):
        n = int(rng.poisson(20)) if m < 120 else 0
        statuses += [(e["rule"], e["status"]) for e in ev.evaluate([window(m, "gone", n, 800.0, (0, n))])]
    # the drop fires once, and once the silence is the new level (relearn_after) it resolves
    assert statuses.count(("throughput_drop", "firing")) == 1
    assert statuses.count(("throughput_drop", "resolved")) == 1
    assert {r for r, _ in statuses} == {"throughput_drop"}
