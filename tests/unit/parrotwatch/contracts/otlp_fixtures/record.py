"""Record the golden OTLP trace fixtures of ``test_otlp.py`` from real OpenAI instrumentations.

Each fixture is what one instrumentation library really emits around the official ``openai`` client
talking to a local stub of the Chat Completions API (stdlib ``http.server`` on 127.0.0.1; nothing
leaves the machine). The same four calls run under every instrumentation, inside one parent span
``answer_question`` that is not an LLM span:

1. ``chat``: system + user message, non-streaming, ``logprobs=True, top_logprobs=2``;
2. ``stream``: one user message, streamed (SSE) with ``stream_options={"include_usage": True}``;
3. ``tools``: a conversation with an assistant tool call and its tool result, ``n=2`` choices;
4. ``error``: an unknown model, answered 404 by the stub (``max_retries=0``).

Variants (one process each: the instrumentations patch the same client):

``openai_v2``            opentelemetry-instrumentation-openai-v2 on opentelemetry-util-genai 1.1b0, which
                         always speaks the latest GenAI conventions; content capture ``span_only``:
                         ``gen_ai.input.messages`` / ``gen_ai.output.messages`` span attributes;
``openai_v2_no_content`` the same with content capture off (the default);
``openai_v2_legacy``     the same library on opentelemetry-util-genai 0.4b0 without
                         OTEL_SEMCONV_STABILITY_OPT_IN: its v1.30 path (``gen_ai.system``), and with
                         OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true the contents go to
                         *log records* (events ``gen_ai.user.message``, ``gen_ai.choice`` ...), not onto
                         the spans; those are written too, as ``openai_v2_legacy.logs.json``;
``openllmetry``          OpenLLMetry (traceloop) opentelemetry-instrumentation-openai, current release
                         (``gen_ai.input.messages`` / ``gen_ai.output.messages`` attributes);
``openllmetry_legacy``   OpenLLMetry 0.54.0, the last release with the previous ``gen_ai.prompt.N`` /
                         ``gen_ai.completion.N`` attributes;
``openinference``        OpenInference openinference-instrumentation-openai (``llm.*`` attributes).

A variant that needs another version of a package than the virtual environment has (``PINS``) gets it
with ``pip install --no-deps --target`` into ``--pins-dir`` (once), put first on the PYTHONPATH of its
process only.

Outputs in ``--out`` (this folder by default): ``NAME.pb`` (``ExportTraceServiceRequest`` protobuf,
``encode_spans(spans).SerializeToString()``), ``NAME.json`` (the same request in OTLP/JSON: lowerCamelCase
keys, hex trace/span ids, enums as integers) and ``MANIFEST.json`` (library versions and settings).
Trace and span ids come from a seeded generator, so they are the same on every run; times are not.

Run from the repository root: ``.venv/bin/python tests/unit/parrotwatch/contracts/otlp_fixtures/record.py``
(needs the dev recording libraries: see the report of issue 16 / pyproject's dev extra).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_PINS_DIR = Path("/tmp/parrotwatch-otlp-record")

#: name -> (library, environment of its process)
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "openai_v2": ("openai_v2", {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"}),
    "openai_v2_no_content": ("openai_v2", {}),
    "openai_v2_legacy": ("openai_v2", {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}),
    "openllmetry": ("openllmetry", {"TRACELOOP_TRACE_CONTENT": "true"}),
    "openllmetry_legacy": ("openllmetry", {"TRACELOOP_TRACE_CONTENT": "true"}),
    "openinference": ("openinference", {}),
}
#: variant -> the package versions it runs on instead of the virtual environment's
PINS = {
    "openai_v2_legacy": "opentelemetry-util-genai==0.4b0",
    "openllmetry_legacy": "opentelemetry-instrumentation-openai==0.54.0",
}
#: variants whose log records (the GenAI events of the previous conventions) are written too
WITH_LOGS = {"openai_v2_legacy"}
DISTRIBUTIONS = {
    "openai_v2": "opentelemetry-instrumentation-openai-v2",
    "openllmetry": "opentelemetry-instrumentation-openai",
    "openinference": "openinference-instrumentation-openai",
}
RESOURCE = {"service.name": "support-bot", "service.version": "1.4.2",
            "deployment.environment.name": "staging", "parrotwatch.app": "support-bot-eu"}

# ---------------------------------------------------------------------------------------------
# The stub of POST /v1/chat/completions
# ---------------------------------------------------------------------------------------------

MODEL_SNAPSHOT = "gpt-4o-mini-2024-07-18"
CREATED = 1767225600  # 2026-01-01T00:00:00Z
CHAT_TOKENS = [("The", -0.01, -4.7), (" capital", -0.2, -1.8), (" of", -0.05, -3.0),
               (" France", -0.3, -1.5), (" is", -0.1, -2.4), (" Paris", -0.69, -0.7), (".", -0.4, -1.1)]
STREAM_TOKENS = ["Red", ",", " yellow", " and", " blue", "."]
TOOL_CHOICES = ["It is 18\u00b0C and sunny in Paris.", "Sunny, 18\u00b0C."]
#: (prompt_tokens, completion_tokens) the stub reports per scenario
USAGE = {"chat": (24, 7), "stream": (12, 6), "tools": (58, 14)}


def _usage(scenario: str) -> dict[str, int]:
    prompt, completion = USAGE[scenario]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _scenario(body: dict[str, Any]) -> str:
    if body.get("stream"):
        return "stream"
    if any(m.get("role") == "tool" for m in body.get("messages", [])):
        return "tools"
    return "chat"


class StubHandler(BaseHTTPRequestHandler):
    """Answers like the Chat Completions API, deterministically (only the timing is real)."""

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
            return
        if body.get("model") == "no-such-model":
            self._json(404, {"error": {"message": "The model `no-such-model` does not exist or you do not "
                                                  "have access to it.", "type": "invalid_request_error",
                                       "param": None, "code": "model_not_found"}})
            return
        scenario = _scenario(body)
        time.sleep(0.03)  # some latency to measure
        if scenario == "stream":
            self._stream(body)
            return
        base = {"id": f"chatcmpl-stub-{scenario}", "object": "chat.completion", "created": CREATED,
                "model": MODEL_SNAPSHOT, "system_fingerprint": "fp_stub", "service_tier": "default"}
        if scenario == "chat":
            logprobs = None
            if body.get("logprobs"):
                logprobs = {"content": [
                    {"token": tok, "logprob": lp, "bytes": list(tok.encode()),
                     "top_logprobs": [{"token": tok, "logprob": lp, "bytes": list(tok.encode())},
                                      {"token": " Lyon", "logprob": alt, "bytes": list(b" Lyon")}]}
                    for tok, lp, alt in CHAT_TOKENS], "refusal": None}
            choices = [{"index": 0, "message": {"role": "assistant", "content": "".join(
                t for t, _, _ in CHAT_TOKENS), "refusal": None}, "logprobs": logprobs,
                "finish_reason": "stop"}]
        else:
            choices = [{"index": i, "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None, "finish_reason": "stop" if i == 0 else "length"}
                       for i, text in enumerate(TOOL_CHOICES[:body.get("n") or 1])]
        self._json(200, {**base, "choices": choices, "usage": _usage(scenario)})

    def _stream(self, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        base = {"id": "chatcmpl-stub-stream", "object": "chat.completion.chunk", "created": CREATED,
                "model": MODEL_SNAPSHOT, "system_fingerprint": "fp_stub"}

        def send(payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        send({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "logprobs": None, "finish_reason": None}]})
        for tok in STREAM_TOKENS:
            time.sleep(0.005)
            send({**base, "choices": [{"index": 0, "delta": {"content": tok}, "logprobs": None,
                                       "finish_reason": None}]})
        send({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]})
        if include_usage:
            send({**base, "choices": [], "usage": _usage("stream")})
        send("[DONE]")


def start_stub() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


# ---------------------------------------------------------------------------------------------
# One variant, in its own process
# ---------------------------------------------------------------------------------------------

def run_calls(base_url: str) -> None:
    """The four calls, inside the non-LLM parent span ``answer_question``."""
    import openai
    from opentelemetry import trace

    client = openai.OpenAI(base_url=base_url, api_key="sk-stub", max_retries=0)
    tracer = trace.get_tracer("parrotwatch.fixtures")
    with tracer.start_as_current_span("answer_question") as parent:
        parent.set_attribute("user.question_id", "q-42")
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "system", "content": "You are a concise geography assistant."},
                      {"role": "user", "content": "What is the capital of France?"}],
            temperature=0.2, max_tokens=64, logprobs=True, top_logprobs=2,
        )
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Name the three primary colours."}],
            stream=True, stream_options={"include_usage": True},
        )
        for _ in stream:
            pass
        client.chat.completions.create(
            model="gpt-4o-mini", n=2,
            messages=[
                {"role": "user", "content": "What's the weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18\u00b0C, sunny"},
            ],
            tools=[{"type": "function", "function": {
                "name": "get_weather", "description": "Current weather of a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        )
        with contextlib.suppress(openai.NotFoundError):
            client.chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "Hello?"}])


def record_variant(name: str, out: Path) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class SeededIds(IdGenerator):
        """Ids that are the same on every recording of a variant."""

        def __init__(self, seed: str) -> None:
            self._rng = random.Random(seed)

        def generate_span_id(self) -> int:
            return self._rng.getrandbits(64) or 1

        def generate_trace_id(self) -> int:
            return self._rng.getrandbits(128) or 1

    library = VARIANTS[name][0]
    resource = Resource.create(RESOURCE)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, id_generator=SeededIds(name))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logs = None
    if name in WITH_LOGS:
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

        logs = InMemoryLogRecordExporter()
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        set_logger_provider(logger_provider)
    if library == "openai_v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    elif library == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    else:
        from openinference.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)

    server, base_url = start_stub()
    try:
        run_calls(base_url)
    finally:
        server.shutdown()
    provider.force_flush()
    spans = exporter.get_finished_spans()
    request = encode_spans(spans)
    (out / f"{name}.pb").write_bytes(request.SerializeToString())
    (out / f"{name}.json").write_text(json.dumps(otlp_json(request), indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    print(f"{name}: {len(spans)} spans -> {out / name}.pb, .json")
    if logs is not None:
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        records = logs.get_finished_logs()
        (out / f"{name}.logs.json").write_text(
            json.dumps(otlp_json(encode_logs(records)), indent=1, ensure_ascii=False) + "\n",
            encoding="utf-8")
        print(f"{name}: {len(records)} log records -> {out / name}.logs.json")


def otlp_json(message: Any) -> dict[str, Any]:
    """OTLP/JSON of a protobuf message: proto3 JSON with enums as integers and trace/span ids as hex
    (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding)."""
    from google.protobuf.json_format import MessageToDict

    tree = MessageToDict(message, use_integers_for_enums=True)

    def hexify(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hexify(value)
        elif isinstance(node, list):
            for item in node:
                hexify(item)

    hexify(tree)
    return tree


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def ensure_pinned(spec: str, pins_dir: Path) -> Path:
    """The folder holding ``spec`` (``name==version``), installed there by pip on first use."""
    target = pins_dir / spec.replace("==", "-")
    dist, version = spec.split("==")
    if not any(target.glob(f"{dist.replace('-', '_')}-{version}.dist-info")):
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                        str(target), spec], check=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", choices=[[], *VARIANTS], metavar="VARIANT",
                        help=f"which to record (default: all): {', '.join(VARIANTS)}")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    parser.add_argument("--pins-dir", type=Path, default=DEFAULT_PINS_DIR,
                        help="where the pinned versions of PINS are installed with pip --target (on first "
                             f"use): {', '.join(PINS.values())}")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # the child process of one variant
    args = parser.parse_args(argv)
    if args.variant:
        record_variant(args.variant, args.out)
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    names = args.variants or list(VARIANTS)
    manifest_path = args.out / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"variants": {}}
    for name in names:
        library, extra_env = VARIANTS[name]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OTEL_", "TRACELOOP_", "OPENINFERENCE_", "OPENAI_"))}
        env.update(extra_env)
        entry: dict[str, Any] = {"library": DISTRIBUTIONS[library], "environment": extra_env}
        if name in PINS:
            target = ensure_pinned(PINS[name], args.pins_dir)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
            entry["pinned"] = PINS[name]
        subprocess.run([sys.executable, __file__, "--variant", name, "--out", str(args.out)],
                       env=env, check=True)
        pinned_dist = PINS.get(name, "").split("==")[0]
        entry["version"] = (PINS[name].split("==")[1] if pinned_dist == DISTRIBUTIONS[library]
                            else _version(DISTRIBUTIONS[library]))
        manifest["variants"][name] = entry
    manifest["recorded_with"] = {d: _version(d) for d in (
        "openai", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-common",
        "opentelemetry-util-genai", "openinference-instrumentation", "opentelemetry-semantic-conventions-ai")}
    manifest["resource"] = RESOURCE
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
