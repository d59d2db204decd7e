"""Receivers that misbehave cannot stop the dispatcher or slow the healthy ones (issue 12, item 4).

Real Kafka, PostgreSQL and HTTP servers; the dispatcher runs in-process (its threads).
"""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.config import parse_receivers
from parrotwatch.services.dispatcher.outbox import OutboxRow, enqueue, idempotency_key
from parrotwatch.services.dispatcher.service import Dispatcher
from parrotwatch.services.dispatcher.worker import DeliveryEngine
from parrotwatch.settings import ALERTS_TOPIC
from parrotwatch.stack.processes import free_port
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
Answer = tuple[int, dict[str, str], bytes]


class Recorder:
    """An HTTP receiver on 127.0.0.1: ``answer(alert_id, attempt)`` decides each response; every
    request is recorded as ``(monotonic time, alert_id, attempt)``."""

    def __init__(self, answer: Callable[[str, int], Answer] = lambda a, n: (204, {}, b"")) -> None:
        self.answer = answer
        self.requests: list[tuple[float, str, int]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                payload = json.loads(body)
                if "blocks" in payload:  # slack: the alert id closes the context line
                    alert_id = payload["blocks"][-1]["elements"][0]["text"].split("`")[-2]
                else:  # generic webhook: the body is the event
                    alert_id = payload["alert_id"]
                attempt = int(self.headers.get("X-Parrotwatch-Delivery-Attempt", "0"))
                with recorder.lock:
                    recorder.requests.append((time.monotonic(), alert_id, attempt))
                status, headers, answer = recorder.answer(alert_id, attempt)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/tok-abcdef123456"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def first_seen(self) -> dict[str, float]:
        seen: dict[str, float] = {}
        with self.lock:
            for at, alert_id, _ in self.requests:
                seen.setdefault(alert_id, at)
        return seen

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Blackhole:
    """Accepts TCP connections, reads, and never answers (a hung receiver or a stuck proxy)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read to the end, never answered
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        """What happens to an accepted connection: nothing, here."""

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def alert(alert_id: str, start: datetime) -> dict:
    return {"alert_id": alert_id, "rule": "latency_p99_high", "status": "firing", "severity": "warning",
            "labels": {"model": "m", "app": "a", "metric": "latency_p99"},
            "starts_at": start.isoformat().replace("+00:00", "Z"), "summary": "p99 over 2 s"}


def produce(namespace, events: list[dict], gap_s: float = 0.0) -> dict[str, float]:
    """Send the alert events one by one; returns each one's send time (monotonic, after flush)."""
    producer, sent = namespace.producer(), {}
    for event in events:
        producer.send(namespace.topic(ALERTS_TOPIC), key=event["alert_id"].encode(),
                      value=json.dumps(event).encode())
        producer.flush()
        sent[event["alert_id"]] = time.monotonic()
        time.sleep(gap_s)
    producer.close()
    return sent


def open_transactions(namespace) -> int:
    """Dispatcher sessions sitting inside an open transaction (there must be none)."""
    return namespace.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name LIKE 'parrotwatch-dispatcher%%' AND state LIKE 'idle in transaction%%'")


def test_dead_receivers_do_not_delay_a_healthy_one(namespace, caplog):
    caplog.set_level("DEBUG", logger="parrotwatch.services.dispatcher")
    healthy, blackhole = Recorder(), Blackhole()
    refused = f"http://127.0.0.1:{free_port()}/nobody"  # reserved, released: nothing listens
    config = parse_receivers({"receivers": [
        {"name": "healthy", "kind": "webhook", "url": healthy.url, "secret": "s3cret-hmac"},
        {"name": "blackhole", "kind": "slack", "url": f"http://127.0.0.1:{blackhole.port}/x"},
        {"name": "refused", "kind": "slack", "url": refused}],
        "delivery": {"backoff_base_s": 0.5, "backoff_cap_s": 5, "poll_interval_s": 0.5}})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    try:
        with Dispatcher(namespace.settings, config, namespace.database_url) as dispatcher:
            # warm-up: the consumer has joined its group once the first alert arrives
            produce(namespace, [alert("warmup", start)])
            wait_for(lambda: "warmup" in healthy.first_seen(), 60, "the warm-up alert")
            events = [alert(f"a{i:02d}", start + timedelta(seconds=i + 1)) for i in range(24)]
            sent = produce(namespace, events, gap_s=0.25)
            wait_for(lambda: len(healthy.first_seen()) == 25, 30, "24 alerts at the healthy receiver")
            seen = healthy.first_seen()
            delays = sorted(seen[a] - at for a, at in sent.items())

            # while the blackhole holds requests: leases, and no transaction left open
            wait_for(lambda: len(blackhole.accepted) >= 1, 15, "a request to the blackhole")
            leased = namespace.scalar("SELECT count(*) FROM alert_outbox WHERE receiver = 'blackhole' "
                                      "AND locked_until > clock_timestamp()")
            assert leased >= 1 and open_transactions(namespace) == 0
            wait_for(lambda: namespace.scalar(
                "SELECT count(*) FROM alert_delivery_log WHERE receiver = 'blackhole' "
                "AND error LIKE 'Timeout%%'") >= 1, 30, "a timed-out attempt at the blackhole")
            assert not dispatcher.failed and not dispatcher.stop_event.is_set()
        p50, worst = statistics.median(delays), delays[-1]
        print(f"healthy receiver beside a blackhole and a refused port: delivery delay over "
              f"{len(delays)} alerts p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms "
              f"(blackhole held {len(blackhole.accepted)} connection(s))")
        assert worst < 5.0, delays
        assert "tok-abcdef123456" not in caplog.text and "s3cret-hmac" not in caplog.text
        assert "127.0.0.1" in caplog.text  # hosts are shown, paths are not
        states = dict(namespace.sql("SELECT receiver, count(*) FILTER (WHERE state = 'delivered') "
                                    "FROM alert_outbox GROUP BY receiver"))
        assert states == {"healthy": 25, "blackhole": 0, "refused": 0}
        assert namespace.scalar("SELECT count(*) FROM alert_delivery_log WHERE receiver = 'refused' "
                                "AND outcome = 'retry' AND error LIKE 'ConnectError%%'") >= 1
    finally:
        healthy.close()
        blackhole.close()


def odd_values(now: datetime) -> dict[str, str]:
    return {"sup2": "²", "minus": "-1", "exp": "1e9", "empty": "", "past": "Wed, 21 Oct 2015 07:28:00 GMT",
            "future": format_datetime(now + timedelta(hours=6), usegmt=True), "huge": "1" + "0" * 30,
            "nul-body": "7"}


def test_odd_retry_after_values_keep_it_running_with_bounded_delays(namespace):
    values = odd_values(datetime.now(UTC))

    def answer(alert_id: str, attempt: int) -> Answer:
        if attempt > 1 or alert_id not in values:
            return 204, {}, b""
        body = b"busy\x00\xff\xfe" if alert_id == "nul-body" else b"busy"
        return 503, {"Retry-After": values[alert_id]}, body

    receiver = Recorder(answer)
    cap = 2.0
    config = parse_receivers({"receivers": [
        {"name": "odd", "kind": "webhook", "url": receiver.url, "secret": "s3cret-hmac"}],
        "delivery": {"backoff_base_s": 0.2, "backoff_cap_s": cap, "poll_interval_s": 0.2}})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    try:
        with Dispatcher(namespace.settings, config, namespace.database_url) as dispatcher:
            produce(namespace, [alert(name, start) for name in values])
            wait_for(lambda: namespace.scalar("SELECT count(*) FROM alert_outbox WHERE state = "
                                              "'delivered'") == len(values), 60, "every alert delivered")
            assert not dispatcher.failed and not dispatcher.stop_event.is_set()
        gaps = {}
        for name in values:
            times = sorted(at for at, alert_id, _ in receiver.requests if alert_id == name)
            assert len(times) == 2, (name, times)
            gaps[name] = times[1] - times[0]
        print("Retry-After -> wait before the retry: " + ", ".join(
            f"{values[n][:20]!r}: {g:.2f} s" for n, g in gaps.items()))
        assert all(g < cap + 3.0 for g in gaps.values()), gaps  # bounded by the backoff cap
        assert gaps["future"] >= cap * 0.9 and gaps["huge"] >= cap * 0.9  # honoured, capped
        error = namespace.scalar("SELECT error FROM alert_delivery_log l JOIN alert_outbox o "
                                 "USING (idempotency_key) WHERE o.alert_id = 'nul-body' "
                                 "AND outcome = 'retry'")
        assert error.startswith("HTTP 503: busy\\x00") and "tok-abcdef123456" not in error
    finally:
        receiver.close()


def test_a_row_that_cannot_be_sent_is_dead_and_the_rest_go_on(namespace, monkeypatch):
    receiver = Recorder()
    monkeypatch.setenv("PW_FAULTS_SECRET", "env-hmac-secret")
    config = parse_receivers({"receivers": [
        {"name": "ok", "kind": "slack", "url": receiver.url},
        {"name": "nosecret", "kind": "webhook", "url": receiver.url, "secret_env": "PW_FAULTS_SECRET"}],
        "delivery": {"backoff_base_s": 0.2, "backoff_cap_s": 1, "poll_interval_s": 0.2}})
    monkeypatch.delenv("PW_FAULTS_SECRET")  # gone after start: every webhook request fails to build
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    for round_ in range(2):  # the second run is a restart on the same rows: no crash either
        with Dispatcher(namespace.settings, config, namespace.database_url) as dispatcher:
            if round_ == 0:  # a stored row that no longer validates (an older, broken producer)
                namespace.sql("INSERT INTO alert_outbox (idempotency_key, receiver, alert_id, "
                              "alert_status, event) VALUES ('bad-row', 'ok', 'bad', 'firing', "
                              "'{\"alert_id\": \"bad\", \"labels\": 3}') RETURNING 1")
                produce(namespace, [alert(f"g{i}", start) for i in range(3)])
            wait_for(lambda: namespace.scalar("SELECT count(*) FROM alert_outbox WHERE state = "
                                              "'pending'") == 0, 60, "no pending row left")
            time.sleep(1.0)
            assert not dispatcher.failed and not dispatcher.stop_event.is_set()
    states = dict(namespace.sql("SELECT receiver || ':' || alert_id, state FROM alert_outbox"))
    assert states == {"ok:bad": "dead", "ok:g0": "delivered", "ok:g1": "delivered",
                      "ok:g2": "delivered", "nosecret:g0": "dead", "nosecret:g1": "dead",
                      "nosecret:g2": "dead"}
    reasons = {r for (r,) in namespace.sql("SELECT DISTINCT error FROM alert_delivery_log "
                                            "WHERE outcome = 'dead'")}
    assert any(r.startswith("cannot build the request: ValidationError") for r in reasons), reasons
    assert any("KeyError" in r and "PW_FAULTS_SECRET" in r for r in reasons), reasons
    assert namespace.scalar("SELECT count(*) FROM alert_delivery_log") == 7  # one attempt each
    receiver.close()


class Trickle(Blackhole):
    """Answers one byte every 0.2 s, forever: every read succeeds, the answer never ends."""

    def _serve(self, conn: socket.socket) -> None:
        threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        text = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 10_000
        try:
            for i in range(len(text)):
                conn.sendall(text[i:i + 1])
                time.sleep(0.2)
        except OSError:
            pass


def test_a_trickling_receiver_is_cut_at_its_timeout(namespace):
    trickle = Trickle()
    config = parse_receivers({"receivers": [
        {"name": "slow", "kind": "slack", "url": f"http://127.0.0.1:{trickle.port}/x", "timeout_s": 2}]})
    event = AlertEventV1.model_validate(alert("t", datetime.now(UTC)))
    try:
        with psycopg.connect(namespace.database_url, autocommit=True) as conn:
            enqueue(conn, [OutboxRow(idempotency_key(event, "slow"), "slow", event)])
        started = time.monotonic()
        assert DeliveryEngine(config, namespace.database_url, threading.Event()).run_once() == 1
        took = time.monotonic() - started
        (outcome, latency_ms, error), = namespace.sql(
            "SELECT outcome, latency_ms, error FROM alert_delivery_log")
        print(f"trickling receiver (timeout_s 2): attempt cut after {latency_ms:.0f} ms")
        assert outcome == "retry" and error.startswith("Timeout") and 1900 < latency_ms < 4000
        assert took < 10
    finally:
        trickle.close()
