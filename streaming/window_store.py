"""Merge window partials into PostgreSQL, inside the sink's transaction (so exactly once)."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from parrotwatch.streaming.windows import (
    WINDOW,
    MetricPartial,
    SegmentWindow,
    WindowPartial,
    sketch_from_bytes,
    sketch_to_bytes,
)

#: a partition without data for this long no longer holds the watermark back
PARTITION_IDLE_AFTER = timedelta(seconds=60)


def merge_windows(conn: psycopg.Connection, parts: dict[SegmentWindow, WindowPartial]) -> None:
    """Add ``parts`` to ``window_counts`` / ``window_metrics`` (rows locked while merging)."""
    if not parts:
        return
    keys = sorted(parts)  # a fixed lock order: two writers cannot deadlock
    models, apps, starts = (list(c) for c in zip(*keys, strict=True))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO window_counts AS w (model, app, window_start, window_end, requests, examples)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (model, app, window_start) DO UPDATE SET "
            "requests = w.requests + EXCLUDED.requests, "
            "examples = (w.examples || EXCLUDED.examples)[1:5], updated_at = clock_timestamp()",
            [(m, a, s, s + WINDOW, parts[(m, a, s)].requests, parts[(m, a, s)].examples)
             for m, a, s in keys])
        existing = {
            (m, a, s, metric): MetricPartial(n, total, flagged, sketch_from_bytes(sketch))
            for m, a, s, metric, n, total, flagged, sketch in cur.execute(
                "SELECT model, app, window_start, metric, n, sum, flagged, sketch "
                "FROM window_metrics WHERE (model, app, window_start) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])) "
                "ORDER BY model, app, window_start, metric FOR UPDATE",
                (models, apps, starts))
        }
        rows = []
        for (m, a, s) in keys:
            for metric, part in sorted(parts[(m, a, s)].metrics.items()):
                merged = existing.get((m, a, s, metric)) or MetricPartial()
                merged.merge(part)
                rows.append((m, a, s, metric, merged.n, merged.total, merged.flagged,
                             merged.quantile(0.5), merged.quantile(0.95), merged.quantile(0.99),
                             sketch_to_bytes(merged.sketch)))
        cur.executemany(
            "INSERT INTO window_metrics (model, app, window_start, metric, n, sum, flagged, p50, "
            "p95, p99, sketch) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (model, app, window_start, metric) DO UPDATE SET n = EXCLUDED.n, "
            "sum = EXCLUDED.sum, flagged = EXCLUDED.flagged, p50 = EXCLUDED.p50, "
            "p95 = EXCLUDED.p95, p99 = EXCLUDED.p99, sketch = EXCLUDED.sketch", rows)


def add_counts(conn: psycopg.Connection, column: str,
               counts: dict[tuple[str, str, datetime], int]) -> None:
    """Add to one counter column of ``window_counts`` (feedback, thumbs-down, dead letters)."""
    if column not in {"feedback_count", "thumbs_down", "dead_letters"}:
        raise ValueError(f"not a counter column: {column}")
    conn.cursor().executemany(
        f"INSERT INTO window_counts AS w (model, app, window_start, window_end, {column}) "
        f"VALUES (%s, %s, %s, %s, %s) ON CONFLICT (model, app, window_start) DO UPDATE SET "
        f"{column} = w.{column} + EXCLUDED.{column}, updated_at = clock_timestamp()",
        [(m, a, s, s + WINDOW, n) for (m, a, s), n in sorted(counts.items())])


def advance_watermark(conn: psycopg.Connection, sink: str, rows: list[dict],
                      idle_after: timedelta = PARTITION_IDLE_AFTER) -> None:
    """Advance the sink's watermark base with the event times of ``rows`` (each with ``partition``).

    Per Kafka partition, its largest event time (capped at now + 5 minutes: one fast clock cannot run
    ahead); the sink's ``max_event_time`` = the least of those over the partitions that received data
    within ``idle_after`` of wall-clock time (Flink's per-partition watermarks with idleness), never
    moving back. A partition that lags in event time holds the windows open until it catches up or
    goes idle."""
    latest: dict[int, datetime] = {}
    for r in rows:
        p = int(r["partition"])
        if p not in latest or r["event_time"] > latest[p]:
            latest[p] = r["event_time"]
    if not latest:
        return
    conn.cursor().executemany(
        "INSERT INTO stream_partition_watermarks AS w (sink, kafka_partition, max_event_time) "
        "VALUES (%s, %s, least(%s, now() + interval '5 minutes')) "
        "ON CONFLICT (sink, kafka_partition) DO UPDATE SET max_event_time = greatest(w.max_event_time, "
        "EXCLUDED.max_event_time), updated_at = clock_timestamp()",
        [(sink, p, t) for p, t in sorted(latest.items())])
    conn.execute(
        "INSERT INTO stream_watermarks AS w (sink, max_event_time) "
        "SELECT %(sink)s, min(max_event_time) FROM stream_partition_watermarks "
        "WHERE sink = %(sink)s AND updated_at >= clock_timestamp() - %(idle)s "
        "ON CONFLICT (sink) DO UPDATE SET max_event_time = greatest(w.max_event_time, "
        "EXCLUDED.max_event_time), updated_at = clock_timestamp()",
        {"sink": sink, "idle": idle_after})
