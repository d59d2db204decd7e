"""Outbox semantics on real PostgreSQL and HTTP: per-alert order, dead letters, requeue."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.config import parse_receivers
from parrotwatch.services.dispatcher.outbox import OutboxRow, claim, enqueue, idempotency_key, requeue_dead
from parrotwatch.services.dispatcher.worker import DeliveryEngine
from parrotwatch.stack.processes import free_port

pytestmark = pytest.mark.integration
START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def event(alert_id: str, status: str = "firing") -> AlertEventV1:
    return AlertEventV1(alert_id=alert_id, rule="toxicity_burst", status=status, severity="critical",
                        labels={"model": "m", "app": "a", "metric": "toxicity"}, starts_at=START,
                        ends_at=START + timedelta(minutes=4) if status == "resolved" else None,
                        summary="Toxicity share 0.3 vs baseline 0.01")


def rows(receiver: str, *events: AlertEventV1) -> list[OutboxRow]:
    return [OutboxRow(idempotency_key(e, receiver), receiver, e) for e in events]


def test_resolved_never_overtakes_its_firing(namespace):
    url = namespace.database_url
    with psycopg.connect(url, autocommit=True) as a, psycopg.connect(url, autocommit=True) as b, \
         psycopg.connect(url, autocommit=True) as c:
        batch = rows("r", event("x"), event("x", "resolved"), event("y"))
        assert enqueue(a, batch) == 3
        assert enqueue(a, batch) == 0  # the same transitions again: collapsed
        with a.transaction():
            first = claim(a, ["r"])
            assert (first.event["alert_id"], first.event["status"]) == ("x", "firing")
            with b.transaction():  # x/firing is locked: the next worker gets y, not x/resolved
                second = claim(b, ["r"])
                assert (second.event["alert_id"], second.event["status"]) == ("y", "firing")
                with c.transaction():  # x/firing and y are taken; x/resolved waits for x/firing
                    assert claim(c, ["r"]) is None
        assert claim(a, ["other-receiver"]) is None


class Answer(BaseHTTPRequestHandler):
    status = 400

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"bad payload")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_400():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_rejections_and_exhausted_retries_go_dead_loudly(namespace, http_400, caplog):
    config = parse_receivers({"receivers": [
        {"name": "rejects", "kind": "slack", "url": http_400},
        {"name": "down", "kind": "slack", "url": f"http://127.0.0.1:{free_port()}/nobody-listens"},
    ], "delivery": {"max_attempts": 3, "backoff_base_s": 0.01, "backoff_cap_s": 0.01}})
    engine = DeliveryEngine(config, namespace.database_url, threading.Event())
    with psycopg.connect(namespace.database_url, autocommit=True) as conn:
        enqueue(conn, rows("rejects", event("p")) + rows("down", event("q")))
        for _ in range(40):
            if not engine.run_once():
                if namespace.scalar("SELECT count(*) FROM alert_outbox WHERE state = 'pending'") == 0:
                    break
                threading.Event().wait(0.05)
        states = dict(namespace.sql("SELECT receiver, state || ':' || attempts FROM alert_outbox"))
        assert states == {"rejects": "dead:1", "down": "dead:3"}  # 400 is final; the rest after 3
        log = namespace.sql("SELECT receiver, outcome, status_code, error FROM alert_delivery_log "
                            "ORDER BY id")
        assert ("rejects", "dead", 400, "HTTP 400: bad payload") in log
        assert [o for r, o, _, _ in log if r == "down"] == ["retry", "retry", "dead"]
        dead_logs = [r for r in caplog.records if "DELIVERY DEAD" in r.getMessage()]
        assert len(dead_logs) == 2 and all(r.levelname == "ERROR" for r in dead_logs)
        assert "--requeue-dead" in dead_logs[0].getMessage()

        assert requeue_dead(conn, "down") == 1
        assert dict(namespace.sql("SELECT receiver, state FROM alert_outbox")) == {
            "rejects": "dead", "down": "pending"}
