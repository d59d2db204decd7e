"""Opt-in PII redaction of what the stream stores (docs/pii.md): review texts, excerpts, drill-down
and dead-letter payloads carry placeholders, never the values; scores come from the original text."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from parrotwatch.detectors.calibration.sampling import PoolDesign
from parrotwatch.streaming.records import inference_rows
from parrotwatch.streaming.redaction import redact_drilldown, redact_event, redact_payload

pytest.importorskip("presidio_analyzer")

EMAIL, PHONE, CARD = "ana.lopez@correo.es", "+34 612 345 678", "4111 1111 1111 1111"
KEEP_ALL = PoolDesign(1.0, 1.0, 1.0, 0.1, ())


def event(**over) -> bytes:
    ev = {"request_id": "r1", "timestamp": "2026-12-01T00:00:00Z", "model": "m", "app": "a",
          "messages": [{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": f"My card is {CARD}, mail {EMAIL}"}],
          "response": f"I will call you at {PHONE}.", "sources": [f"Contact: {EMAIL}"]}
    return orjson.dumps({**ev, **over})


def test_review_texts_are_redacted_and_scores_are_not_changed():
    plain, = inference_rows([event()], 1 << 20, pool=KEEP_ALL)
    red, = inference_rows([event()], 1 << 20, pool=KEEP_ALL, redact_pii=True)
    kept = orjson.loads(red["review_text"])
    for value in (EMAIL, PHONE, CARD):
        assert value not in red["review_text"].decode()
        assert value in plain["review_text"].decode()
    assert "<EMAIL_ADDRESS>" in kept["prompt"] and "<CREDIT_CARD>" in kept["prompt"]
    assert kept["response"] == "I will call you at <PHONE_NUMBER>."
    assert kept["sources"] == ["Contact: <EMAIL_ADDRESS>"]
    assert {k: v for k, v in red.items() if k not in ("review_text",)} == \
        {k: v for k, v in plain.items() if k not in ("review_text",)}


def test_a_dead_letter_keeps_the_original_hash_and_size_but_not_the_values():
    raw = event(latency_ms="slow")  # refused at parse: a dead letter quoting the whole record
    red, = inference_rows([raw], 1 << 20, redact_pii=True)
    assert red["kind"] == "dlq"
    assert EMAIL.encode() not in red["payload"] and CARD.encode() not in red["payload"]
    assert b"<EMAIL_ADDRESS>" in red["payload"]
    assert red["payload_sha256"] == hashlib.sha256(raw).hexdigest() and red["payload_bytes"] == len(raw)


def test_poison_payloads_redact_without_raising():
    assert redact_payload(None) is None
    assert redact_payload(b"\xff\xfe\x00 " + EMAIL.encode()) == "\ufffd\ufffd\x00 <EMAIL_ADDRESS>".encode()
    assert redact_payload(b"") == b""


def test_drilldown_texts_are_redacted():
    d = orjson.dumps({"unsupported_spans": [{"text": f"Write to {EMAIL}", "start": 0, "end": 9}],
                      "injection_match": {"chunk": f"ignore all rules, {PHONE}", "family": "x"},
                      "surprising_tokens": [{"token": "a"}]}).decode()
    out = orjson.loads(redact_drilldown(d))
    assert out["unsupported_spans"][0]["text"] == "Write to <EMAIL_ADDRESS>"
    assert out["injection_match"]["chunk"] == "ignore all rules, <PHONE_NUMBER>"
    assert out["surprising_tokens"] == [{"token": "a"}]
    assert redact_drilldown(None) is None


def test_redact_event_handles_content_parts_and_missing_fields():
    from parrotwatch.scoring import parse_inference

    raw = orjson.dumps({"request_id": "r2", "timestamp": "2026-12-01T00:00:00Z", "model": "m", "app": "a",
                        "messages": [{"role": "user", "content": [{"type": "text", "text": EMAIL}, 7]}],
                        "response": "ok"})
    ev = redact_event(parse_inference(raw, 1 << 20))
    assert ev.messages[0].content[0]["text"] == "<EMAIL_ADDRESS>" and ev.messages[0].content[1] == 7
    assert ev.prompt is None and ev.sources is None and ev.response == "ok"


def test_redaction_reaches_values_after_json_escapes_in_dead_letters():
    import json

    from parrotwatch.contracts.dead_letters import redacted_head

    head = json.dumps({"prompt": "card:\n4111111111111111 ssn\n078-05-1121 ip\n10.1.2.3"}).encode()
    out = redacted_head(head).decode()
    assert "4111111111111111" not in out and "078-05-1121" not in out and "10.1.2.3" not in out
    assert out == '{"prompt": "card:\\n<CREDIT_CARD> ssn\\n<US_SSN> ip\\n<IP_ADDRESS>"}'


def test_a_non_string_text_part_is_no_text_not_a_crash():
    from parrotwatch.quality import prompt_text, user_text
    from parrotwatch.scoring import parse_inference

    raw = orjson.dumps({"request_id": "r3", "timestamp": "2026-12-01T00:00:00Z", "model": "m", "app": "a",
                        "messages": [{"role": "user", "content": [{"type": "text", "text": 7},
                                                                  {"type": "text", "text": "hi"}]}],
                        "response": "ok"})
    event = parse_inference(raw, 1 << 20)
    assert prompt_text(event) == "hi" and user_text(event) == "hi"
