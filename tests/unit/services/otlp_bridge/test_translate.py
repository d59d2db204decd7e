"""One Kafka record of OTLP traces -> events and dead letters (the OTLP bridge, issue 16): the
recorded instrumentation payloads map as over HTTP, and no record, however malformed, raises."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, TracesData

from parrotwatch.contracts.otlp import PROTOBUF, decode_traces, map_traces
from parrotwatch.services.otlp_bridge.translate import HEAD_BYTES, translate

FIXTURES = Path(__file__).parents[2] / "parrotwatch" / "contracts" / "otlp_fixtures"


def record(value: bytes | None, offset: int = 7) -> SimpleNamespace:
    return SimpleNamespace(topic="otlp_spans", partition=1, offset=offset, timestamp=1_700_000_000_000,
                           value=value)


def dead(message: tuple) -> dict:
    key, value = message
    assert key is None
    return orjson.loads(value)


@pytest.mark.parametrize("fixture", ["openai_v2", "openai_v2_legacy", "openinference"])
def test_a_recorded_payload_maps_as_the_http_route_maps_it(fixture):
    body = (FIXTURES / f"{fixture}.pb").read_bytes()
    expected = map_traces(decode_traces(body, PROTOBUF))
    out = translate(record(body))
    assert [orjson.loads(v) for _, v in out.events] == [s.event for s in expected.spans if s.event]
    assert [k.decode() for k, _ in out.events] == [s.event["request_id"] for s in expected.spans if s.event]
    assert len(out.dead) == sum(s.event is None for s in expected.spans)
    assert out.skipped == expected.skipped >= 1


def test_the_collector_tracesdata_message_is_read_like_an_export_request():
    """The Collector's kafka exporter writes ``TracesData``; it shares field 1 with the request."""
    request = ExportTraceServiceRequest.FromString((FIXTURES / "openai_v2.pb").read_bytes())
    data = TracesData(resource_spans=request.resource_spans)
    assert len(translate(record(data.SerializeToString())).events) == len(
        translate(record(request.SerializeToString())).events) > 0


def test_otlp_json_records_are_read_when_the_exporter_writes_json():
    body = (FIXTURES / "openai_v2.json").read_bytes()
    assert translate(record(body), encoding="otlp_json").events
    out = translate(record(body))  # read as protobuf: not OTLP traces
    assert not out.events and len(out.dead) == 1
    assert dead(out.dead[0])["reason"].startswith("not OTLP traces (otlp_proto)")


def llm_span_without_model() -> bytes:
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="chat",
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_001_000_000_000,
                attributes=[KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat"))])
    data = TracesData(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    return data.SerializeToString()


@pytest.mark.parametrize(("value", "stage", "reason"), [
    (b"\x00\xff garbage \x00", "decode", "not OTLP traces"),
    (None, "decode", "the record is empty"),
    (b"", "decode", "the record is empty"),
    (gzip.compress(b"x" * 100), "decode", "not OTLP traces"),
    (llm_span_without_model(), "map", "model"),
])
def test_a_poison_record_is_one_dead_letter_with_its_reason_and_origin(value, stage, reason):
    out = translate(record(value, offset=41))
    assert out.events == [] and len(out.dead) == 1
    letter = dead(out.dead[0])
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == ("otlp_spans", 1, 41)
    assert letter["stage"] == stage
    assert reason in letter["reason"], letter["reason"]
    assert letter["kafka_timestamp"] == "2023-11-14T22:13:20Z"


def test_an_event_over_the_size_limit_is_dead_lettered_not_sent():
    body = (FIXTURES / "openai_v2.pb").read_bytes()
    out = translate(record(body), max_event_bytes=200)
    assert out.events == [] and out.dead
    assert all("over max_event_bytes" in dead(d)["reason"] for d in out.dead)


def test_too_many_spans_is_one_dead_letter():
    out = translate(record((FIXTURES / "openai_v2.pb").read_bytes()), max_spans=1)
    assert out.events == [] and len(out.dead) == 1
    assert "spans" in dead(out.dead[0])["reason"]


def test_a_dead_letter_keeps_a_bounded_head_and_the_whole_size():
    value = b"\xff" * (HEAD_BYTES * 4)
    letter = dead(translate(record(value)).dead[0])
    assert letter["payload_bytes"] == len(value) and letter["payload_truncated"] is True
    assert len(orjson.dumps(letter)) < 64 * 1024


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_no_byte_string_raises(value):
    out = translate(record(value))
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in out.events)
    for letter in out.dead:
        assert dead(letter)["reason"]


def test_redaction_replaces_pii_in_dead_letter_payloads():
    pytest.importorskip("presidio_analyzer")
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x03" * 8, name="chat",
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_001_000_000_000,
                attributes=[KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                            KeyValue(key="gen_ai.input.messages", value=AnyValue(
                                string_value='[{"role": "user", "parts": [{"type": "text", '
                                             '"content": "mail me: jo.doe@example.com"}]}]'))])
    data = TracesData(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    body = data.SerializeToString()
    plain = dead(translate(record(body)).dead[0])
    red = dead(translate(record(body), redact_pii=True).dead[0])
    assert "jo.doe@example.com" in plain["payload"]
    assert "jo.doe@example.com" not in red["payload"] and "<EMAIL_ADDRESS>" in red["payload"]
    assert red["payload_sha256"] == plain["payload_sha256"]
