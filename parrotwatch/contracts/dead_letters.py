"""The ``llm.dlq.v1`` dead-letter message, written by the stream's sinks and by the ingestion API
(OTLP spans it cannot map): bounded whatever the record weighs (docs/hardening.md)."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import orjson


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dead_letter_message(row: dict[str, Any]) -> bytes:
    """``llm.dlq.v1`` value: where the record came from, why and at which stage it was rejected,
    and its head (``DLQ_HEAD_BYTES``), whole size and SHA-256: at most ~25 KB whatever the record
    weighs, so a dead letter is never over the broker's message limit."""
    payload: bytes | None = row["payload"]
    size = row.get("payload_bytes")
    truncated = payload is not None and size is not None and size > len(payload)
    try:
        text, encoding = (payload.decode("utf-8"), "utf-8") if payload is not None else (None, None)
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(payload).decode(), "base64"
    return orjson.dumps({
        "source_topic": row["topic"],
        "partition": row["partition"],
        "offset": row["offset"],
        "kafka_timestamp": rfc3339(row["kafka_timestamp"]) if row["kafka_timestamp"] else None,
        "reason": row["reason"],
        "payload": text,
        "payload_encoding": encoding,
        "payload_truncated": truncated,
        "payload_bytes": size,
        "payload_sha256": row.get("payload_sha256"),
        "stage": row.get("stage"),
        "dead_lettered_at": rfc3339(datetime.now(UTC)),
    })


_JSON_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)", re.S)


def redacted_head(payload: bytes | None) -> bytes | None:
    """A dead letter's payload head as its PII-redacted UTF-8 text (undecodable bytes replaced), for
    ``PARROTWATCH_REDACT_PII`` (policy: docs/pii.md). A head is mostly JSON, where a value may follow
    an escape (``"card:\\n4111..."``): the scan reads a copy with every escape blanked to spaces of
    the same length, so word boundaries hold and offsets map back onto the original text."""
    if payload is None:
        return None
    from parrotwatch.detectors.pii import TRUNCATED, find_pii, scanned_length

    text = payload.decode("utf-8", "replace")
    scanned = _JSON_ESCAPE.sub(lambda m: " " * len(m.group()), text)
    out, last = [], 0
    for span in find_pii(scanned):
        out += [text[last:span.start], f"<{span.entity_type}>"]
        last = span.end
    end = scanned_length(scanned)
    out.append(text[last:end])
    if end < len(text):
        out.append(TRUNCATED)
    return "".join(out).encode("utf-8")


DLQ_KEY_BYTES = 1024


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The record's key, or, past ``DLQ_KEY_BYTES``, its head and SHA-256: a key near the broker's
    message limit must not push its dead letter over it."""
    if key is None or len(key) <= DLQ_KEY_BYTES:
        return key
    return key[:DLQ_KEY_BYTES - 74] + b"...sha256:" + hashlib.sha256(key).hexdigest().encode()


