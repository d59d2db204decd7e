"""One Kafka record of ``llm.alerts.v1`` -> outbox rows, or a dead letter with its reason.

**Reject, not escape.** An alert event that PostgreSQL or JSON cannot hold as it is (a NUL
character, a lone surrogate, a NaN or infinite number anywhere in it) or that is larger than
:data:`MAX_EVENT_BYTES` is not delivered: it becomes a ``dead_letters`` row (reason, Kafka
coordinates, the raw payload as ``bytea``, cut to :data:`MAX_DEAD_PAYLOAD_BYTES` with its size and
sha256 in the reason). Escaping was rejected because an alert's strings are identities: the
``alert_id`` and the labels feed the idempotency key, the receivers' ``match`` patterns and
Alertmanager's label set, so a silently rewritten value would route, deduplicate and group
differently from what the producer meant, while the stream job (the one producer) never emits
such values: one that appears is a bug or a foreign producer, and belongs in dead letters where
an operator sees it, not in a pager.

The checks are defence in depth: the consumer also isolates any record whose rows the database
refuses (:meth:`parrotwatch.services.dispatcher.consumer.AlertConsumer.store`), so a case missed here costs a
second, per-record pass, never a stuck consumer.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.config import ReceiversFile
from parrotwatch.services.dispatcher.outbox import OutboxRow, idempotency_key
from parrotwatch.services.dispatcher.redact import storable_text

MAX_EVENT_BYTES = 256 * 1024  # an alert event is ~1 KB; 256 KiB leaves room for evidence
MAX_DEAD_PAYLOAD_BYTES = 64 * 1024
MAX_REASON_CHARS = 2000


@dataclass
class Parsed:
    """What one record gives: outbox rows, or one dead letter."""

    rows: list[OutboxRow] = field(default_factory=list)
    dead_letter: tuple | None = None
    event: AlertEventV1 | None = None


def unstorable(value: object, where: str = "event") -> str | None:
    """The first place in ``value`` (a validated event dumped to JSON types) that PostgreSQL's
    ``jsonb``/``text`` or strict JSON cannot hold, as ``"labels.app: NUL character"``; None if all
    of it can be stored."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where}: NUL character (\\u0000) in a string"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where}: lone surrogate in a string (not encodable as UTF-8)"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where}: {value!r} is not a JSON number"
    if isinstance(value, dict):
        for key, item in value.items():
            name = storable_text(str(key), 60)
            path = name if where == "event" else f"{where}.{name}"
            if (found := unstorable(str(key), f"{path} (key)")) is not None:
                return found
            if (found := unstorable(item, path)) is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := unstorable(item, f"{where}[{i}]")) is not None:
                return found
    return None


def dead_letter(record, reason: str) -> tuple:
    """The ``dead_letters`` row of a Kafka record: payload cut, reason storable and bounded."""
    payload = record.value
    if payload is not None and len(payload) > MAX_DEAD_PAYLOAD_BYTES:
        digest = hashlib.sha256(payload).hexdigest()
        reason = (f"{reason} [payload {len(payload)} bytes, sha256 {digest}, stored cut to its "
                  f"first {MAX_DEAD_PAYLOAD_BYTES} bytes]")
        payload = payload[:MAX_DEAD_PAYLOAD_BYTES]
    kafka_time = (datetime.fromtimestamp(record.timestamp / 1000, UTC)
                  if record.timestamp and record.timestamp > 0 else None)
    reason = storable_text(reason, MAX_REASON_CHARS)
    return (record.topic, record.partition, record.offset, reason, payload, kafka_time)


def parse(record, config: ReceiversFile) -> Parsed:
    """Validate one record and route it to the matching receivers; never raises."""
    try:
        value = record.value or b""
        if len(value) > MAX_EVENT_BYTES:
            return Parsed(dead_letter=dead_letter(
                record, f"alert event of {len(value)} bytes is over the {MAX_EVENT_BYTES}-byte limit"))
        try:
            event = AlertEventV1.model_validate_json(value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}"
                                 for e in exc.errors(include_url=False)[:10])
            return Parsed(dead_letter=dead_letter(record, f"invalid alert event v1: {problems}"))
        problem = unstorable(event.model_dump(mode="json"))
        if problem is not None:
            return Parsed(dead_letter=dead_letter(
                record, f"alert event v1 cannot be stored or delivered: {problem}"))
        matched = [r.name for r in config.receivers if r.match.matches(event)]
        rows = [OutboxRow(idempotency_key(event, name), name, event, record.partition, record.offset)
                for name in matched]
        return Parsed(rows=rows, event=event)
    except Exception as exc:  # noqa: BLE001 (one record's surprise must not stop the consumer)
        return Parsed(dead_letter=dead_letter(
            record, f"cannot read the alert event: {type(exc).__name__}: {exc}"))
