"""The one ingestion path of ``POST /v1/inference`` and ``POST /v1/feedback``.

Read the body within ``max_request_bytes``; off the event loop, scan it (at most
``max_batch_events`` events, :data:`MAX_JSON_DEPTH` levels, integers within 64 bits), parse it as
one event or an array of events, check each event against ``max_event_bytes`` and its v1 model
(the same ``model_validate_json`` the stream uses); then write the events to Kafka as received
and wait for every acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from kafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import BaseModel, ValidationError

from parrotwatch.services.api import jsonscan
from parrotwatch.services.api.errors import MAX_ERRORS, EventsRejected, listing
from parrotwatch.services.api.metrics import ApiMetrics
from parrotwatch.services.api.producer import EventSink, Record
from parrotwatch.settings import Settings

#: nesting levels a body may have (an array of events is one); orjson itself re-encodes at most
#: 254 and parses at most 1,024, and the contract's own nesting is under 10
MAX_JSON_DEPTH = 64
#: request bodies parsed at once (CPU-bound under the GIL: more threads only add memory)
PARSE_THREADS = 4


@dataclass(frozen=True)
class EventKind:
    """One ingestible contract: its model, its topic (before the prefix) and its key field."""

    model: type[BaseModel]
    topic: str
    key_field: str


def _reject(route: str, metrics: ApiMetrics, reason: str, errors: list[dict], n: int = 1,
            count: int | None = None) -> EventsRejected:
    metrics.reject(route, reason, n)
    return EventsRejected(errors, count)


def _too_large(route: str, metrics: ApiMetrics, reason: str, message: str, n: int = 1):
    metrics.reject(route, reason, n)
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, message)


async def read_body(request: Request, settings: Settings, metrics: ApiMetrics) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed ``max_request_bytes``:
    on its ``Content-Length``, else while it streams in (never more than the limit plus one
    chunk is held)."""
    limit, route = settings.max_request_bytes, request.url.path
    hint = "send fewer events per request (or raise PARROTWATCH_MAX_REQUEST_BYTES)"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(route, metrics, "request_too_large",
                         f"Request body is {int(declared)} bytes (Content-Length), over the "
                         f"{limit}-byte limit; {hint}.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(route, metrics, "request_too_large",
                             f"Request body is over the {limit}-byte limit (more than "
                             f"{len(body)} bytes read); {hint}.")
    return bytes(body)


def _check_shape(body: bytes, settings: Settings, metrics: ApiMetrics, route: str) -> None:
    """Refuse (422), before parsing, a batch over ``max_batch_events``, JSON nested deeper than
    :data:`MAX_JSON_DEPTH` and integers that JSON parsers would turn into floats."""
    shape = jsonscan.scan(body)
    if shape.items is not None and shape.items > settings.max_batch_events:
        # 422, not 413: the OpenAPI schema states the limit (maxItems), so this is a body that
        # breaks the documented schema, like any other
        raise _reject(route, metrics, "too_many_events", [{
            "type": "too_many_events", "loc": ["body"],
            "msg": f"The batch has {shape.items} events, over the limit of "
                   f"{settings.max_batch_events} events per request; split it into requests of "
                   f"at most {settings.max_batch_events} events (or raise "
                   "PARROTWATCH_MAX_BATCH_EVENTS).",
        }])
    if shape.depth > MAX_JSON_DEPTH:
        raise _reject(route, metrics, "invalid_json", [{
            "type": "json_too_deep", "loc": ["body"],
            "msg": f"The body nests {shape.depth} levels deep, over the limit of "
                   f"{MAX_JSON_DEPTH} (an array of events counts as one level); flatten "
                   "deeply nested fields such as metadata.",
        }])
    if shape.big_int is not None:
        raise _reject(route, metrics, "invalid_json", [{
            "type": "integer_out_of_range", "loc": ["body"],
            "msg": f"The integer {shape.big_int} at byte {shape.big_int_offset} is outside "
                   f"the 64-bit range [{jsonscan.INT_MIN}, {jsonscan.INT_MAX}] that is stored "
                   "exactly; send it as a string (or as a float if precision may be lost).",
        }])


def _items(body: bytes, route: str, metrics: ApiMetrics) -> tuple[list[Any], bool]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _reject(route, metrics, "invalid_json", [{
            "type": "json_invalid", "loc": ["body"],
            "msg": f"Body is not valid JSON ({exc}); send one event object or an array of them.",
        }]) from exc
    if isinstance(parsed, list):
        if not parsed:
            raise _reject(route, metrics, "invalid_event", [{
                "type": "empty_batch", "loc": ["body"],
                "msg": "The batch is an empty array; send at least one event.",
            }])
        return parsed, True
    if isinstance(parsed, dict):
        return [parsed], False
    raise _reject(route, metrics, "invalid_event", [{
        "type": "invalid_body", "loc": ["body"],
        "msg": f"Expected one event object or an array of event objects, got JSON "
               f"{type(parsed).__name__}.",
    }])


def _encode(items: list[Any], batch: bool, route: str, metrics: ApiMetrics) -> list[bytes]:
    values = []
    for i, item in enumerate(items):
        try:
            values.append(orjson.dumps(item))
        except orjson.JSONEncodeError as exc:  # defence in depth: the scan should prevent it
            where = ["body", i] if batch else ["body"]
            raise _reject(route, metrics, "invalid_json", [{
                "type": "json_unencodable", "loc": where,
                "msg": f"The event cannot be forwarded as JSON ({exc}); flatten or simplify it.",
            }], len(items)) from exc
    return values


def parse_events(
    body: bytes, kind: EventKind, settings: Settings, metrics: ApiMetrics, route: str
) -> tuple[list[str], list[Record]]:
    """Ids and ``(key, value)`` records of the events in ``body``; 413 or 422 naming the index.

    CPU-bound (a scan, a parse and one model validation per event): :func:`ingest` runs it in
    a worker thread so that the event loop keeps answering other requests.
    """
    _check_shape(body, settings, metrics, route)
    items, batch = _items(body, route, metrics)
    values = _encode(items, batch, route, metrics)
    limit = settings.max_event_bytes
    too_big = [(i, len(v)) for i, v in enumerate(values) if len(v) > limit]
    if too_big:
        where = listing([f"index {i} is {size} bytes" if batch else f"it is {size} bytes"
                         for i, size in too_big[:10]], len(too_big))
        raise _too_large(
            route, metrics, "event_too_large",
            f"Event over the {limit}-byte limit per event: {where}. Trim large fields "
            "(logprobs, sources, samples, messages) or raise PARROTWATCH_MAX_EVENT_BYTES.",
            len(items),
        )
    ids: list[str] = []
    errors: list[dict] = []
    count = 0
    for i, value in enumerate(values):
        prefix = ("body", i) if batch else ("body",)
        try:
            event = kind.model.model_validate_json(value)
        except ValidationError as exc:
            count += exc.error_count()
            if len(errors) < MAX_ERRORS:
                for err in exc.errors(include_url=False, include_context=False,
                                      include_input=False)[:MAX_ERRORS]:
                    errors.append({**err, "loc": [*prefix, *err["loc"]]})
            continue
        ids.append(str(getattr(event, kind.key_field)))
    if errors:
        raise _reject(route, metrics, "invalid_event", errors, len(items), count)
    return ids, [(key.encode("utf-8"), value) for key, value in zip(ids, values, strict=True)]


async def publish(
    producer: EventSink, topic: str, records: list[Record], metrics: ApiMetrics, route: str,
    accepted: bool = True,
) -> None:
    """Write ``records`` and return once Kafka acknowledged all of them; 503 otherwise.
    ``accepted``: count them as accepted events (not for dead letters the API writes itself)."""
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
    if accepted:
        metrics.accepted.labels(route=route).inc(len(records))


async def ingest(
    request: Request, kind: EventKind, settings: Settings, producer: EventSink,
    metrics: ApiMetrics,
) -> list[str]:
    """Validate and produce the request's events; the ids of the acknowledged events."""
    route = request.url.path
    body = await read_body(request, settings, metrics)
    limiter = getattr(request.app.state, "parse_limiter", None)
    if limiter is None:  # made here: it belongs to the running event loop
        limiter = request.app.state.parse_limiter = anyio.CapacityLimiter(PARSE_THREADS)
    ids, records = await anyio.to_thread.run_sync(
        parse_events, body, kind, settings, metrics, route, limiter=limiter)
    await publish(producer, settings.topic(kind.topic), records, metrics, route)
    return ids
