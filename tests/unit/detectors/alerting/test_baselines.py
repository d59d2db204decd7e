"""Golden values and properties of the streaming baseline detectors (detectors/alerting/baselines.py)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from parrotwatch.detectors.alerting.baselines import Cusum, EwmaZScore, PageHinkley
from parrotwatch.detectors.alerting.rules import CusumRule, EwmaRule, load_default_rules


def run(detector, xs) -> tuple[list[bool], list[float]]:
    alarms, stats = [], []
    for x in xs:
        detector.update(float(x))
        alarms.append(detector.alarm)
        stats.append(detector.statistic)
    return alarms, stats


def test_ewma_golden_by_hand():
    # alpha 0.5, warmup 2. x1=1: a=1 -> mu 1, var 0. x2=3: a=1/2 -> mu 2, var .5*(0+.5*4)=1.
    # x3=4: z=(4-2)/1=2 (not > 2); a=.5 -> mu 3, var .5*(1+.5*4)=1.5.
    # x4=10: z=7/sqrt(1.5) -> alarm, not learned. x5=3: z=0; mu 3, var .5*1.5=.75.
    d = EwmaZScore(alpha=0.5, threshold=2.0, warmup=2, direction="up")
    alarms, stats = run(d, [1, 3, 4, 10, 3])
    assert alarms == [False, False, False, True, False]
    assert stats == pytest.approx([0, 0, 2.0, 7 / math.sqrt(1.5), 0])
    assert d.mean == pytest.approx(3.0) and d.sigma == pytest.approx(math.sqrt(0.75))


def test_ewma_direction_floor_and_relearn():
    assert (
        run(EwmaZScore(alpha=0.5, threshold=2.0, warmup=2, direction="down"), [1, 3, 4, 10])[0][-1] is False
    )
    # a floor of 10 sigma-units swallows the spike: z = 7 / max(1.22, 10) = 0.7
    floored = EwmaZScore(alpha=0.5, threshold=2.0, warmup=2, min_sigma=10.0)
    assert run(floored, [1, 3, 4, 10])[1][-1] == pytest.approx(0.7)
    # relearn_after=2: the second outlier in a row becomes the new normal (warmup restarts)
    d = EwmaZScore(alpha=0.5, threshold=2.0, warmup=2, relearn_after=2)
    alarms, _ = run(d, [1, 3, 4, 10, 10, 10])
    assert alarms == [False, False, False, True, False, False]
    assert d.mean == pytest.approx(10.0)


def test_cusum_golden_known_reference():
    # k=.5, h=2, mu0=0, sigma0=1, restart at 0:
    # C+: 0, 1.0, 1.5, 2.5 (signal) ; C-: 0, 0, 0, 0, 2.5 (signal), then .5
    d = Cusum(k=0.5, h=2.0, target=0.0, sigma=1.0, fir=0.0)
    alarms, stats = run(d, [0.0, 1.5, 1.0, 1.5, -3.0, -1.0])
    assert alarms == [False, False, False, True, True, False]
    assert stats == pytest.approx([0.0, 1.0, 1.5, 2.5, 2.5, 0.5])
    # with the head start fir*h = 1 after a signal, C- at the last value is 1 + 1 - .5 = 1.5
    fir = Cusum(k=0.5, h=2.0, target=0.0, sigma=1.0, fir=0.5)
    assert run(fir, [0.0, 1.5, 1.0, 1.5, -3.0, -1.0])[1][-1] == pytest.approx(1.5)
    up_only = Cusum(k=0.5, h=2.0, target=0.0, sigma=1.0, fir=0.0, direction="up")
    assert run(up_only, [0.0, 1.5, 1.0, 1.5, -3.0, -1.0])[0] == [False, False, False, True, False, False]


def test_cusum_self_starting_golden():
    # learned 1, 2, 3: mean 2, sd 1. x=4: u = 2 * sqrt(3/4); Student t with 2 df has the closed form
    # F(u) = 1/2 + u / (2 sqrt(2 + u^2)); z = Phi^-1(F(u)); C+ = z - k.
    d = Cusum(k=0.5, h=10.0, warmup=3)
    run(d, [1, 2, 3, 4])
    u = 2 * math.sqrt(3 / 4)
    z = NormalDist().inv_cdf(0.5 + u / (2 * math.sqrt(2 + u * u)))
    assert d.statistic == pytest.approx(z - 0.5, rel=1e-9)
    assert d.mu0 == pytest.approx(2.5)  # 4 was in control, so it was learned


def test_page_hinkley_golden_by_hand():
    # delta .5, alpha .5. xbar: 0, 0, 1. m+: -.5; .5*-.5 + 0 - .5 = -.75; .5*-.75 + (3-1) - .5 = 1.125
    # PH+ = 1.125 - (-.75) = 1.875 > 1.8 -> alarm; the next value restarts the detector.
    d = PageHinkley(delta=0.5, threshold=1.8, alpha=0.5, min_instances=1, direction="up")
    alarms, stats = run(d, [0, 0, 3, 5])
    assert alarms == [False, False, True, False]
    assert stats == pytest.approx([0.0, 0.0, 1.875, 0.0])
    # min_instances holds the alarm back
    assert not any(run(PageHinkley(0.5, 1.8, 0.5, min_instances=4, direction="up"), [0, 0, 3])[0])


def _default_detectors():
    rules = load_default_rules().rules
    made = []
    for rule in rules:
        if isinstance(rule, EwmaRule):
            params = rule.model_dump(
                include={
                    "alpha",
                    "threshold",
                    "warmup",
                    "direction",
                    "min_sigma",
                    "min_rel_sigma",
                    "relearn_after",
                }
            )
            made.append((rule.name, lambda p=params: EwmaZScore(**p)))
        elif isinstance(rule, CusumRule):
            params = rule.model_dump(
                include={"k", "h", "warmup", "direction", "min_sigma", "min_rel_sigma", "fir",
                         "freeze_after", "relearn_after"}
            )
            made.append((rule.name, lambda p=params: Cusum(**p)))
    assert {name for name, _ in made} >= {"latency_p99_spike", "latency_creep", "low_confidence"}
    made.append(("page_hinkley(delta=.5, threshold=10)", lambda: PageHinkley(delta=0.5, threshold=10.0)))
    return made


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_alarm_on_stationary_gaussian_with_default_hyperparameters(seed):
    xs = np.random.default_rng(seed).normal(5.0, 1.0, size=1000)
    for name, make in _default_detectors():
        alarms, _ = run(make(), xs)
        assert sum(alarms) == 0, f"{name}: {sum(alarms)} alarms on stationary input"


@pytest.mark.parametrize(
    ("name", "make", "within"),
    [
        ("ewma", lambda: EwmaZScore(direction="up"), 1),
        ("cusum", lambda: Cusum(direction="up"), 3),
        ("page_hinkley", lambda: PageHinkley(delta=0.5, threshold=10.0, direction="up"), 3),
    ],
)
def test_alarm_soon_after_a_mean_shift(name, make, within):
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.normal(5.0, 1.0, 200), rng.normal(13.0, 1.0, 20)])  # +8 sigma at t=200
    alarms, _ = run(make(), xs)
    assert not any(alarms[:200])
    assert any(alarms[200 : 200 + within]), f"{name} missed the shift within {within} points"


def test_a_looser_threshold_never_gives_fewer_alarms():
    rng = np.random.default_rng(11)
    xs = np.concatenate(
        [
            rng.normal(0, 1, 300),
            rng.normal(2.5, 1, 40),
            rng.normal(0, 1, 100),
            rng.normal(-4, 1, 30),
            rng.normal(0, 1, 100),
        ]
    )
    families = {
        "ewma": lambda t: EwmaZScore(threshold=t),
        "cusum": lambda t: Cusum(h=t),
        "page_hinkley": lambda t: PageHinkley(delta=0.5, threshold=t),
    }
    for name, make in families.items():
        counts = [sum(run(make(t), xs)[0]) for t in (2.0, 3.0, 4.0, 6.0, 8.0, 12.0)]
        assert counts == sorted(counts, reverse=True), f"{name}: {counts}"
        assert counts[0] > counts[-1], f"{name}: thresholds made no difference {counts}"


def test_reset_restores_the_fresh_state():
    xs = np.random.default_rng(3).normal(0, 1, 50)
    for make in (EwmaZScore, Cusum, PageHinkley):
        used = make()
        run(used, xs)
        used.reset()
        assert run(used, xs) == run(make(), xs)


@pytest.mark.parametrize("bad", [dict(alpha=0), dict(warmup=1), dict(direction="sideways")])
def test_ewma_rejects_bad_hyperparameters(bad):
    with pytest.raises(ValueError):
        EwmaZScore(**bad)


def test_cusum_needs_target_and_sigma_together():
    with pytest.raises(ValueError, match="both target and sigma"):
        Cusum(target=1.0)
