"""The evaluator over simulated window aggregates (detectors/alerting/evaluate.py)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.detectors.alerting.evaluate import (
    Evaluator,
    MetricStats,
    RuleObservation,
    WindowAggregate,
    merge_windows,
)
from parrotwatch.detectors.alerting.rules import load_default_rules, load_rules

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
SEGMENTS = [("llama", "chat"), ("llama", "rag"), ("qwen", "chat")]


def traffic(minutes: int = 60, incidents: dict | None = None, seed: int = 0,
            flat: bool = False) -> list[list[WindowAggregate]]:
    """Window aggregates per minute for 3 segments; ``incidents`` maps a kind to (segment, start, end).
    ``flat``: as the flat dicts of ``WindowAggregate.as_flat()`` instead."""
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
            p99 = float(rng.lognormal(np.log(2500), 0.06)) * (5.0 if on("latency") else 1.0)
            p50 = float(rng.lognormal(np.log(900), 0.03))
            tps = float(rng.lognormal(np.log(45), 0.03))
            surprisal = float(rng.normal(2.1, 0.01))
            loops = int(rng.binomial(n, 0.25 if on("repetition") else 0.01))
            scored = on("toxicity_scored")
            toxic = int(rng.binomial(n, 0.1 if on("toxicity") else 0.002)) if scored else None
            feedback = int(rng.poisson(6))
            w = WindowAggregate(
                window_start=start,
                window_end=start + timedelta(minutes=1),
                model=model,
                app=app,
                count=n,
                feedback_count=feedback,
                thumbs_down=int(rng.binomial(feedback, 0.1)),
                drift_p_value=None,
                metrics={
                    "latency_ms": MetricStats(n=n, p50=p50, p99=p99),
                    "tokens_per_s": MetricStats(n=n, p50=tps),
                    "surprisal_mean": MetricStats(n=n, mean=surprisal),
                    "repetition_rate": MetricStats(n=n, flagged=loops),
                    "toxicity": MetricStats(n=n if scored else None, flagged=toxic),
                    "hallucination": MetricStats(),
                    "regurgitation": MetricStats(),
                },
                examples=[f"{model}-{app}-{i}-{j}" for j in range(10)],
            )
            batch.append(w.as_flat() if flat else w)
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
        [w for w in batch if i < 25 or w.app != "chat" or w.model != "llama"]
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
    a = WindowAggregate(T0, T0 + timedelta(minutes=1), model="m", app="x", count=10, thumbs_down=1,
                        drift_p_value=0.02, examples=["a"],
                        metrics={"latency_ms": MetricStats(n=10, mean=100.0, p99=300.0),
                                 "toxicity": MetricStats()})
    b = replace(a, app="y", count=30, thumbs_down=None, drift_p_value=0.3, examples=["b"],
                metrics={"latency_ms": MetricStats(n=30, mean=200.0, p99=250.0)})
    m = merge_windows([a, b])
    assert (m.model, m.app, m.count, m.thumbs_down, m.feedback_count) == ("m", "*", 40, 1, None)
    assert m.metrics["latency_ms"].mean == pytest.approx((10 * 100 + 30 * 200) / 40)
    assert m.value("latency_ms_p99") == 300.0 and m.drift_p_value == pytest.approx(0.04)
    assert m.examples == ["a", "b"] and m.value("toxicity_n") is None and m.value("latency_ms_n") == 40
    assert merge_windows([a.as_flat(), b.as_flat()]) == m  # the flat layout pools the same
    rs = load_rules("fdr_q: null\nrules:\n  - {name: d, kind: drift, p_value: 0.05, segment_by: [model]}\n")
    ev = Evaluator(rs)
    events = ev.evaluate([a, b])
    assert len(events) == 1 and events[0]["labels"] == {"model": "m", "app": "*", "metric": "drift_p_value"}
    AlertEventV1.model_validate(events[0])
    assert ev.last_observations == [RuleObservation("d", events[0]["labels"], ev.last_observations[0][2])]
    rule, labels, obs = ev.last_observations[0]  # still unpacks as (rule, labels, observation)
    assert obs.condition is True and obs.value == pytest.approx(0.04)


def test_a_mean_without_counts_pools_unweighted():
    a = WindowAggregate(T0, T0, model="m", metrics={"surprisal_mean": MetricStats(mean=1.0)})
    b = replace(a, metrics={"surprisal_mean": MetricStats(mean=3.0, p95=2.0)})
    pooled = merge_windows([a, b]).metrics["surprisal_mean"]
    assert pooled == MetricStats(n=None, mean=2.0, p95=2.0)


def test_flat_windows_give_the_same_alerts_as_typed_ones():
    incidents = {"latency": (("llama", "chat"), 30, 40), "repetition": (("qwen", "chat"), 35, 45)}
    typed, flat = traffic(60, incidents), traffic(60, incidents, flat=True)
    assert [[WindowAggregate.from_flat(w) for w in batch] for batch in flat] == typed
    expected = run(Evaluator(load_default_rules()), typed)
    assert expected and run(Evaluator(load_default_rules()), flat) == expected


def test_a_flat_window_keeps_unknown_keys_as_labels():
    w = WindowAggregate.from_flat({"window_start": T0, "window_end": T0, "model": "m", "region": "eu",
                                   "latency_ms_p95": 12.0, "examples": None})
    assert w.labels == {"region": "eu"} and w.value("region") == "eu" and w.examples == []
    assert w.metrics == {"latency_ms": MetricStats(p95=12.0)} and w.value("count") is None
    rs = load_rules("rules:\n  - {name: t, kind: threshold, metric: latency_ms_p95, op: '>', value: 10,"
                    " segment_by: [region]}\n")
    events = Evaluator(rs).evaluate([w])
    assert events[0]["labels"] == {"model": "*", "app": "*", "region": "eu", "metric": "latency_ms_p95"}


def test_window_types_cover_every_key_a_rule_may_name():
    from datetime import UTC, datetime

    from parrotwatch.detectors.alerting import checks, rules
    from parrotwatch.detectors.metrics import SCORE_NAMES

    t = datetime(2026, 1, 1, tzinfo=UTC)
    stats = checks.MetricStats(*range(1, len(rules.SCORE_STATS) + 1))
    window = checks.WindowAggregate(t, t, count=7, feedback_count=8, thumbs_down=9, drift_p_value=0.5,
                                    metrics=dict.fromkeys(SCORE_NAMES, stats))
    assert [window.value(k) for k in rules.WINDOW_KEYS] == [7, 8, 9, 0.5]
    for score in SCORE_NAMES:
        assert [window.value(f"{score}_{s}") for s in rules.SCORE_STATS] == list(stats)


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


def test_a_segment_whose_responses_toxicity_cannot_read_raises_one_info_alert():
    """toxicity_unread_share (issue 18): a third of one segment's responses in a language the
    toxicity detector does not read, from minute 20 to 40; English elsewhere."""
    batches = traffic(70)
    for i, batch in enumerate(batches):
        for w in batch:
            share = 0.35 if (w.model, w.app) == ("qwen", "chat") and 20 <= i < 40 else 0.0
            w.metrics["toxicity_unread"] = MetricStats(n=w.count, mean=share)
    events = run(Evaluator(load_default_rules()), batches)
    assert [(e["rule"], e["status"], e["labels"]["app"]) for e in events] == [
        ("toxicity_unread_share", "firing", "chat"), ("toxicity_unread_share", "resolved", "chat")]
    firing, resolved = events
    assert firing["severity"] == "info" and "35%" in firing["summary"]
    assert "2026-03-01T00:20:00Z" <= firing["starts_at"] <= "2026-03-01T00:30:00Z"
    assert resolved["ends_at"] <= "2026-03-01T00:52:00Z"


def test_a_cost_per_request_spike_raises_one_alert():
    """cost_per_request_spike (issue 16): one segment's cost per request jumps fourfold (a
    pricier model behind the same name) from minute 40 to 50; priced at ~0.0004 US$ before."""
    rng = np.random.default_rng(7)
    batches = traffic(70)
    for i, batch in enumerate(batches):
        for w in batch:
            cost = float(rng.lognormal(np.log(4e-4), 0.05))
            if (w.model, w.app) == ("llama", "rag") and 40 <= i < 50:
                cost *= 4
            w.metrics["cost_usd"] = MetricStats(n=w.count, mean=cost)
    events = run(Evaluator(load_default_rules()), batches)
    assert [(e["rule"], e["status"], e["labels"]["app"]) for e in events] == [
        ("cost_per_request_spike", "firing", "rag"), ("cost_per_request_spike", "resolved", "rag")]
    assert events[0]["starts_at"] == "2026-03-01T00:40:00Z" and "US$" in events[0]["summary"]


def test_one_response_that_leaks_pii_from_the_corpus_raises_a_critical_privacy_incident():
    """pii_leak (issue 17): every segment is checked (pii_regurgitated scored, 0 flagged) and one
    response of llama/rag repeats corpus PII at minute 20, two more at minute 25; one incident,
    resolved after 30 clear windows, and nothing on the other segments."""
    batches = traffic(70)
    for i, batch in enumerate(batches):
        for w in batch:
            leaks = {20: 1, 25: 2}.get(i, 0) if (w.model, w.app) == ("llama", "rag") else 0
            w.metrics["pii_regurgitated"] = MetricStats(n=w.count, flagged=leaks)
    evaluator = Evaluator(load_default_rules())
    events = [(i, e) for i, batch in enumerate(batches) for e in evaluator.evaluate(batch)]
    assert [(i, e["rule"], e["status"], e["labels"]["app"]) for i, e in events] == [
        (20, "pii_leak", "firing", "rag"), (55, "pii_leak", "resolved", "rag")]  # 30 clear after 25
    (_, firing), (_, resolved) = events
    assert firing["severity"] == "critical" and firing["starts_at"] == "2026-03-01T00:20:00Z"
    assert "1 response(s)" in firing["summary"] and "privacy incident" in firing["summary"]
    assert resolved["ends_at"] == "2026-03-01T00:26:00Z"  # the end of the last bad window
