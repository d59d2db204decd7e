"""The FastAPI application: ``create_app(settings)`` builds one, with nothing made at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from parrotwatch import __version__
from parrotwatch.settings import Settings, load_settings
from services.api.deps import get_producer
from services.api.metrics import ApiMetrics
from services.api.openapi import install_event_schemas
from services.api.producer import KafkaEventProducer
from services.api.routes import feedback, health, inference

log = logging.getLogger(__name__)

DESCRIPTION = """\
Ingestion API of Parrotwatch, LLM observability and memorization audits.

* `POST /v1/inference`: inference events v1 (one object or an array) onto `llm.inference.v1`.
* `POST /v1/feedback`: feedback events v1 onto `llm.feedback.v1`.

Send an API key as `X-API-Key: <key>` or `Authorization: Bearer <key>`. A 202 means Kafka
acknowledged every event of the request; a 503 carries `Retry-After` and means retry the same
request (events are deduplicated by their id downstream). `/healthz` and `/metrics` need no key.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    if get_producer in app.dependency_overrides:  # a test supplies its own producer
        yield
        return
    producer = KafkaEventProducer.from_settings(app.state.settings)
    # No broker yet is not fatal: the producer is then created on first use, per request.
    await run_in_threadpool(producer.try_connect)
    app.state.producer = producer
    try:
        yield
    finally:
        await run_in_threadpool(producer.close)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new API instance with its own settings, producer (made at start-up) and metrics.

    ``settings`` defaults to :func:`parrotwatch.settings.load_settings` (the environment). Routes
    read them through :func:`services.api.deps.get_settings`; override that dependency, or
    :func:`services.api.deps.get_producer`, to substitute either in tests.
    """
    app = FastAPI(
        title="Parrotwatch ingestion API",
        description=DESCRIPTION,
        version=__version__,
        lifespan=_lifespan,
    )
    app.state.settings = settings if settings is not None else load_settings()
    app.state.metrics = ApiMetrics()
    for module in (inference, feedback, health):
        app.include_router(module.router)
    install_event_schemas(app)
    return app
