"""Memorization: regurgitation of the training corpus and the Min-K% Prob membership signal.

The dashboard is data: ``SECTIONS`` maps a row title to its panels, and empty sections are left
out. The audit runs (canary exposure, membership-inference AUC; README "Memorization audits")
have no tables in parrotwatch/sql yet, so their section is empty: when the audit migration lands,
its panels go into ``SECTIONS["Audit runs"]`` (each naming the tables it reads, which the tests
check against the migrations) and nothing else changes.
"""

from __future__ import annotations

from dashboards.common import (
    ALERTS_ANNOTATION,
    DRILLDOWN_LINK,
    SEGMENT,
    SEGMENT_VARIABLES,
    window_metric,
)
from dashboards.grafana import Dashboard, Panel, Query, Row

SECTIONS: dict[str, tuple[Panel, ...]] = {
    "Regurgitation (longest verbatim overlap with the training-corpus index, tokens)": (
        Panel("Longest overlap", "timeseries", (Query(f"""
SELECT $__timeGroupAlias(event_time, $__interval), model AS metric,
       max(regurgitation) AS "max tokens"
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND regurgitation IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2"""),), ("inference_scores",),
              "Largest verbatim overlap per interval; null unless PARROTWATCH_REGURGITATION_INDEX "
              "names an index (`parrotwatch index-build`).", draw="points"),
        window_metric("Mean overlap", "regurgitation",
                      "Mean verbatim overlap per response, tokens.", by="model"),
        window_metric("Share of responses with a 50+ token overlap", "regurgitation",
                      "Flag threshold of detectors/flags.py.", unit="percentunit", stat="flagged",
                      by="segment"),
        Panel("Top regurgitating requests", "table", (Query(f"""
SELECT event_time AS "time", request_id, model, app, regurgitation, output_tokens, min_k_prob
FROM inference_scores
WHERE $__timeFilter(event_time) AND {SEGMENT} AND regurgitation > 0
ORDER BY regurgitation DESC LIMIT 20""", "table"),), ("inference_scores",),
              links=(DRILLDOWN_LINK,)),
    ),
    "Membership signal": (
        window_metric("Min-K% Prob", "min_k_prob", "Mean of the 20 % lowest token log-probs "
                      "(Shi et al. 2023): higher means more likely seen in training.", by="model",
                      width=24),
    ),
    "Audit runs": (),  # no audit tables yet: see the module docstring
}

MEMORIZATION = Dashboard(
    "parrotwatch-memorization", "Parrotwatch / Memorization",
    "Verbatim regurgitation of the training corpus and membership signals per model and app.",
    tuple(Row(title, panels) for title, panels in SECTIONS.items() if panels),
    SEGMENT_VARIABLES, (ALERTS_ANNOTATION,))
