"""The OTLP bridge on a real broker (issue 16): records written as an OpenTelemetry Collector's
kafka exporter writes them (``otlp_proto``: one serialized TracesData per record, made here by the
OpenTelemetry SDK's own OTLP encoder, since no Collector binary installs from a package registry
here) become inference events v1 keyed by request id; poison records become dead letters with their
reason; a bridge killed with SIGKILL resumes from its committed offsets without losing a span."""

from __future__ import annotations

import sys

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from parrotwatch.settings import DLQ_TOPIC, INFERENCE_TOPIC, OTLP_SPANS_TOPIC
from parrotwatch.stack.local import REPO_ROOT, settings_env
from parrotwatch.stack.processes import ManagedProcess
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def sdk_record(app: str, calls: list[dict]) -> tuple[bytes, list[str]]:
    """One exporter record of ``calls`` (LLM spans under an HTTP parent span), and their request ids."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": app}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bridge-test")
    with tracer.start_as_current_span("POST /answer", attributes={"http.request.method": "POST"}):
        for call in calls:
            with tracer.start_as_current_span(f"chat {call.get('model')}", attributes={
                    "gen_ai.operation.name": "chat",
                    **({"gen_ai.request.model": call["model"]} if call.get("model") else {}),
                    "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 3,
                    "gen_ai.input.messages": orjson.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": call["prompt"]}]}]).decode(),
                    "gen_ai.output.messages": orjson.dumps(
                        [{"role": "assistant", "finish_reason": "stop",
                          "parts": [{"type": "text", "content": call["response"]}]}]).decode()}):
                pass
    spans = memory.get_finished_spans()
    provider.shutdown()
    ids = [f"{s.context.trace_id:032x}-{s.context.span_id:016x}" for s in spans
           if "gen_ai.request.model" in s.attributes]
    return encode_spans(spans).SerializeToString(), ids


def start_bridge(namespace, name: str = "otlp-bridge") -> ManagedProcess:
    proc = ManagedProcess(name, namespace.settings.run_dir, namespace.settings.logs_dir / f"{name}.log")
    proc.start([sys.executable, "-m", "parrotwatch.services.otlp_bridge"],
               env=settings_env(namespace.settings), cwd=REPO_ROOT)
    return proc


def events(namespace, expected: int) -> dict[str, dict]:
    return {r.key.decode(): orjson.loads(r.value)
            for r in namespace.read_topic(INFERENCE_TOPIC, expected, timeout=90)}


def test_collector_records_become_events_and_poison_records_dead_letters(namespace):
    good, ids = sdk_record("kafka-app", [
        {"model": "gpt-test", "prompt": "What is 2 + 2?", "response": "4"},
        {"model": "gpt-test", "prompt": "Capital of Peru?", "response": "Lima"}])
    no_model, _ = sdk_record("kafka-app", [{"model": None, "prompt": "hi", "response": "hello"}])
    producer = namespace.producer()
    topic = namespace.topic(OTLP_SPANS_TOPIC)
    for value in (b"\x0a\xff\xff\xff garbage", good, b"", no_model, b'{"resourceSpans": []}'):
        producer.send(topic, value=value, partition=0)  # offsets 0..4
    producer.flush()
    producer.close()
    bridge = start_bridge(namespace)
    try:
        got = events(namespace, 2)
        letters = [orjson.loads(r.value) for r in namespace.read_topic(DLQ_TOPIC, 4, timeout=60)]
    finally:
        bridge.stop()
    assert set(got) == set(ids)
    for event in got.values():
        assert (event["model"], event["app"], event["usage"]) == (
            "gpt-test", "kafka-app", {"input_tokens": 5, "output_tokens": 3})
    assert sorted(e["response"] for e in got.values()) == ["4", "Lima"]
    by_offset = {d["offset"]: d for d in letters}
    assert sorted(by_offset) == [0, 2, 3, 4], letters
    assert {d["source_topic"] for d in letters} == {topic}
    assert "not OTLP traces (otlp_proto)" in by_offset[0]["reason"]
    assert "the record is empty" in by_offset[2]["reason"]
    assert "span has no model" in by_offset[3]["reason"] and by_offset[3]["stage"] == "map"
    assert "not OTLP traces" in by_offset[4]["reason"]  # OTLP/JSON on a protobuf topic


def test_a_killed_bridge_resumes_without_losing_a_span(namespace):
    producer = namespace.producer()
    topic = namespace.topic(OTLP_SPANS_TOPIC)
    sent: list[str] = []

    def send(n: int) -> None:
        for i in range(n):
            value, ids = sdk_record(f"app-{i % 3}", [{"model": "m", "prompt": f"q{i}", "response": f"a{i}"}])
            producer.send(topic, value=value)
            sent.extend(ids)
        producer.flush()

    send(60)
    bridge = start_bridge(namespace)
    wait_for(lambda: len(events(namespace, 1)) >= 1, timeout=90, what="the bridge's first events")
    bridge.kill()
    send(60)  # written while no bridge runs
    bridge = start_bridge(namespace, "otlp-bridge-2")
    try:
        got = events(namespace, len(sent))
    finally:
        bridge.stop()
        producer.close()
    assert set(got) == set(sent)
    assert len(sent) == 120
