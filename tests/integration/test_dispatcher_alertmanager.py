"""Alerts reach a real Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) and resolve there.

Kafka -> dispatcher (in-process threads) -> ``POST /api/v2/alerts`` -> ``GET /api/v2/alerts``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from parrotwatch.services.dispatcher.config import parse_receivers
from parrotwatch.services.dispatcher.service import Dispatcher
from parrotwatch.settings import ALERTS_TOPIC
from parrotwatch.stack.processes import free_port
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

AM_CONFIG = """\
route:
  receiver: "null"
  group_wait: 1s
receivers:
  - name: "null"
"""


def alertmanager_binary() -> str:
    # upstream calls the binary `alertmanager`, Debian `prometheus-alertmanager`
    found = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    if found is None:
        pytest.fail("no Alertmanager binary on PATH (alertmanager or prometheus-alertmanager): "
                    "run scripts/install_alertmanager.sh as root (installs Debian's "
                    "prometheus-alertmanager); this test needs the real thing and does not skip")
    return found


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[str]:
    binary = alertmanager_binary()
    port = free_port()
    (tmp_path / "am.yml").write_text(AM_CONFIG)
    (tmp_path / "am-data").mkdir()
    log_path = tmp_path / "alertmanager.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Alertmanager did not become ready; log:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def alert(status: str, starts: datetime, ends: datetime | None = None) -> dict:
    return {"alert_id": "fp-am-1", "rule": "latency_p99_high", "status": status, "severity": "warning",
            "labels": {"model": "llama-3-8b", "app": "support", "metric": "latency_p99"},
            "starts_at": starts.isoformat(), "ends_at": ends.isoformat() if ends else None,
            "value": 4200.0, "threshold": 2000.0, "summary": "p99 latency 4.2 s is above 2 s for 5 min",
            "evidence": {"window": "1m", "request_ids": ["r-1", "r-2"]}}


def test_alerts_appear_in_alertmanager_and_resolve(namespace, alertmanager):
    config = parse_receivers({
        "receivers": [{"name": "am", "kind": "alertmanager", "url": alertmanager,
                       "generator_url": "http://grafana.local/d/alerts?var-alert={alert_id}"}],
        "delivery": {"backoff_base_s": 0.2, "backoff_cap_s": 1, "poll_interval_s": 0.2}})
    topic = namespace.topic(ALERTS_TOPIC)
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    def produce(event: dict) -> None:
        producer = namespace.producer()
        producer.send(topic, key=event["alert_id"].encode(), value=json.dumps(event).encode())
        producer.flush()
        producer.close()

    def ours(**params) -> list[dict]:
        response = httpx.get(f"{alertmanager}/api/v2/alerts",
                             params={"filter": 'alert_id="fp-am-1"', **params}, timeout=5)
        response.raise_for_status()
        return response.json()

    with Dispatcher(namespace.settings, config, namespace.database_url):
        produce(alert("firing", starts))
        wait_for(lambda: len(ours()) == 1, 30, "the firing alert in Alertmanager")
        (shown,) = ours()
        assert shown["labels"] == {"alertname": "latency_p99_high", "severity": "warning",
                                   "alert_id": "fp-am-1", "model": "llama-3-8b", "app": "support",
                                   "metric": "latency_p99"}
        assert shown["annotations"]["summary"] == "p99 latency 4.2 s is above 2 s for 5 min"
        assert json.loads(shown["annotations"]["evidence"]) == {"window": "1m", "request_ids": ["r-1", "r-2"]}
        assert shown["status"]["state"] == "active"
        assert datetime.fromisoformat(shown["startsAt"]) == starts
        assert datetime.fromisoformat(shown["endsAt"]) > datetime.now(UTC) + timedelta(hours=23)
        assert shown["generatorURL"] == "http://grafana.local/d/alerts?var-alert=fp-am-1"
        assert len(ours(active="true")) == 1

        ends = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        produce(alert("resolved", starts, ends))
        # Alertmanager lists only unresolved alerts: a resolved one (endsAt in the past) drops out,
        # where the firing one would have stayed for 24 h.
        wait_for(lambda: ours() == [], 30, "the alert resolved in Alertmanager")
        assert ours(active="true") == []

    log = namespace.sql("SELECT o.alert_status, l.outcome, l.status_code FROM alert_delivery_log l "
                        "JOIN alert_outbox o USING (idempotency_key) ORDER BY l.id")
    assert log == [("firing", "delivered", 200), ("resolved", "delivered", 200)]
