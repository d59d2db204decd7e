"""Event contracts: typed models of the v1 events and their JSON Schemas (`parrotwatch schemas`)."""

from parrotwatch.contracts.events import (
    AlertEventV1,
    FeedbackEventV1,
    InferenceEventV1,
    LogprobToken,
    Message,
    ScoreEventV1,
    TopLogprob,
    Usage,
)
from parrotwatch.contracts.schemas import export_json_schemas

__all__ = [
    "AlertEventV1",
    "FeedbackEventV1",
    "InferenceEventV1",
    "LogprobToken",
    "Message",
    "ScoreEventV1",
    "TopLogprob",
    "Usage",
    "export_json_schemas",
]
