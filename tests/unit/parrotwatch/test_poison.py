"""The poison corpus through the stream's per-record step: each case is scored or dead-lettered
as expected, with a bounded reason naming what to fix, and both parsers agree on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from parrotwatch.contracts import InferenceEventV1
from parrotwatch.contracts.storable import MAX_DEPTH, text_problem, unstorable
from parrotwatch.poison import poison_corpus
from parrotwatch.scoring import InvalidEvent, parse_inference
from parrotwatch.streaming.records import feedback_rows, inference_rows
from parrotwatch.traffic import encode, generate_inference_events

CASES = poison_corpus()
MODEL = TypeAdapter(InferenceEventV1)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_poison_is_scored_or_dead_lettered_with_a_bounded_reason(case):
    rows_of = inference_rows if case.topic == "inference" else feedback_rows
    (row,) = rows_of([case.raw], 1 << 20)
    assert row["kind"] == case.expect, row["reason"]
    if case.expect == "dlq":
        assert row["reason"] and len(row["reason"]) <= 2_000
        assert text_problem(row["reason"]) is None  # the reason itself is storable
    else:
        assert row[f"{case.topic if case.topic == 'feedback' else 'request'}_id"] == case.request_id


def test_nul_cases_name_their_field():
    reasons = {c.name: inference_rows([c.raw], 1 << 20)[0]["reason"] for c in CASES
               if c.topic == "inference" and c.name.startswith("nul_")}
    assert "logprobs.0.top_logprobs.0.token" in reasons["nul_top_logprob_token"]
    assert "metadata.k.1.x" in reasons["nul_metadata_value"]
    assert "extra_note" in reasons["nul_extra_field"]
    assert all("NUL" in r for r in reasons.values())


@pytest.mark.parametrize("case", [c for c in CASES if c.topic == "inference" and c.raw],
                         ids=lambda c: c.name)
def test_fast_path_and_model_agree(case):
    try:
        MODEL.validate_json(case.raw)
        model_ok = True
    except (ValidationError, ValueError):
        model_ok = False
    try:
        parse_inference(case.raw, 8 << 20)
        fast_ok = True
    except InvalidEvent:
        fast_ok = False
    assert model_ok == fast_ok


def test_depth_is_counted_from_the_event():
    assert unstorable({"metadata": _nest(MAX_DEPTH - 2)}) is None
    assert "nested deeper" in unstorable({"metadata": _nest(MAX_DEPTH)})


def _nest(depth: int):
    value = "leaf"
    for _ in range(depth):
        value = [value]
    return value


TEXT = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF),
               max_size=20)


@settings(max_examples=300, deadline=None)
@given(prompt=TEXT, response=TEXT, token=TEXT, key=TEXT, value=TEXT, source=TEXT)
def test_whatever_the_model_accepts_encodes_for_postgres(prompt, response, token, key, value,
                                                          source):
    """Property: any event the contract accepts has only strings that UTF-8 encodes and that hold
    no NUL, which is what PostgreSQL text and jsonb need (the integration tests store them)."""
    base = generate_inference_events(1, seed=1)[0]
    event = {**base, "prompt": prompt, "response": response, "sources": [source],
             "metadata": {key: [value]}, "logprobs": [{"token": token, "logprob": -0.5}]}
    try:
        model = InferenceEventV1.model_validate(event)
    except ValidationError as exc:
        assert any(text_problem(s) for s in (prompt, response, token, key, value, source)), exc
        return
    for text in (model.prompt, model.response, model.sources[0], key, value, token):
        assert "\x00" not in text
        text.encode("utf-8")  # raises on a lone surrogate
    encode(event)


@settings(max_examples=200, deadline=None)
@given(prompt=TEXT)
def test_the_stream_parser_gives_the_same_verdict_on_escaped_text(prompt):
    base = generate_inference_events(1, seed=2)[0]
    try:
        raw = encode({**base, "prompt": prompt})
    except TypeError:  # orjson cannot write a lone surrogate: no JSON producer can send one
        return
    try:
        parse_inference(raw)
        accepted = True
    except InvalidEvent:
        accepted = False
    assert accepted == (text_problem(prompt) is None)


def test_a_reason_never_carries_the_text_it_refuses():
    """A key with a lone surrogate once made the reason itself unencodable (pydantic raised a
    UnicodeEncodeError, not a validation error); keys in reasons are escaped and cut."""
    base = generate_inference_events(1, seed=3)[0]
    for key in ("abcdefghi\ud800", "a\x00b", "k" * 500 + "\x00"):
        with pytest.raises(ValidationError) as info:
            InferenceEventV1.model_validate({**base, "metadata": {key: [1]}})
        message = str(info.value)
        assert text_problem(message.split("[type=")[0]) is None
        assert "(a key)" in message and "k" * 81 not in message


def test_relational_poison_gets_bounded_storable_reasons():
    """The grounding drill-down's ``reasons`` (relational findings) for a hostile RAG event:
    scored, at most MAX_SPANS spans of at most 5 reasons, each storable in PostgreSQL jsonb."""
    from parrotwatch.quality import MAX_SPAN_CHARS, MAX_SPANS, QualityConfig, score_quality
    from parrotwatch.scoring import parse_inference

    (case,) = [c for c in CASES if c.name.endswith("contradicting_units_and_roles")]
    event = parse_inference(case.raw, 8 << 20)
    (result,) = score_quality([event], QualityConfig(detectors=("hallucination",)))
    assert result.scores["hallucination"] == 1.0
    spans = result.drilldown["unsupported_spans"]
    assert 0 < len(spans) <= MAX_SPANS
    reasons = [r for s in spans for r in s["reasons"]]
    assert reasons and all(len(s["reasons"]) <= 5 for s in spans)
    assert all(len(r) <= MAX_SPAN_CHARS and text_problem(r) is None for r in reasons)
    assert unstorable(result.drilldown) is None


def test_obfuscation_and_language_poison_is_scored_from_a_prefix():
    """Every spelling trick at once in 0.5 MB of several scripts: deobfuscation and language
    identification read a bounded prefix, and the response is scored (a language, a toxicity)."""
    pytest.importorskip("py3langid", reason="needs the models extra")
    from parrotwatch.quality import QualityConfig, score_quality
    from parrotwatch.scoring import parse_inference

    (case,) = [c for c in CASES if c.name.endswith("obfuscated_multilingual_response")]
    event = parse_inference(case.raw, 8 << 20)
    (result,) = score_quality([event], QualityConfig(detectors=("toxicity",)))
    assert result.language == "en"  # the prefix is "k i l l   t h e   j o b", read as English
    assert result.scores["toxicity_unread"] == 0.0 and result.scores["toxicity"] < 0.5
