"""Overview: traffic per model and app, latency quantiles, tokens/s, error and dead-letter rates."""

from __future__ import annotations

from parrotwatch.dashboards.common import ALERTS_ANNOTATION, SEGMENT, SEGMENT_VARIABLES
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query, Row
from parrotwatch.detectors.metrics import metric

LATENCY_UNIT = metric("latency_ms").unit

_LATENCY = """
SELECT $__timeGroupAlias(event_time, $__interval),
       percentile_cont(0.50) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99
FROM inference_scores
WHERE $__timeFilter(event_time) AND {segment} AND latency_ms IS NOT NULL
GROUP BY 1 ORDER BY 1"""

STATS = Row("Totals in the time range", (
    Panel("Requests", "stat", (Query(f"""
SELECT coalesce(sum(requests), 0) AS requests FROM window_counts
WHERE $__timeFilter(window_start) AND {SEGMENT}""", "table"),), ("window_counts",),
          "Scored requests of the selected models and apps.", width=6, height=4),
    Panel("Requests per second", "stat", (Query(f"""
SELECT coalesce(sum(requests), 0)
       / extract(epoch FROM $__timeTo()::timestamptz - $__timeFrom()::timestamptz) AS "req/s"
FROM window_counts WHERE $__timeFilter(window_start) AND {SEGMENT}""", "table"),),
          ("window_counts",), "Mean request rate over the time range.", unit="reqps",
          width=6, height=4),
    Panel("Abnormal finish share", "stat", (Query(f"""
SELECT avg((finish_reason <> 'stop')::int) AS "finish_reason <> stop" FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT}""", "table"),), ("inference_scores",),
          "Requests that ended for another reason than `stop` (length, content filter, error) among "
          "those that logged a finish_reason. The v1 event has no error status: this is the "
          "closest error signal.", unit="percentunit", width=6, height=4),
    Panel("Dead letters", "stat", (Query("""
SELECT coalesce(sum(dead_letters), 0) AS dead_letters FROM window_counts
WHERE model = '*' AND $__timeFilter(window_start)""", "table"),), ("window_counts",),
          "Invalid records sent to llm.dlq.v1 (all models and apps: a bad record has no trusted "
          "segment).", width=6, height=4),
))

TRAFFIC = Row("Traffic and latency", (
    Panel("Traffic per model and app", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(window_start, $__interval), model || ' / ' || app AS metric,
       sum(requests) / ($__interval_ms / 1000.0) AS "req/s"
FROM window_counts WHERE $__timeFilter(window_start) AND {SEGMENT}
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("window_counts",),
          "Requests per second by event time, from the one-minute windows.", unit="reqps"),
    Panel("Latency p50 / p95 / p99", "timeseries", (Query(_LATENCY.format(segment=SEGMENT)),),
          ("inference_scores",), "Exact quantiles of latency_ms over the requests of each "
          "interval (all selected models and apps together).", unit=LATENCY_UNIT),
    Panel("p95 latency by model", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), model AS metric,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND latency_ms IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("inference_scores",), unit=LATENCY_UNIT),
    Panel("Tokens per second", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), model AS metric,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY tokens_per_s) AS "median tokens/s"
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND tokens_per_s IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2"""), Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), 'output tokens/s, all' AS metric,
       sum(output_tokens) / ($__interval_ms / 1000.0) AS "throughput"
FROM inference_scores WHERE $__timeFilter(event_time) AND {SEGMENT}
GROUP BY 1, 2 ORDER BY 1""")), ("inference_scores",),
          "Median generation speed per request by model (output tokens / latency), and the "
          "total output-token throughput of the selection."),
    Panel("Cost", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(window_start, $__interval), model AS metric, sum(sum) AS "usd"
FROM window_metrics
WHERE metric = 'cost_usd' AND $__timeFilter(window_start) AND {SEGMENT}
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("window_metrics",),
          "Spend per interval by model at list prices: the sum of cost_usd over the one-minute "
          "windows (docs/cost.md). Models without a price add nothing: see the next panel.",
          unit="currencyUSD"),
    Panel("Requests without a price", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), model AS metric,
       avg((cost_usd IS NULL)::int) AS share
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT}
  AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("inference_scores",),
          "Share of requests with token counts but no cost_usd: their model is not in the price "
          "table (add it, or your own prices, with PARROTWATCH_PRICES).", unit="percentunit",
          max_value=1.0),
))

ERRORS = Row("Errors and dead letters", (
    Panel("Error and dead-letter rates", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), 'abnormal finish share' AS metric,
       avg((finish_reason <> 'stop')::int) AS share
FROM inference_scores WHERE $__timeFilter(event_time) AND {SEGMENT}
GROUP BY 1, 2 ORDER BY 1"""), Query("""
SELECT $__timeGroupAlias(window_start, $__interval), 'dead-letter share' AS metric,
       sum(dead_letters)::float8 / nullif(sum(dead_letters) + sum(requests), 0) AS share
FROM window_counts WHERE $__timeFilter(window_start)
GROUP BY 1, 2 ORDER BY 1""")), ("inference_scores", "window_counts"),
          "Share of requests not finishing with `stop`, and share of all records that were "
          "dead-lettered (dead letters count by Kafka time, over every model and app).",
          unit="percentunit"),
    Panel("Dead-letter reasons", "table", (Query("""
SELECT left(reason, 120) AS reason, source_topic, count(*) AS records,
       min(coalesce(kafka_timestamp, stored_at)) AS first_seen,
       max(coalesce(kafka_timestamp, stored_at)) AS last_seen
FROM dead_letter_reasons WHERE $__timeFilter(stored_at)
GROUP BY 1, 2 ORDER BY records DESC LIMIT 20""", "table"),), ("dead_letter_reasons",),
          "Why records were rejected. The payloads stay in the dead_letters table, which the "
          "dashboards' read-only role cannot read (it reads the view dead_letter_reasons)."),
))

OVERVIEW = Dashboard(
    "parrotwatch-overview", "Parrotwatch / Overview",
    "Traffic, latency, throughput and error rates per model and app.",
    (STATS, TRAFFIC, ERRORS), SEGMENT_VARIABLES, (ALERTS_ANNOTATION,))
