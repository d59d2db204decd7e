"""Quality: surprisal, entropy, repetition, toxicity and hallucination over time, the worst
requests, and the per-request drill-down they link to."""

from __future__ import annotations

from parrotwatch.dashboards.common import (
    ALERTS_ANNOTATION,
    DRILLDOWN_LINK,
    DRILLDOWN_UID,
    SEGMENT_VARIABLES,
    allow_listed,
    score_panel,
)
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query, Row, Variable
from parrotwatch.detectors.metrics import QUALITY_SCORES, SCORE_NAMES, metric, shown_on


def _worse_when_higher(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names``, each a registered score that is worse when higher (else a ValueError)."""
    lower = [n for n in names if not metric(n).higher_is_worse]
    if lower:
        raise ValueError(f"worst requests rank by scores that are worse when higher, not {lower}")
    return names


# Scores that rank the worst requests (higher is worse for each), in menu order: an allow-list
# of registered score columns (parrotwatch.detectors.metrics). The panel never inserts $worst_by
# into SQL as an identifier: a CASE over these names picks the column, so any other value (a
# crafted dashboard link) is a string literal that matches nothing.
WORST_BY_SCORES = _worse_when_higher((
    "toxicity", "hallucination", "repetition_rate", "surprisal_mean", "entropy_mean", "ood_score",
    "latency_ms", "regurgitation"))
WORST_BY = Variable(
    "worst_by", "Worst by", "custom", default=WORST_BY_SCORES[0], query=",".join(WORST_BY_SCORES),
    description="Score that ranks the worst requests (higher is worse for each).")


# The Quality row's scores (registry panel QUALITY_SCORES), and those of them that are flagged.
QUALITY_ROW_SCORES = shown_on(QUALITY_SCORES)
_FLAGGED = ", ".join(f"'{m.name}'" for m in QUALITY_ROW_SCORES if m.threshold is not None)

SCORES = Row(f"{QUALITY_SCORES.row} (n-weighted means of the one-minute windows)", (
    *(score_panel(m, width=8) for m in QUALITY_ROW_SCORES),
    Panel("Flagged share by score", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(window_start, $__interval), metric,
       sum(flagged)::float8 / nullif(sum(n), 0) AS flagged
FROM window_metrics
WHERE metric IN ({_FLAGGED})
  AND $__timeFilter(window_start) AND model IN ($model) AND app IN ($app)
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("window_metrics",),
          "Share of requests over each score's flag threshold (detectors/flags.py): what the alert "
          "rules test.", unit="percentunit", width=8, max_value=1.0),
))

WORST = Row("Worst requests", (
    Panel("Worst requests by $worst_by", "table", (Query(f"""
SELECT s.event_time AS "time", s.request_id, s.model, s.app, w.worst_value,
       {", ".join(f"s.{n}" for n in WORST_BY_SCORES)}, d.request_id IS NOT NULL AS has_drilldown
FROM inference_scores s LEFT JOIN request_drilldown d ON d.request_id = s.request_id
  CROSS JOIN LATERAL (SELECT {allow_listed("worst_by", WORST_BY_SCORES, "s")} AS worst_value) w
WHERE $__timeFilter(s.event_time) AND s.model IN ($model) AND s.app IN ($app)
  AND w.worst_value IS NOT NULL
ORDER BY w.worst_value DESC LIMIT 50""", "table"),), ("inference_scores", "request_drilldown"),
          "Click a request_id for its drill-down: unsupported spans, surprising tokens, nearest "
          "reference prompts, feedback.", width=24, height=10, links=(DRILLDOWN_LINK,)),
))

LANGUAGES = Row("Languages (of the responses; docs/toxicity.md)", (
    Panel("Requests by language", "timeseries", (Query("""
SELECT $__timeGroupAlias(event_time, $__interval), coalesce(language, 'not identified') AS metric,
       count(*) AS requests
FROM inference_scores
WHERE $__timeFilter(event_time) AND model IN ($model) AND app IN ($app)
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("inference_scores",),
          "Language identified in each response (ISO 639-1; 'und': too short to tell; 'not "
          "identified': stored without the model-based detectors).", width=12),
    Panel("Toxicity and unread share by language", "table", (Query("""
SELECT coalesce(language, 'not identified') AS language, count(*) AS requests,
       avg(toxicity) AS mean_toxicity, avg(toxicity_unread) AS toxicity_unread,
       avg(hallucination_unread) AS hallucination_unread
FROM inference_scores
WHERE $__timeFilter(event_time) AND model IN ($model) AND app IN ($app)
GROUP BY 1 ORDER BY 2 DESC""", "table"),), ("inference_scores",),
          "Per language: mean toxicity where scored, and the share of requests each language-bound "
          "detector returned null for.", width=12),
))

QUALITY = Dashboard(
    "parrotwatch-quality", "Parrotwatch / Quality",
    "Response quality scores per model and app, by language, and the worst requests with their "
    "drill-down.",
    (SCORES, LANGUAGES, WORST), (*SEGMENT_VARIABLES, WORST_BY), (ALERTS_ANNOTATION,))


def _elements(column: str) -> str:
    """The rows of a jsonb array column (an empty set for SQL or JSON null)."""
    return (f"jsonb_array_elements(CASE WHEN jsonb_typeof(d.{column}) = 'array' "
            f"THEN d.{column} ELSE '[]'::jsonb END)")


_SCORE_ROWS = ",\n  ".join(f"('{c}', s.{c})" for c in SCORE_NAMES)  # every registered score
REQUEST = Variable("request_id", "Request id", "textbox",
                   description="The request to inspect (the Quality dashboard links here).")

DRILL = Row("Request", (
    Panel("Request", "table", (Query("""
SELECT event_time AS "time", request_id, model, app, finish_reason, input_tokens, output_tokens,
       latency_ms, tokens_per_s, score_source, stored_at
FROM inference_scores WHERE request_id = '$request_id'""", "table"),), ("inference_scores",),
          width=24, height=4, min_interval=None),
    Panel("Scores", "table", (Query(f"""
SELECT v.score, v.value
FROM inference_scores s CROSS JOIN LATERAL (VALUES
  {_SCORE_ROWS}) AS v(score, value)
WHERE s.request_id = '$request_id'""", "table"),), ("inference_scores",),
          "Every score of the request (null where its input does not allow it).", width=8,
          height=12, min_interval=None),
    Panel("Unsupported spans", "table", (Query(f"""
SELECT e->>'text' AS span, (e->>'similarity')::float8 AS similarity,
       (e->>'start')::int AS start_char, (e->>'end')::int AS end_char,
       e->'unsupported_facts' AS unsupported_facts
FROM request_drilldown d CROSS JOIN LATERAL {_elements('unsupported_spans')} AS e
WHERE d.request_id = '$request_id'""", "table"),), ("request_drilldown",),
          "Response sentences the sources do not support (hallucination).", width=16, height=6,
          min_interval=None),
    Panel("Most surprising tokens", "table", (Query(f"""
SELECT (e->>'position')::int AS position, e->>'token' AS token,
       (e->>'surprisal')::float8 AS surprisal_nats
FROM request_drilldown d CROSS JOIN LATERAL {_elements('surprising_tokens')} AS e
WHERE d.request_id = '$request_id' ORDER BY surprisal_nats DESC""", "table"),),
          ("request_drilldown",), width=8, height=6, min_interval=None),
    Panel("Nearest reference prompts", "table", (Query(f"""
SELECT e->>'text' AS reference_excerpt, (e->>'distance')::float8 AS distance
FROM request_drilldown d CROSS JOIN LATERAL {_elements('nearest_reference')} AS e
WHERE d.request_id = '$request_id' ORDER BY distance""", "table"),), ("request_drilldown",),
          "For an out-of-distribution prompt (ood_score > 1): the closest prompts of the "
          "segment's drift reference.", width=8, height=6, min_interval=None),
    Panel("PII found", "table", (Query(f"""
SELECT e->>'side' AS side, e->>'type' AS entity_type, (e->>'start')::int AS start_char,
       (e->>'end')::int AS end_char
FROM request_drilldown d CROSS JOIN LATERAL {_elements('pii_entities')} AS e
WHERE d.request_id = '$request_id' ORDER BY side, start_char""", "table"),), ("request_drilldown",),
          "Personal data in the prompt or response: type and character offsets, never the value "
          "(docs/pii.md).", width=12, height=6, min_interval=None),
    Panel("Nearest known attack", "table", (Query("""
SELECT injection_match->>'family' AS family, injection_match->>'nearest_id' AS corpus_entry,
       (injection_match->>'similarity')::float8 AS similarity, injection_match->>'chunk' AS matched_text
FROM request_drilldown WHERE request_id = '$request_id' AND injection_match IS NOT NULL""", "table"),),
          ("request_drilldown",), "For an input scored as a likely prompt injection (>= 0.5): the "
          "closest entry of the attack corpus (docs/injection.md).", width=12, height=6,
          min_interval=None),
    Panel("Feedback", "table", (Query("""
SELECT event_time AS "time", thumb, score, label, correction, comment, annotator
FROM feedback WHERE request_id = '$request_id' ORDER BY event_time""", "table"),),
          ("feedback",), width=12, height=6, min_interval=None),
    Panel("Alerts citing this request", "table", (Query("""
SELECT starts_at AS "time", ends_at, status, severity, rule, summary
FROM alerts WHERE event->'evidence'->'examples' ? '$request_id' ORDER BY id""", "table"),),
          ("alerts",), "Alert transitions whose evidence lists this request as an example.",
          width=12, height=6, min_interval=None),
))

DRILLDOWN = Dashboard(
    DRILLDOWN_UID, "Parrotwatch / Request drill-down",
    "Everything stored about one request: scores, unsupported spans, surprising tokens, nearest "
    "reference prompts, PII types, the nearest known attack, feedback and alerts.", (DRILL,),
    (REQUEST,), (), time_from="now-7d")
