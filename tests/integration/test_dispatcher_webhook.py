"""Signed webhooks through a receiver outage: real Kafka, PostgreSQL, HTTP and dispatcher process.

20 alerts (plus re-sent copies and one invalid record) are produced while the receiver is not
listening; the dispatcher is killed with SIGKILL and restarted during the outage; when the receiver
comes up 30 s later, each alert arrives exactly once, signed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.outbox import idempotency_key
from parrotwatch.services.dispatcher.verify import SignatureError, verify_signature
from parrotwatch.settings import ALERTS_TOPIC
from parrotwatch.stack.local import REPO_ROOT, settings_env
from parrotwatch.stack.processes import free_port
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
SECRET = "integration-test-secret"
OUTAGE_S = 30.0


def alert_event(i: int, start: datetime) -> dict:
    return {"alert_id": f"fp-{i:02d}", "rule": "hallucination_spike", "status": "firing",
            "severity": "critical", "labels": {"model": f"model-{i % 3}", "app": f"app-{i % 4}",
                                               "metric": "hallucination"},
            "starts_at": start.isoformat().replace("+00:00", "Z"), "value": 0.4, "baseline": 0.05,
            "summary": f"Hallucination share 0.40 vs baseline 0.05 on model-{i % 3}",
            "evidence": {"p_value": 1e-6, "window": "1m", "request_ids": [f"req-{i}-a", f"req-{i}-b"]}}


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies signatures and records every delivery."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.deliveries: list[dict] = []
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    verify_signature(SECRET, self.headers.get("X-Parrotwatch-Timestamp"),
                                     self.headers.get("X-Parrotwatch-Signature"), body)
                except SignatureError as exc:
                    with receiver.lock:
                        receiver.rejected.append(str(exc))
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.deliveries.append({"key": self.headers["Idempotency-Key"], "body": body,
                                                "attempt": self.headers["X-Parrotwatch-Delivery-Attempt"]})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_dispatcher(namespace, receivers_file, log_path) -> subprocess.Popen:
    env = settings_env(namespace.settings) | {"PW_TEST_WEBHOOK_SECRET": SECRET}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "parrotwatch.services.dispatcher", "--receivers",
                                 str(receivers_file)], env=env, cwd=REPO_ROOT, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def test_webhook_receiver_down_30s_gets_every_alert_once(namespace, tmp_path):
    port = free_port()  # reserved, then released: nothing listens there during the outage
    receivers_file = tmp_path / "receivers.yaml"
    receivers_file.write_text(
        "receivers:\n"
        f"  - {{name: hook, kind: webhook, url: 'http://127.0.0.1:{port}/alerts',"
        " secret_env: PW_TEST_WEBHOOK_SECRET, timeout_s: 5}\n"
        "delivery: {max_attempts: 1000, backoff_base_s: 0.2, backoff_cap_s: 2, workers: 4,"
        " poll_interval_s: 0.2}\n")
    log_path = tmp_path / "dispatcher.log"
    receiver, processes = Receiver(port), []
    try:
        processes.append(start_dispatcher(namespace, receivers_file, log_path))
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
        events = [alert_event(i, start + timedelta(seconds=i)) for i in range(20)]
        producer = namespace.producer()
        outage_started = time.monotonic()
        topic = namespace.topic(ALERTS_TOPIC)
        for event in events:
            producer.send(topic, key=event["alert_id"].encode(), value=json.dumps(event).encode())
        for event in events[:2]:  # re-sent copies of the same transitions: must collapse
            copy = event | {"starts_at": event["starts_at"].replace("Z", "+00:00"), "value": 0.41}
            producer.send(topic, key=event["alert_id"].encode(), value=json.dumps(copy).encode())
        producer.send(topic, key=b"bad", value=b'{"alert_id": "fp-bad", "status": "maybe"}')
        producer.flush()
        producer.close()

        def outbox_state() -> dict:
            return dict(namespace.sql("SELECT state, count(*) FROM alert_outbox GROUP BY state"))

        wait_for(lambda: outbox_state().get("pending") == 20, 30, "20 pending outbox rows")
        wait_for(lambda: namespace.scalar("SELECT count(DISTINCT idempotency_key) FROM alert_delivery_log "
                                          "WHERE outcome = 'retry'") == 20, 20, "a failed attempt per row")
        # A crash during the outage loses nothing: the outbox is durable, offsets were committed.
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(10)
        processes.append(start_dispatcher(namespace, receivers_file, log_path))

        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
        assert receiver.deliveries == [] and outbox_state() == {"pending": 20}
        receiver.start()
        came_back = time.monotonic()
        wait_for(lambda: len({d["key"] for d in receiver.deliveries}) >= 20, 30, "20 deliveries")
        recovery_s = time.monotonic() - came_back
        time.sleep(3)  # room for duplicates to show up, if any

        counts = Counter(d["key"] for d in receiver.deliveries)
        expected = {idempotency_key(AlertEventV1.model_validate(e), "hook") for e in events}
        assert set(counts) == expected and set(counts.values()) == {1}, counts
        assert receiver.rejected == []  # every request verified
        received = sorted((AlertEventV1.model_validate_json(d["body"]) for d in receiver.deliveries),
                          key=lambda e: e.alert_id)
        assert received == [AlertEventV1.model_validate(e) for e in events]  # the body is the event
        assert all(int(d["attempt"]) > 1 for d in receiver.deliveries)  # they were retried

        assert outbox_state() == {"delivered": 20}
        log_rows = dict(namespace.sql("SELECT outcome, count(*) FROM alert_delivery_log GROUP BY outcome"))
        assert log_rows["delivered"] == 20 and log_rows["retry"] >= 40 and "dead" not in log_rows
        errors = namespace.sql("SELECT DISTINCT split_part(error, ':', 1) FROM alert_delivery_log "
                               "WHERE outcome = 'retry'")
        assert errors == [("ConnectError",)]
        assert namespace.scalar("SELECT count(*) FROM alert_delivery_log WHERE outcome = 'delivered' "
                                "AND status_code = 204 AND latency_ms > 0") == 20
        assert namespace.scalar("SELECT count(*) FROM dead_letters WHERE source_topic = %s", topic) == 1
        print(f"receiver back after {OUTAGE_S:.0f} s outage: all 20 delivered within {recovery_s:.1f} s")

        processes[-1].send_signal(signal.SIGTERM)
        assert processes[-1].wait(30) == 0
        assert "dispatcher stopped" in log_path.read_text()
    finally:
        receiver.stop()
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
