"""``POST /v1/traces`` over real HTTP (uvicorn process) against the real broker and stream: spans
recorded from real instrumentation libraries (tests/unit/parrotwatch/contracts/otlp_fixtures)
are scored into PostgreSQL with the values the spans carry; an LLM span without a model is
dead-lettered with its reason; bad bodies get a 4xx that says what to fix."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaConsumer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from parrotwatch.contracts.otlp import decode_traces, map_traces
from parrotwatch.settings import DLQ_TOPIC
from tests.integration.conftest import wait_for
from tests.integration.test_api_live import SECRET, start_api

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "parrotwatch" / "contracts" / "otlp_fixtures"
KEY = {"X-API-Key": SECRET}
PB = {**KEY, "Content-Type": "application/x-protobuf"}
JS = {**KEY, "Content-Type": "application/json"}


@pytest.fixture
def api(namespace):
    proc, url = start_api(namespace.settings)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client
    proc.stop()


def _without_model(body: bytes) -> bytes:
    """The recorded request with every model attribute of every span removed."""
    request = ExportTraceServiceRequest.FromString(body)
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                keep = [kv for kv in span.attributes if "model" not in kv.key]
                del span.attributes[:]
                span.attributes.extend(keep)
                span.span_id = bytes(reversed(span.span_id))  # another span, not a resend
    return request.SerializeToString()


def test_recorded_traces_are_scored_with_the_values_the_spans_carry(api, namespace, stream_job):
    sent = {name: (FIXTURES / f"{name}.pb").read_bytes() for name in ("openai_v2", "openllmetry")}
    for body in sent.values():
        r = api.post("/v1/traces", content=body, headers=PB)
        assert r.status_code == 200, r.text
        answer = ExportTraceServiceResponse.FromString(r.content)
        assert answer.partial_success.rejected_spans == 0
    # OTLP/JSON, gzip-compressed, as the Collector's otlphttp exporter sends it by default
    as_json = (FIXTURES / "openinference.json").read_bytes()
    r = api.post("/v1/traces", content=gzip.compress(as_json), headers={**JS, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
    assert json.loads(r.text) in ({}, {"partialSuccess": {}})

    expected = {}
    for body, media in [
        *((b, "application/x-protobuf") for b in sent.values()),
        (as_json, "application/json"),
    ]:
        for span in map_traces(decode_traces(body, media)).spans:
            assert span.event is not None, span.reason
            expected[span.event["request_id"]] = span.event
    assert len(expected) >= 3

    job = stream_job().start()
    wait_for(
        lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= len(expected),
        timeout=240,
        what="OTLP spans scored",
        job=job,
    )
    rows = namespace.sql(
        "SELECT request_id, model, app, latency_ms, input_tokens, output_tokens, "
        "finish_reason, cost_usd FROM inference_scores"
    )
    assert {r[0] for r in rows} == set(expected)
    for request_id, model, app, latency, inp, out, finish, _cost in rows:
        event = expected[request_id]
        assert (model, app) == (event["model"], event["app"])
        assert latency == pytest.approx(event["latency_ms"])
        usage = event.get("usage") or {}
        assert (inp, out) == (usage.get("input_tokens"), usage.get("output_tokens"))
        assert finish == event.get("finish_reason")
    assert {r[2] for r in rows} == {"support-bot"}  # the recording's service.name


def test_an_llm_span_without_a_model_is_dead_lettered_with_its_reason(api, namespace):
    body = _without_model((FIXTURES / "openai_v2.pb").read_bytes())
    r = api.post("/v1/traces", content=body, headers=PB)
    assert r.status_code == 200, r.text
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_spans >= 1
    assert "model" in answer.partial_success.error_message

    consumer = KafkaConsumer(
        namespace.topic(DLQ_TOPIC),
        bootstrap_servers=namespace.settings.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    letters = [orjson.loads(m.value) for m in consumer]
    consumer.close()
    assert len(letters) == answer.partial_success.rejected_spans
    metrics = api.get("/metrics").text  # dead letters are counted as such, never as accepted events
    assert f'parrotwatch_api_otlp_spans_total{{outcome="dead_lettered"}} {len(letters)}.0' in metrics
    mapped = sum(s.event is not None for s in map_traces(decode_traces(body, "application/x-protobuf")).spans)
    accepted = f'parrotwatch_api_events_accepted_total{{route="/v1/traces"}} {mapped}.0'
    assert (accepted in metrics) if mapped else ('accepted_total{route="/v1/traces"}' not in metrics)
    for letter in letters:
        assert letter["source_topic"] == "otlp:/v1/traces" and letter["stage"] == "map"
        assert "model" in letter["reason"] and letter["payload"].startswith("{")


def test_bad_bodies_get_a_reason_and_nothing_is_written(api, namespace):
    assert (
        api.post("/v1/traces", content=b"x", headers={"Content-Type": "application/x-protobuf"}).status_code
        == 401
    )
    r = api.post("/v1/traces", content=b"\xff\xff\xff garbage", headers=PB)
    assert r.status_code == 400 and "protobuf" in r.text
    r = api.post("/v1/traces", content=b'{"resourceSpans": [', headers=JS)
    assert r.status_code == 400 and "JSON" in r.text
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "00"}]}]}]}
    r = api.post("/v1/traces", json=bad_id, headers=KEY)
    assert r.status_code == 400 and "hex" in r.text
    r = api.post("/v1/traces", content=b"{}", headers={**KEY, "Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/x-protobuf" in r.text
    r = api.post("/v1/traces", content=b"{}", headers={**JS, "Content-Encoding": "br"})
    assert r.status_code == 415
    r = api.post("/v1/traces", content=b"not gzip", headers={**JS, "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.text
    bomb = gzip.compress(b"{" + b" " * (namespace.settings.max_request_bytes + 10) + b"}")
    r = api.post("/v1/traces", content=bomb, headers={**JS, "Content-Encoding": "gzip"})
    assert r.status_code == 413 and "inflates" in r.text
    deep = (
        b'{"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": '
        + b'{"arrayValue": {"values": [' * 100
        + b"]}}" * 100
        + b"}]}}]}"
    )
    r = api.post("/v1/traces", content=deep, headers=JS)
    assert r.status_code == 422 and "deep" in r.text
    many = ExportTraceServiceRequest()
    spans = many.resource_spans.add().scope_spans.add().spans
    for i in range(namespace.settings.max_batch_events + 1):
        span = spans.add(trace_id=b"\x01" * 16, span_id=i.to_bytes(8, "big"), name="http")
        span.attributes.append(KeyValue(key="http.method", value=AnyValue(string_value="GET")))
    r = api.post("/v1/traces", content=many.SerializeToString(), headers=PB)
    assert r.status_code == 413 and "spans per request" in r.text
    # an HTTP span only: counted and skipped, nothing written
    one = ExportTraceServiceRequest()
    span = (
        one.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, name="GET /health")
    )
    span.attributes.append(KeyValue(key="http.method", value=AnyValue(string_value="GET")))
    r = api.post("/v1/traces", content=one.SerializeToString(), headers=PB)
    assert (
        r.status_code == 200
        and ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == 0
    )
    assert 'parrotwatch_api_otlp_spans_total{outcome="skipped"} 1.0' in api.get("/metrics").text
