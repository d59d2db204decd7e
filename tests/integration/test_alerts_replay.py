"""Alerting end to end with the real parts: 60 simulated minutes of event-time traffic over 9
segments, injected incidents -> exactly one firing and one resolved alert each, on Kafka and in
PostgreSQL; the same traffic without incidents -> no alert at all."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from parrotwatch.detectors.alerting.rules import DEFAULT_RULES_PATH
from parrotwatch.scenario import INCIDENTS, scenario_traffic
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MINUTES = 60


def traffic(with_incidents: bool) -> list[dict]:
    return scenario_traffic(T0, minutes=MINUTES, with_incidents=with_incidents, id_prefix="replay")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parrotwatch.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def replay(namespace, stream_job, events: list[dict]) -> list[dict]:
    namespace.produce_events(events)
    job = stream_job().start()
    last_window = T0 + timedelta(minutes=MINUTES - 2)
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= len(events)
             and (namespace.scalar("SELECT evaluated_until FROM stream_watermarks") or T0)
             >= last_window, timeout=300, what="all windows evaluated", job=job)
    stored = [r[0] for r in namespace.sql("SELECT event FROM alerts ORDER BY id")]
    published = [orjson.loads(r.value) for r in namespace.read_topic("llm.alerts.v1",
                                                                     len(stored), timeout=60)]
    assert sorted(a["alert_id"] + a["status"] for a in published) == \
        sorted(a["alert_id"] + a["status"] for a in stored)
    return stored


def test_each_incident_fires_once_and_resolves(namespace, stream_job):
    alerts = replay(namespace, stream_job, traffic(with_incidents=True))
    report = [(a["rule"], a["labels"]["model"], a["labels"]["app"], a["status"], a["starts_at"],
               a["ends_at"]) for a in alerts]
    for (rule, model, app), (first, end) in INCIDENTS.items():
        mine = [a for a in alerts if (a["rule"], a["labels"]["model"], a["labels"]["app"])
                == (rule, model, app)]
        firing = [a for a in mine if a["status"] == "firing"]
        resolved = [a for a in mine if a["status"] == "resolved"]
        assert len(firing) == 1 and len(resolved) == 1, (rule, report)
        start = datetime.fromisoformat(firing[0]["starts_at"])
        delay = (start - (T0 + timedelta(minutes=first))).total_seconds() / 60
        assert 0 <= delay <= 2, f"{rule}: detected {delay} windows after the incident began"
        ends = datetime.fromisoformat(resolved[0]["ends_at"])
        assert ends >= T0 + timedelta(minutes=end - 1), (rule, report)
        print(f"{rule}: detection delay {delay:.0f} window(s), resolved at {ends:%H:%M}")
    expected = {key for key in INCIDENTS}
    extra = [r for r in report if (r[0], r[1], r[2]) not in expected]
    assert not extra, f"alerts without an incident: {extra}"

    # The CLI over the same database: what fired, and a dry run of the shipped rules.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")},
           "PARROTWATCH_DATABASE_URL": namespace.database_url}
    listed = cli(env, "alerts", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(rule in listed.stdout for rule, _, _ in INCIDENTS)
    dry = cli(env, "alerts", "test-rules", str(DEFAULT_RULES_PATH), "--hours", "2")
    assert dry.returncode == 0, dry.stderr
    assert f"{len(INCIDENTS)} would fire" in dry.stdout, dry.stdout
    typo = namespace_file = Path(namespace.settings.home) / f"{namespace.topic('typo')}.yaml"
    namespace_file.write_text(DEFAULT_RULES_PATH.read_text().replace("threshold: 5.0", "treshold: 5.0", 1))
    bad = cli(env, "alerts", "test-rules", str(typo))
    assert bad.returncode == 1
    assert "unknown key 'treshold'" in bad.stderr and "valid keys for ewma rules" in bad.stderr


def test_clean_traffic_raises_no_alert(namespace, stream_job):
    alerts = replay(namespace, stream_job, traffic(with_incidents=False))
    assert alerts == [], [(a["rule"], a["labels"], a["status"]) for a in alerts]
