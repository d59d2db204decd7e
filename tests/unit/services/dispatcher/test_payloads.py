"""Request shapes per receiver kind and the idempotency key (no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.config import parse_receivers
from parrotwatch.services.dispatcher.outbox import idempotency_key
from parrotwatch.services.dispatcher.payloads import build_request, label_name
from parrotwatch.services.dispatcher.verify import verify_signature

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = START.timestamp() + 600


def alert(**changes) -> AlertEventV1:
    base = dict(alert_id="fp-42", rule="toxicity_burst", status="firing", severity="critical",
                labels={"model": "llama-3-8b", "app": "support", "metric": "toxicity", "gen_ai.system": "x"},
                starts_at=START, value=0.31, baseline=0.02, summary="Toxicity share is 0.31 <vs> 0.02",
                evidence={"p_value": 1e-9, "window": "1m", "request_ids": ["r1", "r2"]})
    return AlertEventV1(**(base | changes))


RECEIVERS = parse_receivers({"receivers": [
    {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:1/in", "secret": "k"},
    {"name": "chat", "kind": "slack", "url": "http://127.0.0.1:1/slack"},
    {"name": "am", "kind": "alertmanager", "url": "http://127.0.0.1:9093/", "firing_ttl_s": 7200,
     "generator_url": "http://grafana/d/alerts?var-alert={alert_id}"},
]}).receivers
HOOK, CHAT, AM = RECEIVERS


def test_webhook_body_is_the_event_and_is_signed():
    request = build_request(HOOK, alert(), "key-1", now=NOW)
    assert request.url == "http://127.0.0.1:1/in"
    assert AlertEventV1.model_validate_json(request.body) == alert()
    h = request.headers
    assert h["Idempotency-Key"] == "key-1" and h["Content-Type"] == "application/json"
    verify_signature("k", h["X-Parrotwatch-Timestamp"], h["X-Parrotwatch-Signature"], request.body, now=NOW)


def test_alertmanager_firing_shape():
    request = build_request(AM, alert(), "key-2", now=NOW)
    assert request.url == "http://127.0.0.1:9093/api/v2/alerts"
    (posted,) = json.loads(request.body)
    assert set(posted) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert posted["labels"] == {"alertname": "toxicity_burst", "severity": "critical", "alert_id": "fp-42",
                                "model": "llama-3-8b", "app": "support", "metric": "toxicity",
                                "gen_ai_system": "x"}
    notes = posted["annotations"]
    assert notes["summary"] == alert().summary and notes["value"] == "0.31" and notes["baseline"] == "0.02"
    assert json.loads(notes["evidence"]) == alert().evidence
    assert posted["startsAt"] == "2026-03-01T12:00:00Z"
    assert posted["endsAt"] == "2026-03-01T14:10:00Z"  # delivery time + firing_ttl_s: still active
    assert posted["generatorURL"] == "http://grafana/d/alerts?var-alert=fp-42"


def test_alertmanager_resolved_ends_at_the_event_end():
    ends = START + timedelta(minutes=7)
    (posted,) = json.loads(build_request(AM, alert(status="resolved", ends_at=ends), "k", now=NOW).body)
    assert posted["endsAt"] == "2026-03-01T12:07:00Z" and posted["startsAt"] == "2026-03-01T12:00:00Z"


def test_label_names_are_prometheus_safe():
    assert label_name("gen_ai.request.model") == "gen_ai_request_model"
    assert label_name("9lives") == "_9lives" and label_name("tenant-id") == "tenant_id"


def test_slack_shape():
    request = build_request(CHAT, alert(), "key-3", now=NOW)
    message = json.loads(request.body)
    assert set(message) == {"text", "blocks"}
    assert "toxicity_burst" in message["text"] and "&lt;vs&gt;" in message["text"]  # mrkdwn escaped
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "section", "context"]
    assert message["blocks"][0]["text"]["text"] == "[FIRING] toxicity_burst (critical)"
    fields = [f["text"] for f in message["blocks"][2]["fields"]]
    assert "*Severity*\ncritical" in fields and "*Value*\n0.31" in fields
    labels = message["blocks"][3]["elements"][0]["text"]
    assert "`model=llama-3-8b`" in labels and "`app=support`" in labels and "`metric=toxicity`" in labels
    assert "X-Parrotwatch-Signature" not in request.headers
    resolved = json.loads(build_request(CHAT, alert(status="resolved", ends_at=START), "k", now=NOW).body)
    assert resolved["blocks"][0]["text"]["text"].startswith("[RESOLVED]")


def test_idempotency_key():
    a = alert()
    same_instant = alert(starts_at=START.astimezone(timezone(timedelta(hours=2))), value=0.5)
    assert idempotency_key(a, "hook") == idempotency_key(same_instant, "hook")  # copies collapse
    assert len({idempotency_key(a, "hook"), idempotency_key(a, "chat"),
                idempotency_key(alert(status="resolved"), "hook"),
                idempotency_key(alert(starts_at=START + timedelta(seconds=1)), "hook"),
                idempotency_key(alert(alert_id="fp-43"), "hook")}) == 5
