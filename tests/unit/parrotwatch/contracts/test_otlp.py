"""OTLP traces -> inference events v1 (parrotwatch.contracts.otlp, issue 16).

The golden fixtures in otlp_fixtures/ were recorded from the real instrumentation libraries by
otlp_fixtures/record.py (versions in otlp_fixtures/MANIFEST.json): the same four OpenAI calls
(chat with logprobs, a stream, a tool conversation with n=2, a 404) under one non-LLM parent span.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from parrotwatch.contracts import InferenceEventV1
from parrotwatch.contracts.otlp import (
    MAX_METADATA_CHARS,
    MAX_METADATA_KEYS,
    MAX_SPAN_JSON_BYTES,
    MappedSpan,
    OtlpBatch,
    OtlpDecodeError,
    decode_traces,
    map_traces,
)
from parrotwatch.contracts.storable import text_problem
from parrotwatch.contracts.wire import decode_inference
from parrotwatch.scoring import parse_inference

FIXTURES = Path(__file__).parent / "otlp_fixtures"
PB = "application/x-protobuf"
JSON = "application/json"

SYSTEM = {"role": "system", "content": "You are a concise geography assistant."}
USER = {"role": "user", "content": "What is the capital of France?"}
TOOL_CONVERSATION = [
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "content": None,
     "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]},
    {"role": "tool", "content": "18\u00b0C, sunny", "tool_call_id": "call_1"},
]
#: The four LLM spans of every fixture, in order: (messages, response, samples, usage)
CALLS = [
    ([SYSTEM, USER], "The capital of France is Paris.", None, {"input_tokens": 24, "output_tokens": 7}),
    ([{"role": "user", "content": "Name the three primary colours."}], "Red, yellow and blue.", None,
     {"input_tokens": 12, "output_tokens": 6}),
    (TOOL_CONVERSATION, "It is 18\u00b0C and sunny in Paris.", ["Sunny, 18\u00b0C."],
     {"input_tokens": 58, "output_tokens": 14}),
    ([{"role": "user", "content": "Hello?"}], "", None, None),
]
MODEL = "gpt-4o-mini-2024-07-18"
#: fixture -> (its chat span's request_id (seeded ids: the same on every recording), contents on the
#: span, time to first token on the stream span, scope)
VARIANTS = {
    "openai_v2": ("4d4e353d00876281fbb79ef11743e0d2-7029d2d4e2a756ea", True, False,
                  "opentelemetry.util.genai.handler@1.1b0"),
    "openai_v2_no_content": ("face15a3378d6459e7eb53c0f2f25f3a-5e2ce016de167704", False, False,
                             "opentelemetry.util.genai.handler@1.1b0"),
    "openai_v2_legacy": ("bb1217d2a2860715d75fc5ad45a5e24b-efeaed0b6f2154cf", False, False,
                         "opentelemetry.instrumentation.openai_v2"),
    "openllmetry": ("7205917f2c306d5dff42a1205a0712ed-c305cca4c2c759f3", True, True,
                    "opentelemetry.instrumentation.openai.v1@0.62.4"),
    "openllmetry_legacy": ("2b4ac4160a05b91e66cd4b6cb859d213-15faea8852c37c3f", True, True,
                           "opentelemetry.instrumentation.openai.v1@0.54.0"),
    "openinference": ("493054a1827e2e3c00433a31118316e7-5162750cd744b9c6", True, True,
                      "openinference.instrumentation.openai@0.1.66"),
}


def fixture(name: str, encoding: str = "pb") -> ExportTraceServiceRequest:
    body = (FIXTURES / f"{name}.{encoding}").read_bytes()
    return decode_traces(body, PB if encoding == "pb" else JSON)


def llm_spans(request: ExportTraceServiceRequest) -> list[Span]:
    """The recorded LLM spans (every span but the parent ``answer_question``), in order."""
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans
            if s.name != "answer_question"]


def assert_valid(event: dict[str, Any]) -> None:
    """The contract model and the stream's parser both accept the event, unchanged by JSON."""
    InferenceEventV1.model_validate(event)
    raw = orjson.dumps(event)
    assert orjson.loads(raw) == event
    parse_inference(raw)


def normalized(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without ``tool_call_id`` (not every library records it), tool-call arguments parsed
    (libraries differ in their JSON spacing)."""
    out = []
    for message in messages:
        message = {k: v for k, v in message.items() if k != "tool_call_id"}
        if "tool_calls" in message:
            message["tool_calls"] = [{**c, "arguments": json.loads(c["arguments"])}
                                     for c in message["tool_calls"]]
        out.append(message)
    return out


# ---------------------------------------------------------------------------------------------
# Golden fixtures
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", VARIANTS)
def test_golden_fixture(name: str) -> None:
    request_id, content_on_span, has_ttft, scope = VARIANTS[name]
    request = fixture(name)
    batch = map_traces(request)
    assert batch.skipped == 1  # answer_question
    spans = llm_spans(request)
    assert len(batch.spans) == len(spans) == 4
    assert batch.spans[0].event["request_id"] == request_id

    for i, (mapped, span, (messages, response, samples, usage)) in enumerate(
            zip(batch.spans, spans, CALLS, strict=True)):
        assert mapped.reason is None and mapped.event is not None, mapped.reason
        event = mapped.event
        assert_valid(event)
        decode_inference(orjson.dumps(event))  # the stream's fast path takes it as is
        assert event["request_id"] == f"{span.trace_id.hex()}-{span.span_id.hex()}"
        assert event["model"] == (MODEL if i < 3 else "no-such-model")
        assert event["app"] == "support-bot"
        assert event["latency_ms"] == (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
        assert 1 < event["latency_ms"] < 5_000
        assert event["timestamp"].endswith("Z")  # RFC 3339 UTC, the span's end
        assert InferenceEventV1.model_validate(event).timestamp.timestamp() == pytest.approx(
            span.end_time_unix_nano / 1e9, abs=2e-6)
        assert event.get("usage") == usage
        meta = event["metadata"]
        assert meta["otlp.trace_id"] == span.trace_id.hex()
        assert meta["otlp.span_id"] == span.span_id.hex()
        assert meta["otlp.span_name"] == span.name
        assert meta["otlp.scope"] == scope
        assert meta["resource.service.name"] == "support-bot"
        assert meta["resource.parrotwatch.app"] == "support-bot-eu"
        assert len(meta) <= MAX_METADATA_KEYS
        assert all(v is None or isinstance(v, str | int | float | bool) for v in meta.values())
        assert not any(k in meta for k in ("gen_ai.input.messages", "gen_ai.output.messages",
                                           "input.value", "output.value"))
        assert not any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.",
                                     "llm.output_messages.")) for k in meta)
        assert (meta.get("otlp.status_code") == "ERROR") == (i == 3)
        if i < 3:  # the span's own attributes travel along
            assert meta.get("gen_ai.request.model", meta.get("llm.model_name")) in ("gpt-4o-mini", MODEL)
            assert meta.get("gen_ai.response.id", "chatcmpl-stub").startswith("chatcmpl-stub")

        if content_on_span:
            assert normalized(event["messages"]) == normalized(messages)
            assert event["response"] == response
            assert event.get("samples") == samples
            assert "prompt" not in event
            assert meta["otlp.content_captured"] is True
        else:  # content capture off, or the contents went to log records
            assert event["prompt"] == "" and event["response"] == "" and "messages" not in event
            assert meta["otlp.content_captured"] is False
        if i == 0 or (i == 1 and content_on_span):
            assert event["finish_reason"] == "stop"
        if i == 2:
            assert event["finish_reason"] == "stop"  # of the first choice ("length" for the second)
        if i == 3:
            assert "finish_reason" not in event
        ttft = event.get("time_to_first_token_ms")
        if i == 1 and has_ttft:
            assert 0 < ttft < event["latency_ms"]
        else:
            assert ttft is None


@pytest.mark.parametrize("name", VARIANTS)
def test_both_encodings_give_the_same_spans(name: str) -> None:
    from_pb, from_json = map_traces(fixture(name, "pb")), map_traces(fixture(name, "json"))
    assert from_pb == from_json
    assert fixture(name, "pb") == fixture(name, "json")


@pytest.mark.parametrize("name", VARIANTS)
def test_span_json_is_the_otlp_json_of_the_span(name: str) -> None:
    request = fixture(name)
    recorded = json.loads((FIXTURES / f"{name}.json").read_text())
    by_id = {s["spanId"]: s for rs in recorded["resourceSpans"] for ss in rs["scopeSpans"]
             for s in ss["spans"]}
    for mapped, span in zip(map_traces(request).spans, llm_spans(request), strict=True):
        assert len(mapped.span_json) <= MAX_SPAN_JSON_BYTES
        assert json.loads(mapped.span_json) == by_id[span.span_id.hex()]


def test_tool_call_ids_are_kept_where_recorded() -> None:
    for name in ("openai_v2", "openllmetry", "openllmetry_legacy", "openinference"):
        tool = map_traces(fixture(name)).spans[2].event["messages"][2]
        assert tool["role"] == "tool" and tool["tool_call_id"] == "call_1", name


def test_openinference_logprobs_from_the_response_body() -> None:
    """Only OpenInference keeps logprobs (inside output.value, the OpenAI response body)."""
    event = map_traces(fixture("openinference")).spans[0].event
    assert [t["token"] for t in event["logprobs"]] == ["The", " capital", " of", " France", " is",
                                                      " Paris", "."]
    assert event["logprobs"][0] == {"token": "The", "logprob": -0.01, "top_logprobs": [
        {"token": "The", "logprob": -0.01}, {"token": " Lyon", "logprob": -4.7}]}
    for name in VARIANTS:
        if name != "openinference":
            assert all("logprobs" not in m.event for m in map_traces(fixture(name)).spans)


def test_app_attribute_picks_a_resource_attribute() -> None:
    batch = map_traces(fixture("openllmetry"), app_attribute="parrotwatch.app")
    assert {m.event["app"] for m in batch.spans} == {"support-bot-eu"}
    batch = map_traces(fixture("openllmetry"), app_attribute="not.there")
    assert {m.event["app"] for m in batch.spans} == {"support-bot"}


def test_previous_convention_events_on_the_span() -> None:
    """The v1.28..v1.36 GenAI events that openai-v2 emitted as log records (recorded in
    openai_v2_legacy.logs.json), attached to their spans as span events (body fields as event
    attributes), give the same contents as the span-attribute conventions."""
    request = fixture("openai_v2_legacy")
    logs = json.loads((FIXTURES / "openai_v2_legacy.logs.json").read_text())
    spans = {s.span_id.hex(): s for s in llm_spans(request)}
    records = [r for rl in logs["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    assert len(records) == 11
    for record in records:
        body = json_format.ParseDict(record["body"], AnyValue())
        event = spans[record["spanId"]].events.add(name=record["eventName"],
                                                   time_unix_nano=int(record["observedTimeUnixNano"]))
        event.attributes.extend(body.kvlist_value.values)
    batch = map_traces(request)
    for mapped, (messages, response, samples, _) in zip(batch.spans, CALLS, strict=True):
        event = mapped.event
        assert_valid(event)
        assert event["metadata"]["otlp.content_captured"] is True
        assert normalized(event["messages"]) == normalized(messages)
        assert event["response"] == response and event.get("samples") == samples
    assert batch.spans[2].event["messages"][2]["tool_call_id"] == "call_1"


# ---------------------------------------------------------------------------------------------
# Hand-built spans
# ---------------------------------------------------------------------------------------------

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN_ID = bytes.fromhex("b7ad6b7169203331")
START = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
END = START + 1_250_000_000


def value(v: Any) -> AnyValue:
    if isinstance(v, AnyValue):
        return v
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=value(x))
                                                          for k, x in v.items()]))
    return AnyValue(string_value=v)


def make_span(attributes: dict[str, Any] | None = None, events: list[tuple[str, dict[str, Any]]] = (),
              **fields: Any) -> Span:
    span = Span(trace_id=fields.pop("trace_id", TRACE_ID), span_id=fields.pop("span_id", SPAN_ID),
                name=fields.pop("name", "chat gpt-4o"), kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=fields.pop("start", START), end_time_unix_nano=fields.pop("end", END),
                **fields)
    span.attributes.extend(KeyValue(key=k, value=value(v)) for k, v in (attributes or {}).items())
    for offset, (name, attrs) in enumerate(events):
        ev = span.events.add(name=name, time_unix_nano=START + (offset + 1) * 1_000_000)
        ev.attributes.extend(KeyValue(key=k, value=value(v)) for k, v in attrs.items())
    return span


def make_request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    rs = ResourceSpans()
    resource = {"service.name": "chatbot"} if resource is None else resource
    rs.resource.attributes.extend(KeyValue(key=k, value=value(v)) for k, v in resource.items())
    rs.scope_spans.append(ScopeSpans(spans=list(spans)))
    return ExportTraceServiceRequest(resource_spans=[rs])


def map_one(span: Span, **kwargs: Any) -> MappedSpan:
    batch = map_traces(make_request(span), **kwargs)
    assert batch.skipped == 0 and len(batch.spans) == 1
    return batch.spans[0]


CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}


def test_current_conventions_by_hand() -> None:
    mapped = map_one(make_span({
        **CHAT, "gen_ai.provider.name": "openai",
        "gen_ai.system_instructions": '[{"type": "text", "content": "Be brief."}]',
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
            {"type": "text", "content": "Hi"}, {"type": "blob", "modality": "image", "content": "AAA="},
            {"type": "text", "content": "there"}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "reasoning", "content": "thinking"}, {"type": "text", "content": "Hello!"}],
            "finish_reason": "stop"}]),
        "gen_ai.response.finish_reasons": ["length"],  # the attribute wins over the message's
        "gen_ai.response.time_to_first_chunk": 0.25,
        "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 2,
    }))
    event = mapped.event
    assert event == {
        "request_id": "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "timestamp": "2026-01-01T00:00:01.250000Z",
        "model": "gpt-4o", "app": "chatbot",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi\nthere"}],
        "response": "Hello!", "latency_ms": 1250.0, "time_to_first_token_ms": 250.0,
        "usage": {"input_tokens": 5, "output_tokens": 2}, "finish_reason": "length",
        "metadata": event["metadata"],
    }
    assert event["metadata"]["gen_ai.response.time_to_first_chunk"] == 0.25
    assert "gen_ai.system_instructions" not in event["metadata"]
    assert_valid(event)


def test_structured_message_attributes() -> None:
    """GenAI conventions allow gen_ai.input.messages as a structured (non-string) attribute."""
    event = map_one(make_span({**CHAT, "gen_ai.input.messages": [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Yo"}]}],
    })).event
    assert event["messages"] == [{"role": "user", "content": "Hi"}] and event["response"] == "Yo"


def test_previous_conventions_by_hand() -> None:
    event = map_one(make_span({
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "second",
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "first",
        "gen_ai.prompt.2.role": "user",
        "gen_ai.prompt.2.content": '[{"type": "text", "text": "look"}, {"type": "image_url"}]',
        "gen_ai.completion.0.content": "answer", "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.prompt_tokens": 9, "gen_ai.usage.completion_tokens": 1,
    })).event
    assert event["messages"] == [{"role": "system", "content": "first"},
                                 {"role": "user", "content": "second"}, {"role": "user", "content": "look"}]
    assert event["response"] == "answer" and event["finish_reason"] == "stop"
    assert event["usage"] == {"input_tokens": 9, "output_tokens": 1}


def test_v1_26_content_events() -> None:
    event = map_one(make_span({**CHAT}, events=[
        ("gen_ai.content.prompt", {"gen_ai.prompt": '[{"role": "user", "content": "Hi"}]'}),
        ("gen_ai.content.completion", {"gen_ai.completion": '[{"role": "assistant", "content": "Yo"}]'}),
    ])).event
    assert event["messages"] == [{"role": "user", "content": "Hi"}] and event["response"] == "Yo"
    event = map_one(make_span({**CHAT}, events=[
        ("gen_ai.content.prompt", {"gen_ai.prompt": "plain prompt"}),
        ("gen_ai.content.completion", {"gen_ai.completion": "plain answer"}),
    ])).event
    assert event["prompt"] == "plain prompt" and event["response"] == "plain answer"


def test_choice_event_with_json_message_attribute() -> None:
    """Span events in the style of SDKs that put the event body in attributes as JSON text."""
    event = map_one(make_span({**CHAT}, events=[
        ("gen_ai.user.message", {"content": "Hi"}),
        ("gen_ai.choice", {"index": 1, "finish_reason": "length", "message": '{"content": "second"}'}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": '{"content": "first"}'}),
    ])).event
    assert event["messages"] == [{"role": "user", "content": "Hi"}]
    assert event["response"] == "first" and event["samples"] == ["second"]
    assert event["finish_reason"] == "stop"


def test_openinference_by_hand() -> None:
    event = map_one(make_span({
        "openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-sonnet",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.contents.0.message_content.type": "text",
        "llm.input_messages.0.message.contents.0.message_content.text": "Describe",
        "llm.input_messages.0.message.contents.1.message_content.type": "image",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "A cat.",
        "llm.token_count.prompt": 100, "llm.token_count.completion": 3,
    })).event
    assert event["messages"] == [{"role": "user", "content": "Describe"}]
    assert event["response"] == "A cat." and event["usage"] == {"input_tokens": 100, "output_tokens": 3}


def test_openinference_input_and_output_values_alone() -> None:
    event = map_one(make_span({"openinference.span.kind": "LLM", "llm.model_name": "m",
                               "input.value": "tell me", "output.value": "told"})).event
    assert event["prompt"] == "tell me" and event["response"] == "told"
    event = map_one(make_span({
        "openinference.span.kind": "LLM",
        "llm.invocation_parameters": '{"model": "from-params"}',
        "input.value": '{"messages": [{"role": "user", "content": "Hi"}]}',
        "input.mime_type": "application/json",
        "output.value": '{"choices": [{"message": {"content": "Yo"}, "finish_reason": "stop"}]}',
        "output.mime_type": "application/json"})).event
    assert event["model"] == "from-params"
    assert event["messages"] == [{"role": "user", "content": "Hi"}] and event["response"] == "Yo"
    assert event["finish_reason"] == "stop"


def test_invalid_logprobs_in_the_response_body_are_dropped() -> None:
    body = {"choices": [{"message": {"content": "Yo"}, "logprobs": {"content": [
        {"token": "Yo", "logprob": 0.5}]}}]}  # a positive logprob breaks the contract
    event = map_one(make_span({"openinference.span.kind": "LLM", "llm.model_name": "m",
                               "input.value": "x", "output.value": json.dumps(body),
                               "output.mime_type": "application/json"})).event
    assert event["response"] == "Yo" and "logprobs" not in event


@pytest.mark.parametrize("attributes", [
    {"http.method": "POST", "http.route": "/chat"},
    {"openinference.span.kind": "CHAIN", "llm.model_name": "m", "input.value": "x"},
    {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "e"},
    {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small"},
    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"},
    {"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o"},
    {"llm.request.type": "embedding", "gen_ai.request.model": "ada"},
    {"traceloop.span.kind": "workflow"},
    {},
])
def test_non_llm_spans_are_skipped(attributes: dict[str, Any]) -> None:
    batch = map_traces(make_request(make_span(attributes)))
    assert batch == OtlpBatch(spans=[], skipped=1)


@pytest.mark.parametrize("attributes", [
    {"gen_ai.system": "openai", "gen_ai.prompt.0.content": "hi"},
    {"gen_ai.operation.name": "chat"},
    {"openinference.span.kind": "LLM", "input.value": "hi"},
    {"llm.system": "openai"},
])
def test_llm_span_without_model_is_unmappable(attributes: dict[str, Any]) -> None:
    mapped = map_one(make_span(attributes))
    assert mapped.event is None
    assert mapped.reason.startswith("span has no model: set gen_ai.request.model")
    assert json.loads(mapped.span_json)["spanId"] == SPAN_ID.hex()


@pytest.mark.parametrize(("fields", "reason"), [
    ({"trace_id": b"\x01" * 15}, "traceId is 15 bytes"),
    ({"trace_id": b""}, "traceId is 0 bytes"),
    ({"trace_id": b"\x00" * 16}, "traceId is all zeros: a trace id is 16 bytes"),
    ({"span_id": b"\x00" * 8}, "spanId is all zeros: a span id is 8 bytes"),
    ({"span_id": b"\x01" * 9}, "spanId is 9 bytes"),
    ({"start": 0}, "no startTimeUnixNano or endTimeUnixNano"),
    ({"end": 0}, "no startTimeUnixNano or endTimeUnixNano"),
    ({"end": START - 1}, "ends before it starts"),
    ({"start": 1, "end": 2}, "timestamp: Value error, timestamp 1970-01-01"),
    ({"start": 2**64 - 2, "end": 2**64 - 1}, "timestamp: Value error, timestamp 2554"),
])
def test_malformed_spans_are_unmappable(fields: dict[str, Any], reason: str) -> None:
    mapped = map_one(make_span({**CHAT, "gen_ai.input.messages": "[]"}, **fields))
    assert mapped.event is None and reason in mapped.reason, mapped.reason


@pytest.mark.parametrize(("attributes", "where"), [
    ({"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "a\x00b"}, "messages.0.content"),
    ({"gen_ai.completion.0.content": "a\x00b"}, "response"),
    ({"gen_ai.request.model": "gpt\x00"}, "model"),
    ({"note": "a\x00b"}, "metadata.note"),
    ({"gen_ai.request.model": "m" * 201}, "model: String should have at most 200 characters"),
])
def test_unstorable_text_is_unmappable(attributes: dict[str, Any], where: str) -> None:
    mapped = map_one(make_span({**CHAT, **attributes}))
    assert mapped.event is None and where in mapped.reason, mapped.reason
    assert text_problem(mapped.reason) is None  # the reason itself can be stored


def test_nul_in_content_through_both_encodings() -> None:
    request = make_request(make_span({**CHAT, "gen_ai.prompt.0.role": "user",
                                      "gen_ai.prompt.0.content": "a\x00b"}))
    as_json = json_format.MessageToDict(request)
    for span in as_json["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId"):
            span[key] = base64.b64decode(span[key]).hex()
    for body, media in ((request.SerializeToString(), PB), (json.dumps(as_json).encode(), JSON)):
        (mapped,) = map_traces(decode_traces(body, media)).spans
        assert mapped.event is None and "contains NUL" in mapped.reason


def test_content_capture_off_is_noted() -> None:
    event = map_one(make_span(CHAT)).event
    assert event["prompt"] == "" and event["response"] == ""
    assert event["metadata"]["otlp.content_captured"] is False
    assert_valid(event)


def test_metadata_is_bounded() -> None:
    attributes = {**CHAT, **{f"custom.{i:03d}": "v" for i in range(200)},
                  "big": "x" * 5000, "nan": math.nan, "inf": -math.inf,
                  "nested": {"a": [1, 2, {"b": "c"}]}, "raw": b"\x00\x01", "k" * 300: "long key"}
    meta = map_one(make_span(attributes)).event["metadata"]
    assert len(meta) == MAX_METADATA_KEYS
    # 5 otlp.* keys and otlp.dropped_attributes; the span's attributes and 1 resource attribute share the rest
    assert meta["otlp.dropped_attributes"] == len(attributes) + 1 - (MAX_METADATA_KEYS - 6)
    assert meta["otlp.trace_id"] == TRACE_ID.hex() and meta["gen_ai.request.model"] == "gpt-4o"
    event = map_one(make_span({**CHAT, "big": "x" * 5000, "nan": math.nan, "inf": -math.inf,
                               "nested": {"a": [1, 2, {"b": "c"}]}, "raw": b"\x00\x01",
                               "k" * 300: "long key"})).event
    meta = event["metadata"]
    assert meta["big"] == "x" * MAX_METADATA_CHARS
    assert meta["nan"] == "nan" and meta["inf"] == "-inf"
    assert meta["nested"] == '{"a":[1,2,{"b":"c"}]}'
    assert meta["raw"] == "AAE="
    assert meta["k" * 256] == "long key"
    assert_valid(event)


def test_huge_attribute_arrays_are_cheap_and_bounded() -> None:
    span = make_span({**CHAT, "gen_ai.response.finish_reasons": ["stop"] * 200_000,
                      "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "x"}]}]
                      * 5_000})
    mapped = map_one(span)
    assert mapped.event is None and "messages: List should have at most 1024 items" in mapped.reason
    event = map_one(make_span({**CHAT, "gen_ai.response.finish_reasons": ["stop"] * 200_000})).event
    assert event["finish_reason"] == "stop"
    assert len(event["metadata"]["gen_ai.response.finish_reasons"]) == MAX_METADATA_CHARS
    assert len(mapped.span_json) <= MAX_SPAN_JSON_BYTES


def test_span_json_of_a_big_span_is_a_head_of_whole_characters() -> None:
    mapped = map_one(make_span({**CHAT, "gen_ai.completion.0.content": "\u00e9" * 50_000}))
    assert len(mapped.span_json) <= MAX_SPAN_JSON_BYTES
    mapped.span_json.decode("utf-8")  # cut at a character boundary


def test_time_to_first_token_sources() -> None:
    assert map_one(make_span({**CHAT, "gen_ai.server.time_to_first_token": 0.5})).event[
        "time_to_first_token_ms"] == 500.0
    event = map_one(make_span(CHAT, events=[("First Token Stream Event", {})])).event
    assert event["time_to_first_token_ms"] == 1.0
    for bad in (-1.0, math.nan, math.inf):
        assert "time_to_first_token_ms" not in map_one(make_span(
            {**CHAT, "gen_ai.response.time_to_first_chunk": bad})).event


def test_token_counts_out_of_contract_range_are_unmappable() -> None:
    mapped = map_one(make_span({**CHAT, "gen_ai.usage.input_tokens": 2**40}))
    assert mapped.event is None and "usage.input_tokens" in mapped.reason
    event = map_one(make_span({**CHAT, "gen_ai.usage.input_tokens": 12.0,
                               "gen_ai.usage.output_tokens": "7"})).event
    assert event["usage"] == {"input_tokens": 12, "output_tokens": 7}


def test_app_fallbacks() -> None:
    span = make_span(CHAT)
    assert map_traces(make_request(span, resource={})).spans[0].event["app"] == "unknown"
    assert map_traces(make_request(span, resource={"service.name": "svc", "team": "ml"}),
                      app_attribute="team").spans[0].event["app"] == "ml"


def test_spans_in_order_and_counts() -> None:
    spans = [make_span(CHAT, span_id=bytes([1] * 7 + [i])) for i in range(1, 4)]
    spans.insert(1, make_span({"http.method": "GET"}, span_id=b"\x09" * 8))
    batch = map_traces(make_request(*spans))
    assert batch.skipped == 1
    assert [m.event["request_id"][-2:] for m in batch.spans] == ["01", "02", "03"]


# ---------------------------------------------------------------------------------------------
# Malformed bodies
# ---------------------------------------------------------------------------------------------

def test_content_type_parameters_and_case_are_ignored() -> None:
    body = (FIXTURES / "openllmetry.json").read_bytes()
    assert decode_traces(body, "Application/JSON; charset=utf-8") == fixture("openllmetry")
    body = (FIXTURES / "openllmetry.pb").read_bytes()
    assert decode_traces(body, "application/x-protobuf;foo=bar") == fixture("openllmetry")


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/protobuf",
                                          "application/grpc", "application/json\x00"])
def test_unknown_content_type(content_type: str) -> None:
    with pytest.raises(OtlpDecodeError, match="application/x-protobuf.*application/json"):
        decode_traces(b"{}", content_type)


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (b"\xff\xff\xff", PB, "not a protobuf ExportTraceServiceRequest"),
    (b"\x0a\x05\x0a\x03", PB, "not a protobuf"),
    (b"{", JSON, "not valid JSON"),
    (b"", JSON, "not valid JSON"),
    (b'"\\ud800"', JSON, "not valid JSON"),
    (b"[]", JSON, "JSON object"),
    (b'{"resourceSpans": 5}', JSON, "not OTLP/JSON traces"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}', JSON, "not OTLP/JSON"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}', JSON,
     "not OTLP/JSON"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "W47rAK3+rJDwrRBDAp9uNQ=="}]}]}]}',
     JSON, r"traceId: .* is not hex; OTLP/JSON encodes trace and span ids as hex"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "abc"}]}]}]}', JSON, "spanId"),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"links": [{"traceId": "zz"}]}]}]}]}', JSON,
     r"links\[0\]\.traceId"),
    (b"[" * 100_000, JSON, "not valid JSON"),
])
def test_malformed_bodies(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(OtlpDecodeError, match=message) as caught:
        decode_traces(body, content_type)
    assert text_problem(str(caught.value)) is None


def test_decode_error_messages_can_be_stored() -> None:
    body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "x\\u0000"}]}]}]}'
    with pytest.raises(OtlpDecodeError) as caught:
        decode_traces(body, JSON)
    assert text_problem(str(caught.value)) is None
    with pytest.raises(OtlpDecodeError) as caught:
        decode_traces(b"{}", "text/\x00plain\ud800" + "x" * 5000)
    assert text_problem(str(caught.value)) is None and len(str(caught.value)) < 400


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@pytest.mark.parametrize("depth", [40, 200])
def test_deeply_nested_protobuf_values(depth: int) -> None:
    """An attribute of arrays nested ``depth`` deep, built as raw protobuf (the Python classes refuse
    to build what the parser refuses to read)."""
    nested = AnyValue(string_value="x").SerializeToString()
    for _ in range(depth):
        nested = _field(5, _field(1, nested))  # AnyValue.array_value -> ArrayValue.values
    span = make_span(CHAT).SerializeToString() + _field(9, _field(1, b"deep") + _field(2, nested))
    body = _field(1, _field(2, _field(2, span)))  # request.resource_spans.scope_spans.spans
    try:
        request = decode_traces(body, PB)
    except OtlpDecodeError as exc:
        assert depth > 40 and "not a protobuf" in str(exc)  # the parser's recursion limit
        return
    (mapped,) = map_traces(request).spans
    assert mapped.event is not None and mapped.event["metadata"]["deep"].startswith("[[[[")


def test_hex_ids_of_the_wrong_length_in_json_are_unmappable() -> None:
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0af7651916cd43dd8448eb211c8031", "spanId": "B7AD6B7169203331",
        "startTimeUnixNano": str(START), "endTimeUnixNano": END, "kind": 3,
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m"}}]}]}]}]}).encode()
    (mapped,) = map_traces(decode_traces(body, JSON)).spans
    assert mapped.event is None and "traceId is 15 bytes" in mapped.reason
    assert json.loads(mapped.span_json)["spanId"] == "b7ad6b7169203331"


def test_unknown_json_fields_are_ignored() -> None:
    body = json.dumps({"resourceSpans": [{"futureField": 1, "scopeSpans": [{"spans": [{
        "traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex(), "startTimeUnixNano": START,
        "endTimeUnixNano": str(END), "flags": 257, "somethingNew": {"x": 1},
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m"}}]}]}]}]}).encode()
    (mapped,) = map_traces(decode_traces(body, JSON)).spans
    assert mapped.event["model"] == "m"


def test_span_limit() -> None:
    body = (FIXTURES / "openinference.pb").read_bytes()
    with pytest.raises(OtlpDecodeError, match="holds 5 spans: send at most 4 spans per request"):
        decode_traces(body, PB, max_spans=4)
    request = decode_traces(body, PB)
    with pytest.raises(OtlpDecodeError, match="send at most 2 spans per request"):
        map_traces(request, max_spans=2)
    assert len(map_traces(request, max_spans=5).spans) == 4


def test_empty_request() -> None:
    assert map_traces(decode_traces(b"", PB)) == OtlpBatch(spans=[], skipped=0)
    assert map_traces(decode_traces(b"{}", JSON)) == OtlpBatch(spans=[], skipped=0)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

KEYS = [
    "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.response.model", "llm.model_name",
    "gen_ai.system", "openinference.span.kind", "llm.request.type", "llm.invocation_parameters",
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.prompt.0.role", "gen_ai.prompt.0.content",
    "gen_ai.prompt.1.tool_calls.0.name", "gen_ai.completion.0.content", "gen_ai.completion.0.finish_reason",
    "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
    "llm.input_messages.0.message.contents.0.message_content.text",
    "llm.output_messages.0.message.content", "input.value", "output.value", "input.mime_type",
    "output.mime_type", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens", "llm.token_count.completion", "gen_ai.response.finish_reasons",
    "llm.finish_reason", "gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token",
]
EVENT_NAMES = ["gen_ai.user.message", "gen_ai.system.message", "gen_ai.tool.message", "gen_ai.choice",
               "gen_ai.content.prompt", "gen_ai.content.completion", "First Token Stream Event",
               "gen_ai.content.completion.chunk", "exception"]
EVENT_KEYS = ["content", "message", "index", "finish_reason", "role", "tool_calls", "id", "body",
              "gen_ai.prompt", "gen_ai.completion", "event.name"]

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["role", "content", "parts", "type", "text", "finish_reason", "messages",
                         "choices", "message", "logprobs", "token", "logprob", "model", "id",
                         "response", "name", "arguments", "tool_calls", "index"]) | text,
        children, max_size=5),
    max_leaves=20)
json_text = json_values.map(lambda v: json.dumps(v, allow_nan=False))
any_values = st.recursive(
    st.builds(AnyValue, string_value=text | json_text) | st.builds(AnyValue, bool_value=st.booleans())
    | st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1))
    | st.builds(AnyValue, double_value=st.floats()) | st.builds(AnyValue, bytes_value=st.binary(max_size=8))
    | st.just(AnyValue()),
    lambda children: st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)),
                               st.lists(children, max_size=4))
    | st.builds(lambda kvs: AnyValue(kvlist_value=KeyValueList(
        values=[KeyValue(key=k, value=v) for k, v in kvs])),
        st.lists(st.tuples(st.sampled_from(EVENT_KEYS) | text, children), max_size=4)),
    max_leaves=12)
attribute_lists = st.lists(st.tuples(st.sampled_from(KEYS) | text, any_values), max_size=12)
times = st.integers(0, 2**64 - 1) | st.integers(START - 10**12, START + 10**12)


@st.composite
def random_spans(draw: st.DrawFn) -> Span:
    """Half of them well-formed around random attributes (valid ids and times, a model), so that the
    mapping itself is exercised; the other half random throughout."""
    if draw(st.booleans()):
        trace_id, span_id = TRACE_ID, SPAN_ID
        start = draw(st.integers(START - 10**12, START + 10**12))
        end = start + draw(st.integers(0, 10**11))
        attributes = [("gen_ai.request.model", AnyValue(string_value="m")), *draw(attribute_lists)]
    else:
        trace_id, span_id = draw(st.binary(max_size=17)), draw(st.binary(max_size=9))
        start, end = draw(times), draw(times)
        attributes = draw(attribute_lists)
    span = Span(trace_id=trace_id, span_id=span_id, parent_span_id=draw(st.binary(max_size=9)),
                name=draw(text), kind=draw(st.integers(0, 7)), start_time_unix_nano=start,
                end_time_unix_nano=end, status=Status(code=draw(st.integers(0, 3)), message=draw(text)))
    span.attributes.extend(KeyValue(key=k, value=v) for k, v in attributes)
    for name, attrs, when in draw(st.lists(st.tuples(st.sampled_from(EVENT_NAMES) | text,
                                                     st.lists(st.tuples(st.sampled_from(EVENT_KEYS),
                                                                        any_values), max_size=4),
                                                     times), max_size=4)):
        ev = span.events.add(name=name, time_unix_nano=when)
        ev.attributes.extend(KeyValue(key=k, value=v) for k, v in attrs)
    return span


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans=st.lists(random_spans(), min_size=1, max_size=3),
       resource=st.lists(st.tuples(st.sampled_from(["service.name", "team"]) | text, any_values), max_size=4),
       app_attribute=st.none() | st.sampled_from(["team", "service.name"]))
def test_map_traces_never_raises(spans: list[Span], resource: list[tuple[str, AnyValue]],
                                 app_attribute: str | None) -> None:
    rs = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    rs.resource.attributes.extend(KeyValue(key=k, value=v) for k, v in resource)
    request = ExportTraceServiceRequest(resource_spans=[rs])
    batch = map_traces(request, app_attribute=app_attribute)
    assert batch.skipped + len(batch.spans) == len(spans)
    for mapped in batch.spans:
        assert (mapped.event is None) != (mapped.reason is None)
        assert len(mapped.span_json) <= MAX_SPAN_JSON_BYTES
        if mapped.event is not None:
            assert_valid(mapped.event)
            assert len(mapped.event["metadata"]) <= MAX_METADATA_KEYS
        else:
            assert isinstance(mapped.reason, str) and 0 < len(mapped.reason) <= 2_000
            assert text_problem(mapped.reason) is None
    # the same request through the wire gives the same result
    assert map_traces(decode_traces(request.SerializeToString(), PB), app_attribute=app_attribute) == batch


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200) | json_text.map(str.encode),
       content_type=st.sampled_from([PB, JSON]))
def test_decode_raises_only_otlp_decode_error(body: bytes, content_type: str) -> None:
    try:
        request = decode_traces(body, content_type)
    except OtlpDecodeError as exc:
        assert str(exc)
        return
    map_traces(request)
