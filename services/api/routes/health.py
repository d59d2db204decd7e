"""``GET /healthz`` and ``GET /metrics``: no API key needed."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from services.api.deps import MetricsDep, ProducerDep
from services.api.metrics import CONTENT_TYPE_LATEST

router = APIRouter(tags=["operations"])

KAFKA_PING_TIMEOUT_S = 2.0


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="'degraded' when Kafka does not answer: ingestion then returns 503."
    )
    kafka: bool = Field(description="A metadata request to Kafka succeeded within 2 s.")


@router.get("/healthz", response_model=HealthPublic, summary="Liveness and Kafka reachability")
async def healthz(producer: ProducerDep) -> HealthPublic:
    """Always 200 while the process serves; ``status`` says whether ingestion can succeed."""
    kafka = await run_in_threadpool(producer.ping, KAFKA_PING_TIMEOUT_S)
    return HealthPublic(status="ok" if kafka else "degraded", kafka=kafka)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
