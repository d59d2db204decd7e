"""Dataset inference (Maini et al. 2024): the Welch t-test by hand, the fit-on-A / test-on-B pipeline on
hand inputs, its false-positive rate over 400 null trials (Clopper-Pearson CI) and its power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t
from scipy.stats import ttest_ind
from statsmodels.stats.proportion import proportion_confint

from parrotwatch.detectors.audits.dataset_inference import (
    dataset_inference,
    dataset_inference_on_split,
    welch_t_greater,
)

ALPHA = 0.05


def test_welch_t_by_hand():
    # a = 1, 2, 3, 4: mean 2.5, s^2 = 5/3, s^2/n = 5/12; b = 0, 1, 2: mean 1, s^2 = 1, s^2/n = 1/3
    # t = 1.5 / sqrt(5/12 + 1/3) = 1.5 / sqrt(3/4) = sqrt(3)
    # df = (3/4)^2 / ((5/12)^2 / 3 + (1/3)^2 / 2) = (9/16) / (49/432) = 243/49
    t, df, p = welch_t_greater([1, 2, 3, 4], [0, 1, 2])
    assert t == pytest.approx(math.sqrt(3), rel=1e-12) and df == pytest.approx(243 / 49, rel=1e-12)
    assert p == pytest.approx(student_t.sf(math.sqrt(3), 243 / 49), rel=1e-10)
    assert p == pytest.approx(0.07212, abs=5e-5)
    ref = ttest_ind([1, 2, 3, 4], [0, 1, 2], equal_var=False, alternative="greater")
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
    assert welch_t_greater([0, 1, 2], [1, 2, 3, 4])[2] == pytest.approx(1 - p)  # the other side
    with pytest.raises(ValueError, match=">= 2 values"):
        welch_t_greater([1.0], [1.0, 2.0])


def test_one_feature_by_hand():
    """With one feature the decision value w z(x) + b is affine in x, and w > 0 when the suspect half A
    scores higher: Welch's t on B's scores is Welch's t on B's raw values (t is affine invariant)."""
    r = dataset_inference_on_split([[3], [4], [5]], [[0], [1], [2]], [[1], [2], [3], [4]], [[0], [1], [2]])
    assert r.weights[0] > 0 and r.t == pytest.approx(math.sqrt(3)) and r.df == pytest.approx(243 / 49)
    assert r.p_value == pytest.approx(student_t.sf(math.sqrt(3), 243 / 49))
    assert (r.n_suspect, r.n_validation, r.n_test_suspect, r.n_test_validation) == (7, 6, 4, 3)
    assert not r.rejects(ALPHA) and r.rejects(0.1)
    # the suspect half A scores *lower*: w < 0, so the test on B looks the other way
    low, high = [[0], [1], [2]], [[3], [4], [5]]
    flipped = dataset_inference_on_split(low, high, [[1], [2], [3], [4]], [[0], [1], [2]])
    assert flipped.weights[0] < 0 and flipped.t == pytest.approx(-math.sqrt(3))
    assert flipped.p_value == pytest.approx(1 - r.p_value)


def test_weights_follow_the_informative_feature():
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(400, 3))
    suspect, validation = noise[:200] + [1.0, 0.0, -0.5], noise[200:]
    r = dataset_inference(suspect, validation, seed=0)
    w = np.array(r.weights)
    assert w[0] > 0 and w[2] < 0 and abs(w[1]) < min(abs(w[0]), abs(w[2]))
    assert r.p_value < 1e-10 and r.n_test_suspect == 100 and r.n_test_validation == 100


def test_rows_with_a_missing_feature_are_left_out_and_the_split_is_seeded():
    rng = np.random.default_rng(0)
    s, v = rng.normal(size=(21, 2)), rng.normal(size=(20, 2))
    s[0, 1] = np.nan
    r = dataset_inference(s, v, seed=5)
    assert (r.n_suspect, r.n_validation, r.n_test_suspect, r.n_test_validation) == (20, 20, 10, 10)
    assert r == dataset_inference(s, v, seed=5) and r.p_value != dataset_inference(s, v, seed=6).p_value
    with pytest.raises(ValueError, match=">= 4 usable"):
        dataset_inference(s[:3], v)
    with pytest.raises(ValueError, match="same features"):
        dataset_inference_on_split(s[:4], v[:4, :1], s[4:8], v[4:8])


def _null_trial(seed: int, n: int = 60) -> float:
    """Suspect and validation drawn from one skewed, correlated 4-feature distribution (like LOSS-type
    scores: a gamma tail, features sharing a common factor)."""
    rng = np.random.default_rng(10_000 + seed)
    common = rng.gamma(2.0, 1.0, size=(2 * n, 1))
    x = common + 0.5 * rng.normal(size=(2 * n, 4)) * [1, 2, 0.5, 1]
    return dataset_inference(x[:n], x[n:], seed=seed).p_value


def test_false_positive_rate_is_at_most_alpha_over_400_null_trials():
    p = np.array([_null_trial(seed) for seed in range(400)])
    rejected = int((p < ALPHA).sum())
    low, high = proportion_confint(rejected, p.size, alpha=0.05, method="beta")  # Clopper-Pearson
    assert low <= ALPHA, (rejected, low, high)  # the rate is not above alpha
    assert high >= ALPHA / 2, (rejected, low, high)  # nor a test that never rejects (p-values ~ uniform)
    assert 0.4 < np.median(p) < 0.6


def test_power_against_a_shifted_suspect_set():
    rng = np.random.default_rng(1)
    rejects = []
    for seed in range(50):
        x = rng.normal(size=(160, 4))
        x[:80, :2] += 0.6  # members score 0.6 sd higher on two of the four features
        rejects.append(dataset_inference(x[:80], x[80:], seed=seed).rejects(ALPHA))
    assert np.mean(rejects) > 0.8
