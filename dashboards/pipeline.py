"""Pipeline health: micro-batch durations and rows/s per sink, delays, the stream's watermark.

Kafka consumer lag in offsets is not in PostgreSQL (Spark keeps the offsets in its checkpoint),
so these panels show lag as time instead: Kafka produce time to storage
(``stored_at - kafka_timestamp``) and the watermark delay (``stream_watermarks``).
"""

from __future__ import annotations

from parrotwatch.dashboards.common import ALERTS_ANNOTATION, SEGMENT, SEGMENT_VARIABLES
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query, Row

_SINK = "split_part(sink, '-', 1)"  # "inference-<id>" -> "inference"

BATCHES = Row("Micro-batches (sink_batches)", (
    Panel("Batch duration", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(committed_at, $__interval), {_SINK} || ' mean' AS metric,
       avg(duration_ms) AS duration_ms
FROM sink_batches WHERE $__timeFilter(committed_at) GROUP BY 1, 2 ORDER BY 1, 2"""), Query(f"""
SELECT $__timeGroupAlias(committed_at, $__interval), {_SINK} || ' max' AS metric,
       max(duration_ms) AS duration_ms
FROM sink_batches WHERE $__timeFilter(committed_at) GROUP BY 1, 2 ORDER BY 1, 2""")),
          ("sink_batches",), "Time to store a micro-batch in PostgreSQL and Kafka, per sink.",
          unit="ms", min_interval="10s"),
    Panel("Rows per second", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(committed_at, $__interval), {_SINK} || ' in' AS metric,
       sum(rows_in) / ($__interval_ms / 1000.0) AS rows_per_s
FROM sink_batches WHERE $__timeFilter(committed_at) GROUP BY 1, 2 ORDER BY 1, 2"""), Query(f"""
SELECT $__timeGroupAlias(committed_at, $__interval), {_SINK} || ' dead letters' AS metric,
       sum(dead_letters) / ($__interval_ms / 1000.0) AS rows_per_s
FROM sink_batches WHERE $__timeFilter(committed_at) GROUP BY 1, 2 ORDER BY 1, 2""")),
          ("sink_batches",), "Records read from Kafka per second, and those dead-lettered.",
          unit="rowsps", min_interval="10s"),
    Panel("Recent micro-batches", "table", (Query("""
SELECT committed_at AS "time", sink, batch_id, rows_in, rows_stored, dead_letters, duration_ms
FROM sink_batches WHERE $__timeFilter(committed_at) ORDER BY committed_at DESC LIMIT 50""",
                                                  "table"),), ("sink_batches",), width=24,
          min_interval=None),
))

DELAY = Row("Delays (Kafka lag in offsets is not stored in PostgreSQL: see the description)", (
    Panel("Kafka to PostgreSQL delay", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - kafka_timestamp))
         AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM stored_at - kafka_timestamp))
         AS p95
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND kafka_timestamp IS NOT NULL
GROUP BY 1 ORDER BY 1"""),), ("inference_scores",),
          "Seconds from the Kafka produce time to the row's commit: the consumer lag as time "
          "(offset lag lives in Spark's checkpoint, not in PostgreSQL).", unit="s"),
    Panel("Stream watermark", "table", (Query("""
SELECT sink, max_event_time, evaluated_until, updated_at,
       extract(epoch FROM now() - max_event_time) AS watermark_delay_s,
       extract(epoch FROM max_event_time - evaluated_until) AS evaluation_lag_s
FROM stream_watermarks ORDER BY sink""", "table"),), ("stream_watermarks",),
          "Largest event time stored; windows up to evaluated_until went through the alert rules. "
          "watermark_delay_s grows while no new events arrive.", min_interval=None),
))

PIPELINE = Dashboard("parrotwatch-pipeline", "Parrotwatch / Pipeline health",
                     "The streaming job's batches, throughput and delays.", (BATCHES, DELAY),
                     SEGMENT_VARIABLES, (ALERTS_ANNOTATION,))
