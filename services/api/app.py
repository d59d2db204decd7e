"""The FastAPI application: ``create_app(settings)`` builds one, with nothing made at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from parrotwatch import __version__
from parrotwatch.contracts.review_labels import LabelSchemaError, load_label_schema
from parrotwatch.services.api.deps import get_producer
from parrotwatch.services.api.errors import EventsRejected, events_rejected_handler
from parrotwatch.services.api.metrics import ApiMetrics
from parrotwatch.services.api.openapi import install_event_schemas
from parrotwatch.services.api.producer import KafkaEventProducer
from parrotwatch.services.api.readiness import KafkaReadiness
from parrotwatch.services.api.routes import feedback, health, inference, otlp, review
from parrotwatch.settings import Settings, load_settings

log = logging.getLogger(__name__)

DESCRIPTION = """\
Ingestion API of Parrotwatch, LLM observability and memorization audits.

* `POST /v1/inference`: inference events v1 (one object or an array) onto `llm.inference.v1`.
* `POST /v1/feedback`: feedback events v1 onto `llm.feedback.v1`.

Send an API key as `X-API-Key: <key>` or `Authorization: Bearer <key>`. A 202 means Kafka
acknowledged every event of the request; a 503 carries `Retry-After` and means retry the same
request (events are deduplicated by their id downstream).

Limits (each refusal says which and how to fix it): a request body of at most
`PARROTWATCH_MAX_REQUEST_BYTES` (8 MiB; 413, enforced while the body streams in), at most
`PARROTWATCH_MAX_BATCH_EVENTS` events per request (1,000; 422), at most
`PARROTWATCH_MAX_EVENT_BYTES` per event (1 MiB; 413), JSON nested at most 64 levels (an array of
events counts as one; 422) and integers within 64 bits, [-2^63, 2^64 - 1] (422: larger ones
would silently become floats). A 422 lists the first 50 errors and counts the rest; no answer
exceeds 64 KB.

Human review (`/v1/review/...`, the page at `/review`) takes reviewer keys
(`PARROTWATCH_REVIEWER_KEYS`, `X-Reviewer-Key: <key>`), not API keys; it needs the database.

`/healthz` (liveness: never waits on Kafka), `/readyz` (readiness: 503 until Kafka answered a
recent check; answers within about 0.5 s) and `/metrics` need no key.
"""


class MissingApiKeys(ValueError):
    """The API was started without any key (PARROTWATCH_API_KEYS unset or empty)."""


NO_KEYS = (
    "No API key configured: the API refuses to start without one. Set PARROTWATCH_API_KEYS to "
    "a JSON list of keys, e.g. PARROTWATCH_API_KEYS='[\"<key>\"]' with a key from "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`. For the local stack, "
    "`parrotwatch up` and `parrotwatch demo` generate one and store it in "
    "$PARROTWATCH_HOME/api-key."
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    if get_producer in app.dependency_overrides:  # a test supplies its own producer
        yield
        return
    producer = KafkaEventProducer.from_settings(app.state.settings)
    # No broker yet is not fatal: the producer is then created on first use, per request.
    app.state.readiness.record(await run_in_threadpool(producer.try_connect))
    app.state.producer = producer
    try:
        yield
    finally:
        app.state.readiness.close()
        await run_in_threadpool(producer.close)


def _check_review(settings: Settings) -> None:
    """Log, at start, what keeps human review from working; ingestion runs regardless."""
    if not settings.reviewer_keys:
        return
    try:
        load_label_schema(settings.review_labels)
    except LabelSchemaError as exc:
        log.error("human review is unavailable until the label schema is fixed: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new API instance with its own settings, producer (made at start-up) and metrics.

    ``settings`` defaults to :func:`parrotwatch.settings.load_settings` (the environment). Routes
    read them through :func:`parrotwatch.services.api.deps.get_settings`; override that dependency, or
    :func:`parrotwatch.services.api.deps.get_producer`, to substitute either in tests.

    Raises :class:`MissingApiKeys` when ``settings.api_keys`` is empty: there is no default key.
    """
    settings = settings if settings is not None else load_settings()
    if not settings.api_keys:
        raise MissingApiKeys(NO_KEYS)
    app = FastAPI(
        title="Parrotwatch ingestion API",
        description=DESCRIPTION,
        version=__version__,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ApiMetrics()
    app.state.readiness = KafkaReadiness()
    app.add_exception_handler(EventsRejected, events_rejected_handler)
    for module in (inference, otlp, feedback, health, review):
        app.include_router(module.router)
    _check_review(settings)
    install_event_schemas(app)
    return app
