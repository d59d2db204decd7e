"""Feedback: thumbs-down share, labels and corrections, joined to the rated request's segment."""

from __future__ import annotations

from parrotwatch.dashboards.common import ALERTS_ANNOTATION, DRILLDOWN_LINK, SEGMENT_VARIABLES
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query, Row

# Feedback counts in the segment of the request it rates (feedback on a request not stored yet
# appears once the request is).
_RATED = """feedback f JOIN inference_scores s ON s.request_id = f.request_id
WHERE $__timeFilter(f.event_time) AND s.model IN ($model) AND s.app IN ($app)"""

SHARE = Row("Thumbs", (
    Panel("Feedback events", "stat", (Query(f"SELECT count(*) AS feedback FROM {_RATED}",
                                            "table"),), ("feedback", "inference_scores"),
          width=6, height=4, min_interval=None),
    Panel("Thumbs-down share", "stat", (Query(f"""
SELECT avg((f.thumb = -1)::int) AS "thumbs down" FROM {_RATED} AND f.thumb IS NOT NULL""",
                                              "table"),), ("feedback", "inference_scores"),
          unit="percentunit", width=6, height=4, min_interval=None),
    Panel("Mean score", "stat", (Query(f"SELECT avg(f.score) AS score FROM {_RATED}", "table"),),
          ("feedback", "inference_scores"), "Mean of the numeric `score` feedback.", width=6,
          height=4, min_interval=None),
    Panel("Corrections", "stat", (Query(f"""
SELECT count(*) FILTER (WHERE f.correction IS NOT NULL) AS corrections FROM {_RATED}""",
                                        "table"),), ("feedback", "inference_scores"), width=6,
          height=4, min_interval=None),
    Panel("Thumbs-down share by model", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(f.event_time, $__interval), s.model AS metric,
       avg((f.thumb = -1)::int) AS "thumbs down"
FROM {_RATED} AND f.thumb IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("feedback", "inference_scores"),
          "By the feedback's own event time.", unit="percentunit", max_value=1.0),
    Panel("Feedback volume by thumb", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(f.event_time, $__interval),
       CASE f.thumb WHEN 1 THEN 'thumbs up' WHEN -1 THEN 'thumbs down' ELSE 'no thumb' END
         AS metric, count(*) AS feedback
FROM {_RATED} GROUP BY 1, 2 ORDER BY 1, 2"""),), ("feedback", "inference_scores"), draw="bars"),
))

LABELS = Row("Labels and corrections", (
    Panel("Labels", "piechart", (Query(f"""
SELECT coalesce(f.label, '(no label)') AS label, count(*) AS feedback
FROM {_RATED} GROUP BY 1 ORDER BY 2 DESC""", "table"),), ("feedback", "inference_scores"),
          width=8, min_interval=None),
    Panel("Corrections and comments", "table", (Query(f"""
SELECT f.event_time AS "time", f.request_id, s.model, s.app, f.thumb, f.label, f.score,
       f.correction, f.comment, f.annotator
FROM {_RATED} AND (f.correction IS NOT NULL OR f.comment IS NOT NULL)
ORDER BY f.event_time DESC LIMIT 100""", "table"),), ("feedback", "inference_scores"),
          "What people wrote; click a request_id for its drill-down.", width=16,
          links=(DRILLDOWN_LINK,), min_interval=None),
))

FEEDBACK = Dashboard("parrotwatch-feedback", "Parrotwatch / Feedback",
                     "Thumbs, labels, scores and corrections from POST /v1/feedback.",
                     (SHARE, LABELS), SEGMENT_VARIABLES, (ALERTS_ANNOTATION,))
