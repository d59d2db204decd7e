"""The evaluator over simulated window aggregates (detectors/alerting/evaluate.py)."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.detectors.alerting.evaluate import Evaluator, merge_windows
from parrotwatch.detectors.alerting.rules import load_default_rules, load_rules

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
SEGMENTS = [("llama", "chat"), ("llama", "rag"), ("qwen", "chat")]


def traffic(minutes: int = 60, incidents: dict | None = None, seed: int = 0) -> list[list[dict]]:
    """Window aggregates per minute for 3 segments; ``incidents`` maps a kind to (segment, start, end)."""
    rng = np.random.default_rng(seed)
    incidents = incidents or {}
    out = []
    for i in range(minutes):
        batch = []
        for model, app in SEGMENTS:

            def on(kind, model=model, app=app, i=i):
                seg, start, end = incidents.get(kind, (None, 0, 0))
                return seg == (model, app) and start <= i < end

            n = int(rng.poisson(400))
            start = T0 + timedelta(minutes=i)
            w = {
                "model": model,
                "app": app,
                "window_start": start,
                "window_end": start + timedelta(minutes=1),
                "count": n,
                "latency_ms_n": n,
                "latency_ms_p99": float(rng.lognormal(np.log(2500), 0.06)) * (5.0 if on("latency") else 1.0),
                "latency_ms_p50": float(rng.lognormal(np.log(900), 0.03)),
                "tokens_per_s_n": n,
                "tokens_per_s_p50": float(rng.lognormal(np.log(45), 0.03)),
                "surprisal_mean_n": n,
                "surprisal_mean_mean": float(rng.normal(2.1, 0.01)),
                "repetition_rate_n": n,
                "repetition_rate_flagged": int(rng.binomial(n, 0.25 if on("repetition") else 0.01)),
                "toxicity_n": n if on("toxicity_scored") else None,
                "toxicity_flagged": int(rng.binomial(n, 0.1 if on("toxicity") else 0.002))
                if on("toxicity_scored")
                else None,
                "hallucination_n": None,
                "hallucination_flagged": None,
                "regurgitation_n": None,
                "regurgitation_flagged": None,
                "drift_p_value": None,
                "feedback_count": int(rng.poisson(6)),
                "thumbs_down": 0,
                "examples": [f"{model}-{app}-{i}-{j}" for j in range(10)],
            }
            w["thumbs_down"] = int(rng.binomial(w["feedback_count"], 0.1))
            batch.append(w)
        out.append(batch)
    return out


def run(evaluator: Evaluator, batches) -> list[dict]:
    return [e for batch in batches for e in evaluator.evaluate(batch)]


def test_clean_control_run_gives_no_alert():
    for seed in (0, 1, 2):
        assert run(Evaluator(load_default_rules()), traffic(120, seed=seed)) == []


def test_each_incident_fires_once_fast_and_resolves():
    incidents = {"latency": (("llama", "chat"), 30, 40), "repetition": (("qwen", "chat"), 35, 45)}
    events = run(Evaluator(load_default_rules()), traffic(60, incidents))
    for event in events:
        AlertEventV1.model_validate(event)
    summary = [
        (e["rule"], e["labels"]["model"], e["labels"]["app"], e["status"], e["starts_at"], e["ends_at"])
        for e in events
    ]
    assert sorted(summary) == sorted(
        [
            ("latency_p99_spike", "llama", "chat", "firing", "2026-03-01T00:30:00Z", None),
            (
                "latency_p99_spike",
                "llama",
                "chat",
                "resolved",
                "2026-03-01T00:30:00Z",
                "2026-03-01T00:40:00Z",
            ),
            ("repetition_loop", "qwen", "chat", "firing", "2026-03-01T00:35:00Z", None),
            ("repetition_loop", "qwen", "chat", "resolved", "2026-03-01T00:35:00Z", "2026-03-01T00:45:00Z"),
        ]
    )
    firing = [e for e in events if e["status"] == "firing"]
    assert all(len(e["evidence"]["examples"]) == 5 for e in firing)
    rep = next(e for e in firing if e["rule"] == "repetition_loop")
    assert (
        rep["evidence"]["p_value"] < 1e-6 and rep["evidence"]["ratio"] > 3 and rep["evidence"]["fdr_rejected"]
    )
    assert rep["labels"] == {"model": "qwen", "app": "chat", "metric": "repetition_rate_flagged"}


def test_scores_that_are_null_never_fire_and_appear_when_scored():
    incidents = {"toxicity_scored": (("llama", "rag"), 0, 60), "toxicity": (("llama", "rag"), 40, 45)}
    events = run(Evaluator(load_default_rules()), traffic(60, incidents))
    assert [(e["rule"], e["status"]) for e in events] == [
        ("toxicity_burst", "firing"),
        ("toxicity_burst", "resolved"),
    ]
    assert events[0]["severity"] == "critical" and events[0]["starts_at"] == "2026-03-01T00:40:00Z"


def _drift_rules(fdr_q):
    q = "null" if fdr_q is None else fdr_q
    return load_rules(f"fdr_q: {q}\nrules:\n  - {{name: drift, kind: drift, p_value: 0.01}}\n")


def _drift_windows(p_values):
    start = T0
    return [
        {
            "model": f"m{i}",
            "app": "a",
            "window_start": start,
            "window_end": start + timedelta(minutes=1),
            "count": 100,
            "drift_p_value": p,
        }
        for i, p in enumerate(p_values)
    ]


def test_benjamini_hochberg_across_segments():
    # 20 tests: 1e-5 survives (<= 1 * .05 / 20); 0.008 < 0.01 alone, but not <= 2 * .05 / 20 = .005
    p_values = [1e-5, 0.008] + [0.5] * 18
    alone = Evaluator(_drift_rules(None)).evaluate(_drift_windows(p_values))
    assert sorted(e["labels"]["model"] for e in alone) == ["m0", "m1"]
    controlled = Evaluator(_drift_rules(0.05)).evaluate(_drift_windows(p_values))
    assert [e["labels"]["model"] for e in controlled] == ["m0"]
    assert controlled[0]["evidence"]["fdr_q"] == 0.05


def test_replays_and_out_of_order_batches():
    batches = traffic(60, {"latency": (("llama", "chat"), 30, 40)})
    ev = Evaluator(load_default_rules())
    once = run(ev, batches[:35])
    assert [e["status"] for e in once] == ["firing"]
    assert run(ev, batches[30:35]) == []  # at-least-once replay of closed windows: nothing new
    rest = run(ev, batches[35:])
    assert [e["status"] for e in rest] == ["resolved"]
    # one call with shuffled windows gives the same events as window-by-window calls
    flat = [w for batch in batches for w in batch]
    shuffled = [flat[i] for i in np.random.default_rng(1).permutation(len(flat))]
    assert Evaluator(load_default_rules()).evaluate(shuffled) == once + rest


def test_pickled_evaluator_continues_identically_and_input_is_not_mutated():
    batches = traffic(60, {"repetition": (("llama", "rag"), 25, 45)})
    frozen = copy.deepcopy(batches)
    ev = Evaluator(load_default_rules())
    head = run(ev, batches[:30])
    clone = pickle.loads(pickle.dumps(ev))
    assert run(ev, batches[30:]) == run(clone, batches[30:])
    assert [e["status"] for e in head] == ["firing"]
    assert batches == frozen


def test_absent_segment_resolves_its_alert():
    batches = traffic(40, {"latency": (("llama", "chat"), 20, 40)})
    silenced = [
        [w for w in batch if i < 25 or w["app"] != "chat" or w["model"] != "llama"]
        for i, batch in enumerate(batches)
    ]
    events = run(Evaluator(load_default_rules()), silenced)
    assert [(e["status"], e["ends_at"]) for e in events] == [
        ("firing", None),
        ("resolved", "2026-03-01T00:25:00Z"),
    ]
    kept = run(Evaluator(load_default_rules(), absent_is_clear=False), silenced)
    assert [e["status"] for e in kept] == ["firing"]


def test_pooled_segments_merge_counts_and_bound_quantiles():
    a = {
        "model": "m",
        "app": "x",
        "window_start": T0,
        "window_end": T0 + timedelta(minutes=1),
        "count": 10,
        "latency_ms_n": 10,
        "latency_ms_mean": 100.0,
        "latency_ms_p99": 300.0,
        "thumbs_down": 1,
        "drift_p_value": 0.02,
        "examples": ["a"],
        "toxicity_n": None,
    }
    b = {
        **a,
        "app": "y",
        "count": 30,
        "latency_ms_n": 30,
        "latency_ms_mean": 200.0,
        "latency_ms_p99": 250.0,
        "thumbs_down": None,
        "drift_p_value": 0.3,
        "examples": ["b"],
    }
    m = merge_windows([a, b])
    assert m["model"] == "m" and m["app"] == "*" and m["count"] == 40 and m["thumbs_down"] == 1
    assert m["latency_ms_mean"] == pytest.approx((10 * 100 + 30 * 200) / 40)
    assert m["latency_ms_p99"] == 300.0 and m["drift_p_value"] == pytest.approx(0.04)
    assert m["examples"] == ["a", "b"] and m["toxicity_n"] is None
    rs = load_rules("fdr_q: null\nrules:\n  - {name: d, kind: drift, p_value: 0.05, segment_by: [model]}\n")
    events = Evaluator(rs).evaluate([a, b])
    assert len(events) == 1 and events[0]["labels"] == {"model": "m", "app": "*", "metric": "drift_p_value"}
    AlertEventV1.model_validate(events[0])


def test_naive_window_times_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        Evaluator(load_default_rules()).evaluate(
            [
                {
                    "model": "m",
                    "app": "a",
                    "window_start": datetime(2026, 1, 1),
                    "window_end": datetime(2026, 1, 1, 0, 1),
                }
            ]
        )


def test_an_inhibiting_rule_silences_its_targets_on_the_same_segment():
    text = """
fdr_q: null
rules:
  - {name: loop, kind: threshold, metric: repetition_rate_flagged, op: ">", value: 50,
     inhibits: [slow]}
  - {name: slow, kind: threshold, metric: latency_ms_p99, op: ">", value: 5000}
"""
    windows = [w for batch in traffic(30, {"repetition": (SEGMENTS[0], 10, 20),
                                           "latency": (SEGMENTS[0], 10, 20)}) for w in batch]
    both = Evaluator(load_rules(text.replace("inhibits: [slow]", "inhibits: []"))).evaluate(windows)
    assert {e["rule"] for e in both if e["status"] == "firing"} == {"loop", "slow"}
    events = Evaluator(load_rules(text)).evaluate(windows)
    assert [(e["rule"], e["status"]) for e in events] == [("loop", "firing"), ("loop", "resolved")]
