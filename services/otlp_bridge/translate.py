"""One Kafka record of OTLP traces -> the records to write: inference events v1 and dead letters.

:func:`translate` never raises: a record that cannot be decoded, a span that cannot be mapped, an
event over ``max_event_bytes`` and any unexpected error become dead letters with their reason, so
no record can fail a batch twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from parrotwatch.contracts.dead_letters import dead_letter_message, redacted_head
from parrotwatch.contracts.otlp import JSON, PROTOBUF, OtlpDecodeError, decode_traces, map_traces
from parrotwatch.contracts.reasons import bounded_reason

Encoding = Literal["otlp_proto", "otlp_json"]
MEDIA: dict[str, str] = {"otlp_proto": PROTOBUF, "otlp_json": JSON}
#: a dead letter keeps this head of the record it stands for (as the stream's sinks do)
HEAD_BYTES = 16 * 1024

Message = tuple[bytes | None, bytes]
"""``(key, value)`` of one Kafka message to write."""


@dataclass
class Translated:
    """What one Kafka record gives: events for ``llm.inference.v1``, dead letters for
    ``llm.dlq.v1``, and the number of non-LLM spans skipped."""

    events: list[Message] = field(default_factory=list)
    dead: list[Message] = field(default_factory=list)
    skipped: int = 0


def _dead(record: Any, reason: str, payload: bytes | None, stage: str, redact: bool = False) -> Message:
    value = record.value
    head = payload[:HEAD_BYTES] if payload is not None else None
    ts = getattr(record, "timestamp", None)
    return (None, dead_letter_message({
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "kafka_timestamp": datetime.fromtimestamp(ts / 1000, UTC) if ts and ts > 0 else None,
        "reason": bounded_reason(reason),
        "payload": redacted_head(head) if redact else head,
        "payload_bytes": len(payload) if payload is not None else None,
        "payload_sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
        "stage": stage}))


def translate(record: Any, *, encoding: Encoding = "otlp_proto", app_attribute: str | None = None,
              max_event_bytes: int = 1_048_576, max_spans: int = 10_000,
              redact_pii: bool = False) -> Translated:
    """The messages that stand for ``record`` (a kafka-python ``ConsumerRecord``: ``topic``,
    ``partition``, ``offset``, ``timestamp`` in ms, ``value`` bytes or None); ``redact_pii``: dead
    letters carry their payload's redacted text (docs/pii.md)."""
    def dead(reason: str, payload: bytes | None, stage: str) -> Message:
        return _dead(record, reason, payload, stage, redact_pii)

    out = Translated()
    value = record.value
    if not value:
        out.dead.append(dead("the record is empty: an OTLP traces record holds a TracesData message",
                             value, "decode"))
        return out
    try:
        batch = map_traces(decode_traces(value, MEDIA[encoding], max_spans=max_spans),
                           app_attribute=app_attribute, max_spans=max_spans)
    except OtlpDecodeError as exc:
        out.dead.append(dead(f"not OTLP traces ({encoding}): {exc}", value, "decode"))
        return out
    except Exception as exc:  # noqa: BLE001 (a bug must dead-letter the record, not stop the bridge)
        out.dead.append(dead(f"unexpected {type(exc).__name__} decoding the record: {exc}", value,
                             "decode"))
        return out
    out.skipped = batch.skipped
    for span in batch.spans:
        if span.event is None:
            out.dead.append(dead(span.reason or "unmappable LLM span", span.span_json, "map"))
            continue
        try:
            body = orjson.dumps(span.event)
        except Exception as exc:  # noqa: BLE001 (content the encoder refuses is a dead letter)
            out.dead.append(dead(f"the span's event cannot be encoded ({type(exc).__name__}: {exc})",
                                 span.span_json, "map"))
            continue
        if len(body) > max_event_bytes:
            out.dead.append(dead(f"the span's inference event weighs {len(body):,} bytes, over "
                                 f"max_event_bytes ({max_event_bytes:,}); record less content per span",
                                 span.span_json, "map"))
            continue
        out.events.append((span.event["request_id"].encode("utf-8"), body))
    return out
