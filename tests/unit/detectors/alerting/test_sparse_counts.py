"""Low-traffic segments, counts side: the exact tests in stats.py (beta-binomial with an
empirical-Bayes prior, the Poisson rate-drop test, Theil-Sen), pooling.py, the pooled
RateRatioCheck / RateDropCheck of count_checks.py and the new rule fields of rules.py.

Calibration tests simulate the null hypothesis and allow the binomial noise of the simulation:
the share of p-values below alpha must stay under alpha + 3 sqrt(alpha (1 - alpha) / trials).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import betabinom, binomtest

from parrotwatch.detectors.alerting.checks import MetricStats, RateDropCheck, RateRatioCheck, WindowAggregate
from parrotwatch.detectors.alerting.pooling import Part, pooled_value, trailing_span
from parrotwatch.detectors.alerting.rules import RateRatioRule, RulesError, load_default_rules, load_rules
from parrotwatch.detectors.alerting.state import StateError
from parrotwatch.detectors.alerting.stats import (
    JEFFREYS,
    BetaPrior,
    beta_binomial_test,
    fit_beta_prior,
    rate_drop_test,
    theil_sen_slope,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
RULES = {r.name: r for r in load_default_rules().rules}
TRIALS = 2000


def allowed(alpha: float, trials: int = TRIALS) -> float:
    """alpha plus three binomial standard errors of a simulated rejection rate."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)


def window(i: int, count: int, flagged: int | None = None) -> WindowAggregate:
    """Minute ``i``: ``count`` requests, each judged for repetition (``flagged`` loops)."""
    start = T0 + timedelta(minutes=i)
    metrics = {} if flagged is None else {"repetition_rate": MetricStats(n=count, flagged=flagged)}
    return WindowAggregate(start, start + timedelta(minutes=1), "m", "a", count=count, metrics=metrics)


def feed(check, windows) -> list:
    """Observe and commit each window as the evaluator does; the observations."""
    out = []
    for w in windows:
        obs = check.observe(w, False)
        check.commit(obs.condition)
        out.append(obs)
    return out


# --- fit_beta_prior ---------------------------------------------------------------------------

def test_agreeing_segments_lend_the_max_strength_around_the_smoothed_pooled_share():
    rows = [(10, 1000), (12, 1100), (9, 950)]
    prior = fit_beta_prior(rows, min_strength=10, max_strength=2000)
    assert prior.a + prior.b == pytest.approx(2000)
    assert prior.mean == pytest.approx((31 + 0.5) / (3050 + 1))
    zeros = fit_beta_prior([(0, 500)] * 4)  # no event anywhere: still a share above 0
    assert zeros.a + zeros.b == pytest.approx(2000) and zeros.mean == pytest.approx(0.5 / 2001)


def test_disagreeing_segments_lend_the_min_strength():
    prior = fit_beta_prior([(400, 1000), (5, 1000), (200, 500)], min_strength=10, max_strength=2000)
    assert prior.a + prior.b == pytest.approx(10)
    assert prior.mean == pytest.approx(605.5 / 2501)


@pytest.mark.parametrize("rows", [[], [(3, 40)], [(3, 40), (0, 0)]])
def test_fewer_than_two_segments_with_trials_give_jeffreys(rows):
    assert fit_beta_prior(rows) is JEFFREYS


@pytest.mark.parametrize(("rows", "kwargs"), [
    ([(11, 10), (1, 10)], {}),
    ([(-1, 10), (1, 10)], {}),
    ([(1, 10), (1, 10)], {"min_strength": 0}),
    ([(1, 10), (1, 10)], {"min_strength": -5}),
    ([(1, 10), (1, 10)], {"min_strength": 50, "max_strength": 20}),
])
def test_fit_beta_prior_rejects_invalid_input(rows, kwargs):
    with pytest.raises(ValueError):
        fit_beta_prior(rows, **kwargs)


def test_fit_beta_prior_rejects_events_without_trials():
    # a segment without trials is left out, but one claiming events without trials is corrupt
    with pytest.raises(ValueError):
        fit_beta_prior([(5, 0), (1, 10), (2, 10)])
    assert fit_beta_prior([(0, 0), (1, 10)]) is JEFFREYS


# --- beta_binomial_test -----------------------------------------------------------------------

@pytest.mark.parametrize(("share", "base_n", "cur_n"), [(0.02, 120, 20), (0.1, 600, 30), (0.3, 40, 10)])
@pytest.mark.parametrize("borrow", [False, True])
def test_beta_binomial_is_calibrated_under_the_null(share, base_n, cur_n, borrow):
    rng = np.random.default_rng(11)
    p = []
    for _ in range(TRIALS):
        related = [(int(rng.binomial(1000, share)), 1000) for _ in range(3)]
        prior = fit_beta_prior(related) if borrow else JEFFREYS
        base_k, cur_k = int(rng.binomial(base_n, share)), int(rng.binomial(cur_n, share))
        p.append(beta_binomial_test(cur_k, cur_n, base_k, base_n, prior).p_value)
    for alpha in (0.01, 0.05):
        assert np.mean(np.array(p) < alpha) <= allowed(alpha)


@pytest.mark.parametrize(("cur_k", "cur_n", "base_k", "base_n", "prior"), [
    (4, 10, 0, 600, JEFFREYS), (3, 6, 2, 140, BetaPrior(20.0, 980.0)), (1, 1, 0, 0, JEFFREYS),
    (7, 30, 12.5, 90.0, BetaPrior(2.0, 8.0)),
])
def test_beta_binomial_p_value_is_the_predictive_upper_tail(cur_k, cur_n, base_k, base_n, prior):
    a, b = prior.a + base_k, prior.b + base_n - base_k
    tail = sum(betabinom.pmf(x, cur_n, a, b) for x in range(cur_k, cur_n + 1))
    res = beta_binomial_test(cur_k, cur_n, base_k, base_n, prior)
    assert res.p_value == pytest.approx(tail, rel=1e-9)
    assert res.baseline_share == pytest.approx(a / (a + b)) and not res.insufficient
    assert res.ratio == pytest.approx((cur_k / cur_n) / (a / (a + b)))


def test_beta_binomial_edge_cases():
    empty = beta_binomial_test(0, 0, 3, 100)
    assert empty.insufficient and empty.p_value is None and empty.ratio is None
    assert empty.baseline_share == pytest.approx(3.5 / 101)
    none = beta_binomial_test(0, 25, 3, 100)
    assert none.p_value == 1.0 and none.ratio == 0.0 and not none.insufficient
    with pytest.raises(ValueError):
        beta_binomial_test(3, 2, 0, 10)
    with pytest.raises(ValueError):
        beta_binomial_test(1, 2, 11, 10)


# --- rate_drop_test ---------------------------------------------------------------------------

@pytest.mark.parametrize(("rate", "cur_windows", "base_windows"), [(5, 6, 60), (1, 20, 60), (40, 1, 60)])
def test_rate_drop_is_calibrated_under_the_null(rate, cur_windows, base_windows):
    rng = np.random.default_rng(3)
    cur, base = rng.poisson(rate * cur_windows, TRIALS), rng.poisson(rate * base_windows, TRIALS)
    p = np.array([rate_drop_test(int(c), cur_windows, int(b), base_windows)
                  for c, b in zip(cur, base, strict=True)])
    for alpha in (0.01, 0.05):
        assert np.mean(p < alpha) <= allowed(alpha)


@pytest.mark.parametrize(("cur", "t1", "base", "t0"), [(3, 6, 300, 60), (20, 10, 300, 60), (0, 1, 5, 2),
                                                       (12, 60, 7, 15)])
def test_rate_drop_is_the_conditional_binomial_test(cur, t1, base, t0):
    expected = binomtest(cur, cur + base, t1 / (t1 + t0), alternative="less").pvalue
    assert rate_drop_test(cur, t1, base, t0) == pytest.approx(expected, rel=1e-9)


def test_rate_drop_of_a_clear_fall_is_tiny_and_invalid_windows_raise():
    assert rate_drop_test(3, 6, 300, 60) < 1e-8  # 3 requests where 30 were expected
    assert rate_drop_test(30, 6, 300, 60) > 0.4
    with pytest.raises(ValueError):
        rate_drop_test(1, 0, 10, 10)
    with pytest.raises(ValueError):
        rate_drop_test(-1, 1, 10, 10)


# --- theil_sen_slope --------------------------------------------------------------------------

def test_theil_sen_recovers_a_slope_despite_an_outlier():
    t = np.arange(12.0)
    y = 3.0 * t + 1.0 + np.random.default_rng(0).normal(0, 0.01, 12)
    y[5] = 500.0
    assert theil_sen_slope(t.tolist(), y.tolist()) == pytest.approx(3.0, abs=0.02)
    assert theil_sen_slope([0, 1], [0.0, 1.0]) is None
    assert theil_sen_slope([4, 4, 4, 4], [0.0, 1.0, 2.0, 3.0]) is None


# --- pooling ----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.integers(0, 30), max_size=40), st.integers(1, 200), st.integers(0, 50))
def test_trailing_span_is_the_shortest_sufficient_tail_within_limit(amounts, need, limit):
    span = trailing_span(amounts, need, limit)
    tail = amounts[len(amounts) - min(limit, len(amounts)):]
    assert (span is None) == (sum(tail) < need)
    if span is not None:
        assert 1 <= span <= min(limit, len(amounts))
        assert sum(amounts[-span:]) >= need
        assert span == 1 or sum(amounts[-(span - 1):]) < need


requests = st.lists(st.floats(1.0, 1e5, allow_nan=False), max_size=12)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(requests, min_size=1, max_size=10))
def test_pooled_mean_is_the_mean_over_all_requests(windows):
    parts = [Part(len(w), len(w), float(np.mean(w)) if w else None) for w in windows]
    everything = [x for w in windows for x in w]
    pooled = pooled_value("latency_ms_mean", parts)
    if everything:
        assert pooled == pytest.approx(float(np.mean(everything)), rel=1e-9)
    else:
        assert pooled is None


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)), min_size=1, max_size=10))
def test_pooled_quantile_is_the_largest_window_quantile(values):
    parts = [Part(5, 5, v) for v in values]
    known = [v for v in values if v is not None]
    for stat in ("p50", "p95", "p99"):
        assert pooled_value(f"latency_ms_{stat}", parts) == (max(known) if known else None)


# --- RateRatioCheck on a sparse segment -------------------------------------------------------

#: One span of >= 6 responses within the last hour, beta-binomial against the clean baseline.
SPARSE = RateRatioRule(name="loops", kind="rate_ratio", numerator="repetition_rate_flagged",
                       denominator="repetition_rate_n", baseline_windows=120, pool_until="60m",
                       min_samples=6, min_events=5, max_ratio=3.0, p_value=1e-5, test="beta_binomial")
SHARE_RULES = pytest.mark.parametrize("rule", [SPARSE, RULES["repetition_loop"]], ids=["one_span", "default"])


def sparse_check(rule: RateRatioRule = SPARSE) -> RateRatioCheck:
    """A check of ``rule`` with a prior borrowed from three rich segments of the same model at a
    2 % share: they agree, so it is strong."""
    check = RateRatioCheck(rule)
    assert (check.rule.pool_until, check.rule.test) == ("60m", "beta_binomial")
    check.prior = fit_beta_prior([(19, 1000), (22, 1100), (18, 950)])
    assert check.prior.a + check.prior.b == pytest.approx(2000)
    return check


@SHARE_RULES
@pytest.mark.parametrize("seed", range(5))
def test_a_loop_at_one_request_a_minute_is_caught_within_15_windows(rule, seed):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(1, 180)
    clean = [window(i, int(n), int(rng.binomial(n, 0.02))) for i, n in enumerate(counts[:120])]
    looping = [window(i, int(n), int(n)) for i, n in enumerate(counts[120:], start=120)]
    check = sparse_check(rule)
    assert not any(o.condition for o in feed(check, clean))
    obs = feed(check, looping)
    first = next(i for i, o in enumerate(obs) if o.condition)
    assert first < 15
    ev = obs[first].evidence
    k, n = ev["current_counts"]
    assert n >= 6 and k >= 5 and ev["prior_strength"] == pytest.approx(2000)
    assert ev["span_minutes"] == ev["span_windows"] <= 60


@SHARE_RULES
def test_clean_traffic_at_one_request_a_minute_never_fires_in_2000_windows(rule):
    rng = np.random.default_rng(7)
    counts = rng.poisson(1, 2000)
    windows = [window(i, int(n), int(rng.binomial(n, 0.02))) for i, n in enumerate(counts)]
    obs = feed(sparse_check(rule), windows)
    assert not any(o.condition for o in obs)
    assert sum(o.condition is False for o in obs) > 1900  # judged, not "no data"
    assert min(o.p_value for o in obs if o.p_value is not None) > 1e-4


def test_a_span_judged_bad_leaves_all_its_windows_out_of_the_baseline():
    baselines = {}
    for judged_bad in (True, False):
        check = sparse_check()
        feed(check, [window(i, 1, 0) for i in range(30)])
        i = 30
        while not (obs := check.observe(window(i, 1, 1), False)).condition:
            check.commit(obs.condition)
            i += 1
        k, n = obs.evidence["current_counts"]
        span = obs.evidence["span_windows"]
        assert k == 5 and n == span == obs.evidence["span_minutes"]  # a response a minute
        assert span > 5  # the span reaches back before the loop started
        check.commit(judged_bad)
        for j in range(i + 1, i + 13):  # 72 clean responses: later spans no longer reach back
            check.observe(window(j, 6, 0), False)
            check.commit(None)
        baselines[judged_bad] = check.baseline_counts()
    # judged bad, the span's windows are gone, the clean ones before it among them
    assert baselines[True][0] == 0
    assert (baselines[False][0] - baselines[True][0], baselines[False][1] - baselines[True][1]) == (k, n)


# --- RateDropCheck ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_a_drop_to_a_tenth_at_5_requests_a_minute_is_caught_within_10_windows(seed):
    rng = np.random.default_rng(seed)
    rates = [5.0] * 120 + [0.5] * 30
    obs = feed(RateDropCheck(RULES["throughput_drop"]), [window(i, int(rng.poisson(r)))
                                                         for i, r in enumerate(rates)])
    assert not any(o.condition for o in obs[:120])
    first = next(i for i, o in enumerate(obs[120:]) if o.condition)
    assert first < 10
    rule = RULES["throughput_drop"]
    assert obs[120 + first].evidence["ratio"] <= rule.max_ratio and obs[120 + first].p_value < rule.p_value


def test_steady_traffic_gives_no_drop_in_2000_windows():
    rng = np.random.default_rng(1)
    obs = feed(RateDropCheck(RULES["throughput_drop"]), [window(i, int(rng.poisson(5))) for i in range(2000)])
    assert not any(o.condition for o in obs)
    assert sum(o.condition is None for o in obs) <= 30  # only the warm-up is "no data"


def test_a_lasting_drop_is_relearned_after_relearn_after_bad_windows():
    rule = RULES["throughput_drop"]
    rng = np.random.default_rng(2)
    check = RateDropCheck(rule)
    feed(check, [window(i, int(rng.poisson(20))) for i in range(100)])
    run = 0
    for i in range(100, 400):
        obs = check.observe(window(i, int(rng.poisson(1))), False)
        check.commit(obs.condition)
        run = run + 1 if obs.condition else 0
        if run == rule.relearn_after:
            break
    assert run == rule.relearn_after and check.to_state()["history"] == []
    after = feed(check, [window(j, int(rng.poisson(1))) for j in range(i + 1, i + 200)])
    warm = [o.evidence["baseline_windows"] >= rule.warmup for o in after]
    first_warm = warm.index(True)
    assert first_warm > rule.warmup and all(o.condition is None for o in after[:first_warm])
    # the new level is the normal one now: judged again, and clear
    assert all(o.condition is False for o, ok in zip(after, warm, strict=True) if ok)


def drop_windows(seed: int) -> list[WindowAggregate]:
    rng = np.random.default_rng(seed)
    rates = [5.0] * 80 + [0.3] * 70 + [5.0] * 30
    return [window(i, int(rng.poisson(r))) for i, r in enumerate(rates)]


@pytest.mark.parametrize("cut", [0, 10, 79, 85, 140, 151, 179])
def test_rate_drop_round_trip_continues_identically(cut):
    rule, windows = RULES["throughput_drop"], drop_windows(4)
    a = RateDropCheck(rule)
    feed(a, windows[:cut])
    b = RateDropCheck.from_state(rule, json.loads(json.dumps(a.to_state(), allow_nan=False)))
    assert b.to_state() == a.to_state()
    rest_a, rest_b = feed(a, windows[cut:]), feed(b, windows[cut:])
    assert rest_b == rest_a and b.to_state() == a.to_state()
    assert any(o.condition for o in feed(RateDropCheck(rule), windows))  # the drop is seen


def _set(state, path, value):
    *keys, last = path
    for key in keys:
        state = state[key]
    state[last] = value


@pytest.mark.parametrize("breakage", [
    ("row of 2", lambda s: _set(s, ("history", 0), [5.0, True])),
    ("row of 4", lambda s: _set(s, ("history", 0), [5.0, True, 1.0, 1.0])),
    ("negative count", lambda s: _set(s, ("history", 1, 0), -1.0)),
    ("count above 2**31 - 1", lambda s: _set(s, ("history", 1, 0), float(2**31))),
    ("count not a number", lambda s: _set(s, ("history", 1, 0), "5")),
    ("span beyond history", lambda s: _set(s, ("span",), len(s["history"]) + 1)),
    ("negative bad_run", lambda s: _set(s, ("bad_run",), -1)),
    ("missing bad_run", lambda s: s.pop("bad_run")),
    ("missing history", lambda s: s.pop("history")),
    ("unknown key", lambda s: _set(s, ("extra",), 1)),
    ("newer version", lambda s: _set(s, ("version",), RateDropCheck.STATE_VERSION + 1)),
    ("unknown old version", lambda s: _set(s, ("version",), 0)),
], ids=lambda b: b[0])
def test_rate_drop_rejects_a_malformed_state(breakage):
    rule = RULES["throughput_drop"]
    check = RateDropCheck(rule)
    feed(check, drop_windows(0)[:30])
    state = json.loads(json.dumps(check.to_state()))
    RateDropCheck.from_state(rule, state)  # intact: loads
    breakage[1](state)
    with pytest.raises(StateError):
        RateDropCheck.from_state(rule, state)


# --- rules ------------------------------------------------------------------------------------

SHARE_RULE = "{name: r, kind: rate_ratio, numerator: toxicity_flagged, denominator: toxicity_n"


def test_top_level_x_keys_hold_anchors_and_are_not_settings():
    text = ("x-sparse: &sparse\n  pool_until: 60m\n  min_samples: 6\n  test: beta_binomial\n"
            "  borrow_from: [model]\nx-note: anything at all\nrules:\n"
            "  - name: loops\n    kind: rate_ratio\n    numerator: repetition_rate_flagged\n"
            "    denominator: repetition_rate_n\n    <<: *sparse\n    min_events: 5\n")
    (rule,) = load_rules(text).rules
    assert (rule.pool_until, rule.min_samples, rule.test, rule.borrow_from, rule.min_events) == (
        "60m", 6, "beta_binomial", ["model"], 5)
    with pytest.raises(RulesError):
        load_rules("y-note: 1\nrules: []\n")  # only x- keys are set aside


@pytest.mark.parametrize(("rule", "message"), [
    (SHARE_RULE + ", borrow_from: [model]}", "beta_binomial"),
    (SHARE_RULE + ", test: beta_binomial, borrow_from: [region]}", "region"),
    (SHARE_RULE + ", test: beta_binomial, segment_by: [app], borrow_from: [model]}", "model"),
    ("{name: r, kind: ewma, metric: latency_ms_p99, pool_until: 60m}", "min_count"),
    ("{name: r, kind: cusum, metric: latency_ms_mean, pool_until: 30, min_count: 0}", "min_count"),
    ("{name: r, kind: cusum, metric: latency_ms_mean, warmup: 15, freeze_after: 14}", "freeze_after"),
])
def test_inconsistent_sparse_settings_are_rules_errors(rule, message):
    with pytest.raises(RulesError, match=message):
        load_rules(f"rules:\n  - {rule}\n")


def test_consistent_sparse_settings_load():
    rules = load_rules(
        "rules:\n"
        f"  - {SHARE_RULE}, test: beta_binomial, borrow_from: [model], pool_until: 1h}}\n"
        "  - {name: c, kind: cusum, metric: latency_ms_mean, warmup: 15, freeze_after: 15, min_count: 20,"
        " pool_until: 60m, trend_span: 60m}\n"
        "  - {name: d, kind: rate_drop}\n").rules
    assert [r.kind for r in rules] == ["rate_ratio", "cusum", "rate_drop"]
    assert rules[1].freeze_after == rules[1].warmup  # the boundary is allowed
