"""Review-sample estimators: equal to scikit-learn where it has them, and a corrected prevalence
whose 95% CI covers the truth in simulation, with or without oversampling near the threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from parrotwatch.detectors.calibration.estimators import rogan_gladen, weighted_auc, weighted_kappa
from parrotwatch.detectors.calibration.sampling import inclusion_probabilities, poisson_sample


@pytest.mark.parametrize("seed", range(5))
def test_weighted_kappa_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, 300)
    b = np.where(rng.random(300) < 0.7, a, rng.integers(0, 3, 300))
    w = rng.uniform(1, 20, 300)
    assert weighted_kappa(a, b, w) == pytest.approx(cohen_kappa_score(a, b, sample_weight=w), abs=1e-12)
    assert weighted_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_weighted_auc_equals_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(400) < 0.3
    s = np.round(rng.normal(y * 1.0, 1.0), 1)  # rounded: many ties
    w = rng.uniform(1, 20, 400)
    assert weighted_auc(s, y, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)


def test_inclusion_probabilities_spend_the_budget_and_cap_at_one():
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 1, 5000)
    for budget in (50, 400, 4999, 9000):
        pi = inclusion_probabilities(scores, 1.0, budget, near=0.2, near_share=0.5, flagged_share=0.3)
        assert np.all((pi > 0) & (pi <= 1))
        assert pi.sum() == pytest.approx(min(budget, scores.size))
    pi = inclusion_probabilities(scores, 1.0, 400, near=0.2, near_share=0.5)
    near = np.abs(scores - 1.0) <= 0.2
    assert pi[near].min() > 5 * pi[~near].max()  # the oversampling is real


def _simulate(seed: int, near_share: float, weighted: bool = True):
    """20,000 requests, 10% bad; the detector scores bad ~ N(2, 1), good ~ N(0, 1), flags > 1.2
    (Se ~ 0.79, Sp ~ 0.88); 400 expected labels from exact reviewers."""
    rng = np.random.default_rng(seed)
    bad = rng.random(20_000) < 0.10
    scores = rng.normal(np.where(bad, 2.0, 0.0), 1.0)
    flags = scores > 1.2
    pi = inclusion_probabilities(scores, 1.2, 400, near=0.5, near_share=near_share)
    s = poisson_sample(pi, rng)
    used_pi = pi[s] if weighted else np.full(s.size, s.size / scores.size)
    return rogan_gladen(flags.mean(), flags[s], bad[s], used_pi), bad.mean()


@pytest.mark.parametrize("near_share", [0.0, 0.5], ids=["uniform", "oversampled-near-threshold"])
def test_corrected_prevalence_ci_covers_the_truth_in_93_to_97_percent_of_200_seeds(near_share):
    covered, raw_bias = 0, []
    for seed in range(200):
        est, truth = _simulate(seed, near_share)
        covered += est.corrected.low <= truth <= est.corrected.high
        raw_bias.append(est.raw - truth)
    assert 0.93 <= covered / 200 <= 0.97, covered
    # the raw flagged share is biased: p Se + (1 - p)(1 - Sp) = 0.079 + 0.106 vs 0.10
    assert np.mean(raw_bias) > 0.07 and min(raw_bias) > 0.05


def test_ignoring_the_inclusion_probabilities_breaks_the_oversampled_estimate():
    covered = sum(lo <= t <= hi for e, t in (_simulate(seed, 0.5, weighted=False) for seed in range(200))
                  for lo, hi in [(e.corrected.low, e.corrected.high)])
    assert covered / 200 < 0.85, covered  # 135 of 200 when run: well under the 93% floor
