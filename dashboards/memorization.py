"""Memorization: regurgitation of the training corpus, the Min-K% Prob membership signal, and the
offline audit runs (``parrotwatch audit``; tables of parrotwatch/sql/007_audits.sql).

The dashboard is data: ``SECTIONS`` maps a row title to its panels, and empty sections are left
out. The "Audit runs" panels read ``audit_runs`` and ``audit_metrics`` under the metric names that
parrotwatch/audits/store.py writes (docs/audits.md): ``membership / auc {method}`` with its
bootstrap CI, ``canary_exposure / exposure_mean {repetitions}``, ``extraction / extractable_rate
{num_beams, kind, repetitions, n}`` and ``regurgitation / rate {min_tokens, n}``. Audits run on their
own models (a spec's ``model``), not on the served ``model``/``app`` segments, so these panels
ignore the segment variables; their time axis is each succeeded run's ``finished_at``.
"""

from __future__ import annotations

import math

from parrotwatch.dashboards.common import (
    ALERTS_ANNOTATION,
    DRILLDOWN_LINK,
    SEGMENT,
    SEGMENT_VARIABLES,
    window_metric,
)
from parrotwatch.dashboards.grafana import Dashboard, Panel, Query, Row
from parrotwatch.detectors.metrics import metric

_REGURGITATION = metric("regurgitation")
_MIN_K_PROB = metric("min_k_prob")
_OVERLAP_FLAGGED = math.floor(_REGURGITATION.threshold or 0) + 1  # tokens: flagged from this length


def audit_metric(title: str, audit: str, metric: str, series: str, description: str,
                 value: str, ci: bool = False, unit: str | None = None,
                 max_value: float | None = None) -> Panel:
    """One ``audit_metrics`` metric over the finish time of succeeded runs, one series per spec and
    ``series`` (an SQL expression over the labels ``m.labels``); ``ci`` adds the 95 % interval."""
    bounds = ', m.ci_low AS "CI low", m.ci_high AS "CI high"' if ci else ""
    sql = f"""
SELECT r.finished_at AS "time", r.spec_name || ': ' || ({series}) AS metric,
       m.value AS "{value}"{bounds}
FROM audit_metrics m
JOIN audit_runs r ON r.id = m.run_id
WHERE m.audit = '{audit}' AND m.metric = '{metric}' AND r.status = 'succeeded'
  AND $__timeFilter(r.finished_at)
ORDER BY 1, 2"""
    return Panel(title, "timeseries", (Query(sql),), ("audit_metrics", "audit_runs"), description,
                 unit=unit, max_value=max_value, min_interval=None)


#: The newest succeeded run of each audit spec up to the end of the time range (no lower bound: a
#: weekly audit stays on the dashboard all week).
_NEWEST_RUNS = """(
  SELECT DISTINCT ON (spec_name) id, spec_name, finished_at
  FROM audit_runs
  WHERE status = 'succeeded' AND finished_at <= $__timeTo()
  ORDER BY spec_name, finished_at DESC, id DESC) n"""

def _run_max(alias: str, audit: str, metric: str) -> str:
    """A LATERAL join giving ``alias.value``: the largest value of ``audit``'s ``metric`` in run n."""
    return f"""
LEFT JOIN LATERAL (
  SELECT max(m.value) AS value FROM audit_metrics m WHERE m.run_id = n.id
    AND m.audit = '{audit}' AND m.metric = '{metric}') {alias} ON true"""


#: What the newest run says, in words, as the HTML report's verdict (docs/audits.md "Reading the
#: verdict"): a blind baseline that reaches the best attack's interval means no AUC there is evidence
#: (the sets differ in distribution when the blind classifier is above chance, the attacks are weak
#: when it is not); else an attack whose 95 % interval excludes 0.5, or a dataset-inference
#: rejection, is evidence.
VERDICT_SQL = """
SELECT n.spec_name AS spec, n.id AS run, n.finished_at AS finished,
       best.method AS "best attack", best.value AS "best AUC", best.ci_low AS "best AUC CI low",
       blind.value AS "blind AUC", di.value AS "dataset inference p",
       eps.value AS "epsilon lower bound", leak.value AS "regurgitation rate",
       CASE WHEN best.value IS NULL AND blind.value IS NULL AND di.value IS NULL
              THEN 'no membership audit in this run'
            WHEN guard.value = 1 AND guard.labels->>'shift' = 'true'
              THEN 'no evidence: members and non-members differ in distribution (blind baseline)'
            WHEN guard.value = 1
              THEN 'no evidence: the attacks do not beat a classifier that never sees the model'
            WHEN best.ci_low > 0.5 OR dir.value = 1
              THEN 'evidence of memorization' || CASE WHEN guard.value IS NULL
                                                      THEN ' (blind baseline not run)' ELSE '' END
            ELSE 'no evidence of memorization' END AS verdict
FROM """ + _NEWEST_RUNS + """
LEFT JOIN LATERAL (
  SELECT m.labels->>'method' AS method, m.value, m.ci_low FROM audit_metrics m
  WHERE m.run_id = n.id AND m.audit = 'membership' AND m.metric = 'auc' AND m.value IS NOT NULL
  ORDER BY m.value DESC, m.ci_low DESC NULLS LAST, m.labels->>'method' LIMIT 1) best ON true
LEFT JOIN LATERAL (
  SELECT m.value FROM audit_metrics m WHERE m.run_id = n.id
    AND m.audit = 'membership' AND m.metric = 'blind_auc'
  ORDER BY m.value DESC NULLS LAST LIMIT 1) blind ON true
LEFT JOIN LATERAL (
  SELECT m.value, m.labels FROM audit_metrics m WHERE m.run_id = n.id
    AND m.audit = 'membership' AND m.metric = 'blind_guard' ORDER BY m.value DESC LIMIT 1) guard ON true
""" + "".join(_run_max(alias, audit, metric) for alias, audit, metric in (
    ("di", "membership", "dataset_inference_p_value"), ("dir", "membership", "dataset_inference_rejects"),
    ("eps", "canary_exposure", "epsilon_lower_bound"), ("leak", "regurgitation", "rate"))) + """
ORDER BY n.spec_name"""

LEAKING_DOCUMENTS_SQL = """
SELECT n.spec_name AS spec, n.id AS run, m.labels->>'doc_id' AS "training document",
       m.value AS "outputs quoting it", (m.labels->>'max_tokens')::int AS "longest quote (tokens)"
FROM """ + _NEWEST_RUNS + """
JOIN audit_metrics m ON m.run_id = n.id AND m.audit = 'regurgitation' AND m.metric = 'document_outputs'
ORDER BY m.value DESC, 5 DESC LIMIT 50"""

SECTIONS: dict[str, tuple[Panel, ...]] = {
    "Verdict (newest audit run of each spec)": (
        Panel("What the newest audit run is evidence of", "table", (Query(VERDICT_SQL, "table"),),
              ("audit_runs", "audit_metrics"),
              "Per audit spec, its newest succeeded run: the best membership attack with the low "
              "end of its 95 % interval, the blind baseline (a classifier that never sees the "
              "model), the dataset-inference p-value, the DP epsilon lower bound from audit "
              "canaries, the regurgitation rate, and the verdict they support (docs/audits.md). "
              "Empty cells: that audit was not in the run.", width=24, min_interval=None),
        Panel("Leaking training documents", "table", (Query(LEAKING_DOCUMENTS_SQL, "table"),),
              ("audit_runs", "audit_metrics"),
              "Training documents the newest regurgitation audit found quoted in logged outputs, "
              "most quoted first; PII repeated by live responses is in the Regurgitation row's "
              "privacy incidents.", width=24, min_interval=None),
    ),
    "Regurgitation (longest verbatim overlap with the training-corpus index, tokens)": (
        Panel("Longest overlap", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), model AS metric,
       max(regurgitation) AS "max tokens"
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND regurgitation IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("inference_scores",),
              "Largest verbatim overlap per interval; null unless PARROTWATCH_REGURGITATION_INDEX "
              "names an index (`parrotwatch index build`).", draw="points"),
        window_metric("Mean overlap", "regurgitation",
                      "Mean verbatim overlap per response, tokens.", by="model"),
        window_metric(f"Share of responses with a {_OVERLAP_FLAGGED}+ token overlap", "regurgitation",
                      "Flag threshold of detectors/flags.py.", unit="percentunit", stat="flagged",
                      by="segment"),
        Panel("Top regurgitating requests", "table", (Query(f"""
SELECT event_time AS "time", request_id, model, app, regurgitation, output_tokens, min_k_prob
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND regurgitation > 0
ORDER BY regurgitation DESC LIMIT 20""", "table"),), ("inference_scores",),
              links=(DRILLDOWN_LINK,)),
        Panel("Privacy incidents: PII repeated from the training corpus", "table", (Query("""
SELECT s.event_time AS "time", s.request_id, s.model, s.app, s.pii_regurgitated AS "PII spans leaked",
       s.regurgitation AS "longest overlap",
       (SELECT string_agg(DISTINCT e->>'type', ', ') FROM jsonb_array_elements(d.pii_entities) e
        WHERE (e->>'in_corpus')::boolean) AS "PII types"
FROM inference_scores s
LEFT JOIN request_drilldown d ON d.request_id = s.request_id
WHERE $__timeFilter(s.event_time) AND s.model IN ($model) AND s.app IN ($app) AND s.pii_regurgitated > 0
ORDER BY s.event_time DESC LIMIT 50""", "table"),), ("inference_scores", "request_drilldown"),
              "Responses that repeat personal data found in a verbatim run of the training-corpus "
              "index (`pii_regurgitated`, docs/pii.md): each one raises the critical `pii_leak` "
              "alert. Types only, never the values.", width=24, links=(DRILLDOWN_LINK,)),
    ),
    "Membership signal": (
        window_metric(_MIN_K_PROB.title, _MIN_K_PROB.name, _MIN_K_PROB.definition, by="model",
                      width=24),
    ),
    "Audit runs": (
        Panel("Recent audit runs", "table", (Query("""
SELECT r.id AS run, r.spec_name AS spec, r.trigger, r.status, r.started_at AS started,
       r.finished_at AS finished, extract(epoch FROM r.finished_at - r.started_at) AS "duration (s)",
       r.error
FROM audit_runs r
WHERE $__timeFilter(r.created_at)
ORDER BY r.id DESC LIMIT 50""", "table"),), ("audit_runs",),
              "Runs of every audit spec created in the time range, newest first (`parrotwatch audit "
              "list`); `error` says why a run failed or was skipped.", width=24, min_interval=None),
        audit_metric("Membership-inference AUC", "membership", "auc",
                     "(m.labels->>'method')", "ROC AUC of each membership-inference method with its "
                     "95 % bootstrap interval; 0.5 means members are indistinguishable.",
                     value="AUC", ci=True),
        audit_metric("Mean canary exposure", "canary_exposure", "exposure_mean",
                     "(m.labels->>'repetitions') || ' repetitions'",
                     "Secret Sharer exposure (bits) of the canaries, mean per number of insertions "
                     "in the training data; 0 repetitions = never-inserted candidates.",
                     value="exposure (bits)"),
        audit_metric("Extraction rate", "extraction", "extractable_rate",
                     "(m.labels->>'kind') || ', ' || (m.labels->>'repetitions') || ' repetitions, '"
                     "|| (m.labels->>'num_beams') || ' beams'",
                     "Share of training sequences whose suffix the model completes verbatim from "
                     "its prefix (k-extractable), per kind and repetition count.",
                     value="rate", unit="percentunit", max_value=1.0),
        audit_metric("Regurgitation rate", "regurgitation", "rate",
                     "(m.labels->>'min_tokens') || '+ token overlaps'",
                     "Share of the logged outputs a run scanned that repeat the corpus verbatim.",
                     value="rate", unit="percentunit", max_value=1.0),
    ),
}

MEMORIZATION = Dashboard(
    "parrotwatch-memorization", "Parrotwatch / Memorization",
    "Verbatim regurgitation of the training corpus and membership signals per model and app; "
    "the memorization audit runs.",
    tuple(Row(title, panels) for title, panels in SECTIONS.items() if panels),
    SEGMENT_VARIABLES, (ALERTS_ANNOTATION,))
