"""OTLP traces of LLM apps -> inference events v1 (issue 16): decoding and mapping, no I/O.

``decode_traces`` reads the body of an OTLP/HTTP ``POST /v1/traces`` (OTLP specification 1.x,
https://opentelemetry.io/docs/specs/otlp/#otlphttp): ``application/x-protobuf`` (an
``ExportTraceServiceRequest``) or ``application/json`` (OTLP/JSON: proto3 JSON with lowerCamelCase
keys, trace and span ids as *hex* strings rather than proto3's base64, enums as integers, 64-bit
integers as strings or numbers; unknown fields ignored, as the specification requires). gzip is the
caller's business. ``map_traces`` turns every LLM span of a request into an
:class:`~parrotwatch.contracts.events.InferenceEventV1` dict, or into a reason why it cannot be one.

Which spans are LLM spans
    A span with ``openinference.span.kind`` is one when that kind is ``LLM``; a span with
    ``gen_ai.operation.name`` is one unless the operation is not a model call (``embeddings``,
    ``execute_tool``, ``invoke_agent``, ``create_agent``, ...: an agent span would count its model
    calls twice, a tool span has no model); OpenLLMetry's ``llm.request.type`` likewise
    (``chat`` / ``completion``); otherwise any ``gen_ai.*`` or ``llm.*`` attribute makes one.
    Other spans are counted in :attr:`OtlpBatch.skipped`.

Conventions read (attribute names, and where the contents are)
    * OpenTelemetry GenAI semantic conventions, current: semantic-conventions v1.37 .. v1.41 and their
      continuation in the open-telemetry/semantic-conventions-genai repository (docs/gen-ai/
      gen-ai-spans.md, "Inference" span, read at its main branch in December 2026; it deprecates
      ``gen_ai.output.messages[].finish_reason`` for ``gen_ai.response.finish_reasons``). What
      ``opentelemetry-util-genai`` 1.1b0 and OpenLLMetry 0.55+ emit: ``gen_ai.operation.name``,
      ``gen_ai.provider.name``,
      ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.response.finish_reasons``,
      ``gen_ai.usage.input_tokens`` / ``output_tokens``, and the contents as JSON attributes
      ``gen_ai.system_instructions``, ``gen_ai.input.messages``, ``gen_ai.output.messages``
      (``[{role, parts: [{type: "text", content}, {type: "tool_call", id, name, arguments},
      {type: "tool_call_response", id, response | result}], finish_reason}]``), and
      ``gen_ai.response.time_to_first_chunk`` (seconds).
    * GenAI conventions v1.28 .. v1.36 (``gen_ai.system``; what opentelemetry-instrumentation-openai-v2
      emits on its v1.30 path): the contents are *events* ``gen_ai.system.message``,
      ``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message`` (body
      ``{content, tool_calls, id}``) and ``gen_ai.choice`` (body ``{index, finish_reason, message:
      {role, content}}``). The SDKs emit them as *log records*, which ``POST /v1/traces`` does not
      receive: such spans map with ``otlp.content_captured = false``. When a pipeline attaches them to
      the span as span events (the body's fields as event attributes, or as a ``body`` attribute),
      they are read here.
    * GenAI conventions v1.26 / v1.27: span events ``gen_ai.content.prompt`` /
      ``gen_ai.content.completion`` with attributes ``gen_ai.prompt`` / ``gen_ai.completion`` (also
      read as span attributes, where some SDKs put them: a JSON messages list, or plain text).
    * OpenLLMetry (traceloop ``opentelemetry-instrumentation-openai`` up to 0.54, and its other
      instrumentations of that era): ``gen_ai.prompt.{i}.role`` / ``.content`` / ``.tool_calls.{j}.*``,
      ``gen_ai.completion.{i}.content`` / ``.finish_reason``, ``gen_ai.usage.prompt_tokens`` /
      ``completion_tokens`` (deprecated GenAI names), ``llm.request.type``; streaming spans carry one
      ``gen_ai.content.completion.chunk`` (earlier ``llm.content.completion.chunk``) event per chunk.
    * OpenInference semantic conventions (openinference-semantic-conventions 0.1.x; Arize Phoenix):
      ``openinference.span.kind``, ``llm.model_name``, ``llm.invocation_parameters`` (JSON),
      ``llm.input_messages.{i}.message.role`` / ``.content`` / ``.contents.{j}.message_content.text`` /
      ``.tool_calls.{j}.tool_call.*``, ``llm.output_messages.{i}.message.*``, ``llm.finish_reason``,
      ``llm.token_count.prompt`` / ``completion``, ``input.value`` / ``output.value`` (with
      ``*.mime_type``; for OpenAI these are the request and response bodies) and the span event
      ``First Token Stream Event``.
    * OpenLIT: ``gen_ai.server.time_to_first_token`` (seconds).

Mapping (first source that has it wins, in the order listed)
    ``request_id``  ``{trace_id_hex}-{span_id_hex}``: stable, so a resent span deduplicates.
    ``timestamp``   the span's *end* (the contract's "time the call finished"), RFC 3339 UTC.
    ``latency_ms``  end - start. ``time_to_first_token_ms``: ``gen_ai.response.time_to_first_chunk``,
                    ``gen_ai.server.time_to_first_token``, else the first token / chunk event.
    ``model``       ``gen_ai.response.model``, ``gen_ai.request.model``, ``llm.model_name``,
                    ``llm.invocation_parameters.model``; none -> unmappable.
    ``app``         the resource attribute ``app_attribute``, ``service.name``, else ``"unknown"``.
    ``messages``    ``gen_ai.system_instructions`` + ``gen_ai.input.messages``, GenAI span events,
                    ``gen_ai.prompt.{i}.*``, ``llm.input_messages.{i}.*``, ``gen_ai.prompt``, the
                    ``messages`` of a JSON ``input.value``; else ``prompt``: the text of
                    ``input.value``; else ``prompt = ""``.
                    Text parts are joined with newlines; assistant tool calls travel as the message's
                    extra ``tool_calls`` (``[{id, name, arguments}]``), a tool result as its content
                    (and extra ``tool_call_id``).
    ``response``    the first choice of ``gen_ai.output.messages``, ``gen_ai.choice`` events,
                    ``gen_ai.completion.{i}.*``, ``llm.output_messages.{i}.*``, a JSON ``output.value``
                    (OpenAI response body) or its text; else ``""``. Further choices -> ``samples``.
    ``usage``       ``gen_ai.usage.input_tokens`` / ``output_tokens``, ``gen_ai.usage.prompt_tokens`` /
                    ``completion_tokens``, ``llm.token_count.prompt`` / ``completion``.
    ``finish_reason`` ``gen_ai.response.finish_reasons[0]``, the first choice's, ``llm.finish_reason``.
    ``logprobs``    only OpenInference records them, inside a JSON ``output.value`` (OpenAI's
                    ``choices[0].logprobs.content``); kept when they meet the contract, else dropped.
    ``metadata``    ``otlp.*`` (trace_id, span_id, parent_span_id, span_name, span_kind, scope,
                    status, content_captured), then the span's attributes, then the resource's as
                    ``resource.*``: at most :data:`MAX_METADATA_KEYS` keys of scalars, strings cut to
                    :data:`MAX_METADATA_CHARS` characters, arrays and maps as compact JSON text; the
                    contents mapped above are left out.

A span that cannot be an event (no model, bad ids or times, a text the contract refuses such as a NUL)
gives a :class:`MappedSpan` with ``event=None`` and a one-line ``reason``; ``map_traces`` itself never
raises but :class:`OtlpDecodeError` for a request over ``max_spans`` spans.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from pydantic import TypeAdapter, ValidationError

from parrotwatch.contracts.events import (
    MAX_LOGPROB_TOKENS,
    MAX_SAMPLES,
    InferenceEventV1,
    LogprobToken,
)
from parrotwatch.contracts.reasons import bounded_reason, describe_validation_error

__all__ = [
    "ACCEPTED_CONTENT_TYPES",
    "DEFAULT_MAX_SPANS",
    "MappedSpan",
    "OtlpBatch",
    "OtlpDecodeError",
    "decode_traces",
    "map_traces",
    "span_count",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ACCEPTED_CONTENT_TYPES = (PROTOBUF, JSON)
DEFAULT_MAX_SPANS = 10_000
#: the most bytes of :attr:`MappedSpan.span_json` (a dead letter keeps a 16 KiB head of its record)
MAX_SPAN_JSON_BYTES = 16 * 1024
MAX_METADATA_KEYS = 64
MAX_METADATA_CHARS = 1_024
MAX_METADATA_KEY_CHARS = 256
#: AnyValue nodes converted per attribute (arrays and maps of any size cost at most this much)
_NODE_BUDGET = 20_000
_MAX_DEPTH = 16

_LLM_KINDS = {"LLM"}
#: gen_ai.operation.name values that are not one model call (GenAI conventions v1.37+)
_NOT_MODEL_CALLS = {"embeddings", "execute_tool", "create_agent", "invoke_agent", "invoke_workflow",
                    "retrieval", "rerank", "create_embeddings"}
_MESSAGE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                   "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
_FIRST_TOKEN_EVENTS = {"First Token Stream Event", "gen_ai.content.completion.chunk",
                       "llm.content.completion.chunk"}
_CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                 "gen_ai.prompt", "gen_ai.completion", "input.value", "output.value", "llm.prompts"}
_CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.",
                     "llm.output_messages.", "llm.prompts.")
_INDEXED = re.compile(r"(gen_ai\.prompt|gen_ai\.completion|llm\.input_messages|llm\.output_messages)"
                      r"\.(\d{1,6})\.(.+)")
_HEX = re.compile(r"[0-9a-fA-F]*")
_LOGPROBS = TypeAdapter(list[LogprobToken])


class OtlpDecodeError(ValueError):
    """The body cannot be read as OTLP traces, or asks too much; the message says what to fix (and
    can be stored: at most MAX_REASON_CHARS characters, NUL and lone surrogates escaped)."""

    def __init__(self, message: str) -> None:
        super().__init__(bounded_reason(message))


@dataclass(frozen=True)
class MappedSpan:
    """One LLM span: its inference event v1 (JSON-ready, valid), or None and the reason why not."""

    event: dict[str, Any] | None
    reason: str | None
    #: the span as compact OTLP/JSON (hex ids), a head of at most MAX_SPAN_JSON_BYTES bytes
    span_json: bytes


@dataclass(frozen=True)
class OtlpBatch:
    """The LLM spans of a request, in request order, and how many other spans were skipped."""

    spans: list[MappedSpan]
    skipped: int


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------

def decode_traces(body: bytes, content_type: str, *,
                  max_spans: int = DEFAULT_MAX_SPANS) -> ExportTraceServiceRequest:
    """The ``ExportTraceServiceRequest`` in ``body``; ``content_type`` is the request's header
    (parameters such as ``; charset=utf-8`` are ignored). Raises :class:`OtlpDecodeError`."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(bytes(body))
        except (DecodeError, RecursionError, ValueError) as exc:
            raise OtlpDecodeError(
                f"the body is not a protobuf ExportTraceServiceRequest ({_short(exc)}); send OTLP "
                f"traces as {PROTOBUF}, or as OTLP/JSON with Content-Type {JSON}") from None
    elif media == JSON:
        request = _parse_json(body)
    else:
        shown = _short(content_type or "(none)", 100)
        raise OtlpDecodeError(f"unsupported Content-Type {shown!r}: send OTLP traces as {PROTOBUF} "
                              f"(protobuf) or {JSON} (OTLP/JSON)")
    _check_count(request, max_spans)
    return request


def _parse_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        tree = orjson.loads(body)
    except (orjson.JSONDecodeError, RecursionError, TypeError) as exc:
        raise OtlpDecodeError(f"the body is not valid JSON ({_short(exc)})") from None
    if not isinstance(tree, dict):
        raise OtlpDecodeError('OTLP/JSON traces are a JSON object: {"resourceSpans": [...]}')
    for path, node, key in _id_fields(tree):
        value = node[key]
        if not isinstance(value, str):
            continue  # the protobuf parser names the bad type
        if len(value) % 2 or not _HEX.fullmatch(value):
            raise OtlpDecodeError(
                f"{path}.{key}: {_short(value, 60)!r} is not hex; OTLP/JSON encodes trace and span "
                "ids as hex strings (32 and 16 hex digits), not base64")
        node[key] = base64.b64encode(bytes.fromhex(value)).decode()
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(tree, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        raise OtlpDecodeError(f"the body is not OTLP/JSON traces: {_short(exc, 400)}") from None
    return request


def _id_fields(tree: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(path, object, key) of every trace / span id of an OTLP/JSON traces request."""

    def items(node: Any, *names: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for name in names:
            value = node.get(name)
            if isinstance(value, list):
                yield from ((i, x) for i, x in enumerate(value) if isinstance(x, dict))
                return

    for i, rs in items(tree, "resourceSpans", "resource_spans"):
        for j, ss in items(rs, "scopeSpans", "scope_spans"):
            for k, span in items(ss, "spans"):
                where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                for key in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
                    if key in span:
                        yield where, span, key
                for m, link in items(span, "links"):
                    for key in ("traceId", "trace_id", "spanId", "span_id"):
                        if key in link:
                            yield f"{where}.links[{m}]", link, key


def span_count(request: ExportTraceServiceRequest) -> int:
    """How many spans ``request`` holds."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _check_count(request: ExportTraceServiceRequest, max_spans: int) -> None:
    count = span_count(request)
    if count > max_spans:
        raise OtlpDecodeError(f"the request holds {count:,} spans: send at most {max_spans:,} spans per "
                              "request (lower the exporter's batch size)")


# ---------------------------------------------------------------------------------------------
# Mapping
# ---------------------------------------------------------------------------------------------

def map_traces(request: ExportTraceServiceRequest, *, app_attribute: str | None = None,
               max_spans: int = DEFAULT_MAX_SPANS) -> OtlpBatch:
    """Every LLM span of ``request`` as a :class:`MappedSpan`, in order; other spans are counted in
    ``skipped``. ``app_attribute`` names the resource attribute that holds the app (else
    ``service.name``). Raises :class:`OtlpDecodeError` only for more than ``max_spans`` spans."""
    _check_count(request, max_spans)
    mapped: list[MappedSpan] = []
    skipped = 0
    for rs in request.resource_spans:
        try:
            resource = _attribute_map(rs.resource.attributes)
            app = _app(resource, app_attribute)
        except Exception as exc:  # noqa: BLE001 (a bad resource must not fail the request)
            resource, app = {}, None
            resource_problem: str | None = f"the resource's attributes cannot be read ({_short(exc)})"
        else:
            resource_problem = None
        for ss in rs.scope_spans:
            scope = ss.scope.name + (f"@{ss.scope.version}" if ss.scope.version else "")
            for span in ss.spans:
                try:
                    attrs = _attribute_map(span.attributes)
                    if not _is_llm_span(attrs):
                        skipped += 1
                        continue
                except Exception:  # noqa: BLE001
                    attrs = None
                mapped.append(_map_one(span, attrs, resource, app, scope, resource_problem))
    return OtlpBatch(spans=mapped, skipped=skipped)


def _map_one(span: Span, attrs: dict[str, AnyValue] | None, resource: dict[str, AnyValue],
             app: str | None, scope: str, resource_problem: str | None) -> MappedSpan:
    try:
        span_json = _span_json(span)
    except Exception:  # noqa: BLE001
        span_json = b""
    try:
        if attrs is None:
            return MappedSpan(None, "the span's attributes cannot be read", span_json)
        if resource_problem:
            return MappedSpan(None, resource_problem, span_json)
        event = _event(span, attrs, resource, app or "unknown", scope)
        if isinstance(event, str):
            return MappedSpan(None, bounded_reason(event), span_json)
        try:
            InferenceEventV1.model_validate(event)
        except ValidationError as exc:
            return MappedSpan(None, _describe(exc), span_json)
        return MappedSpan(event, None, span_json)
    except Exception as exc:  # noqa: BLE001 (one odd span must not fail the request)
        return MappedSpan(None, bounded_reason(f"the span cannot be mapped: {type(exc).__name__}: {exc}"),
                          span_json)


def _is_llm_span(attrs: Mapping[str, AnyValue]) -> bool:
    kind = _str(attrs.get("openinference.span.kind"))
    if kind is not None:
        return kind.upper() in _LLM_KINDS
    operation = _str(attrs.get("gen_ai.operation.name"))
    if operation is not None:
        return operation not in _NOT_MODEL_CALLS
    request_type = _str(attrs.get("llm.request.type"))  # OpenLLMetry before gen_ai.operation.name
    if request_type is not None:
        return request_type in ("chat", "completion")
    return any(key.startswith(("gen_ai.", "llm.")) for key in attrs)


def _app(resource: Mapping[str, AnyValue], app_attribute: str | None) -> str:
    for key in (app_attribute, "service.name"):
        if key and key in resource:
            value = _scalar_text(resource[key])
            if value:
                return value
    return "unknown"


def _event(span: Span, attrs: dict[str, AnyValue], resource: dict[str, AnyValue], app: str,
           scope: str) -> dict[str, Any] | str:
    """The event dict, or why there is none."""
    trace_id, span_id = bytes(span.trace_id), bytes(span.span_id)
    for field, value, size in (("traceId", trace_id, 16), ("spanId", span_id, 8)):
        if len(value) != size or not any(value):
            what = f"{len(value)} bytes" if len(value) != size else "all zeros"
            return (f"the span's {field} is {what}: a {field[:-2]} id is {size} bytes, not all zero "
                    f"({2 * size} hex digits in OTLP/JSON)")
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not start or not end:
        return "the span has no startTimeUnixNano or endTimeUnixNano: send finished spans with both times"
    if end < start:
        return f"the span ends before it starts (endTimeUnixNano {end} < startTimeUnixNano {start})"
    timestamp = _rfc3339(end)
    if timestamp is None:
        return f"endTimeUnixNano {end} is not a representable time"

    model = _model(attrs)
    if model is None:
        return ("span has no model: set gen_ai.request.model (or gen_ai.response.model; OpenInference: "
                "llm.model_name)")

    inputs = _input(span, attrs)
    outputs = _output(span, attrs)
    event: dict[str, Any] = {
        "request_id": f"{trace_id.hex()}-{span_id.hex()}",
        "timestamp": timestamp,
        "model": model,
        "app": app,
    }
    if isinstance(inputs, list):
        event["messages"] = inputs
    else:
        event["prompt"] = inputs if inputs is not None else ""
    texts, output_finish = outputs if outputs is not None else ([], None)
    event["response"] = texts[0] if texts else ""
    if len(texts) > 1:
        event["samples"] = texts[1:MAX_SAMPLES + 1]
    event["latency_ms"] = (end - start) / 1e6
    ttft = _time_to_first_token_ms(span, attrs)
    if ttft is not None:
        event["time_to_first_token_ms"] = ttft
    usage = _usage(attrs)
    if usage:
        event["usage"] = usage
    finish = _first_text(attrs.get("gen_ai.response.finish_reasons")) or output_finish \
        or _str(attrs.get("llm.finish_reason"))
    if finish is not None:
        event["finish_reason"] = finish
    logprobs = _logprobs(attrs)
    if logprobs is not None:
        event["logprobs"] = logprobs
    captured = inputs is not None or outputs is not None
    event["metadata"] = _metadata(span, attrs, resource, scope, captured)
    return event


# --- model, times, usage ----------------------------------------------------------------------

def _model(attrs: Mapping[str, AnyValue]) -> str | None:
    for key in ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name"):
        value = _str(attrs.get(key))
        if value:
            return value
    params = _json_attr(attrs.get("llm.invocation_parameters"))  # OpenInference, e.g. a failed call
    if isinstance(params, dict) and isinstance(params.get("model"), str) and params["model"]:
        return params["model"]
    return None


def _rfc3339(unix_nano: int) -> str | None:
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos // 1000:06d}Z"


def _time_to_first_token_ms(span: Span, attrs: Mapping[str, AnyValue]) -> float | None:
    for key in ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token"):
        seconds = _number(attrs.get(key))
        if seconds is not None and math.isfinite(seconds) and seconds >= 0:
            return seconds * 1000.0
    for ev in span.events:
        if ev.name in _FIRST_TOKEN_EVENTS:
            if ev.time_unix_nano >= span.start_time_unix_nano:
                return (ev.time_unix_nano - span.start_time_unix_nano) / 1e6
            return None
    return None


def _usage(attrs: Mapping[str, AnyValue]) -> dict[str, int]:
    usage = {}
    for field, keys in (
        ("input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                          "llm.token_count.prompt")),
        ("output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                           "llm.token_count.completion")),
    ):
        for key in keys:
            count = _integer(attrs.get(key))
            if count is not None:
                usage[field] = count
                break
    return usage


# --- input ------------------------------------------------------------------------------------

def _input(span: Span, attrs: Mapping[str, AnyValue]) -> list[dict[str, Any]] | str | None:
    """The request's messages, or its prompt text, or None when the span carries neither."""
    messages = _current_input(attrs)
    if messages is None:
        messages = _event_input(span)
    if messages is None:
        messages = _indexed_messages(attrs, "gen_ai.prompt", _openllmetry_message)
    if messages is None:
        messages = _indexed_messages(attrs, "llm.input_messages", _openinference_message)
    if messages is None and "gen_ai.prompt" in attrs:
        messages = _prompt_value(_to_python(attrs["gen_ai.prompt"]))
    if messages is not None:
        return messages
    value = _str(attrs.get("input.value"))
    if value is None:
        return None
    if _is_json(attrs.get("input.mime_type")):
        body = _loads(value)
        if isinstance(body, dict) and isinstance(body.get("messages"), list):  # an OpenAI request body
            return [_plain_message(m) for m in body["messages"]]
        if isinstance(body, dict) and isinstance(body.get("prompt"), str):
            return body["prompt"]
    return value


def _current_input(attrs: Mapping[str, AnyValue]) -> list[dict[str, Any]] | None:
    """GenAI conventions v1.37+: gen_ai.system_instructions + gen_ai.input.messages."""
    raw = _json_attr(attrs.get("gen_ai.input.messages"))
    system = _json_attr(attrs.get("gen_ai.system_instructions"))
    if not isinstance(raw, list) and system is None:
        return None
    messages = []
    if system is not None:
        text = system if isinstance(system, str) else _parts_text(system)[0]
        messages.append({"role": "system", "content": text})
    for message in raw if isinstance(raw, list) else ():
        messages.append(_parts_message(message))
    return messages or None


def _parts_message(message: Any) -> dict[str, Any]:
    """``{role, parts: [...]}`` (GenAI v1.37+ message) -> ``{role, content[, tool_calls]}``."""
    if not isinstance(message, dict):
        return {"role": None, "content": _text(message)}
    out: dict[str, Any] = {"role": message.get("role")}
    if isinstance(message.get("parts"), list):
        out["content"], tool_calls = _parts_text(message["parts"])
        if tool_calls:
            out["tool_calls"] = tool_calls
        call_ids = [p.get("id") for p in message["parts"]
                    if isinstance(p, dict) and p.get("type") == "tool_call_response"]
        if call_ids and isinstance(call_ids[0], str):
            out["tool_call_id"] = call_ids[0]
    else:
        out["content"] = _text(message.get("content"))
    if isinstance(message.get("name"), str):
        out["name"] = message["name"]
    return out


def _parts_text(parts: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """The text of a parts list (text parts and tool results, newline-joined) and its tool calls."""
    if not isinstance(parts, list):
        return _text(parts), []
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" or (kind is None and "content" in part):
            text = _text(part.get("content"))
            if text is not None:
                texts.append(text)
        elif kind == "tool_call":
            tool_calls.append(_tool_call(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":  # "response" (util-genai), "result" (semconv-genai)
            text = _text(part.get("response", part.get("result")))
            if text is not None:
                texts.append(text)
    return ("\n".join(texts) if texts else None), tool_calls


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    call = {"id": call_id, "name": name,
            "arguments": arguments if isinstance(arguments, str | None) else _compact(arguments)}
    return {k: v for k, v in call.items() if v is not None}


def _event_input(span: Span) -> list[dict[str, Any]] | str | None:
    """GenAI v1.28..v1.36 message events, or a v1.26 gen_ai.content.prompt event, on the span."""
    messages: list[dict[str, Any]] = []
    for ev in span.events:
        fields = _event_fields(ev)
        name = ev.name or _text(fields.get("event.name")) or ""
        if name in _MESSAGE_EVENTS:
            role = fields.get("role") if isinstance(fields.get("role"), str) else _MESSAGE_EVENTS[name]
            message: dict[str, Any] = {"role": role, "content": _content_text(fields.get("content"))}
            calls = fields.get("tool_calls")
            if isinstance(calls, str):
                calls = _loads(calls)
            if isinstance(calls, list):
                message["tool_calls"] = [_openai_tool_call(c) for c in calls]
            if name == "gen_ai.tool.message" and isinstance(fields.get("id"), str):
                message["tool_call_id"] = fields["id"]
            messages.append(message)
        elif name == "gen_ai.content.prompt" and not messages:
            prompt = _prompt_value(fields.get("gen_ai.prompt"))
            if prompt is not None:
                return prompt
    return messages or None


def _event_fields(ev: Span.Event) -> dict[str, Any]:
    """An event's fields: its attributes, and those of a map-valued ``body`` attribute."""
    fields = {kv.key: _to_python(kv.value) for kv in ev.attributes}
    body = fields.pop("body", None)
    if isinstance(body, str):
        body = _loads(body)
    if isinstance(body, dict):
        for key, value in body.items():
            fields.setdefault(key, value)
    return fields


def _openai_tool_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict):
        return {"arguments": _compact(call)}
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    return _tool_call(call.get("id"), function.get("name", call.get("name")),
                      function.get("arguments", call.get("arguments")))


def _plain_message(message: Any) -> dict[str, Any]:
    """An OpenAI-style ``{role, content[, tool_calls]}`` message."""
    if not isinstance(message, dict):
        return {"role": None, "content": _text(message)}
    out: dict[str, Any] = {"role": message.get("role"), "content": _content_text(message.get("content"))}
    if isinstance(message.get("tool_calls"), list):
        out["tool_calls"] = [_openai_tool_call(c) for c in message["tool_calls"]]
    if isinstance(message.get("tool_call_id"), str):
        out["tool_call_id"] = message["tool_call_id"]
    return out


def _indexed_messages(attrs: Mapping[str, AnyValue], prefix: str, build: Any) -> list[dict[str, Any]] | None:
    """Messages from flattened ``{prefix}.{i}.{field}`` attributes, in index order."""
    fields = _indexed(attrs, prefix)
    if not fields:
        return None
    return [build(fields[i]) for i in sorted(fields)]


def _indexed(attrs: Mapping[str, AnyValue], prefix: str) -> dict[int, dict[str, AnyValue]]:
    found: dict[int, dict[str, AnyValue]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        match = _INDEXED.fullmatch(key)
        if match and match.group(1) == prefix:
            found.setdefault(int(match.group(2)), {})[match.group(3)] = value
    return found


def _openllmetry_message(fields: Mapping[str, AnyValue]) -> dict[str, Any]:
    """``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*`` (OpenLLMetry, GenAI before v1.28)."""
    message: dict[str, Any] = {"role": _str(fields.get("role")),
                               "content": _content_text(_str(fields.get("content")))}
    calls: dict[int, dict[str, Any]] = {}
    for key, value in fields.items():
        match = re.fullmatch(r"tool_calls\.(\d{1,6})\.(id|name|arguments)", key)
        if match:
            calls.setdefault(int(match.group(1)), {})[match.group(2)] = _str(value)
    if calls:
        message["tool_calls"] = [_tool_call(c.get("id"), c.get("name"), c.get("arguments"))
                                 for _, c in sorted(calls.items())]
    if _str(fields.get("tool_call_id")) is not None:
        message["tool_call_id"] = _str(fields.get("tool_call_id"))
    return message


def _openinference_message(fields: Mapping[str, AnyValue]) -> dict[str, Any]:
    """``llm.input_messages.{i}.message.*`` / ``llm.output_messages.{i}.message.*`` (OpenInference)."""
    content = _str(fields.get("message.content"))
    if content is None:
        parts: dict[int, str] = {}
        for key, value in fields.items():
            match = re.fullmatch(r"message\.contents\.(\d{1,6})\.message_content\.text", key)
            text = _str(value)
            if match and text is not None:
                parts[int(match.group(1))] = text
        if parts:
            content = "\n".join(text for _, text in sorted(parts.items()))
    message: dict[str, Any] = {"role": _str(fields.get("message.role")), "content": content}
    calls: dict[int, dict[str, Any]] = {}
    for key, value in fields.items():
        match = re.fullmatch(r"message\.tool_calls\.(\d{1,6})\.tool_call\.(id|function\.name|"
                             r"function\.arguments)", key)
        if match:
            calls.setdefault(int(match.group(1)), {})[match.group(2).rsplit(".", 1)[-1]] = _str(value)
    if calls:
        message["tool_calls"] = [_tool_call(c.get("id"), c.get("name"), c.get("arguments"))
                                 for _, c in sorted(calls.items())]
    if _str(fields.get("message.tool_call_id")) is not None:
        message["tool_call_id"] = _str(fields.get("message.tool_call_id"))
    return message


# --- output -----------------------------------------------------------------------------------

def _output(span: Span, attrs: Mapping[str, AnyValue]) -> tuple[list[str], str | None] | None:
    """The texts of the choices (first = the response) and the first one's finish reason, or None
    when the span carries no output content."""
    raw = _json_attr(attrs.get("gen_ai.output.messages"))
    if isinstance(raw, list) and raw:
        return _choices([_parts_choice(m) for m in raw])
    from_events = _event_output(span)
    if from_events is not None:
        return from_events
    for prefix, build in (("gen_ai.completion", _openllmetry_choice),
                          ("llm.output_messages", _openinference_choice)):
        fields = _indexed(attrs, prefix)
        if fields:
            return _choices([build(fields[i]) for i in sorted(fields)])
    if "gen_ai.completion" in attrs:
        return _completion_value(_to_python(attrs["gen_ai.completion"]))
    value = _str(attrs.get("output.value"))
    if value is None:
        return None
    if _is_json(attrs.get("output.mime_type")):
        body = _loads(value)
        if isinstance(body, dict) and isinstance(body.get("choices"), list):  # an OpenAI response body
            return _choices([_openai_choice(c) for c in body["choices"]])
    return [value], None


def _parts_choice(message: Any) -> tuple[str | None, Any]:
    """One ``gen_ai.output.messages`` item: ``{role, parts, finish_reason}``."""
    if not isinstance(message, dict):
        return _text(message), None
    if "parts" in message:
        return _parts_text(message["parts"])[0], message.get("finish_reason")
    return _content_text(message.get("content")), message.get("finish_reason")


def _completion_value(completion: Any) -> tuple[list[str], str | None] | None:
    """A v1.26 ``gen_ai.completion`` value: a JSON list of messages / choices, or the text."""
    parsed = _loads(completion) if isinstance(completion, str) else completion
    if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed):
        return _choices([_openai_choice(m if "message" in m else {"message": m}) for m in parsed])
    if isinstance(completion, str):
        return [completion], None
    return None


def _prompt_value(prompt: Any) -> list[dict[str, Any]] | str | None:
    """A v1.26 ``gen_ai.prompt`` value: a JSON list of messages, or the prompt text."""
    parsed = _loads(prompt) if isinstance(prompt, str) else prompt
    if isinstance(parsed, list) and parsed and all(isinstance(m, dict) for m in parsed):
        return [_plain_message(m) for m in parsed]
    return prompt if isinstance(prompt, str) else None


def _choices(choices: list[tuple[str | None, Any]]) -> tuple[list[str], str | None]:
    texts = [text or "" for text, _ in choices]
    finish = choices[0][1] if choices and isinstance(choices[0][1], str) else None
    return texts, finish


def _openllmetry_choice(fields: Mapping[str, AnyValue]) -> tuple[str | None, Any]:
    return _content_text(_str(fields.get("content"))), _str(fields.get("finish_reason"))


def _openinference_choice(fields: Mapping[str, AnyValue]) -> tuple[str | None, Any]:
    return _openinference_message(fields)["content"], None


def _openai_choice(choice: Any) -> tuple[str | None, Any]:
    if not isinstance(choice, dict):
        return None, None
    message = choice.get("message")
    text = _content_text(message.get("content")) if isinstance(message, dict) else _text(choice.get("text"))
    return text, choice.get("finish_reason")


def _event_output(span: Span) -> tuple[list[str], str | None] | None:
    """``gen_ai.choice`` events (GenAI v1.28..v1.36) or a ``gen_ai.content.completion`` event."""
    choices: list[tuple[int, str | None, Any]] = []
    for order, ev in enumerate(span.events):
        fields = _event_fields(ev)
        name = ev.name or _text(fields.get("event.name")) or ""
        if name == "gen_ai.choice":
            message = fields.get("message")
            if isinstance(message, str):
                message = _loads(message)
            text = _content_text(message.get("content")) if isinstance(message, dict) \
                else _content_text(fields.get("content"))
            index = fields.get("index")
            key = index if isinstance(index, int) and not isinstance(index, bool) else order
            choices.append((key, text, fields.get("finish_reason")))
        elif name == "gen_ai.content.completion" and not choices:
            completion = _completion_value(fields.get("gen_ai.completion"))
            if completion is not None:
                return completion
    if not choices:
        return None
    choices.sort(key=lambda c: c[0])
    return _choices([(text, finish) for _, text, finish in choices])


def _logprobs(attrs: Mapping[str, AnyValue]) -> list[dict[str, Any]] | None:
    """OpenAI ``choices[0].logprobs.content`` of a JSON ``output.value`` (OpenInference), when valid."""
    if "output.value" not in attrs or not _is_json(attrs.get("output.mime_type")):
        return None
    body = _loads(_str(attrs.get("output.value")))
    try:
        content = body["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(content, list) or not content or len(content) > MAX_LOGPROB_TOKENS:
        return None
    tokens = []
    for entry in content:
        if not isinstance(entry, dict):
            return None
        token = {"token": entry.get("token"), "logprob": entry.get("logprob")}
        top = entry.get("top_logprobs")
        if isinstance(top, list):
            token["top_logprobs"] = [{"token": t.get("token"), "logprob": t.get("logprob")}
                                     if isinstance(t, dict) else t for t in top]
        tokens.append(token)
    try:
        _LOGPROBS.validate_python(tokens, strict=True)
    except ValidationError:
        return None
    return tokens


# --- metadata ---------------------------------------------------------------------------------

def _metadata(span: Span, attrs: Mapping[str, AnyValue], resource: Mapping[str, AnyValue], scope: str,
              captured: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "otlp.trace_id": bytes(span.trace_id).hex(),
        "otlp.span_id": bytes(span.span_id).hex(),
        "otlp.span_name": _cut(span.name),
        "otlp.span_kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_")
        if span.kind in Span.SpanKind.values() else str(span.kind),
        "otlp.content_captured": captured,
    }
    if span.parent_span_id:
        meta["otlp.parent_span_id"] = bytes(span.parent_span_id).hex()
    if scope:
        meta["otlp.scope"] = _cut(scope)
    if span.status.code == Status.STATUS_CODE_ERROR:
        meta["otlp.status_code"] = "ERROR"
        if span.status.message:
            meta["otlp.status_message"] = _cut(span.status.message)
    dropped = 0
    room = MAX_METADATA_KEYS - len(meta) - 1  # one left for otlp.dropped_attributes
    candidates = ((k, v) for k, v in attrs.items()
                  if k not in _CONTENT_KEYS and not k.startswith(_CONTENT_PREFIXES))
    resource_items = ((f"resource.{k}", v) for k, v in resource.items())
    for key, value in (*candidates, *resource_items):
        key = key[:MAX_METADATA_KEY_CHARS]
        if key in meta:
            continue
        if room <= 0:
            dropped += 1
            continue
        meta[key] = _metadata_value(value)
        room -= 1
    if dropped:
        meta["otlp.dropped_attributes"] = dropped
    return meta


def _metadata_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _cut(value.string_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind is None:
        return None
    if kind == "bytes_value":
        return _cut(base64.b64encode(value.bytes_value[:MAX_METADATA_CHARS]).decode())
    return _cut(_compact(_to_python(value)))


# ---------------------------------------------------------------------------------------------
# AnyValue and small helpers
# ---------------------------------------------------------------------------------------------

def _attribute_map(attributes: Iterable[KeyValue]) -> dict[str, AnyValue]:
    return {kv.key: kv.value for kv in attributes}


def _to_python(value: AnyValue, budget: list[int] | None = None, depth: int = 0) -> Any:
    """An AnyValue as JSON-like Python, at most ``_NODE_BUDGET`` nodes and ``_MAX_DEPTH`` levels."""
    if budget is None:
        budget = [_NODE_BUDGET]
    budget[0] -= 1
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind is None or depth >= _MAX_DEPTH:
        return None
    if kind == "array_value":
        items = []
        for item in value.array_value.values:
            if budget[0] <= 0:
                break
            items.append(_to_python(item, budget, depth + 1))
        return items
    result = {}
    for kv in value.kvlist_value.values:
        if budget[0] <= 0:
            break
        result[kv.key] = _to_python(kv.value, budget, depth + 1)
    return result


def _str(value: AnyValue | None) -> str | None:
    if value is not None and value.WhichOneof("value") == "string_value":
        return value.string_value
    return None


def _scalar_text(value: AnyValue) -> str | None:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "int_value", "bool_value", "double_value"):
        return str(getattr(value, kind))
    return None


def _number(value: AnyValue | None) -> float | None:
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "double_value":
        return value.double_value
    if kind == "int_value":
        return float(value.int_value)
    return None


def _integer(value: AnyValue | None) -> int | None:
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return value.int_value
    if kind == "double_value" and math.isfinite(value.double_value) and value.double_value.is_integer():
        return int(value.double_value)
    if kind == "string_value" and value.string_value.isascii() and value.string_value.isdigit():
        return int(value.string_value[:20])
    return None


def _first_text(value: AnyValue | None) -> str | None:
    """A string attribute, or the first item of an array attribute, when it is a string."""
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "array_value" and value.array_value.values:
        return _str(value.array_value.values[0])
    return None


def _json_attr(value: AnyValue | None) -> Any:
    """A JSON-text attribute parsed, or a structured (array / map) attribute as Python."""
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _loads(value.string_value)
    if kind in ("array_value", "kvlist_value"):
        return _to_python(value)
    return None


def _is_json(mime: AnyValue | None) -> bool:
    text = _str(mime)
    return text is not None and text.split(";", 1)[0].strip().lower() == JSON


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, RecursionError):
        return None


def _compact(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _compact(value)


def _content_text(content: Any) -> str | None:
    """A message content as text: a string (a JSON-encoded parts list, as OpenLLMetry records
    multimodal content, gives its text parts), or a parts list's text parts."""
    if isinstance(content, str):
        if content.startswith("[{") and content.endswith("}]"):
            parts = _loads(content)
            if isinstance(parts, list) and all(isinstance(p, dict) and "type" in p for p in parts):
                return "\n".join(p["text"] for p in parts
                                 if p.get("type") == "text" and isinstance(p.get("text"), str))
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                text = part.get("text", part.get("content"))
                if isinstance(text, str):
                    texts.append(text)
        return "\n".join(texts)
    return _text(content)


def _cut(text: str, limit: int = MAX_METADATA_CHARS) -> str:
    return text if len(text) <= limit else text[:limit]


def _short(value: Any, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _describe(exc: ValidationError) -> str:
    return describe_validation_error(exc, prefix="the span breaks the inference event contract: ")


def _span_json(span: Span) -> bytes:
    """The span as compact OTLP/JSON (hex ids, enums as integers), at most MAX_SPAN_JSON_BYTES."""
    tree = json_format.MessageToDict(span, use_integers_for_enums=True)
    for node in (tree, *tree.get("links", ())):
        for key in ("traceId", "spanId", "parentSpanId"):
            if isinstance(node.get(key), str):
                node[key] = base64.b64decode(node[key]).hex()
    data = orjson.dumps(tree)
    if len(data) > MAX_SPAN_JSON_BYTES:
        data = data[:MAX_SPAN_JSON_BYTES].decode("utf-8", "ignore").encode()
    return data
