"""Every stateful piece of the alerting core round-trips through JSON: to_state -> json.dumps ->
json.loads -> from_state continues exactly as the original would (detectors/alerting/state.py).

Streams are generated from seeds (a property test with hypothesis runs too when it is
installed): level shifts, constant runs (zero variance, infinite z), and the floats that JSON
or jsonb handle specially (inf, -inf, -0.0, the smallest subnormal, the largest double).
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from parrotwatch.detectors.alerting import (
    AlertTracker,
    Cusum,
    Evaluator,
    EwmaZScore,
    Observation,
    PageHinkley,
)
from parrotwatch.detectors.alerting.checks import (
    MetricStats,
    RateRatioCheck,
    WindowAggregate,
    check_from_state,
)
from parrotwatch.detectors.alerting.rules import RateRatioRule, load_default_rules
from parrotwatch.detectors.alerting.state import decode_float, encode_float
from tests.unit.detectors.alerting.test_evaluate import run, traffic

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # not a project dependency: the seeded loops below cover the same ground
    given = None

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SPECIAL = [math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 1e-300, 0.1, 1 / 3,
           math.copysign(math.nan, -1.0)]
SEEDS = range(60)


def through_json(state: dict) -> dict:
    """What a store gives back: strict JSON text (no NaN literal) parsed again."""
    return json.loads(json.dumps(state, allow_nan=False))


def same(a: float, b: float) -> bool:
    """Identical floats as behaviour sees them: NaN equals NaN of the same sign, -0.0 is not 0.0."""
    return encode_float(a) == encode_float(b)


def stream(rng: random.Random) -> list[float]:
    """Noise around levels that shift, constant runs, and now and then a special float."""
    out, level = [], rng.uniform(-5, 5)
    for _ in range(rng.randint(5, 160)):
        roll = rng.random()
        if roll < 0.05:
            level = rng.uniform(-50, 50)
        if roll < 0.02:
            out.append(rng.choice(SPECIAL))
        elif roll < 0.2 and out:
            out.append(out[-1])
        else:
            out.append(rng.gauss(level, rng.choice([0.0, 0.01, 1.0])))
    return out


def detector(rng: random.Random):
    """A detector of a random kind with random (valid) hyperparameters."""
    direction = rng.choice(["up", "down", "both"])
    kind = rng.randrange(4)
    if kind == 0:
        return EwmaZScore(alpha=rng.choice([0.05, 0.3, 1.0]), threshold=rng.uniform(0.5, 6),
                          warmup=rng.randint(2, 20), direction=direction,
                          min_sigma=rng.choice([0.0, 0.1]), min_rel_sigma=rng.choice([0.0, 0.05]),
                          relearn_after=rng.choice([None, 1, 3, 60]))
    if kind == 1:
        return Cusum(k=rng.uniform(0, 1), h=rng.uniform(0.5, 10), warmup=rng.randint(3, 15),
                     direction=direction, min_sigma=rng.choice([0.0, 0.1]), fir=rng.uniform(0, 0.9))
    if kind == 2:
        return Cusum(k=0.5, h=rng.uniform(1, 5), target=rng.uniform(-1, 1), sigma=rng.uniform(0.1, 2),
                     direction=direction)
    return PageHinkley(delta=rng.uniform(0, 0.5), threshold=rng.uniform(0.5, 20),
                       alpha=rng.choice([1.0, 0.999]), min_instances=rng.randint(1, 30),
                       direction=direction)


def trace(d, xs: list[float]) -> list[tuple]:
    """What the detector says about each value: alarm, statistic, readiness."""
    return [(d.update(x).alarm, encode_float(d.statistic), d.ready) for x in xs]


def assert_detector_round_trips(d, xs: list[float], cut: int) -> None:
    for x in xs[:cut]:
        d.update(x)
    state = through_json(d.to_state())
    copy = type(d).from_state(state)
    assert copy.to_state() == d.to_state()
    assert trace(copy, xs[cut:]) == trace(d, xs[cut:])
    assert copy.to_state() == d.to_state()


@pytest.mark.parametrize("seed", SEEDS)
def test_detector_round_trip_continues_identically(seed):
    rng = random.Random(seed)
    d, xs = detector(rng), stream(rng)
    assert_detector_round_trips(d, xs, rng.randint(0, len(xs)))


@pytest.mark.parametrize("make", [EwmaZScore, Cusum, PageHinkley])
def test_fresh_detectors_round_trip_their_infinite_and_zero_state(make):
    d = make()  # PageHinkley starts at min = +inf, max = -inf: encoded, jsonb-safe
    state = through_json(d.to_state())
    assert state["version"] == make.STATE_VERSION
    assert_detector_round_trips(make.from_state(state), [1.0, 1.0, 2.0] * 20, 0)


def test_a_cusum_state_of_version_1_migrates_to_a_learning_detector():
    d = Cusum(k=0.5, h=4.0, warmup=3)
    for x in (1.0, 1.2, 0.9, 1.1):
        d.update(x)
    old = through_json(d.to_state())
    old["version"] = 1
    for key in ("freeze_after", "relearn_after"):
        del old["params"][key]
    for key in ("rising", "out"):
        del old["vars"][key]
    restored = Cusum.from_state(old)
    assert (restored.freeze_after, restored.relearn_after) == (None, None)
    assert restored.mu0 == d.mu0 and trace(restored, [3.0] * 5) == trace(d, [3.0] * 5)


def test_round_trip_keeps_a_detector_that_learned_nan_and_inf():
    d = EwmaZScore(warmup=2)
    for x in (math.inf, 1.0, 2.0):  # mean and variance become NaN
        d.update(x)
    state = through_json(d.to_state())
    assert state["vars"]["mean"] in ("nan", "-nan")
    assert_detector_round_trips(EwmaZScore.from_state(state), [3.0, -math.inf, 4.0], 0)


@pytest.mark.parametrize("x", [*SPECIAL, math.nan, 2.2250738585072014e-308, -123456.789e-200])
def test_floats_encode_exactly_and_never_as_nan_literals(x):
    text = json.dumps(encode_float(x), allow_nan=False)
    assert same(decode_float(json.loads(text), "x"), x)


def test_a_float_given_as_integer_digits_decodes():
    # jsonb prints 1e308 as 1 followed by 308 zeros, which json.loads reads as an int
    assert decode_float(10**308, "x") == 1e308


def observations(rng: random.Random, n: int) -> list[Observation]:
    out = []
    for i in range(n):
        start = T0 + timedelta(minutes=i)
        cond = rng.choices([True, False, None], weights=[5, 4, 1])[0]
        out.append(Observation(start, start + timedelta(minutes=1), cond, rng.uniform(0, 9), 1.0, 2.0))
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_alert_tracker_round_trip_continues_identically(seed):
    rng = random.Random(seed)
    make = lambda: AlertTracker(  # noqa: E731
        "r", {"model": "m", "app": "a", "metric": "x"}, "warning", rng.randint(1, 3),
        rng.randint(1, 3), rng.choice([None, timedelta(minutes=2), timedelta(seconds=90)]))
    a, obs = make(), observations(rng, 80)
    cut = rng.randint(0, len(obs))
    before = [e for o in obs[:cut] for e in a.observe(o)]
    b = AlertTracker.from_state(through_json(a.to_state()))
    assert (b.alert_id, b.state, b.last_window_end) == (a.alert_id, a.state, a.last_window_end)
    after_a = [e for o in obs[cut:] for e in a.observe(o)]
    after_b = [e for o in obs[cut:] for e in b.observe(o)]
    assert after_a == after_b and b.to_state() == a.to_state()
    assert before + after_a  # the streams do fire


@pytest.mark.parametrize("seed", range(20))
def test_rate_ratio_check_round_trip_continues_identically(seed):
    rng = random.Random(seed)
    rule = RateRatioRule(name="r", kind="rate_ratio", numerator="repetition_rate_flagged",
                         denominator="count", baseline_windows=rng.randint(1, 10),
                         current_windows=rng.randint(1, 3), min_samples=10)
    windows = []
    for i in range(60):
        n = rng.randint(0, 200)
        share = 0.3 if 20 <= i < 30 else 0.02
        flagged = sum(rng.random() < share for _ in range(n))
        windows.append(WindowAggregate(T0, T0, count=n,
                                       metrics={"repetition_rate": MetricStats(n=n, flagged=flagged)}))

    def feed(check, ws):
        out = []
        for w in ws:
            obs = check.observe(w, False)
            check.commit(obs.condition)
            out.append((obs.condition, obs.p_value, obs.baseline, json.dumps(obs.evidence)))
        return out

    a = RateRatioCheck(rule)
    cut = rng.randint(0, len(windows))
    feed(a, windows[:cut])
    b = check_from_state(rule, through_json(a.to_state()))
    assert feed(b, windows[cut:]) == feed(a, windows[cut:]) and b.to_state() == a.to_state()


@pytest.mark.parametrize("cut", [0, 1, 17, 33, 38, 44, 59])
def test_evaluator_round_trip_gives_the_same_alerts(cut):
    rules = load_default_rules()
    incidents = {"latency": (("llama", "chat"), 30, 40), "repetition": (("qwen", "chat"), 35, 45)}
    batches = traffic(75, incidents)
    a = Evaluator(rules)
    run(a, batches[:cut])
    state = through_json(a.to_state())
    b = Evaluator.from_state(rules, state)
    assert b.to_state() == a.to_state()
    events = run(a, batches[cut:])
    assert run(b, batches[cut:]) == events and b.to_state() == a.to_state()
    assert [t.alert_id for t in b.active()] == [t.alert_id for t in a.active()]
    if cut < 35:
        assert {e["status"] for e in events} == {"firing", "resolved"}


def test_evaluator_round_trip_resolves_an_alert_open_at_the_cut():
    rules = load_default_rules()
    batches = traffic(60, {"latency": (("llama", "chat"), 30, 40)})
    a = Evaluator(rules)
    assert any(e["status"] == "firing" for e in run(a, batches[:35]))
    b = Evaluator.from_state(rules, through_json(a.to_state()))
    assert [e["status"] for e in run(b, batches[35:])] == ["resolved"]


if given is not None:

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(seed=st.integers(0, 2**32), xs=st.lists(st.one_of(
        st.floats(allow_nan=False, allow_infinity=True), st.sampled_from(SPECIAL)), max_size=120),
        cut=st.integers(0, 120))
    def test_detector_round_trip_property(seed, xs, cut):
        assert_detector_round_trips(detector(random.Random(seed)), xs, min(cut, len(xs)))
