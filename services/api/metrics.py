"""Prometheus metrics of one API instance, on its own registry (never the process-global one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "ApiMetrics"]

# Reasons a request or its events are turned away; the label values of ``rejected``.
REJECT_REASONS = (
    "unauthorized",
    "request_too_large",
    "too_many_events",
    "event_too_large",
    "invalid_json",
    "invalid_event",
    "kafka_unavailable",
)


@dataclass
class ApiMetrics:
    """Counters of accepted and rejected events per route, and the produce latency."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.accepted = Counter(
            "parrotwatch_api_events_accepted",
            "Events acknowledged by Kafka and answered with 202.",
            ["route"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "parrotwatch_api_events_rejected",
            "Events turned away, by reason; a request whose body was not read as events "
            "(unauthorized, too large, not JSON) counts as one.",
            ["route", "reason"],
            registry=self.registry,
        )
        self.otlp_spans = Counter(
            "parrotwatch_api_otlp_spans",
            "Spans of POST /v1/traces by outcome: mapped (written as inference events), "
            "dead_lettered (LLM spans that could not be mapped), skipped (not LLM spans).",
            ["outcome"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "parrotwatch_api_produce_seconds",
            "Time from the first send to the last broker acknowledgement of one request.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    def reject(self, route: str, reason: str, count: int = 1) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {reason!r}; known: {REJECT_REASONS}")
        self.rejected.labels(route=route, reason=reason).inc(count)

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)
