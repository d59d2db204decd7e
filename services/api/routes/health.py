"""``GET /healthz`` (liveness), ``GET /readyz`` (readiness) and ``GET /metrics``: no key needed.

Neither probe calls Kafka itself: both read :class:`parrotwatch.services.api.readiness.KafkaReadiness`, so
``/healthz`` answers at once whatever Kafka does, and ``/readyz`` within about half a second.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from parrotwatch.services.api.deps import MetricsDep, ProducerDep
from parrotwatch.services.api.metrics import CONTENT_TYPE_LATEST
from parrotwatch.services.api.readiness import STALE_AFTER_S, KafkaReadiness

router = APIRouter(tags=["operations"])


def get_readiness(request: Request) -> KafkaReadiness:
    return request.app.state.readiness


ReadinessDep = Annotated[KafkaReadiness, Depends(get_readiness)]


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="'degraded' when the last Kafka check failed: ingestion then returns 503."
    )
    kafka: bool | None = Field(
        description="Whether the last Kafka check (a metadata request, refreshed in the "
        "background every 2 s at most) succeeded; null before the first one finished."
    )


class ReadyPublic(BaseModel):
    ready: bool = Field(description="Kafka answered a recent check: ingestion can succeed.")
    kafka: bool | None = Field(description="The last Kafka check's result (null: none yet).")
    checked_s_ago: float | None = Field(description="Age of that check, in seconds.")
    detail: str = Field(description="Why not ready, and what to check.")


@router.get("/healthz", response_model=HealthPublic,
            summary="Liveness: 200 while the process serves (never waits on Kafka)")
async def healthz(producer: ProducerDep, readiness: ReadinessDep) -> HealthPublic:
    """Always 200 while the event loop runs; the body reports the last Kafka check."""
    state = readiness.peek(producer)
    return HealthPublic(status="degraded" if state.ok is False else "ok", kafka=state.ok)


@router.get(
    "/readyz",
    response_model=ReadyPublic,
    summary="Readiness: 200 when Kafka answered a recent check, else 503",
    responses={503: {"model": ReadyPublic, "description": "Kafka did not answer recently."}},
)
async def readyz(producer: ProducerDep, readiness: ReadinessDep, response: Response
                 ) -> ReadyPublic:
    """Answers within about 0.5 s: a stale check is refreshed in the background and awaited
    that long at most."""
    state = await readiness.check(producer)
    fresh = state.age_s is not None and state.age_s < STALE_AFTER_S
    ready = bool(state.ok) and fresh
    if ready:
        detail = "Kafka answered; ingestion can succeed."
    elif state.ok is None:
        detail = "No Kafka check has finished yet; retry in a second."
    elif not fresh:
        detail = "The last Kafka check is stale (checks hang); see the API log."
    else:
        detail = ("Kafka did not answer a metadata request within 2 s: check "
                  "PARROTWATCH_KAFKA_BOOTSTRAP and the broker; ingestion answers 503 meanwhile.")
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    age = None if state.age_s is None else round(state.age_s, 3)
    return ReadyPublic(ready=ready, kafka=state.ok, checked_s_ago=age, detail=detail)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
