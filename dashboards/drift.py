"""Drift: the embedding two-sample tests of each closed window against the segment's reference,
and the share of out-of-distribution requests."""

from __future__ import annotations

from parrotwatch.dashboards.common import ALERTS_ANNOTATION, SEGMENT, SEGMENT_VARIABLES, window_metric
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query, Row
from parrotwatch.detectors.metrics import metric


def _per_window(title: str, column: str, description: str) -> Panel:
    sql = f"""
SELECT $__time(window_start), model || ' / ' || app || ' ' || side AS metric, {column}
FROM drift_windows WHERE $__timeFilter(window_start) AND {SEGMENT} AND {column} IS NOT NULL
ORDER BY 1, 2"""
    return Panel(title, "timeseries", (Query(sql),), ("drift_windows",), description, width=8, draw="points")


TESTS = Row("Two-sample tests per closed window", (
    _per_window("Drift p-value", "p_value", "MMD permutation-test p-value of the window's prompt "
                "and response embeddings against the segment's reference (low = drift)."),
    _per_window("MMD²", "mmd2", "Squared maximum mean discrepancy of the embeddings."),
    _per_window("Classifier two-sample AUC", "classifier_auc",
                "AUC of a classifier telling the window from the reference (0.5 = no drift)."),
))

OOD = Row("Out of distribution", (
    window_metric("Out-of-distribution share", "ood_score", "Share of requests flagged by "
                  f"ood_score {metric('ood_score').flag_rule()} (beyond the reference's 99th "
                  "percentile), all windows.",
                  unit="percentunit", stat="flagged", by="segment"),
    window_metric("Mean ood_score", "ood_score", "1.0 is the reference's 99th percentile.",
                  by="segment"),
    Panel("Latest drift tests (most significant first)", "table", (Query(f"""
SELECT window_start AS "time", model, app, side, n_reference, n_current, mmd2, p_value,
       p_value < 0.05 AS significant, classifier_auc
FROM drift_windows WHERE $__timeFilter(window_start) AND {SEGMENT}
ORDER BY p_value NULLS LAST, window_start DESC LIMIT 50""", "table"),), ("drift_windows",),
          width=16),
    Panel("Drift references", "table", (Query(f"""
SELECT model, app, side, count(*) AS reference_requests FROM drift_reference
WHERE {SEGMENT} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""", "table"),), ("drift_reference",),
          "Each segment's reference: its first requests (drift_reference_size), fixed once "
          "complete.", width=8, min_interval=None),
))

DRIFT = Dashboard("parrotwatch-drift", "Parrotwatch / Drift",
                  "Embedding drift per model and app, and out-of-distribution requests.",
                  (TESTS, OOD), SEGMENT_VARIABLES, (ALERTS_ANNOTATION,))
