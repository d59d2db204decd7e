"""Alert records -> outbox rows or dead letters: poison values are rejected with a reason."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pytest

from parrotwatch.services.dispatcher.config import parse_receivers
from parrotwatch.services.dispatcher.records import MAX_DEAD_PAYLOAD_BYTES, MAX_EVENT_BYTES, parse, unstorable

CONFIG = parse_receivers({"receivers": [
    {"name": "all", "kind": "slack", "url": "http://127.0.0.1:1/x"},
    {"name": "crit", "kind": "slack", "url": "http://127.0.0.1:1/y", "match": {"severity": ["critical"]}}]})


@dataclass
class Record:  # the fields of kafka's ConsumerRecord that the dispatcher reads
    value: bytes | None
    topic: str = "llm.alerts.v1"
    partition: int = 0
    offset: int = 7
    timestamp: int = 1_767_225_600_000


def event(**over) -> dict:
    return {"alert_id": "a1", "rule": "r", "status": "firing", "severity": "warning",
            "labels": {"model": "m", "app": "a", "metric": "x"}, "starts_at": "2026-05-01T08:00:00Z",
            "summary": "s", "evidence": {"window": {"end": "2026-05-01T08:01:00Z"}}} | over


def test_a_valid_event_goes_to_its_receivers():
    parsed = parse(Record(json.dumps(event()).encode()), CONFIG)
    assert parsed.dead_letter is None and [r.receiver for r in parsed.rows] == ["all"]


@pytest.mark.parametrize(("value", "reason"), [
    (json.dumps(event(labels={"model": "m", "app": "a\x00", "metric": "x"})).encode(),
     "labels.app: NUL character"),
    (json.dumps(event(evidence={"k\x00": 1})).encode(), "NUL character"),
    (json.dumps(event(summary="x\x00y")).encode(), "NUL"),  # the contract may say it first
    (json.dumps(event(value=float("nan"))).encode(), "value: nan is not a JSON number"),
    (json.dumps(event()).encode().replace(b'"a1"', b'"\\ud800"'), "invalid alert event v1"),
    (json.dumps(event()).encode().replace(b'"a1"', b'"\xed\xa0\x80"'), "invalid alert event v1"),
    (b"{not json", "invalid alert event v1"),
    (b"", "invalid alert event v1"),
    (None, "invalid alert event v1"),
    (b"\xff\xfe\x00", "invalid alert event v1"),
])
def test_poison_becomes_a_dead_letter_with_its_reason(value, reason):
    parsed = parse(Record(value), CONFIG)
    assert parsed.rows == [] and parsed.dead_letter is not None
    topic, partition, offset, why, payload, _ = parsed.dead_letter
    assert (topic, partition, offset) == ("llm.alerts.v1", 0, 7) and reason in why, why
    assert "\x00" not in why
    why.encode("utf-8")
    assert payload == value


def test_an_oversized_event_is_cut_with_size_and_hash():
    big = json.dumps(event(labels={"model": "m", "app": "a", "metric": "x",
                                   "big": "x" * (1024 * 1024)})).encode()
    *_, why, payload, _ = parse(Record(big), CONFIG).dead_letter
    assert f"over the {MAX_EVENT_BYTES}-byte limit" in why
    assert hashlib.sha256(big).hexdigest() in why and str(len(big)) in why
    assert payload == big[:MAX_DEAD_PAYLOAD_BYTES]
    assert len(why) <= 2000


def test_infinity_in_free_evidence_is_stored_as_null():
    parsed = parse(Record(json.dumps(event(evidence={"v": [1, float("inf")]})).encode()), CONFIG)
    assert parsed.dead_letter is None
    assert parsed.rows[0].event.model_dump(mode="json")["evidence"] == {"v": [1, None]}


def test_unstorable_walks_everything():
    assert unstorable({"a": [{"b": "ok"}], "c": 1.5, "d": None}) is None
    assert unstorable({"a": [{"b": "\ud83d"}]}) == (
        "a[0].b: lone surrogate in a string (not encodable as UTF-8)")
