"""parse_inference's fast path (pydantic body + msgspec token logprobs) against the contract model.

The fast path may only be faster: on every payload it must accept exactly what
``InferenceEventV1`` accepts, give the same fields and scores, and reject with the model's reason.
"""

from __future__ import annotations

import copy

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from parrotwatch.contracts import InferenceEventV1
from parrotwatch.contracts.wire import WireLogprobToken
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
    fields = set(InferenceEventV1.model_fields) - {"logprobs"}
    assert {f: getattr(got, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert request_input(got) == request_input(expected)
    assert got.output_tokens() == expected.output_tokens()
    assert score_event(got).scores == pytest.approx(score_event(expected).scores, nan_ok=True)
    if expected.logprobs:
        assert [(t["token"], t["logprob"]) for t in got.logprobs] == [
            (t["token"], t["logprob"]) for t in expected.logprobs]


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
        lps = parse_inference(raw).logprobs
        assert lps is None or isinstance(lps[0], WireLogprobToken)  # the fast path was taken


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
