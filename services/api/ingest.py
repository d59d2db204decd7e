"""The one ingestion path of ``POST /v1/inference`` and ``POST /v1/feedback``.

Read the body within ``max_request_bytes``, parse it as one event or an array of events, check
each event against ``max_event_bytes`` and its v1 model (the same ``model_validate_json`` the
stream uses), then write the events to Kafka as received and wait for every acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from kafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import BaseModel, ValidationError

from parrotwatch.settings import Settings
from services.api.metrics import ApiMetrics
from services.api.producer import EventSink, Record


@dataclass(frozen=True)
class EventKind:
    """One ingestible contract: its model, its topic (before the prefix) and its key field."""

    model: type[BaseModel]
    topic: str
    key_field: str


def _invalid(route: str, metrics: ApiMetrics, reason: str, errors: list[dict], n: int = 1):
    metrics.reject(route, reason, n)
    return RequestValidationError(errors)


async def read_body(request: Request, settings: Settings, metrics: ApiMetrics) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed ``max_request_bytes``."""
    limit, route = settings.max_request_bytes, request.url.path
    hint = "send fewer events per request (or raise PARROTWATCH_MAX_REQUEST_BYTES)"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        metrics.reject(route, "request_too_large")
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"Request body is {int(declared)} bytes (Content-Length), over the {limit}-byte "
            f"limit; {hint}.",
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            metrics.reject(route, "request_too_large")
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"Request body is over the {limit}-byte limit (more than {len(body)} bytes "
                f"read); {hint}.",
            )
    return bytes(body)


def _items(body: bytes, route: str, metrics: ApiMetrics) -> tuple[list[Any], bool]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _invalid(route, metrics, "invalid_json", [{
            "type": "json_invalid", "loc": ["body"],
            "msg": f"Body is not valid JSON ({exc}); send one event object or an array of them.",
        }]) from exc
    if isinstance(parsed, list):
        if not parsed:
            raise _invalid(route, metrics, "invalid_event", [{
                "type": "empty_batch", "loc": ["body"],
                "msg": "The batch is an empty array; send at least one event.",
            }])
        return parsed, True
    if isinstance(parsed, dict):
        return [parsed], False
    raise _invalid(route, metrics, "invalid_event", [{
        "type": "invalid_body", "loc": ["body"],
        "msg": f"Expected one event object or an array of event objects, got JSON "
               f"{type(parsed).__name__}.",
    }])


def parse_events(
    body: bytes, kind: EventKind, settings: Settings, metrics: ApiMetrics, route: str
) -> tuple[list[str], list[Record]]:
    """Ids and ``(key, value)`` records of the events in ``body``; 413 or 422 naming the index."""
    items, batch = _items(body, route, metrics)
    values = [orjson.dumps(item) for item in items]
    limit = settings.max_event_bytes
    too_big = [(i, len(v)) for i, v in enumerate(values) if len(v) > limit]
    if too_big:
        metrics.reject(route, "event_too_large", len(items))
        where = ", ".join(f"index {i} is {size} bytes" if batch else f"it is {size} bytes"
                          for i, size in too_big)
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"Event over the {limit}-byte limit per event: {where}. Trim large fields "
            "(logprobs, sources, samples, messages) or raise PARROTWATCH_MAX_EVENT_BYTES.",
        )
    ids: list[str] = []
    errors: list[dict] = []
    for i, value in enumerate(values):
        prefix = ("body", i) if batch else ("body",)
        try:
            event = kind.model.model_validate_json(value)
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_context=False, include_input=False):
                errors.append({**err, "loc": [*prefix, *err["loc"]]})
            continue
        ids.append(str(getattr(event, kind.key_field)))
    if errors:
        raise _invalid(route, metrics, "invalid_event", errors, len(items))
    return ids, [(key.encode("utf-8"), value) for key, value in zip(ids, values, strict=True)]


async def publish(
    producer: EventSink, topic: str, records: list[Record], metrics: ApiMetrics, route: str
) -> None:
    """Write ``records`` and return once Kafka acknowledged all of them; 503 otherwise."""
    with metrics.produce_seconds.labels(route=route).time():
        try:
            await run_in_threadpool(producer.send_all, topic, records)
        except MessageSizeTooLargeError as exc:
            metrics.reject(route, "event_too_large", len(records))
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"Kafka refused the events as too large ({exc}); nothing was stored. The "
                "broker's message.max.bytes is below PARROTWATCH_MAX_EVENT_BYTES: lower one "
                "or raise the other.",
            ) from exc
        except KafkaError as exc:
            metrics.reject(route, "kafka_unavailable", len(records))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"Kafka is unavailable or did not acknowledge in time ({exc}); nothing was "
                "stored as accepted. Retry the same request after 5 s: events are deduplicated "
                f"by their id, so a retry is safe. If Kafka is up, check that topic {topic!r} "
                "exists (the broker does not create topics on first use).",
                headers={"Retry-After": "5"},
            ) from exc
    metrics.accepted.labels(route=route).inc(len(records))


async def ingest(
    request: Request, kind: EventKind, settings: Settings, producer: EventSink,
    metrics: ApiMetrics,
) -> list[str]:
    """Validate and produce the request's events; the ids of the acknowledged events."""
    route = request.url.path
    body = await read_body(request, settings, metrics)
    ids, records = parse_events(body, kind, settings, metrics, route)
    await publish(producer, settings.topic(kind.topic), records, metrics, route)
    return ids
