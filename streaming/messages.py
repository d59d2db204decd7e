"""The Kafka messages the sinks publish: ``llm.scores.v1`` scores and ``llm.dlq.v1`` dead letters
(bounded whatever their record weighs: see docs/hardening.md)."""

from __future__ import annotations

from typing import Any

import orjson

from parrotwatch.contracts.dead_letters import DLQ_KEY_BYTES, dead_letter_key, dead_letter_message
from parrotwatch.detectors.metrics import SCORE_NAMES

__all__ = ["DLQ_KEY_BYTES", "dead_letter_key", "dead_letter_message", "score_message"]


def score_message(row: dict[str, Any]) -> bytes:
    """``llm.scores.v1`` value: request id, segment, event time and every score."""
    return orjson.dumps({  # OPT_UTC_Z: the same RFC 3339 text as dead_letters.rfc3339, without isoformat()
        "request_id": row["request_id"],
        "timestamp": row["event_time"],
        "model": row["model"],
        "app": row["app"],
        **{k: row[k] for k in SCORE_NAMES},
    }, option=orjson.OPT_UTC_Z)
