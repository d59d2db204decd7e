"""Strict rules files: typos name the bad key and the valid keys (detectors/alerting/rules.py)."""

from __future__ import annotations

import pytest

from parrotwatch.detectors.alerting.rules import (
    DEFAULT_RULES_PATH,
    RateRatioRule,
    RulesError,
    ThresholdRule,
    load_default_rules,
    load_rules,
)

THRESHOLD = """
rules:
  - name: ok_rule
    kind: drift
  - name: latency_p99
    kind: threshold
    metric: latency_ms_p99
    op: ">"
    valu: 3000
"""


def test_default_rules_load_and_cover_the_issue():
    rs = load_default_rules()
    names = {r.name for r in rs.rules}
    assert names >= {
        "latency_p99_spike",
        "throughput_drop",
        "repetition_loop",
        "low_confidence",
        "thumbs_down_share",
        "toxicity_burst",
        "hallucination_spike",
        "embedding_drift",
        "regurgitation_hits",
    }
    assert {r.kind for r in rs.rules} >= {"threshold", "ewma", "cusum", "rate_ratio", "drift"}
    assert rs.fdr_q == 0.05 and rs.window == "1m"
    assert load_rules(DEFAULT_RULES_PATH) == rs == load_rules(str(DEFAULT_RULES_PATH))


def test_typo_names_rule_bad_key_and_valid_keys():
    with pytest.raises(RulesError) as info:
        load_rules(THRESHOLD)
    msg = str(info.value)
    assert "rules[1] 'latency_p99' (threshold)" in msg
    assert "unknown key 'valu'" in msg and "did you mean 'value'?" in msg
    listed = msg.split("valid keys for threshold rules: ")[1].splitlines()[0].split(", ")
    assert set(listed) == {
        "name",
        "kind",
        "severity",
        "summary",
        "segment_by",
        "labels",
        "for",
        "resolve_after",
        "renotify",
        "min_count",
        "inhibits",
        "metric",
        "op",
        "value",
        "resolve_value",
    }
    assert "missing required key 'value'" in msg
    assert "ok_rule" not in msg  # only the broken rule is blamed


def test_typo_in_other_kinds_lists_their_keys():
    with pytest.raises(RulesError) as info:
        load_rules(
            {
                "rules": [
                    {
                        "name": "r",
                        "kind": "rate_ratio",
                        "numerator": "thumbs_down",
                        "denominator": "feedback_count",
                        "baseline_window": 30,
                    }
                ]
            }
        )
    msg = str(info.value)
    assert "unknown key 'baseline_window'" in msg and "did you mean 'baseline_windows'?" in msg
    for key in ("baseline_windows", "current_windows", "min_samples", "max_ratio", "p_value"):
        assert key in msg


def test_unknown_kind_and_top_level_key_list_the_valid_ones():
    with pytest.raises(RulesError) as info:
        load_rules("fdr: 0.1\nrules:\n  - {name: x, kind: treshold}\n  - {name: y}\n")
    msg = str(info.value)
    assert "rules[0] 'x': unknown kind 'treshold'; valid kinds: threshold, ewma, cusum, page_hinkley" in msg
    assert "rules[1] 'y': missing key 'kind'" in msg
    assert (
        "unknown key 'fdr' (did you mean 'fdr_q'?); "
        "valid keys for the top level: version, window, fdr_q, rules" in msg
    )


def test_values_are_checked_too():
    bad = [
        ({"name": "a", "kind": "ewma", "metric": "latncy_ms_p99"}, "unknown metric 'latncy_ms_p99'"),
        ({"name": "a", "kind": "drift", "for": "3 minutes"}, "for: expected a number of windows"),
        (
            {"name": "a", "kind": "threshold", "metric": "count", "op": ">", "value": 5, "resolve_value": 9},
            "clear side",
        ),
        (
            {
                "name": "a",
                "kind": "rate_ratio",
                "numerator": "count",
                "denominator": "count",
                "max_ratio": None,
                "p_value": None,
            },
            "give max_ratio, p_value or both",
        ),
    ]
    for rule, expected in bad:
        with pytest.raises(RulesError, match=expected):
            load_rules({"rules": [rule]})
    with pytest.raises(RulesError, match="rule names must be unique; repeated: a"):
        load_rules({"rules": [{"name": "a", "kind": "drift"}, {"name": "a", "kind": "drift"}]})
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules("rules: [")
    with pytest.raises(RulesError, match="expected a mapping"):
        load_rules("- 1\n- 2\n")


def test_spans_convert_to_windows():
    rs = load_rules(
        {
            "window": "1m",
            "rules": [
                {
                    "name": "t",
                    "kind": "threshold",
                    "metric": "latency_ms_p99",
                    "op": ">=",
                    "value": 1,
                    "for": "3m",
                    "resolve_after": "90s",
                    "renotify": "1h30m",
                },
            ],
        }
    )
    rule = rs.rules[0]
    assert isinstance(rule, ThresholdRule)
    assert (rs.windows(rule.for_), rs.windows(rule.resolve_after), rs.windows(2)) == (3, 2, 2)
    assert rule.segment_by == ["model", "app"] and rule.severity == "warning"


def test_rate_ratio_metric_label_is_the_numerator():
    rule = load_rules(
        {
            "rules": [
                {
                    "name": "r",
                    "kind": "rate_ratio",
                    "numerator": "toxicity_flagged",
                    "denominator": "toxicity_n",
                }
            ]
        }
    ).rules[0]
    assert isinstance(rule, RateRatioRule) and rule.metric == "toxicity_flagged"


def test_default_summaries_use_only_fields_the_evaluator_provides():
    fields = {"rule": "r", "severity": "warning", "model": "m", "app": "a", "metric": "x", "value": 1.5,
              "baseline": 1.0, "threshold": 2.0, "p_value": 1e-7, "statistic": 6.0, "detector": "ewma",
              "ratio": 4.0, "current_share": 0.04, "baseline_share": 0.01, "current_counts": [16, 400],
              "baseline_counts": [240, 24000], "count": 400, "span_minutes": 12.0, "span_requests": 24,
              "trend_minutes": 50.0, "slope_pct_per_10m": 2.1}  # fmt: skip
    for rule in load_default_rules().rules:
        text = (rule.summary or rule.default_summary()).format_map(fields)  # KeyError on an unknown field
        assert text.endswith(".") and "\n" not in text and "  " not in text, (rule.name, text)


def test_inhibits_must_name_existing_rules():
    text = """
rules:
  - {name: a, kind: threshold, metric: latency_ms_p99, op: ">", value: 1, inhibits: [nope]}
"""
    with pytest.raises(RulesError, match="unknown rules.*nope"):
        load_rules(text)
