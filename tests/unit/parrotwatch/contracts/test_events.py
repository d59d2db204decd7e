"""The v1 contracts as the stream sees them: raw bytes through parrotwatch.scoring."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from parrotwatch.contracts import InferenceEventV1, export_json_schemas
from parrotwatch.scoring import InvalidEvent, parse_feedback, parse_inference

VALID = {
    "request_id": "req-001",
    "timestamp": "2024-05-01T12:00:00+02:00",
    "model": "gpt-4o-mini",
    "app": "support-bot",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "response": "The capital of France is Paris.",
    "logprobs": [
        {"token": "The", "logprob": -0.01, "top_logprobs": [{"token": "The", "logprob": -0.01}]},
        {"token": " capital", "logprob": -0.2},
    ],
    "latency_ms": 412.5,
    "usage": {"input_tokens": 14, "output_tokens": 8},
    "finish_reason": "stop",
}
FEEDBACK = {"feedback_id": "fb-1", "request_id": "req-001", "timestamp": "2024-05-01T12:01:00Z"}


def _raw(obj: dict) -> bytes:
    return orjson.dumps(obj)


def _without(key: str) -> dict:
    return {k: v for k, v in VALID.items() if k != key}


def _reason(raw: bytes, **kwargs) -> str:
    with pytest.raises(InvalidEvent) as info:
        parse_inference(raw, **kwargs)
    return str(info.value)


def test_valid_inference_event_parses():
    event = parse_inference(_raw(VALID))
    assert event.request_id == "req-001"
    assert event.timestamp == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert event.app == "support-bot"
    assert event.messages[0].role == "user"
    assert [t["logprob"] for t in event.logprobs] == [-0.01, -0.2]
    assert event.logprobs[0]["top_logprobs"][0]["token"] == "The"
    assert event.usage.output_tokens == 8
    assert event.output_tokens() == 8


def test_defaults_app_and_accepts_prompt_instead_of_messages():
    event = parse_inference(_raw({**_without("messages"), "prompt": "hi"}))
    assert event.prompt == "hi"
    assert event.messages is None
    assert parse_inference(_raw(_without("app"))).app == "default"


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        (_without("request_id"), "request_id", "Field required"),
        (_without("response"), "response", "Field required"),
        (_without("messages"), "(event)",
         "one of 'prompt' or a non-empty 'messages' list is required"),
        ({**VALID, "latency_ms": "12"}, "latency_ms", "valid number"),
        ({**VALID, "latency_ms": -1}, "latency_ms", "greater than or equal to 0"),
        ({**VALID, "timestamp": "2024-05-01T12:00:00"}, "timestamp", "timezone"),
        (
            {**VALID, "logprobs": [{"token": "a", "logprob": 0.3}]},
            "logprobs.0.logprob",
            "less than or equal to 0",
        ),
    ],
)
def test_contract_breaks_are_rejected_naming_the_field(event, field, words):
    reason = _reason(_raw(event))
    assert reason.startswith(f"{field}: ")
    assert words in reason


def test_raw_payload_problems_give_the_reason():
    assert _reason(b'{"request_id": "r1", ').startswith("not valid JSON")
    assert _reason(b'{"request_id": "r\xff1"}').startswith("payload is not valid UTF-8")
    big = _raw({**VALID, "response": "x" * 200})
    assert _reason(big, max_bytes=100) == f"event is {len(big)} bytes, over the 100-byte limit"
    not_an_object = _reason(b"[1, 2]")
    assert not_an_object.startswith("(event): ")
    assert "object" in not_an_object


def test_extra_fields_are_kept_by_the_contract_and_skipped_by_the_stream_parser():
    raw = _raw({**VALID, "gen_ai.system": "openai", "x_trace": {"id": 7}})
    event = InferenceEventV1.model_validate_json(raw)
    assert event.model_extra == {"gen_ai.system": "openai", "x_trace": {"id": 7}}
    assert event.model_dump()["x_trace"] == {"id": 7}
    # parse_inference (stream, `parrotwatch score`) stores scores only: it does not build extras
    parsed = parse_inference(raw)
    assert not getattr(parsed, "model_extra", None) and not hasattr(parsed, "x_trace")


@pytest.mark.parametrize("field, value", [
    ("model", "gpt\x00"), ("request_id", "r\x00"), ("app", "\x00"), ("finish_reason", "stop\x00")])
def test_text_postgresql_cannot_store_is_rejected_with_the_reason(field, value):
    reason = _reason(_raw({**VALID, field: value}))
    assert reason.startswith(f"{field}: ") and "NUL" in reason and "PostgreSQL" in reason


def test_ids_longer_than_a_postgresql_index_entry_allows_are_rejected():
    assert parse_inference(_raw({**VALID, "model": "m" * 200})).model == "m" * 200
    assert _reason(_raw({**VALID, "request_id": "r" * 3000})) == (
        "request_id: String should have at most 200 characters")


def test_token_counts_beyond_a_postgresql_integer_are_rejected():
    limit = 2**31 - 1
    assert parse_inference(_raw({**VALID, "usage": {"output_tokens": limit}})).output_tokens() == limit
    assert "usage.output_tokens: Input should be less than or equal to 2147483647" in _reason(
        _raw({**VALID, "usage": {"output_tokens": 2**31}}))


@pytest.mark.parametrize("extra", [{"comment": "ok\x00"}, {"correction": "\x00"}, {"annotator": "a\x00"},
                                   {"label": "x\x00"}, {"metadata": {"k": ["a", {"b\x00": 1}]}}])
def test_feedback_text_postgresql_cannot_store_is_rejected(extra):
    raw = orjson.dumps({"feedback_id": "f1", "request_id": "r1", "timestamp": "2026-11-01T10:00:00Z",
                        "thumb": 1, **extra})
    with pytest.raises(InvalidEvent, match="NUL"):
        parse_feedback(raw)


def test_feedback_needs_a_signal():
    with pytest.raises(InvalidEvent, match="feedback needs at least one of 'thumb'"):
        parse_feedback(_raw(FEEDBACK))
    assert parse_feedback(_raw({**FEEDBACK, "label": "hallucination"})).label == "hallucination"


@pytest.mark.parametrize("thumb", [1, -1])
def test_feedback_thumb_up_or_down(thumb):
    assert parse_feedback(_raw({**FEEDBACK, "thumb": thumb})).thumb == thumb


@pytest.mark.parametrize("thumb", [0, 2, -2, "up"])
def test_feedback_thumb_other_values_rejected(thumb):
    with pytest.raises(InvalidEvent) as info:
        parse_feedback(_raw({**FEEDBACK, "thumb": thumb}))
    assert str(info.value).startswith("thumb: ")


def test_feedback_keeps_extra_fields():
    fb = parse_feedback(_raw({**FEEDBACK, "score": 0.5, "session": "s-9"}))
    assert fb.model_extra == {"session": "s-9"}


def test_json_schema_export(tmp_path):
    paths = export_json_schemas(tmp_path / "schemas")
    assert sorted(p.name for p in paths) == [
        "alert.v1.schema.json",
        "feedback.v1.schema.json",
        "inference.v1.schema.json",
        "score.v1.schema.json",
    ]
    schemas = {p.name: json.loads(p.read_text()) for p in paths}
    inference = schemas["inference.v1.schema.json"]
    assert {"request_id", "timestamp", "model", "response"} <= set(inference["required"])
    assert "prompt" not in inference["required"]
    assert "feedback_id" in schemas["feedback.v1.schema.json"]["required"]
    for schema in schemas.values():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"


def test_unknown_setting_is_an_error_naming_the_valid_ones(monkeypatch):
    from parrotwatch.settings import load_settings

    monkeypatch.setenv("PARROTWATCH_KAFKA_PROT", "1")
    with pytest.raises(ValueError, match="PARROTWATCH_KAFKA_PROT.*PARROTWATCH_KAFKA_PORT"):
        load_settings()


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:30Z", "1970-01-01T00:00:00Z"])
def test_implausible_event_times_are_rejected(timestamp):
    raw = json.dumps({**VALID, "timestamp": timestamp}).encode()
    with pytest.raises(InvalidEvent, match="timestamp.*producer's clock"):
        parse_inference(raw)
