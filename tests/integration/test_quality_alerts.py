"""Alerts from the model-based detectors with the real parts: 38 simulated minutes over 4
segments with a regurgitation burst (against an index of the training corpus the burst
quotes), a toxicity burst, a hallucination spike and a prompt drift on three of them ->
exactly one firing and one resolved alert each, within 2 windows; the fourth segment (clean
control) and every other rule stay silent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from parrotwatch.scenario import QUALITY_INCIDENTS, build_corpus_index, quality_scenario_traffic
from tests.integration.conftest import wait_for

# its waits (scoring with every detector, up to 1,200 s) outgrow the suite-wide 600 s limit
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

T0 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
MINUTES = 38
RATE = 1.8  # events/s of event time: about 27 requests per segment and minute
DETECTORS = ["toxicity", "hallucination", "drift"]


def test_quality_incidents_fire_once_and_resolve(namespace, stream_job, tmp_path):
    events = quality_scenario_traffic(T0, minutes=MINUTES, rate_per_s=RATE, id_prefix="qreplay")
    namespace.produce_events(events)
    build_corpus_index(tmp_path / "corpus.npz")
    job = stream_job(quality_detectors=DETECTORS, max_offsets_per_trigger=2000,
                     regurgitation_index=tmp_path / "corpus.npz").start()
    last_window = T0 + timedelta(minutes=MINUTES - 2)
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= len(events)
             and (namespace.scalar("SELECT evaluated_until FROM stream_watermarks") or T0)
             >= last_window, timeout=1200, what="all windows evaluated", job=job)
    alerts = [r[0] for r in namespace.sql("SELECT event FROM alerts ORDER BY id")]
    published = [orjson.loads(r.value) for r in namespace.read_topic("llm.alerts.v1", len(alerts),
                                                                     timeout=60)]
    assert sorted(a["alert_id"] + a["status"] for a in published) == \
        sorted(a["alert_id"] + a["status"] for a in alerts)

    report = [(a["rule"], a["labels"]["model"], a["labels"]["app"], a["status"], a["starts_at"],
               a["ends_at"]) for a in alerts]
    for (rule, model, app), (first, end) in QUALITY_INCIDENTS.items():
        mine = [a for a in alerts if (a["rule"], a["labels"]["model"], a["labels"]["app"])
                == (rule, model, app)]
        firing = [a for a in mine if a["status"] == "firing"]
        resolved = [a for a in mine if a["status"] == "resolved"]
        assert len(firing) == 1 and len(resolved) == 1, (rule, report)
        delay = (datetime.fromisoformat(firing[0]["starts_at"])
                 - (T0 + timedelta(minutes=first))).total_seconds() / 60
        assert 0 <= delay <= 2, f"{rule}: detected {delay} windows after the incident began"
        ends = datetime.fromisoformat(resolved[0]["ends_at"])
        assert ends >= T0 + timedelta(minutes=end - 1), (rule, report)
        print(f"{rule}: detection delay {delay:.0f} window(s), resolved at {ends:%H:%M}")
    extra = [r for r in report if (r[0], r[1], r[2]) not in QUALITY_INCIDENTS]
    assert not extra, f"alerts without an incident: {extra}"
    # the drift evidence is in the drift tests of the drifted windows
    drifted = namespace.scalar(
        "SELECT min(p_value) FROM drift_windows WHERE model = 'llama-3-8b' AND "
        "app = 'support-bot' AND side = 'prompt' AND window_start >= %s AND window_start < %s",
        T0 + timedelta(minutes=29), T0 + timedelta(minutes=34))
    assert drifted is not None and drifted < 0.01
