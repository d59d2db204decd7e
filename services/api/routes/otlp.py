"""``POST /v1/traces``: OpenTelemetry traces (OTLP/HTTP) of LLM apps onto ``llm.inference.v1``.

The OTLP/HTTP transport of the OpenTelemetry protocol specification (opentelemetry.io/docs/specs/
otlp, v1.5): a binary protobuf (``application/x-protobuf``) or OTLP/JSON (``application/json``)
``ExportTraceServiceRequest``, optionally gzip-compressed (``Content-Encoding: gzip``); the
answer is an ``ExportTraceServiceResponse`` in the request's encoding, 200, with
``partial_success`` counting the LLM spans that were dead-lettered. Mapping:
:mod:`parrotwatch.contracts.otlp`.

What happens to each span:

* an LLM span that maps to a valid inference event v1 is written to ``llm.inference.v1`` keyed
  by its request id (trace id - span id), like ``POST /v1/inference``;
* an LLM span that cannot be mapped (no model, unreadable content) is written to ``llm.dlq.v1``
  with the reason, stage ``map``, and the span's OTLP/JSON as payload;
* any other span (HTTP, database, an agent step) is counted and skipped.

Same auth, limits and acknowledgement rule as the v1 routes: 200 means Kafka acknowledged every
record written; 503 means none is confirmed (retrying is safe: ids are stable). Refusals: 400
for a body that is not OTLP traces (the reason says why), 413 for a body over
``max_request_bytes`` (compressed or decompressed) or more than ``max_batch_events`` spans, 415
for another content type or encoding, 422 for OTLP/JSON nested deeper than the v1 limit.
"""

from __future__ import annotations

import zlib
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from parrotwatch.contracts.dead_letters import dead_letter_message, redacted_head
from parrotwatch.contracts.otlp import JSON, PROTOBUF, OtlpBatch, OtlpDecodeError, decode_traces, map_traces
from parrotwatch.services.api import jsonscan
from parrotwatch.services.api.deps import ApiKeyDep, MetricsDep, ProducerDep, SettingsDep
from parrotwatch.services.api.errors import ErrorPublic
from parrotwatch.services.api.ingest import MAX_JSON_DEPTH, PARSE_THREADS, publish, read_body
from parrotwatch.services.api.metrics import ApiMetrics
from parrotwatch.services.api.openapi import REFUSALS
from parrotwatch.services.api.producer import Record
from parrotwatch.settings import DLQ_TOPIC, INFERENCE_TOPIC, Settings

router = APIRouter(prefix="/v1", tags=["ingestion"])

#: where a dead letter written by the API says it came from (it has no Kafka offset)
SOURCE = "otlp:/v1/traces"
MAX_REASONS = 5  # reasons quoted in partial_success.error_message


def _media(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def gunzip(body: bytes, limit: int, route: str, metrics: ApiMetrics) -> bytes:
    """``body`` decompressed, refused with 413 past ``limit`` bytes (a gzip bomb never expands
    beyond the limit plus one chunk) and with 400 when it is not gzip."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            metrics.reject(route, "request_too_large")
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                f"The gzip body inflates to more than {limit} bytes, over the "
                                "request limit; send fewer spans per request (or raise "
                                "PARROTWATCH_MAX_REQUEST_BYTES).")
        if not inflater.eof:
            raise zlib.error("the gzip stream is truncated")
    except zlib.error as exc:
        metrics.reject(route, "invalid_json")
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"Content-Encoding is gzip but the body is not a complete gzip stream "
                            f"({exc}); compress the whole body, or drop the header.") from exc
    return out


def _decode(body: bytes, media: str, settings: Settings, metrics: ApiMetrics, route: str) -> OtlpBatch:
    """Decode and map the body (CPU-bound: run in a worker thread); refusals as HTTP errors."""
    if media == JSON:
        depth = jsonscan.scan(body).depth
        if depth > MAX_JSON_DEPTH:
            metrics.reject(route, "invalid_json")
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"The OTLP/JSON body nests {depth} levels deep, over the limit of "
                                f"{MAX_JSON_DEPTH}; flatten deeply nested attribute values.")
    try:
        request = decode_traces(body, media, max_spans=settings.max_batch_events)
        return map_traces(request, app_attribute=settings.otlp_app_attribute,
                          max_spans=settings.max_batch_events)
    except OtlpDecodeError as exc:
        message = str(exc)
        if "spans per request" in message:
            metrics.reject(route, "too_many_events")
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                f"{message} (or raise PARROTWATCH_MAX_BATCH_EVENTS).") from exc
        metrics.reject(route, "invalid_json")
        raise HTTPException(status.HTTP_400_BAD_REQUEST, message) from exc


def _records(batch: OtlpBatch, redact_pii: bool = False) -> tuple[list[Record], list[Record], list[str]]:
    """(inference records, dead-letter records, reasons) of the batch's LLM spans; ``redact_pii``:
    a dead letter carries the redacted text of its span (docs/pii.md)."""
    events, dead, reasons = [], [], []
    for span in batch.spans:
        if span.event is not None:
            events.append((span.event["request_id"].encode("utf-8"), orjson.dumps(span.event)))
            continue
        reasons.append(span.reason or "unmappable")
        dead.append((None, dead_letter_message({
            "topic": SOURCE, "partition": None, "offset": None, "kafka_timestamp": None,
            "reason": span.reason,
            "payload": redacted_head(span.span_json) if redact_pii else span.span_json,
            "payload_bytes": len(span.span_json),
            "payload_sha256": None, "stage": "map"})))
    return events, dead, reasons


def _answer(media: str, rejected: int, reasons: list[str]) -> Response:
    """An ExportTraceServiceResponse in the request's encoding (partial_success when rejected)."""
    answer = ExportTraceServiceResponse()
    if rejected:
        answer.partial_success.rejected_spans = rejected
        shown = "; ".join(reasons[:MAX_REASONS])
        more = f" (and {len(reasons) - MAX_REASONS} more)" if len(reasons) > MAX_REASONS else ""
        answer.partial_success.error_message = (
            f"{rejected} LLM span(s) could not be mapped and were dead-lettered: {shown}{more}")
    if media == PROTOBUF:
        return Response(answer.SerializeToString(), status.HTTP_200_OK, media_type=PROTOBUF)
    return Response(json_format.MessageToJson(answer, indent=None), status.HTTP_200_OK, media_type=JSON)


_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {
        PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
        JSON: {"schema": {"type": "object", "description": "OTLP/JSON ExportTraceServiceRequest",
                          "properties": {"resourceSpans": {"type": "array", "items": {"type": "object"}}}}},
    }},
    "responses": {"200": {
        "description": "Every LLM span written to Kafka (acknowledged): as an inference event, or "
                       "dead-lettered (counted in partial_success). An ExportTraceServiceResponse "
                       "in the request's encoding.",
        "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                    JSON: {"schema": {"type": "object"}}}}},
}
_REFUSALS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in REFUSALS.items() if k != 422},
    400: {"model": ErrorPublic, "description": "Not OTLP traces (bad protobuf, bad JSON, ids not "
          "hex, bad gzip); the message says why."},
    415: {"model": ErrorPublic, "description": "A Content-Type other than application/x-protobuf "
          "or application/json, or a Content-Encoding other than gzip."},
    422: {"model": ErrorPublic, "description": "OTLP/JSON nested deeper than the limit."},
}


@router.post(
    "/traces",
    status_code=status.HTTP_200_OK,
    summary="Ingest OpenTelemetry traces (OTLP/HTTP)",
    description=(
        "OTLP/HTTP traces, protobuf or JSON, optionally gzip. LLM spans (GenAI semantic "
        "conventions `gen_ai.*`, current and previous, and OpenInference `llm.*`) become inference "
        "events v1 on `llm.inference.v1`; LLM spans that cannot be mapped go to `llm.dlq.v1` with "
        "their reason and are counted in `partial_success`; other spans are skipped. 200 means "
        "Kafka acknowledged every record."),
    response_class=Response,
    openapi_extra=_BODY,
    responses=_REFUSALS,
)
async def post_traces(
    request: Request, _auth: ApiKeyDep, settings: SettingsDep, producer: ProducerDep,
    metrics: MetricsDep,
) -> Response:
    route = request.url.path
    media = _media(request.headers.get("content-type"))
    if media not in (PROTOBUF, JSON):
        metrics.reject(route, "invalid_json")
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"Content-Type {media or '(none)'!r} is not OTLP: send traces as "
                            f"{PROTOBUF} (protobuf) or {JSON} (OTLP/JSON).")
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        metrics.reject(route, "invalid_json")
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            f"Content-Encoding {encoding!r} is not supported: send gzip or none.")
    body = await read_body(request, settings, metrics)
    limiter = getattr(request.app.state, "parse_limiter", None)
    if limiter is None:
        limiter = request.app.state.parse_limiter = anyio.CapacityLimiter(PARSE_THREADS)
    if encoding == "gzip":
        body = await anyio.to_thread.run_sync(gunzip, body, settings.max_request_bytes, route, metrics,
                                              limiter=limiter)
    batch = await anyio.to_thread.run_sync(_decode, body, media, settings, metrics, route, limiter=limiter)
    events, dead, reasons = _records(batch, settings.redact_pii)
    metrics.otlp_spans.labels(outcome="skipped").inc(batch.skipped)
    if events:
        await publish(producer, settings.topic(INFERENCE_TOPIC), events, metrics, route)
        metrics.otlp_spans.labels(outcome="mapped").inc(len(events))
    if dead:
        await publish(producer, settings.topic(DLQ_TOPIC), dead, metrics, route, accepted=False)
        metrics.otlp_spans.labels(outcome="dead_lettered").inc(len(dead))
    return _answer(media, len(dead), reasons)
