"""Benchmark: time from the end (wall clock) of the first window that contains an incident to the
signed webhook received, under a steady live load, with live timestamps.

One fresh local stack: broker, PostgreSQL, the scoring job (watermark delay 10 s, trigger 1 s),
the dispatcher with a webhook receiver served by this script. The load is ``--rate`` events/s
with timestamps = now; every minute one segment's latency goes x10 for 2 minutes. To measure
the pipeline rather than a detector's warm-up, the rules are one static threshold (p99 latency
over 20 s, for 1 window) -- the shipped EWMA rules need 15 windows of history first.

Prints p50/p99/max of the latency and its parts: window end -> watermark passes it (event-time
delay + next batch) -> alert stored (rule evaluation in the sink) -> webhook received
(dispatcher: Kafka consume, outbox, HTTP delivery).

Usage: .venv/bin/python bench/alert_latency.py [--rate 500] [--minutes 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
from kafka import KafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.services.dispatcher.verify import verify_signature  # noqa: E402
from parrotwatch.settings import Settings  # noqa: E402
from parrotwatch.stack.local import LocalStack, settings_env  # noqa: E402
from parrotwatch.stack.processes import free_port, stack_ports  # noqa: E402
from parrotwatch.traffic import encode, generate_inference_events  # noqa: E402

SECRET = "bench-secret"
RULES = """
rules:
  - name: latency_p99_over_20s
    kind: threshold
    severity: critical
    metric: latency_ms_p99
    op: ">"
    value: 20000
    for: 1
    resolve_after: 1
    min_count: 5
"""
SEGMENTS = [("gpt-4o-mini", "search"), ("gpt-4o-mini", "support-bot"), ("llama-3-8b", "search"),
            ("mistral-7b", "support-bot"), ("gpt-4o-mini", "code-assistant"),
            ("mistral-7b", "search"), ("llama-3-8b", "code-assistant"), ("mistral-7b", "code-assistant")]

received: dict[str, float] = {}


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        verify_signature(SECRET, self.headers["X-Parrotwatch-Timestamp"],
                         self.headers["X-Parrotwatch-Signature"], body)
        event = json.loads(body)
        if event["status"] == "firing":
            received.setdefault(event["alert_id"], time.time())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--minutes", type=int, default=6)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pw-alert-bench-"))
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (home / "rules.yaml").write_text(RULES)
    (home / "receivers.yaml").write_text(
        f"receivers:\n  - name: bench\n    kind: webhook\n    url: http://127.0.0.1:{port}/hook\n"
        f"    secret: {SECRET}\ndelivery:\n  poll_interval_s: 0.2\n")
    settings = Settings(home=home, **stack_ports(), trigger_seconds=1.0,
                        alert_rules=home / "rules.yaml", receivers=home / "receivers.yaml",
                        watermark_delay_seconds=10.0)
    stack = LocalStack(settings, say=lambda m: print(m, file=sys.stderr))
    stack.up(api=False)
    url = settings_env(settings)["PARROTWATCH_DATABASE_URL"]
    try:
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=5)
        topic = settings.topic("llm.inference.v1")
        pool = generate_inference_events(int(args.rate * 60), seed=3, id_prefix="pool")
        t_start = time.time()
        incident_windows: dict[tuple[str, str], datetime] = {}
        sent, i = 0, 0
        print(f"live load: {args.rate:.0f} events/s for {args.minutes} min", file=sys.stderr)
        while time.time() - t_start < args.minutes * 60:
            now = datetime.now(UTC)
            minute = int((time.time() - t_start) // 60)
            spiking = SEGMENTS[(minute - 1) % len(SEGMENTS)] if minute >= 1 else None
            event = dict(pool[i % len(pool)], request_id=f"live-{sent}",
                         timestamp=now.isoformat().replace("+00:00", "Z"))
            if spiking and (event["model"], event["app"]) == spiking and "latency_ms" in event:
                event["latency_ms"] = event["latency_ms"] * 10 + 30_000
                incident_windows.setdefault(spiking, now.replace(second=0, microsecond=0))
            producer.send(topic, value=encode(event))
            sent, i = sent + 1, i + 1
            delay = t_start + sent / args.rate - time.time()
            if delay > 0:
                time.sleep(delay)
        producer.flush()
        time.sleep(45)  # let the last windows close and deliveries land
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT alert_id, model, app, starts_at, emitted_at FROM alerts "
                                "WHERE status = 'firing' ORDER BY id").fetchall()
            marks = conn.execute("SELECT count(*) FROM inference_scores").fetchone()[0]
        totals, evaluations, deliveries = [], [], []
        for alert_id, model, app, _starts_at, emitted_at in rows:
            first = incident_windows.get((model, app))
            if first is None or alert_id not in received:
                continue
            window_end = first + timedelta(minutes=1)
            totals.append(received[alert_id] - window_end.timestamp())
            evaluations.append((emitted_at - window_end).total_seconds())
            deliveries.append(received[alert_id] - emitted_at.timestamp())
        print(f"events sent {sent}, scored {marks}; incidents {len(incident_windows)}, "
              f"alerts fired {len(rows)}, webhooks received {len(received)}")
        if totals:
            q = statistics.quantiles(totals, n=100, method="inclusive") if len(totals) > 1 \
                else [totals[0]] * 99
            print(f"window end -> webhook received: p50 {statistics.median(totals):.1f}s  "
                  f"p99 {q[98]:.1f}s  max {max(totals):.1f}s  (n={len(totals)})")
            print(f"  window end -> alert stored (watermark delay + batch + rules): "
                  f"median {statistics.median(evaluations):.1f}s")
            print(f"  alert stored -> webhook received (Kafka, outbox, HTTP): "
                  f"median {statistics.median(deliveries):.2f}s")
    finally:
        stack.down()
        server.shutdown()


if __name__ == "__main__":
    main()
