"""parse_inference's fast path (msgspec, parrotwatch.contracts.wire) against the contract model.

The fast path may only be faster: on every payload it must accept exactly what
``InferenceEventV1`` accepts, give the same fields and scores, and reject with the model's reason.
"""

from __future__ import annotations

import copy

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from parrotwatch.contracts import InferenceEventV1
from parrotwatch.contracts.wire import WireInferenceEvent
from parrotwatch.scoring import InvalidEvent, parse_inference, request_input, score_event
from parrotwatch.traffic import generate_inference_events, malformed_records

CONTRACT = TypeAdapter(InferenceEventV1)
BASE = next(e for e in generate_inference_events(50, seed=3) if e.get("logprobs"))


def contract_verdict(raw: bytes):
    """The whole model's verdict: the event, or the ValidationError."""
    try:
        return CONTRACT.validate_json(raw)
    except ValidationError as exc:
        return exc


def assert_same_as_contract(raw: bytes) -> None:
    expected = contract_verdict(raw)
    if isinstance(expected, ValidationError):
        with pytest.raises(InvalidEvent):
            parse_inference(raw)
        return
    got = parse_inference(raw)
    assert isinstance(got, WireInferenceEvent), "the fast path refused a payload the model accepts"
    assert normalised(got) == normalised(expected)
    assert request_input(got) == request_input(expected)
    assert got.output_tokens() == expected.output_tokens()
    assert score_event(got).scores == score_event(expected).scores


def normalised(event) -> dict:
    """Every contract field of a parsed event as plain values (struct or model alike)."""
    out = {}
    for name in InferenceEventV1.model_fields:
        value = getattr(event, name)
        if name == "messages" and value is not None:
            value = [(m.role, m.content) for m in value]
        elif name == "usage" and value is not None:
            value = (value.input_tokens, value.output_tokens)
        elif name == "logprobs" and value is not None:
            value = [(t["token"], t["logprob"], t.get("top_logprobs") is None,
                      [(a["token"], a["logprob"]) for a in t.get("top_logprobs") or ()]) for t in value]
        elif name == "timestamp":
            value = (value.timestamp(), value.utcoffset())
        out[name] = value
    return out


def with_tokens(mutate) -> bytes:
    event = copy.deepcopy(BASE)
    mutate(event["logprobs"])
    return orjson.dumps(event)


def test_generated_traffic_takes_the_fast_path_and_matches_the_model():
    events = generate_inference_events(400, seed=11)
    assert sum(1 for e in events if e.get("logprobs")) > 100
    for event in events:
        raw = orjson.dumps(event)
        assert_same_as_contract(raw)


@pytest.mark.parametrize("raw", [raw for raw, _ in malformed_records(21, seed=5)])
def test_malformed_records_are_rejected_with_the_models_reason(raw):
    with pytest.raises(InvalidEvent) as fast:
        parse_inference(raw)
    with pytest.raises(InvalidEvent) as whole:  # the slow path, as before the fast one existed
        from parrotwatch.scoring import _INFERENCE, _validate
        _validate(_INFERENCE, raw, 1_048_576)
    assert str(fast.value) == str(whole.value)


def _set(i, key, value):
    def mutate(tokens):
        tokens[i][key] = value
    return mutate


def _set_top(key, value):
    def mutate(tokens):
        tokens[0]["top_logprobs"][0][key] = value
    return mutate


TOKEN_CASES = {
    "int logprob": _set(0, "logprob", -3),
    "zero logprob": _set(0, "logprob", 0),
    "negative zero": _set(0, "logprob", -0.0),
    "positive logprob": _set(0, "logprob", 0.5),
    "bool logprob": _set(0, "logprob", False),
    "string logprob": _set(0, "logprob", "-0.5"),
    "null logprob": _set(0, "logprob", None),
    "huge negative": _set(0, "logprob", -1e308),
    "missing logprob": lambda t: t[0].pop("logprob"),
    "missing token": lambda t: t[1].pop("token"),
    "int token": _set(0, "token", 7),
    "null token": _set(0, "token", None),
    "empty token": _set(0, "token", ""),
    "extra key kept out": _set(0, "bytes", [72, 105]),
    "null top_logprobs": _set(0, "top_logprobs", None),
    "empty top_logprobs": _set(0, "top_logprobs", []),
    "top_logprobs not a list": _set(0, "top_logprobs", {"token": "a", "logprob": -1.0}),
    "positive alternative": _set_top("logprob", 1.0),
    "string alternative": _set_top("logprob", "x"),
    "alternative without token": lambda t: t[0]["top_logprobs"][0].pop("token"),
    "token not an object": lambda t: t.__setitem__(0, -0.5),
    "empty list": lambda t: t.clear(),
}


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_token_logprob_edge_cases_match_the_model(case):
    assert_same_as_contract(with_tokens(TOKEN_CASES[case]))


@pytest.mark.parametrize("text", [
    b'"logprob": -1e999',  # decodes to -inf: the model rejects it (allow_inf_nan=False)
    b'"logprob": NaN',
    b'"logprob": -Infinity',
])
def test_non_finite_literals_are_rejected_like_the_model(text):
    raw = orjson.dumps(BASE).replace(b'"logprob":' + orjson.dumps(BASE["logprobs"][0]["logprob"]),
                                     text.replace(b" ", b""), 1)
    assert raw != orjson.dumps(BASE)
    assert_same_as_contract(raw)


@pytest.mark.parametrize("logprobs", [None, "none", {"a": 1}, [], 3])
def test_logprobs_of_other_shapes_match_the_model(logprobs):
    assert_same_as_contract(orjson.dumps({**BASE, "logprobs": logprobs}))


def test_body_errors_and_token_errors_are_reported_together():
    bad = with_tokens(_set(0, "logprob", 2.0))
    bad = orjson.dumps({**orjson.loads(bad), "latency_ms": "fast"})
    with pytest.raises(InvalidEvent) as exc:
        parse_inference(bad)
    assert "latency_ms" in str(exc.value) and "logprobs.0.logprob" in str(exc.value)


def _field(name, value):
    def mutate(event):
        event[name] = value
    return mutate


def _drop(name):
    return lambda event: event.pop(name, None)


BODY_CASES = {
    "empty request_id": _field("request_id", ""),
    "int request_id": _field("request_id", 17),
    "null request_id": _field("request_id", None),
    "no request_id": _drop("request_id"),
    "empty model": _field("model", ""),
    "null app": _field("app", None),
    "no app": _drop("app"),
    "no response": _drop("response"),
    "null response": _field("response", None),
    "empty response": _field("response", ""),
    "timestamp without offset": _field("timestamp", "2026-11-01T10:00:00"),
    "timestamp with offset": _field("timestamp", "2026-11-01T12:00:00+02:00"),
    "timestamp with fraction": _field("timestamp", "2026-11-01T10:00:00.123456Z"),
    "timestamp with nanoseconds": _field("timestamp", "2026-11-01T10:00:00.123456789Z"),
    "timestamp with 7 digits and offset": _field("timestamp", "2026-11-01T10:00:00.9999999+01:00"),
    "timestamp with a dot only": _field("timestamp", "2026-11-01T10:00:00.Z"),
    "timestamp date only": _field("timestamp", "2026-11-01"),
    "timestamp space separator": _field("timestamp", "2026-11-01 10:00:00Z"),
    "timestamp lower-case t and z": _field("timestamp", "2026-11-01t10:00:00z"),
    "timestamp as a number": _field("timestamp", 1764000000),
    "timestamp in 1999": _field("timestamp", "1999-12-31T23:59:59Z"),
    "timestamp next week": _field("timestamp", "2099-01-01T00:00:00Z"),
    "timestamp garbage": _field("timestamp", "yesterday"),
    "latency zero": _field("latency_ms", 0),
    "latency int": _field("latency_ms", 250),
    "latency negative": _field("latency_ms", -1.0),
    "latency bool": _field("latency_ms", True),
    "latency string": _field("latency_ms", "250"),
    "latency huge": _field("latency_ms", 1e308),
    "ttft null": _field("time_to_first_token_ms", None),
    "usage float count": _field("usage", {"input_tokens": 3.0, "output_tokens": 4}),
    "usage negative": _field("usage", {"input_tokens": -1}),
    "usage bool": _field("usage", {"output_tokens": True}),
    "usage empty": _field("usage", {}),
    "usage at the int32 limit": _field("usage", {"output_tokens": 2**31 - 1}),
    "usage over the int32 limit": _field("usage", {"output_tokens": 2**31}),
    "NUL in model": _field("model", "gpt\x00"),
    "request_id of 200 characters": _field("request_id", "é" * 200),
    "request_id of 201 characters": _field("request_id", "r" * 201),
    "model of 3000 characters": _field("model", "m" * 3000),
    "app of 201 characters": _field("app", "a" * 201),
    "NUL in request_id": _field("request_id", "\x00"),
    "NUL in app": _field("app", "a\x00b"),
    "NUL in finish_reason": _field("finish_reason", "stop\x00"),
    "NUL in response (not stored)": _field("response", "a\x00b"),
    "NUL in prompt (not stored)": _field("prompt", "a\x00b"),
    "usage with extras": _field("usage", {"output_tokens": 4, "total_tokens": 9}),
    "no prompt, no messages": lambda e: (e.pop("prompt", None), e.pop("messages", None)),
    "empty messages only": lambda e: (e.pop("prompt", None), e.update(messages=[])),
    "message without role": lambda e: e.update(prompt=None, messages=[{"content": "hi"}]),
    "message with empty role": lambda e: e.update(prompt=None, messages=[{"role": "", "content": "hi"}]),
    "message content parts": lambda e: e.update(
        messages=[{"role": "user", "content": [{"type": "text", "text": "x"}]}]),
    "message content number": lambda e: e.update(messages=[{"role": "user", "content": 3}]),
    "message with name": lambda e: e.update(messages=[{"role": "user", "content": "x", "name": "bob"}]),
    "sources with a number": _field("sources", ["a", 1]),
    "samples null": _field("samples", None),
    "metadata list": _field("metadata", [1, 2]),
    "metadata nested": _field("metadata", {"reference": "x", "k": {"n": [1, None]}}),
    "finish_reason number": _field("finish_reason", 1),
    "extra fields": lambda e: e.update({"gen_ai.system": "openai", "x": {"y": 1}}),
}


@pytest.mark.parametrize("case", sorted(BODY_CASES))
def test_body_edge_cases_match_the_model(case):
    event = copy.deepcopy(BASE)
    BODY_CASES[case](event)
    assert_same_as_contract(orjson.dumps(event))


@pytest.mark.parametrize("raw", [
    b'{"request_id": "a", "timestamp": "2026-11-01T10:00:00Z", "model": "m", "prompt": "p", '
    b'"response": "r", "usage": {"output_tokens": 1180591620717411303424}}',  # 2**70
    b'{"request_id": "a", "request_id": "b", "timestamp": "2026-11-01T10:00:00Z", "model": "m", '
    b'"prompt": "p", "response": "r"}',
    b'[{"request_id": "a"}]',
    b'"just a string"',
    b"{}",
    b'{"request_id": "a", "timestamp": "2026-11-01T10:00:00Z", "model": "m", "prompt": "p", '
    b'"response": "r"} trailing',
])
def test_odd_documents_match_the_model(raw):
    assert_same_as_contract(raw)


def test_the_mirror_has_exactly_the_models_fields():
    # an additive change to the contract must reach the fast path too (or its events lose the field)
    assert set(WireInferenceEvent.__struct_fields__) == set(InferenceEventV1.model_fields)
