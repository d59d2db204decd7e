"""What the sinks derive from newly stored rows, in the same transaction: window aggregates,
feedback and dead-letter counts per window, and the stream's event-time watermark."""

from __future__ import annotations

from collections import Counter

import orjson
import psycopg
from psycopg.types.json import Jsonb

from parrotwatch.db import applied_thresholds
from parrotwatch.detectors.flags import FLAGS, Flag
from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.streaming.window_store import add_counts, advance_watermark, merge_windows
from parrotwatch.streaming.windows import partials, window_start

ALL_SEGMENTS = ("*", "*")
UNKNOWN_SEGMENT = ("unknown", "unknown")  # feedback on a request not (yet) stored
DRILLDOWN_KEYS = ("unsupported_spans", "surprising_tokens", "nearest_reference", "pii_entities",
                  "injection_match")


def insert_dead_letters(cur: psycopg.Cursor, rows: list[dict]) -> None:
    """Store dead-letter rows (``topic``, ``partition``, ``offset``, ``reason``, ``payload``,
    ``kafka_timestamp`` if any, ``payload_bytes``, ``payload_sha256``, ``stage``); one stored
    before under the same (topic, partition, offset) is kept."""
    cur.executemany(
        "INSERT INTO dead_letters (source_topic, kafka_partition, kafka_offset, reason,"
        " payload, kafka_timestamp, payload_bytes, payload_sha256, stage) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [(r["topic"], r["partition"], r["offset"], r["reason"], r["payload"], r.get("kafka_timestamp"),
          r["payload_bytes"], r["payload_sha256"], r["stage"]) for r in rows])


def count_dead_letters(conn: psycopg.Connection, dead_letters: list[dict]) -> None:
    """Dead letters per minute of Kafka time: a malformed record has no trusted segment."""
    counts = Counter((*ALL_SEGMENTS, window_start(r["kafka_timestamp"]))
                     for r in dead_letters if r["kafka_timestamp"] is not None)
    add_counts(conn, "dead_letters", dict(counts))


def applied_flags(conn: psycopg.Connection) -> dict[str, Flag]:
    """The registry's flags, with the thresholds applied from calibration records
    (``parrotwatch calibrate apply``) in their place; read in the batch's own transaction."""
    applied = applied_thresholds(conn)
    return {name: Flag(applied[name], flag.direction) if name in applied else flag
            for name, flag in FLAGS.items()}


def inference_after_store(conn: psycopg.Connection, tag: str, new_rows: list[dict],
                          dead_letters: list[dict], flags: dict[str, Flag] = FLAGS) -> None:
    merge_windows(conn, partials(new_rows, SCORE_NAMES, flags))
    count_dead_letters(conn, dead_letters)
    advance_watermark(conn, "inference", new_rows)


def feedback_after_store(conn: psycopg.Connection, tag: str, new_rows: list[dict],
                         dead_letters: list[dict]) -> None:
    """Feedback and thumbs-down counts per (model, app) of the rated request and per minute of
    the feedback's own event time. Rows are locked in the inference sink's order (segments,
    then the '*' dead-letter rows), so the two sinks cannot deadlock."""
    if not new_rows:
        count_dead_letters(conn, dead_letters)
        return
    segment = dict(((rid, (m, a)) for rid, m, a in conn.execute(
        "SELECT request_id, model, app FROM inference_scores WHERE request_id = ANY(%s)",
        ([r["request_id"] for r in new_rows],))))
    feedback, thumbs_down = Counter(), Counter()
    for r in new_rows:
        key = (*segment.get(r["request_id"], UNKNOWN_SEGMENT), window_start(r["event_time"]))
        feedback[key] += 1
        if r["thumb"] == -1:
            thumbs_down[key] += 1
    add_counts(conn, "feedback_count", dict(feedback))
    add_counts(conn, "thumbs_down", dict(thumbs_down))
    count_dead_letters(conn, dead_letters)


def store_drilldown(conn: psycopg.Connection, tag: str, new_rows: list[dict]) -> None:
    """The bounded drill-down of newly stored requests (unsupported spans, most surprising
    tokens, nearest references of an out-of-distribution prompt)."""
    values = []
    for r in new_rows:
        if not r.get("drilldown"):
            continue
        d = orjson.loads(r["drilldown"])
        values.append((r["request_id"], r["event_time"], r["model"], r["app"],
                       *(Jsonb(d[k]) if k in d else None for k in DRILLDOWN_KEYS), tag))
    if values:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO request_drilldown (request_id, event_time, model, app, "
                f"{', '.join(DRILLDOWN_KEYS)}, sink_batch) "
                f"VALUES ({', '.join(['%s'] * (len(DRILLDOWN_KEYS) + 5))}) ON CONFLICT DO NOTHING", values)


def store_review_texts(conn: psycopg.Connection, tag: str, new_rows: list[dict]) -> None:
    """The texts the stream kept for human review (``review_text``, already cleaned and bounded
    by the workers: see :func:`parrotwatch.streaming.records.review_text`), one row per request."""
    values = []
    for r in new_rows:
        if not r.get("review_text"):
            continue
        t = orjson.loads(r["review_text"])
        values.append((r["request_id"], r["event_time"], r["model"], r["app"], t["p"],
                       t["prompt"], t["response"], Jsonb(t["sources"]), tag))
    if values:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO review_texts (request_id, event_time, model, app, pool_probability, "
                "prompt, response, sources, sink_batch) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING", values)
