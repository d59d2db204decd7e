"""Calibration: how far people agree with each detector, and what its rate of bad answers
really is, from the versioned calibration records of ``parrotwatch calibrate`` and the review
queue (tables of parrotwatch/sql/014_review.sql; docs/review.md).

One calibration record is one run x detector (toxicity, hallucination, ood_score) x segment
(model, app; ``'*'`` = every model or app). Its statistics are estimated on the labelled review
sample, each item weighted by 1 / its inclusion probability (Horvitz & Thompson 1952; Hájek
ratios, parrotwatch.detectors.calibration.estimators):

* Cohen's (1960) kappa of the detector's flag against the reviewers' label, with its CI, and
  Krippendorff's (2004) alpha between two reviewers of the same item (1 = perfect agreement,
  0 = chance);
* ROC AUC of the score for the label (Hanley & McNeil 1982), precision and recall at the
  threshold in force;
* the corrected prevalence p = (r + Sp - 1) / (Se + Sp - 1) of Rogan & Gladen (1978), with its
  delta-method CI, next to the raw flagged share r it corrects;
* the reliability diagram: per bin of the probability of a bad answer that the record's
  calibration map predicts (out of fold), the mean prediction against the observed share of bad
  answers (a calibrated map lies on the diagonal; DeGroot & Fienberg 1983).

The panels keep to what the reader role may read: the statistics, and of the review queue only
the columns 014 grants (which item, when, which segment), never texts, labels or reviewers.
Segment panels keep the ``'*'`` (every model / app) records whatever the selection: they are
the headline numbers.
"""

from __future__ import annotations

from parrotwatch.dashboards.common import ALERTS_ANNOTATION, SEGMENT, SEGMENT_VARIABLES
from parrotwatch.dashboards.grafana import XY, Dashboard, Panel, Query, Row

RECORDS = ("calibration_records",)
# the selected segments, plus the records over every model and/or app
RECORD_SEGMENT = "(model = '*' OR model IN ($model)) AND (app = '*' OR app IN ($app))"
# a record's series: its detector, then its segment unless it covers everything
SERIES = ("detector || CASE WHEN model = '*' AND app = '*' THEN '' "
          "ELSE ' ' || model || '/' || app END")
# the newest record of each detector and segment as of the end of the time range
_NEWEST = f"""(SELECT DISTINCT ON (detector, model, app) * FROM calibration_records
 WHERE computed_at <= $__timeTo() AND {RECORD_SEGMENT}
 ORDER BY detector, model, app, computed_at DESC, version DESC) r"""


def record_series(title: str, columns: str, not_null: str, description: str,
                  unit: str | None = None, max_value: float | None = None,
                  width: int = 12) -> Panel:
    """Statistics of the calibration records over their ``computed_at``, one series per
    detector and segment; ``columns``: the SELECT list of value columns, ``not_null``: the
    column a record needs to be drawn."""
    sql = f"""
SELECT computed_at AS "time", {SERIES} AS metric, {columns}
FROM calibration_records
WHERE $__timeFilter(computed_at) AND {RECORD_SEGMENT} AND {not_null} IS NOT NULL
ORDER BY 1, 2"""
    return Panel(title, "timeseries", (Query(sql),), RECORDS, description, unit=unit,
                 width=width, max_value=max_value, min_interval=None)


AGREEMENT = Row("Agreement with reviewers", (
    record_series("Cohen's kappa: detector vs reviewers",
                  'kappa, kappa_low AS "kappa CI low", kappa_high AS "kappa CI high"', "kappa",
                  "Cohen's kappa of the detector's flag (score over its threshold) against the "
                  "reviewers' label, weighted by 1/inclusion probability, with its 95 % CI. "
                  "1 = perfect agreement, 0 = chance; below ~0.4 the detector is a poor proxy.",
                  width=8),
    record_series("Krippendorff's alpha between reviewers", "alpha", "alpha",
                  "Agreement of two reviewers of the same item on the label each detector is "
                  "checked against (nominal alpha). It bounds what any detector can reach: "
                  "below ~0.67 the label itself is unreliable.", width=8),
    record_series("ROC AUC of each detector", 'auc AS "AUC"', "auc",
                  "Probability that a bad answer (reviewers' label) scores higher than a good "
                  "one, weighted; 0.5 = no better than chance.", max_value=1.0, width=8),
))

RATES = Row("Corrected vs raw rate of bad answers", (
    record_series("Corrected vs raw rate",
                  'raw_rate AS "raw", corrected_rate AS "corrected", '
                  'corrected_low AS "corrected CI low", corrected_high AS "corrected CI high"',
                  "raw_rate",
                  "Raw: share of all scored requests the detector flags. Corrected: the true "
                  "rate of bad answers, Rogan-Gladen p = (raw + Sp - 1) / (Se + Sp - 1) from the "
                  "detector's sensitivity Se and specificity Sp measured on the review sample, "
                  "with its 95 % CI (none when Se + Sp <= 1).",
                  unit="percentunit", max_value=1.0, width=16),
    record_series("Sensitivity and specificity", "sensitivity, specificity", "sensitivity",
                  "Share of bad answers the detector flags (Se) and of good ones it leaves "
                  "unflagged (Sp), weighted: what the correction divides by.",
                  unit="percentunit", max_value=1.0, width=8),
))

_BINS = f"""FROM {_NEWEST}
  CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(r.reliability) = 'array'
                                          THEN r.reliability ELSE '[]'::jsonb END) AS b"""
DIAGONAL = "calibrated (y = x)"  # the reference series of the reliability diagram

RELIABILITY = Panel("Reliability diagram (newest record per detector)", "xychart", (Query(f"""
SELECT series, mean_score, observed FROM (
  SELECT 0 AS reference, {SERIES} AS series,
         (b->>'mean_score')::float8 AS mean_score, (b->>'observed')::float8 AS observed
  {_BINS}
  UNION ALL
  SELECT 1, '{DIAGONAL}', d.p, d.p FROM (VALUES (0.0::float8), (1.0::float8)) AS d(p)
) bins
WHERE mean_score IS NOT NULL AND observed IS NOT NULL
ORDER BY reference, series, mean_score""", "table"),), RECORDS,
    "Newest record of each detector and segment: per bin of the P(bad) its calibration map "
    "predicts, the observed weighted share of bad answers (y) against the mean prediction (x). "
    f"On the dashed diagonal ({DIAGONAL}) the map is calibrated; above it, it under-predicts. "
    "Exact numbers: the table below.", width=24, height=10, min_interval=None,
    xy=XY("mean_score", "observed", "series", reference=DIAGONAL))

RELIABILITY_BINS = Panel("Reliability bins (newest record per detector)", "table", (Query(f"""
SELECT r.detector, r.model, r.app, r.version, b->>'bin' AS bin,
       (b->>'mean_score')::float8 AS mean_score, (b->>'observed')::float8 AS observed,
       (b->>'observed')::float8 - (b->>'mean_score')::float8 AS "observed - mean",
       (b->>'weight')::float8 AS weight
{_BINS}
ORDER BY r.detector, r.model, r.app, mean_score""", "table"),), RECORDS,
    "The reliability diagram's bins: mean prediction (mean_score), observed weighted share of "
    "bad answers, their difference (0 = calibrated) and the bin's weight.", width=24,
    height=8, min_interval=None)

THRESHOLDS = Row("Thresholds", (
    record_series("Precision and recall at the threshold in force",
                  'precision_at AS "precision", recall_at AS "recall"', "recall_at",
                  "Weighted precision (share of flagged requests that reviewers call bad) and "
                  "recall (share of bad ones flagged) at each record's threshold.",
                  unit="percentunit", max_value=1.0),
    record_series("Suggested vs current threshold",
                  'threshold AS "current", suggested_threshold AS "suggested"', "threshold",
                  "The threshold in force and the one that flags the most while meeting the "
                  "target precision (calibration_target_precision) on the review sample; none "
                  "when none does."),
    Panel("Latest calibration per detector and segment", "table", (Query(f"""
SELECT r.computed_at AS "time", r.detector, r.model, r.app, r.version, r.labelled,
       r.doubly_labelled, r.auc, r.kappa, r.alpha, r.precision_at, r.recall_at, r.threshold,
       r.suggested_threshold, r.raw_rate, r.corrected_rate, r.corrected_low, r.corrected_high,
       r.calibration_map->>'method' AS calibration_map
FROM {_NEWEST}
ORDER BY r.detector, r.model, r.app""", "table"),), RECORDS,
          "The newest record of each detector and segment as of the end of the time range "
          "(`parrotwatch calibrate`).", width=24, min_interval=None),
    Panel("Applied thresholds", "table", (Query("""
SELECT a.applied_at AS "time", a.detector, a.threshold, a.version, r.model, r.app,
       r.computed_at AS record_computed_at, a.applied_by, a.revoked_at, a.revoked_at IS NULL AS live
FROM calibration_applied a JOIN calibration_records r ON r.version = a.version
WHERE $__timeFilter(a.applied_at) OR a.revoked_at IS NULL
ORDER BY a.applied_at DESC LIMIT 50""", "table"),), ("calibration_applied", "calibration_records"),
          "Who applied which record's threshold to the stream's flags, and when (opt-in, "
          "calibration_apply_thresholds); `live` ones are in force, whatever the time range.",
          width=24, height=6, min_interval=None),
))

# review_items and review_labels: only the columns 014 grants the reader role
_ITEMS = "$__timeFilter(i.created_at) AND i.model IN ($model) AND i.app IN ($app)"

REVIEW = Row("Review progress", (
    Panel("Review queue", "stat", (Query(f"""
SELECT count(*) AS "items drawn", count(l.item_id) AS "labelled",
       count(*) FILTER (WHERE l.n >= i.reviewers_needed) AS "fully labelled",
       count(*) FILTER (WHERE i.reviewers_needed = 2) AS "for two reviewers"
FROM review_items i
  LEFT JOIN (SELECT item_id, count(*) AS n FROM review_labels GROUP BY item_id) l
    ON l.item_id = i.item_id
WHERE {_ITEMS}""", "table"),), ("review_items", "review_labels"),
          "Items drawn in the time range; labelled by at least one reviewer; by as many as "
          "they need (two for the agreement share).", width=8, height=6, min_interval=None),
    Panel("Items drawn and labels per interval", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(i.created_at, $__interval), count(*) AS "items drawn"
FROM review_items i WHERE {_ITEMS}
GROUP BY 1 ORDER BY 1"""), Query("""
SELECT $__timeGroupAlias(l.labelled_at, $__interval), count(*) AS "labels"
FROM review_labels l JOIN review_items i ON i.item_id = l.item_id
WHERE $__timeFilter(l.labelled_at) AND i.model IN ($model) AND i.app IN ($app)
GROUP BY 1 ORDER BY 1""")), ("review_items", "review_labels"),
          "Review items drawn (`parrotwatch review sample`) and labels submitted.", width=16,
          height=6, draw="bars"),
    Panel("Review draws", "table", (Query(f"""
SELECT period_start AS "time", period_end, model, app, population, pool, drawn, budget,
       created_at AS drawn_at
FROM review_samples
WHERE period_end >= $__timeFrom() AND period_start <= $__timeTo() AND {SEGMENT}
ORDER BY period_start DESC, model, app LIMIT 50""", "table"),), ("review_samples",),
          "Per period and segment: requests scored, of which the stream kept the text (the "
          "pool), and drawn for review within the budget.", width=24, height=6,
          min_interval=None),
))

def correction_panel(title: str, column: str, label: str, description: str) -> Panel:
    """The mean of one task metric of ``correction_scores`` per model over time."""
    return Panel(title, "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), model AS metric, avg({column}) AS "{label}"
FROM correction_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND {column} IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("correction_scores",), description, max_value=1.0,
                 draw="points")


CORRECTIONS = Row("Responses against users' corrections", (
    correction_panel("ROUGE-L F1 against corrections", "rouge_l_f", "ROUGE-L F1",
                     "Mean ROUGE-L F1 (longest common subsequence; Lin 2004) of each response "
                     "against the correction a user sent for it (feedback.correction): 1 = the "
                     "user wrote it back unchanged."),
    correction_panel("BLEU against corrections", "bleu", "BLEU",
                     "Mean sentence BLEU (Papineni et al. 2002, sacreBLEU's smoothed score scaled "
                     "to [0, 1]) of each response against its user's correction."),
))

CALIBRATION = Dashboard(
    "parrotwatch-calibration", "Parrotwatch / Calibration",
    "Human review against the detectors: agreement, corrected vs raw rates, reliability, "
    "thresholds, review progress and task metrics from users' corrections.",
    (AGREEMENT, RATES, Row("Reliability", (RELIABILITY, RELIABILITY_BINS)), THRESHOLDS, REVIEW,
     CORRECTIONS),
    SEGMENT_VARIABLES, (ALERTS_ANNOTATION,), time_from="now-30d")
