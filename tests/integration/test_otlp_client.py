"""A real OpenTelemetry client end to end (issue 16): a small app calls ``parrotwatch testbed serve``
with the official OpenAI Python client, instrumented by ``opentelemetry-instrumentation-openai-v2``
(content capture on). It runs twice: once exported by the SDK's OTLP/HTTP exporter to
``POST /v1/traces``, once written to Kafka as an OpenTelemetry Collector's kafka exporter writes
(``otlp_proto``: the SDK's OTLP encoding of the spans, one record per export; no Collector binary
installs from a package registry here) and read by the OTLP bridge. The stream scores both apps'
requests into PostgreSQL, where the stored values must equal what the spans carried (the app also
keeps its spans in memory and prints them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from parrotwatch.settings import OTLP_SPANS_TOPIC
from parrotwatch.stack.local import REPO_ROOT, settings_env
from parrotwatch.stack.processes import ManagedProcess
from tests.integration.conftest import wait_for
from tests.integration.test_api_live import SECRET, start_api
from tests.served_lm import served_testbed

pytestmark = pytest.mark.integration
pytest.importorskip("openai", reason="needs the otlp-record extra (the official client)")
pytest.importorskip("opentelemetry.instrumentation.openai_v2", reason="needs the otlp-record extra")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="needs the otlp-record extra")

MODEL = "tiny-testbed"
APP = """
import json, sys
from openai import OpenAI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (BatchSpanProcessor, SimpleSpanProcessor, SpanExporter,
                                            SpanExportResult)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

lm_url, api_url, key, model, app, sink = sys.argv[1:7]


class CollectorKafkaExporter(SpanExporter):
    # what the Collector's kafka exporter writes with encoding otlp_proto: one OTLP message a batch

    def __init__(self, bootstrap, topic):
        from kafka import KafkaProducer
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
        self.encode, self.topic = encode_spans, topic
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")

    def export(self, spans):
        self.producer.send(self.topic, self.encode(spans).SerializeToString()).get(timeout=30)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        self.producer.close()


provider = TracerProvider(resource=Resource.create({"service.name": app}))
memory = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(memory))
if sink == "http":
    exporter = OTLPSpanExporter(endpoint=f"{api_url}/v1/traces", headers={"X-API-Key": key})
else:
    bootstrap, topic = sink.split(" ", 1)
    exporter = CollectorKafkaExporter(bootstrap, topic)
provider.add_span_processor(BatchSpanProcessor(exporter))
OpenAIInstrumentor().instrument(tracer_provider=provider)
client = OpenAI(base_url=lm_url, api_key="not-used")
question = [{"role": "user", "content": "Where is the canary?"}]
client.chat.completions.create(model=model, messages=question, max_tokens=8, temperature=0)
stream = client.chat.completions.create(model=model, messages=question, max_tokens=6, temperature=0,
                                        stream=True, stream_options={"include_usage": True})
streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
provider.force_flush()
spans = [{"request_id": f"{s.context.trace_id:032x}-{s.context.span_id:016x}", "name": s.name,
          "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.attributes.items()},
          "latency_ms": (s.end_time - s.start_time) / 1e6} for s in memory.get_finished_spans()]
provider.shutdown()
print(json.dumps({"spans": spans, "streamed": streamed}))
"""


@pytest.fixture(scope="module")
def lm_server(tmp_path_factory):
    """``parrotwatch testbed serve`` over a tiny testbed trained for a few steps (the text does not
    matter here, only that a real model answers)."""
    from parrotwatch.audits.inputs import ensure_testbed
    from parrotwatch.audits.spec import TestbedRef

    home = tmp_path_factory.mktemp("otlp-client-home")
    info = ensure_testbed(home, TestbedRef(preset="tiny", seed=0, steps=20), progress=False)
    with served_testbed(info.path, tmp_path_factory.mktemp("otlp-lm-server"), MODEL) as url:
        yield url


def run_app(lm_url: str, api_url: str, app: str, sink: str) -> dict[str, dict]:
    """Run the instrumented app; its LLM spans by request id, each with the app's name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
    done = subprocess.run([sys.executable, "-c", APP, lm_url, api_url, SECRET, MODEL, app, sink], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    sent = json.loads(done.stdout.strip().splitlines()[-1])
    spans = {s["request_id"]: s | {"app": app} for s in sent["spans"]
             if "gen_ai.request.model" in s["attributes"]}
    assert len(spans) == 2, sent["spans"]
    return spans


def test_an_instrumented_openai_client_is_scored_with_its_spans_values(lm_server, namespace, stream_job):
    proc, api_url = start_api(namespace.settings)
    bridge = ManagedProcess("otlp-bridge", namespace.settings.run_dir,
                            namespace.settings.logs_dir / "otlp-bridge.log")
    bridge.start([sys.executable, "-m", "parrotwatch.services.otlp_bridge"],
                 env=settings_env(namespace.settings), cwd=REPO_ROOT)
    try:
        spans = run_app(lm_server, api_url, "otel-client-app", "http")
        kafka_sink = f"{namespace.settings.bootstrap} {namespace.topic(OTLP_SPANS_TOPIC)}"
        spans |= run_app(lm_server, api_url, "otel-kafka-app", kafka_sink)

        job = stream_job().start()
        wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= 4,
                 timeout=240, what="the client's requests scored", job=job)
        rows = namespace.sql("SELECT request_id, model, app, latency_ms, input_tokens, output_tokens, "
                             "finish_reason, compression_ratio FROM inference_scores ORDER BY event_time")
    finally:
        proc.stop()
        bridge.stop()
    assert {r[0] for r in rows} == set(spans)
    assert sorted(r[2] for r in rows) == ["otel-client-app"] * 2 + ["otel-kafka-app"] * 2
    for request_id, model, app, latency, inp, out, finish, ratio in rows:
        attrs = spans[request_id]["attributes"]
        assert model == attrs.get("gen_ai.response.model", attrs["gen_ai.request.model"]) == MODEL
        assert app == spans[request_id]["app"]
        assert latency == pytest.approx(spans[request_id]["latency_ms"], abs=0.01)
        assert (inp, out) == (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"])
        reasons = attrs.get("gen_ai.response.finish_reasons")
        if reasons:
            assert finish == reasons[0]
        else:  # openai-v2 records a stream's finish reason in its output messages only
            output = json.loads(attrs["gen_ai.output.messages"])
            assert finish == output[0]["finish_reason"], output
        assert out > 0 and ratio is not None  # the response text was captured, sent and scored
