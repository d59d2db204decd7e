"""``POST /v1/feedback``: feedback events v1 onto ``llm.feedback.v1``."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from parrotwatch.contracts import FeedbackEventV1
from parrotwatch.services.api.deps import ApiKeyDep, MetricsDep, ProducerDep, SettingsDep
from parrotwatch.services.api.ingest import EventKind, ingest
from parrotwatch.services.api.openapi import REFUSALS, event_body
from parrotwatch.settings import FEEDBACK_TOPIC

router = APIRouter(prefix="/v1", tags=["ingestion"])

FEEDBACK = EventKind(FeedbackEventV1, FEEDBACK_TOPIC, key_field="feedback_id")

EXAMPLE = {
    "feedback_id": "fb-0001",
    "request_id": "req-0001",
    "timestamp": "2025-01-31T12:05:00Z",
    "thumb": -1,
    "label": "hallucination",
    "comment": "The cited policy does not exist.",
    "annotator": "agent-42",
}


class FeedbackPublic(BaseModel):
    """The feedback events that Kafka acknowledged (all of them)."""

    accepted: int = Field(description="Number of events written.", examples=[1])
    feedback_ids: list[str] = Field(description="Their feedback_ids, in order.",
                                    examples=[["fb-0001"]])


@router.post(
    "/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FeedbackPublic,
    summary="Ingest feedback events",
    description=(
        "One feedback event v1 object, or a JSON array of them, written to `llm.feedback.v1` "
        "keyed by `feedback_id` exactly as sent. A repeated `feedback_id` is deduplicated "
        "downstream. 202 means Kafka acknowledged every event; 503 means retry."
    ),
    openapi_extra=event_body(FeedbackEventV1, EXAMPLE),
    responses=REFUSALS,
)
async def post_feedback(
    request: Request, _auth: ApiKeyDep, settings: SettingsDep, producer: ProducerDep,
    metrics: MetricsDep,
) -> FeedbackPublic:
    ids = await ingest(request, FEEDBACK, settings, producer, metrics)
    return FeedbackPublic(accepted=len(ids), feedback_ids=ids)
