"""Per-record logic of the stream in plain Python: raw Kafka record -> scored row or dead letter.

Spark calls these through ``mapInArrow``; tests call them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import pyarrow as pa

from detectors.request import SCORE_NAMES
from parrotwatch.scoring import (
    InvalidEvent,
    parse_feedback,
    parse_inference,
    regurgitation_index,
    score_event,
    utc,
)

TS = pa.timestamp("us", tz="UTC")

# Columns every output row carries: its origin in Kafka, and the dead-letter reason if any.
ORIGIN_FIELDS = [
    pa.field("kind", pa.string()),  # "ok" or "dlq"
    pa.field("reason", pa.string()),
    pa.field("payload", pa.binary()),  # the original value, for dead letters only
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
    *[pa.field(name, pa.float64()) for name in SCORE_NAMES],
    pa.field("input_tokens", pa.int32()),
    pa.field("output_tokens", pa.int32()),
    pa.field("finish_reason", pa.string()),
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


def inference_row(raw: bytes, max_bytes: int, index_path: str | None = None) -> dict[str, Any]:
    """Scores of one inference payload; raises :class:`InvalidEvent` with the reason.

    ``index_path``: the training-corpus n-gram index for ``regurgitation`` (loaded once per
    Python worker process)."""
    event = parse_inference(raw, max_bytes)
    scored = score_event(event, regurgitation_index(index_path))
    usage = event.usage
    return {
        "request_id": scored.request_id,
        "event_time": scored.timestamp,
        "model": scored.model,
        "app": scored.app,
        **{k: _finite(v) for k, v in scored.scores.items()},
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": event.output_tokens(),
        "finish_reason": event.finish_reason,
    }


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


RowFn = Callable[[bytes, int], dict[str, Any]]


def process_batches(
    batches: Iterable[pa.RecordBatch], row_fn: RowFn, schema: pa.Schema, max_bytes: int
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: Kafka source rows in, one scored or dead-letter row out per record.

    Only ``value`` is turned into Python objects; the origin columns pass through as Arrow arrays.
    """
    computed = [n for n in schema.names if n not in _PASSTHROUGH]
    for batch in batches:
        out: dict[str, list] = {n: [] for n in computed}
        for raw in batch.column("value").to_pylist():
            try:
                row = row_fn(raw, max_bytes)
                row["kind"], row["reason"], row["payload"] = "ok", None, None
            except InvalidEvent as exc:
                row = {"kind": "dlq", "reason": str(exc), "payload": raw}
            except Exception as exc:  # a detector bug must not stop the stream either
                row = {"kind": "dlq", "reason": f"scoring failed: {type(exc).__name__}: {exc}",
                       "payload": raw}
            for n in computed:
                out[n].append(row.get(n))
        arrays = {n: pa.array(v, type=schema.field(n).type) for n, v in out.items()}
        for name, source in _PASSTHROUGH.items():
            arrays[name] = batch.column(source).cast(schema.field(name).type)
        yield pa.RecordBatch.from_arrays([arrays[n] for n in schema.names], schema=schema)


# Output column <- Kafka source column, copied as is.
_PASSTHROUGH = {"key": "key", "topic": "topic", "partition": "partition", "offset": "offset",
                "kafka_timestamp": "timestamp"}
