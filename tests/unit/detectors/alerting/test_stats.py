"""Rate-ratio test and Benjamini-Hochberg against hand computations (detectors/alerting/stats.py)."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from parrotwatch.detectors.alerting.stats import benjamini_hochberg, rate_ratio_test


def test_rate_ratio_p_value_is_the_hypergeometric_tail_by_hand():
    # 3 of 5 now, 0 of 5 before: K=3 events among N=10, 5 current. P(X >= 3) = C(5,3)C(5,0)/C(10,3)
    res = rate_ratio_test(3, 5, 0, 5)
    assert res.p_value == pytest.approx(comb(5, 3) / comb(10, 3))  # = 1/12
    assert res.ratio == float("inf") and res.current_share == 0.6 and res.baseline_share == 0.0
    # 4 of 10 vs 1 of 10: K=5, N=20, n=10: P(X=4) + P(X=5) = (C(10,4)C(10,1) + C(10,5)) / C(20,5)
    res = rate_ratio_test(4, 10, 1, 10)
    assert res.p_value == pytest.approx((comb(10, 4) * comb(10, 1) + comb(10, 5)) / comb(20, 5))
    assert res.ratio == pytest.approx(4.0) and not res.insufficient


def test_rate_ratio_is_one_sided():
    assert rate_ratio_test(0, 100, 50, 100).p_value == pytest.approx(1.0)
    assert rate_ratio_test(50, 100, 0, 100).p_value < 1e-15
    assert rate_ratio_test(0, 100, 0, 1000).ratio is None


def test_rate_ratio_insufficient_below_min_n():
    for args in ((5, 29, 10, 1000), (5, 100, 1, 29), (0, 0, 0, 0)):
        res = rate_ratio_test(*args, min_n=30)
        assert res.insufficient and res.p_value is None and res.ratio is None
    assert not rate_ratio_test(5, 30, 10, 30, min_n=30).insufficient


def test_rate_ratio_rejects_impossible_counts():
    with pytest.raises(ValueError, match="cur_k"):
        rate_ratio_test(6, 5, 0, 10)
    with pytest.raises(ValueError, match="base_k"):
        rate_ratio_test(1, 5, -1, 10)


def test_benjamini_hochberg_hand_example():
    # m=5, q=.05: bounds i*q/m = .01 .02 .03 .04 .05; sorted .002 .009 .025 .041 .30
    # .002<=.01, .009<=.02, .025<=.03, .041>.04, .30>.05 -> reject the three smallest
    p = [0.041, 0.002, 0.30, 0.025, 0.009]
    assert benjamini_hochberg(p, 0.05) == [False, True, False, True, True]


def test_benjamini_hochberg_steps_up():
    # m=4, bounds .0125 .025 .0375 .05; sorted .004 .026 .036 .9: .026 > .025 fails its own bound
    # but .036 <= .0375 passes, so the step-up rejects all three smaller ones (Bonferroni: one)
    assert benjamini_hochberg([0.9, 0.036, 0.004, 0.026], 0.05) == [False, True, True, True]
    assert benjamini_hochberg([0.5, 0.6], 0.05) == [False, False]
    assert benjamini_hochberg([], 0.05) == []


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(5)
    for _ in range(50):
        p = np.concatenate([rng.uniform(size=20), rng.uniform(0, 0.01, size=5)])
        expected = (false_discovery_control(p) <= 0.1).tolist()
        assert benjamini_hochberg(p.tolist(), 0.1) == expected


@pytest.mark.parametrize(("p", "q"), [([0.1, 1.5], 0.05), ([0.1, float("nan")], 0.05), ([0.1], 0.0)])
def test_benjamini_hochberg_rejects_bad_input(p, q):
    with pytest.raises(ValueError):
        benjamini_hochberg(p, q)
