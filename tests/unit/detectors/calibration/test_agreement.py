"""Agreement: alpha equals the krippendorff package, the kappa CI is the bootstrap of
scikit-learn's kappa and covers, the reviewer-noise layer reduces to Rogan-Gladen without noise."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from parrotwatch.detectors.calibration.agreement import (
    kappa_interval,
    krippendorff_alpha,
    reviewer_corrected_prevalence,
)
from parrotwatch.detectors.calibration.estimators import rogan_gladen


def _two_reviewers(seed: int, n: int, values: np.ndarray, agree: float, missing: float):
    rng = np.random.default_rng(seed)
    first = rng.choice(values, n).astype(float)
    second = np.where(rng.random(n) < agree, first, rng.choice(values, n)).astype(float)
    second[rng.random(n) < missing] = np.nan
    return first, second


@pytest.mark.parametrize("level, values", [("nominal", np.array([0, 1])),
                                           ("ordinal", np.arange(1, 6)),
                                           ("interval", np.arange(1, 6))])
@pytest.mark.parametrize("seed", range(3))
def test_alpha_equals_the_krippendorff_package(level, values, seed):
    first, second = _two_reviewers(seed, 200, values, agree=0.6, missing=0.5)
    reference = krippendorff.alpha(reliability_data=np.vstack([first, second]),
                                   level_of_measurement=level)
    assert krippendorff_alpha(first, second, level) == pytest.approx(reference, abs=1e-12)


def test_alpha_orders_the_helpful_scale():
    """Near misses on the 1-5 scale count less as ordinal or interval data than as nominal."""
    first = np.array([1, 2, 3, 4, 5] * 10, dtype=float)
    second = np.clip(first + np.tile([1, -1], 25), 1, 5)
    assert krippendorff_alpha(first, second, "interval") > krippendorff_alpha(first, second, "nominal")


def test_alpha_is_none_without_two_doubly_labelled_items_or_with_one_value():
    nan = float("nan")
    assert krippendorff_alpha([1, 0, 1], [nan, nan, nan]) is None
    assert krippendorff_alpha([1, 0, 1], [1, nan, nan]) is None
    assert krippendorff_alpha([1, 1, 1], [1, 1, nan]) is None
    assert krippendorff_alpha([], []) is None
    with pytest.raises(ValueError, match="level must be one of"):
        krippendorff_alpha([1, 0], [1, 0], "ratios")


@pytest.mark.parametrize("seed", range(3))
def test_kappa_value_is_scikit_learns_and_the_interval_holds_it(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, 300)
    b = np.where(rng.random(300) < 0.8, a, 1 - a)
    w = rng.uniform(1, 20, 300)
    k = kappa_interval(a, b, w, seed=seed)
    assert k.value == pytest.approx(cohen_kappa_score(a, b, sample_weight=w), abs=1e-12)
    assert k.low < k.value < k.high and 0 < k.se < 0.2
    assert kappa_interval(a, b, w, seed=seed) == k  # seeded: reproducible
    assert kappa_interval(a, b, w, seed=seed + 1) != k


def test_kappa_interval_covers_the_population_kappa():
    """Population: 100,000 items, kappa ~ 0.85 between flag and label; 200 samples of ~200 items
    drawn with unequal probabilities (Poisson), weighted by 1/pi. 184 of 200 when run: the
    percentile bootstrap runs a little short at this size."""
    rng = np.random.default_rng(7)
    label = rng.random(100_000) < 0.2
    flag = np.where(rng.random(100_000) < 0.85, label, rng.random(100_000) < 0.2)
    truth = cohen_kappa_score(flag, label)
    pi = np.where(flag, 0.004, 0.0015)
    covered = 0
    for _ in range(200):
        s = np.flatnonzero(rng.random(pi.size) < pi)
        k = kappa_interval(flag[s], label[s], 1 / pi[s], seed=1, resamples=500)
        covered += k.low <= truth <= k.high
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_kappa_interval_is_nan_when_kappa_is_undefined():
    assert np.isnan(kappa_interval([1, 1, 1], [1, 1, 1]).value)
    assert np.isnan(kappa_interval([1], [0]).value)
    assert np.isnan(kappa_interval([], []).value)


def test_reviewer_correction_without_noise_is_rogan_gladen():
    rng = np.random.default_rng(3)
    bad = rng.random(400) < 0.2
    flags = np.where(bad, rng.random(400) < 0.8, rng.random(400) < 0.1)
    pi = rng.uniform(0.05, 0.5, 400)
    second = np.where(rng.random(400) < 0.3, bad, np.nan)
    c = reviewer_corrected_prevalence(0.25, flags, bad, second, pi)
    rg = rogan_gladen(0.25, flags, bad, pi)
    assert c.reviewer_error.value == 0.0
    assert c.corrected.value == pytest.approx(rg.corrected.value, abs=1e-12)
    assert c.corrected.se == pytest.approx(rg.corrected.se, rel=1e-9)


def test_reviewer_correction_is_nan_without_doubly_labelled_items_or_with_chance_reviewers():
    flags, labels = [1, 0, 1, 0], [1, 0, 0, 0]
    nan = float("nan")
    assert np.isnan(reviewer_corrected_prevalence(0.3, flags, labels, [nan] * 4, [0.5] * 4)
                    .corrected.value)
    chance = reviewer_corrected_prevalence(0.3, flags, labels, [0, 1, 1, 1], [0.5] * 4)
    assert np.isnan(chance.corrected.value) and chance.doubly_labelled == 4
