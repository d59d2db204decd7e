"""``POST /v1/inference``: inference events v1 onto ``llm.inference.v1``."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from parrotwatch.contracts import InferenceEventV1
from parrotwatch.services.api.deps import ApiKeyDep, MetricsDep, ProducerDep, SettingsDep
from parrotwatch.services.api.ingest import EventKind, ingest
from parrotwatch.services.api.openapi import REFUSALS, event_body
from parrotwatch.settings import INFERENCE_TOPIC

router = APIRouter(prefix="/v1", tags=["ingestion"])

INFERENCE = EventKind(InferenceEventV1, INFERENCE_TOPIC, key_field="request_id")

EXAMPLE = {
    "request_id": "req-0001",
    "timestamp": "2025-01-31T12:00:00Z",
    "model": "gpt-4o-mini",
    "app": "support-bot",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "response": "The capital of France is Paris.",
    "logprobs": [{"token": "The", "logprob": -0.01}, {"token": " capital", "logprob": -0.2}],
    "latency_ms": 420.0,
    "usage": {"input_tokens": 14, "output_tokens": 8},
    "finish_reason": "stop",
}


class InferencePublic(BaseModel):
    """The events that Kafka acknowledged (all of them: anything less is an error)."""

    accepted: int = Field(description="Number of events written.", examples=[1])
    request_ids: list[str] = Field(description="Their request_ids, in order.",
                                   examples=[["req-0001"]])


@router.post(
    "/inference",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InferencePublic,
    summary="Ingest inference events",
    description=(
        "One inference event v1 object, or a JSON array of them. Each event is written to "
        "`llm.inference.v1` keyed by `request_id`, exactly as sent (extra fields travel along). "
        "202 means Kafka acknowledged every event; 503 (with `Retry-After`) means none is "
        "confirmed and the request should be retried."
    ),
    openapi_extra=event_body(InferenceEventV1, EXAMPLE),
    responses=REFUSALS,
)
async def post_inference(
    request: Request, _auth: ApiKeyDep, settings: SettingsDep, producer: ProducerDep,
    metrics: MetricsDep,
) -> InferencePublic:
    ids = await ingest(request, INFERENCE, settings, producer, metrics)
    return InferencePublic(accepted=len(ids), request_ids=ids)
