"""Alert lifecycle: one firing and one resolved per incident (detectors/alerting/lifecycle.py)."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.detectors.alerting.lifecycle import AlertTracker, Observation, fingerprint

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LABELS = {"model": "m1", "app": "chat", "metric": "latency_ms_p99"}


def window(i: int, bad: bool | None, value: float = 1.0) -> Observation:
    start = T0 + timedelta(minutes=i)
    return Observation(
        start,
        start + timedelta(minutes=1),
        bad,
        value,
        baseline=0.5,
        threshold=0.8,
        evidence={"examples": [f"req-{i}"]},
    )


def feed(tracker: AlertTracker, conditions) -> list[tuple[int, dict]]:
    return [(i, e) for i, c in enumerate(conditions) for e in tracker.observe(window(i, c))]


def test_fingerprint_is_sha256_of_rule_and_sorted_labels():
    expected = hashlib.sha256(
        json.dumps(["latency", [["app", "chat"], ["metric", "latency_ms_p99"], ["model", "m1"]]]).encode()
    ).hexdigest()[:16]
    assert fingerprint("latency", LABELS) == expected
    assert fingerprint("latency", dict(reversed(list(LABELS.items())))) == expected
    assert fingerprint("latency2", LABELS) != expected
    assert fingerprint("latency", {**LABELS, "app": "other"}) != expected


def test_fingerprint_is_stable_across_processes():
    code = (
        "from parrotwatch.detectors.alerting.lifecycle import fingerprint; "
        "print(fingerprint('r', {'model': 'm', 'app': 'a'}))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outs == {fingerprint("r", {"app": "a", "model": "m"})}


def test_one_incident_gives_one_firing_and_one_resolved():
    # 60 windows; the condition holds in windows 20..29 (with one clear blip at 25)
    conditions = [20 <= i < 30 and i != 25 for i in range(60)]
    tracker = AlertTracker("latency", LABELS, "critical", for_windows=2, resolve_after=3)
    events = feed(tracker, conditions)
    assert [(i, e["status"]) for i, e in events] == [(21, "firing"), (32, "resolved")]
    firing, resolved = events[0][1], events[1][1]
    for event in (firing, resolved):
        AlertEventV1.model_validate(event)
        assert set(event) == set(AlertEventV1.model_fields)
        assert event["alert_id"] == fingerprint("latency", LABELS) and event["severity"] == "critical"
        assert event["starts_at"] == "2026-03-01T12:20:00Z"  # start of the first bad window
    assert firing["ends_at"] is None
    assert resolved["ends_at"] == "2026-03-01T12:30:00Z"  # end of the last bad window (29)
    assert (
        firing["evidence"]["examples"] == ["req-21"]
        and firing["evidence"]["window"]["start"] == "2026-03-01T12:21:00Z"
    )
    assert firing["summary"].endswith(".") and "\n" not in firing["summary"]
    assert tracker.state == "inactive"


def test_clean_series_and_short_blips_give_nothing():
    assert feed(AlertTracker("r", LABELS, for_windows=1), [False] * 60) == []
    assert feed(AlertTracker("r", LABELS, for_windows=1), [None] * 60) == []
    # bad for 2 windows at a time never reaches for_windows=3
    assert feed(AlertTracker("r", LABELS, for_windows=3), [i % 4 < 2 for i in range(60)]) == []


def test_renotify_only_after_the_interval():
    tracker = AlertTracker("r", LABELS, for_windows=1, resolve_after=1, renotify=timedelta(minutes=10))
    events = feed(tracker, [5 <= i < 40 for i in range(60)])
    assert [(i, e["status"], e["evidence"].get("renotify", False)) for i, e in events] == [
        (5, "firing", False),
        (15, "firing", True),
        (25, "firing", True),
        (35, "firing", True),
        (40, "resolved", False),
    ]
    assert {e["starts_at"] for _, e in events} == {"2026-03-01T12:05:00Z"}
    silent = AlertTracker("r", LABELS, for_windows=1)
    assert [e["status"] for _, e in feed(silent, [5 <= i < 40 for i in range(60)])] == ["firing", "resolved"]


def test_replayed_and_old_windows_are_ignored():
    tracker = AlertTracker("r", LABELS)
    assert [e["status"] for e in tracker.observe(window(3, True))] == ["firing"]
    assert tracker.observe(window(3, True)) == [] and tracker.observe(window(2, False)) == []
    assert [e["status"] for e in tracker.observe(window(4, False))] == ["resolved"]


def test_two_incidents_give_two_pairs_with_their_own_times():
    events = feed(AlertTracker("r", LABELS), [i in (10, 11, 40) for i in range(60)])
    assert [(e["status"], e["starts_at"][11:16], (e["ends_at"] or "")[11:16]) for _, e in events] == [
        ("firing", "12:10", ""),
        ("resolved", "12:10", "12:12"),
        ("firing", "12:40", ""),
        ("resolved", "12:40", "12:41"),
    ]


def test_summary_template_and_missing_fields():
    tracker = AlertTracker(
        "r", LABELS, summary="{model}/{app} {metric} at {value:.1f} vs {baseline:.2f} {nope}."
    )
    assert tracker.observe(window(0, True, 3.0))[0]["summary"] == "m1/chat latency_ms_p99 at 3.0 vs 0.50 n/a."
    broken = AlertTracker("r", LABELS, summary="{model:.3f} is not a number.")
    assert broken.observe(window(0, True, 3.0))[0]["summary"] == "r on m1/chat: latency_ms_p99 is 3."


def test_tracker_pickles_mid_incident_and_continues_identically():
    conditions = [10 <= i < 20 for i in range(40)]
    a = AlertTracker("r", LABELS, for_windows=2, resolve_after=2, renotify=timedelta(minutes=3))
    feed(a, conditions[:15])
    b = pickle.loads(pickle.dumps(a))
    rest = [e for c_i, c in enumerate(conditions[15:], 15) for e in a.observe(window(c_i, c))]
    assert rest == [e for c_i, c in enumerate(conditions[15:], 15) for e in b.observe(window(c_i, c))]
    assert [e["status"] for e in rest] == ["firing", "resolved"]  # renotified at 14 and 17, resolved at 21


def test_naive_times_are_rejected():
    naive = Observation(datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 1), True, 1.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        AlertTracker("r", LABELS).observe(naive)
