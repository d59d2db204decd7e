"""Per-record logic of the stream in plain Python: raw Kafka record -> scored row or dead letter.

Spark calls these through ``mapInArrow``; tests call them directly.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import pyarrow as pa

from parrotwatch.detectors.calibration.sampling import PoolDesign
from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.gc_pause import gc_paused
from parrotwatch.quality import QualityConfig, prompt_text
from parrotwatch.scoring import (
    InvalidEvent,
    ScoredEvent,
    bounded_reason,
    parse_feedback,
    parse_inference,
    regurgitation_index,
    score_events_or_reasons,
    utc,
)

log = logging.getLogger(__name__)

TS = pa.timestamp("us", tz="UTC")
EXCERPT_CHARS = 300
#: A dead letter carries the head of its record (the whole record stays on its source topic at
#: its partition and offset, for the topic's retention) with the record's size and SHA-256: so a
#: micro-batch of N records brings at most N x (16 KiB + a 2,000-character reason) of dead letters
#: to the driver, whatever the records weigh.
DLQ_HEAD_BYTES = 16 * 1024

# Columns every output row carries: its origin in Kafka, and the dead-letter reason if any.
ORIGIN_FIELDS = [
    pa.field("kind", pa.string()),  # "ok" or "dlq"
    pa.field("reason", pa.string()),
    pa.field("payload", pa.binary()),  # dead letters only: the record's first DLQ_HEAD_BYTES
    pa.field("payload_bytes", pa.int64()),  # dead letters only: the record's whole size
    pa.field("payload_sha256", pa.string()),  # dead letters only: of the whole record
    pa.field("stage", pa.string()),  # dead letters only: parse, score, build or store
    pa.field("key", pa.binary()),
    pa.field("topic", pa.string()),
    pa.field("partition", pa.int32()),
    pa.field("offset", pa.int64()),
    pa.field("kafka_timestamp", TS),
]

INFERENCE_SCHEMA = pa.schema([
    pa.field("request_id", pa.string()),
    pa.field("event_time", TS),
    pa.field("model", pa.string()),
    pa.field("app", pa.string()),
    *[pa.field(name, pa.float64()) for name in SCORE_NAMES],  # the metric registry's scores
    pa.field("input_tokens", pa.int32()),
    pa.field("output_tokens", pa.int32()),
    pa.field("finish_reason", pa.string()),
    pa.field("score_source", pa.string()),
    pa.field("language", pa.string()),  # of the response: ISO 639-1 or "und"; null without models
    pa.field("drilldown", pa.string()),  # JSON: unsupported spans, surprising tokens
    pa.field("prompt_excerpt", pa.string()),  # first 300 characters, for ood drill-down
    pa.field("prompt_embedding", pa.binary()),  # float16, for the driver's drift stage
    pa.field("response_embedding", pa.binary()),
    pa.field("review_text", pa.binary()),  # JSON, bounded: the text kept for review, if drawn
    *ORIGIN_FIELDS,
])

FEEDBACK_SCHEMA = pa.schema([
    pa.field("feedback_id", pa.string()),
    pa.field("request_id", pa.string()),
    pa.field("event_time", TS),
    pa.field("thumb", pa.int16()),
    pa.field("score", pa.float64()),
    pa.field("label", pa.string()),
    pa.field("correction", pa.string()),
    pa.field("comment", pa.string()),
    pa.field("annotator", pa.string()),
    pa.field("metadata", pa.string()),  # JSON text
    *ORIGIN_FIELDS,
])


def _finite(x: float | None) -> float | None:
    return x if x is None or (x == x and abs(x) != float("inf")) else None


#: A kept review text (prompt, response, sources as UTF-8 JSON) weighs at most this much.
REVIEW_TEXT_BYTES = 16 * 1024
_REVIEW_SHARES = {"prompt": 0.3, "response": 0.5, "sources": 0.2}  # of the byte budget


def _clean(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` storable in PostgreSQL (NUL -> U+FFFD, a lone surrogate -> '?') and cut to at
    most ``max_bytes`` of UTF-8 on a character boundary; (text, whether it was cut)."""
    data = text.replace("\x00", "\ufffd").encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return data.decode("utf-8"), False
    return data[:max_bytes].decode("utf-8", "ignore") + "\u2026", True


def review_text(event, p: float, budget: int = REVIEW_TEXT_BYTES) -> bytes:
    """The JSON kept for review of a drawn request: its prompt, response and sources, cleaned
    and cut so that the whole stays under ``budget`` bytes (escapes included); ``p`` is its
    first-phase keep probability."""
    limit = budget
    while True:
        prompt, cut_p = _clean(prompt_text(event), int(budget * _REVIEW_SHARES["prompt"]))
        response, cut_r = _clean(event.response or "", int(budget * _REVIEW_SHARES["response"]))
        sources, cut_s, room = [], False, int(budget * _REVIEW_SHARES["sources"])
        for text in event.sources or ():
            clean, cut = _clean(text, room)
            sources.append(clean)
            cut_s |= cut
            room -= len(clean.encode())
            if room <= 0:
                cut_s = True
                break
        blob = orjson.dumps({"prompt": prompt, "response": response, "sources": sources,
                             "p": p, "truncated": bool(cut_p or cut_r or cut_s)})
        if len(blob) <= limit:
            return blob
        if budget <= 1:  # the JSON's own keys do not fit: never loop forever
            raise ValueError(f"a review text cannot fit in {limit} bytes")
        budget //= 2  # escapes (control characters) inflated it: cut harder


def _review_column(event, scored: ScoredEvent, pool: PoolDesign | None) -> bytes | None:
    """The review text when the pool design keeps this request; None otherwise, or when it
    cannot be built (never at the cost of the request's scores)."""
    if pool is None or pool.base <= 0:
        return None
    try:
        p = pool.kept(scored.request_id, scored.scores)
        return review_text(event, p) if p > 0 else None
    except Exception as exc:  # the review copy is optional: the scores must still be stored
        log.warning("request %r: its review text was not kept (%s: %s)", scored.request_id,
                    type(exc).__name__, exc)
        return None


def _row(event, scored: ScoredEvent, pool: PoolDesign | None = None) -> dict[str, Any]:
    usage = event.usage
    q = scored.quality
    return {
        "request_id": scored.request_id,
        "event_time": scored.timestamp,
        "model": scored.model,
        "app": scored.app,
        **{k: _finite(v) for k, v in scored.scores.items()},
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": event.output_tokens(),
        "finish_reason": event.finish_reason,
        "score_source": q.score_source if q else ("logprobs" if event.logprobs else None),
        "language": q.language if q else None,
        "drilldown": orjson.dumps(q.drilldown).decode() if q and q.drilldown else None,
        "prompt_excerpt": prompt_text(event)[:EXCERPT_CHARS] if q and q.prompt_embedding else None,
        "prompt_embedding": q.prompt_embedding if q else None,
        "response_embedding": q.response_embedding if q else None,
        "review_text": _review_column(event, scored, pool),
    }


def dead_letter(raw: bytes | None, reason: str, stage: str, redact_pii: bool = False) -> dict[str, Any]:
    """The dead-letter columns of a record: its bounded reason, head (PII-redacted with
    ``redact_pii``: docs/pii.md), size and hash."""
    head = raw[:DLQ_HEAD_BYTES] if raw is not None else None
    if redact_pii:
        from parrotwatch.contracts.dead_letters import redacted_head

        head = redacted_head(head)
    return {"kind": "dlq", "reason": bounded_reason(reason), "stage": stage,
            "payload": head,
            "payload_bytes": len(raw) if raw is not None else None,
            "payload_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None}


_OK = {"kind": "ok", "reason": None, "stage": None, "payload": None, "payload_bytes": None,
       "payload_sha256": None}


def inference_rows(raws: list[bytes | None], max_bytes: int, index_path: str | None = None,
                   quality: QualityConfig | None = None, pool: PoolDesign | None = None,
                   redact_pii: bool = False) -> list[dict[str, Any]]:
    """One scored row or dead letter per payload, in order.

    Valid events are scored together (the model-based detectors batch); a detector failure
    sends only the events it fails on to the dead letters.
    ``index_path``: the training-corpus n-gram index for ``regurgitation`` (loaded once per
    Python worker process); ``pool``: which requests' texts are kept for human review;
    ``redact_pii``: redact the stored texts (:mod:`parrotwatch.streaming.redaction`)."""
    out = _inference_rows(raws, max_bytes, index_path, quality, pool, redact_pii)
    if redact_pii:
        from parrotwatch.streaming.redaction import redact_payload

        for row in out:
            if row["kind"] == "dlq":
                try:
                    row["payload"] = redact_payload(row["payload"])
                except Exception:  # never store what could not be redacted, never fail the batch
                    row["payload"] = None
    return out


def _redact_texts(row: dict[str, Any], event, scored: ScoredEvent, pool: PoolDesign | None) -> None:
    """The row's stored texts, redacted: the (costly) redaction of the whole event only for a row
    that keeps a review text, a prompt excerpt from the prompt's head."""
    from parrotwatch.detectors.pii import redact
    from parrotwatch.streaming.redaction import redact_drilldown, redact_event

    if row["review_text"] is not None:  # a few percent of requests: the whole event
        row["review_text"] = _row(redact_event(event), scored, pool)["review_text"]
    if row["prompt_excerpt"] is not None:  # its head only, with room for a value cut at the end
        row["prompt_excerpt"] = (redact(prompt_text(event)[:EXCERPT_CHARS + 200]) or "")[:EXCERPT_CHARS]
    row["drilldown"] = redact_drilldown(row["drilldown"])


def _inference_rows(raws, max_bytes, index_path, quality, pool, redact_pii) -> list[dict[str, Any]]:
    out: list[dict[str, Any] | None] = [None] * len(raws)
    events, where = [], []
    for i, raw in enumerate(raws):
        try:
            events.append(parse_inference(raw, max_bytes))
            where.append(i)
        except InvalidEvent as exc:
            out[i] = dead_letter(raw, str(exc), "parse")
        except Exception as exc:  # a parser bug must not stop the stream either
            out[i] = dead_letter(raw, f"parsing failed: {type(exc).__name__}: {exc}", "parse")
    scored = score_events_or_reasons(events, regurgitation_index(index_path), quality)
    for i, event, s in zip(where, events, scored, strict=True):
        if isinstance(s, str):
            out[i] = dead_letter(raws[i], s, "score")
            continue
        try:
            row = _row(event, s, pool)
            if redact_pii:
                _redact_texts(row, event, s, pool)
            out[i] = {**row, **_OK}
        except Exception as exc:
            out[i] = dead_letter(raws[i], f"building its row failed: {type(exc).__name__}: {exc}",
                                 "build")
    return out


def feedback_row(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """Columns of one feedback payload; raises :class:`InvalidEvent` with the reason."""
    fb = parse_feedback(raw, max_bytes)
    return {
        "feedback_id": fb.feedback_id,
        "request_id": fb.request_id,
        "event_time": utc(fb.timestamp),
        "thumb": fb.thumb,
        "score": fb.score,
        "label": fb.label,
        "correction": fb.correction,
        "comment": fb.comment,
        "annotator": fb.annotator,
        "metadata": orjson.dumps(fb.metadata).decode() if fb.metadata is not None else None,
    }


BatchFn = Callable[[list[bytes | None], int], list[dict[str, Any]]]


def feedback_rows(raws: list[bytes | None], max_bytes: int) -> list[dict[str, Any]]:
    """One feedback row or dead letter per payload, in order."""
    out = []
    for raw in raws:
        try:
            out.append({**feedback_row(raw, max_bytes), **_OK})
        except InvalidEvent as exc:
            out.append(dead_letter(raw, str(exc), "parse"))
        except Exception as exc:  # a bug must not stop the stream either
            out.append(dead_letter(raw, f"parsing failed: {type(exc).__name__}: {exc}", "parse"))
    return out


def process_batches(
    batches: Iterable[pa.RecordBatch], batch_fn: BatchFn, schema: pa.Schema, max_bytes: int
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: Kafka source rows in, one scored or dead-letter row out per record.

    Only ``value`` is turned into Python objects; the origin columns pass through as Arrow arrays.
    """
    computed = [n for n in schema.names if n not in _PASSTHROUGH]
    for batch in batches:
        with gc_paused():  # ~10^6 acyclic objects per batch: see parrotwatch.gc_pause
            values = batch.column("value").to_pylist()
            rows = batch_fn(values, max_bytes)
            try:
                arrays = _columns(rows, computed, schema)
            except Exception as exc:  # one row Arrow cannot hold must not fail the task
                log.warning("a row of this batch does not convert to Arrow (%s); isolating it",
                            exc)
                redact = bool(getattr(batch_fn, "keywords", {}).get("redact_pii"))
                rows = [_convertible(row, raw, computed, schema, redact) for row, raw in zip(
                    rows, values, strict=True)]
                arrays = _columns(rows, computed, schema)
            del rows, values
        for name, source in _PASSTHROUGH.items():
            arrays[name] = batch.column(source).cast(schema.field(name).type)
        yield pa.RecordBatch.from_arrays([arrays[n] for n in schema.names], schema=schema)


def _columns(rows: list[dict], names: list[str], schema: pa.Schema) -> dict[str, pa.Array]:
    return {n: pa.array([r.get(n) for r in rows], type=schema.field(n).type) for n in names}


def _convertible(row: dict, raw: bytes | None, names: list[str], schema: pa.Schema,
                 redact_pii: bool = False) -> dict:
    """``row``, or its dead letter when one of its values does not convert to its column."""
    try:
        _columns([row], names, schema)
        return row
    except Exception as exc:
        return dead_letter(raw, f"its row does not convert ({type(exc).__name__}: {exc})", "build",
                           redact_pii)


# Output column <- Kafka source column, copied as is.
_PASSTHROUGH = {"key": "key", "topic": "topic", "partition": "partition", "offset": "offset",
                "kafka_timestamp": "timestamp"}
