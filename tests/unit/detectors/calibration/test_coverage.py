"""Coverage of the corrected prevalence through the pipeline's own two-phase sampling, with exact
and with noisy reviewers.

Traffic: 10,000 requests, 10% bad; the detector scores bad ~ N(2, 1), good ~ N(0, 1) and flags
above 1.2 (Se ~ 0.79, Sp ~ 0.88). Phase 1 keeps a request's text with p1 = ``pool_probability``
(base 0.08, raised to 0.3 within 0.5 of the threshold when oversampling), decided by
``kept_for_review`` (a hash of its id); phase 2 draws ``second_phase``, an SRS of 400 of the pool;
pi = p1 * p2. A share of 0.3 of the items goes to a second reviewer. Noisy reviewers err with
probability 0.05 each, independently.

Run over 1,000 further seeds, the reviewer-corrected interval covers ~97% (slightly
conservative: its SE matches the estimator's spread, but the estimator is not quite normal); the
test's seeds 0-199 give 96% uniform and 97% oversampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from parrotwatch.detectors.calibration.agreement import reviewer_corrected_prevalence
from parrotwatch.detectors.calibration.estimators import rogan_gladen
from parrotwatch.detectors.calibration.sampling import (
    kept_for_review,
    pool_probability,
    second_phase,
)

THRESHOLD, NOISE, SEEDS = 1.2, 0.05, range(200)


@dataclass
class Run:
    truth: float        # the true rate of bad answers over all requests
    raw: float          # the detector's flagged share over all requests
    flags: np.ndarray   # of the labelled items
    bad: np.ndarray     # their true state
    first: np.ndarray   # the first (noisy) reviewer's label
    second: np.ndarray  # the second reviewer's, NaN where there is none
    pi: np.ndarray      # p1 * p2


def _two_phase(seed: int, oversample: bool, n: int = 10_000, budget: int = 400,
               double_share: float = 0.3) -> Run:
    rng = np.random.default_rng(seed)
    bad = rng.random(n) < 0.10
    scores = rng.normal(np.where(bad, 2.0, 0.0), 1.0)
    flags = scores > THRESHOLD
    rates = dict(base=0.08, near_rate=0.3 if oversample else 0.0, flagged_rate=0.0, near=0.5)
    p1 = np.array([pool_probability({"d": s}, {"d": THRESHOLD}, **rates) for s in scores])
    pool = np.flatnonzero([kept_for_review(f"{seed}-{i}", p) for i, p in enumerate(p1)])
    drawn, p2 = second_phase(pool.size, budget, rng)
    items = pool[drawn]
    truth = bad[items]
    first = np.where(rng.random(items.size) < NOISE, ~truth, truth)
    second = np.where(rng.random(items.size) < NOISE, ~truth, truth).astype(float)
    second[rng.random(items.size) >= double_share] = np.nan
    return Run(bad.mean(), flags.mean(), flags[items], truth, first, second, p1[items] * p2)


def _covers(estimate, truth) -> bool:
    return estimate.low <= truth <= estimate.high


@pytest.fixture(scope="module", params=[False, True], ids=["uniform", "oversampled-near-threshold"])
def runs(request) -> tuple[bool, list[Run]]:
    return request.param, [_two_phase(seed, request.param) for seed in SEEDS]


def test_corrected_prevalence_covers_the_truth_with_exact_reviewers(runs):
    _, sims = runs
    estimates = [rogan_gladen(r.raw, r.flags, r.bad, r.pi) for r in sims]
    coverage = np.mean([_covers(e.corrected, r.truth) for e, r in zip(estimates, sims, strict=True)])
    assert 0.93 <= coverage <= 0.97, coverage
    raw_bias = np.array([r.raw - r.truth for r in sims])  # p Se + (1 - p)(1 - Sp) - p ~ +0.085
    assert raw_bias.mean() > 0.07 and raw_bias.min() > 0.05
    assert abs(np.mean([e.corrected.value - r.truth for e, r in zip(estimates, sims, strict=True)])) < 0.005


def test_reviewer_corrected_prevalence_covers_the_truth_with_noisy_reviewers(runs):
    _, sims = runs
    corrected = [reviewer_corrected_prevalence(r.raw, r.flags, r.first, r.second, r.pi) for r in sims]
    coverage = np.mean([_covers(c.corrected, r.truth) for c, r in zip(corrected, sims, strict=True)])
    assert 0.93 <= coverage <= 0.97, coverage
    errors = [c.reviewer_error for c in corrected]
    assert abs(np.mean([e.value for e in errors]) - NOISE) < 0.005  # the noise is recovered
    assert abs(np.mean([c.corrected.value - r.truth for c, r in zip(corrected, sims, strict=True)])) < 0.015
    raw_bias = np.array([r.raw - r.truth for r in sims])
    assert raw_bias.mean() > 0.07 and raw_bias.min() > 0.05  # the raw share, same runs


def test_ignoring_reviewer_noise_biases_the_corrected_prevalence(runs):
    """Rogan-Gladen against noisy labels estimates what reviewers call bad,
    q = p (1 - e) + (1 - p) e = 0.14, not p = 0.10."""
    _, sims = runs
    naive = [rogan_gladen(r.raw, r.flags, r.first, r.pi).corrected for r in sims]
    bias = np.mean([e.value - r.truth for e, r in zip(naive, sims, strict=True)])
    assert 0.025 < bias < 0.055, bias
    coverage = np.mean([_covers(e, r.truth) for e, r in zip(naive, sims, strict=True)])
    assert coverage < 0.91, coverage  # below the 93% floor


def test_ignoring_the_inclusion_probabilities_breaks_only_the_oversampled_estimate(runs):
    oversample, sims = runs
    flat = [rogan_gladen(r.raw, r.flags, r.bad, np.full(r.pi.size, r.pi.mean())).corrected for r in sims]
    coverage = np.mean([_covers(e, r.truth) for e, r in zip(flat, sims, strict=True)])
    if oversample:
        assert coverage < 0.85, coverage
    else:  # every pi is equal: the weights change nothing
        assert all(np.ptp(r.pi) < 1e-12 for r in sims)
        assert 0.93 <= coverage <= 0.97, coverage


def _stored_record(seed: int, oversample: bool, n: int = 10_000, budget: int = 400) -> tuple[float, dict]:
    """The pipeline end to end in memory: the pool, the review job's draw (doubles included, by
    ``draw_review_set``), reviewers erring with NOISE, and the record ``calibrate_detector``
    stores; (the true rate, the record)."""
    from parrotwatch.detectors.calibration.calibrate import calibrate_detector
    from parrotwatch.review.draw import draw_review_set

    rng = np.random.default_rng(10_000 + seed)
    bad = rng.random(n) < 0.10
    scores = rng.normal(np.where(bad, 2.0, 0.0), 1.0)
    rates = dict(base=0.08, near_rate=0.3 if oversample else 0.0, flagged_rate=0.0, near=0.5)
    p1 = [pool_probability({"d": s}, {"d": THRESHOLD}, **rates) for s in scores]
    pool = [(str(i), p) for i, p in enumerate(p1) if kept_for_review(f"stored-{seed}-{i}", p)]
    draw = draw_review_set(pool, budget, 0.3, rng)
    idx = np.array([int(item.request_id) for item in draw.items])
    truth = bad[idx]
    first = np.where(rng.random(idx.size) < NOISE, ~truth, truth).astype(int)
    second = np.where(rng.random(idx.size) < NOISE, ~truth, truth).astype(float)
    second[[item.reviewers_needed == 1 for item in draw.items]] = np.nan
    calibration = calibrate_detector(scores[idx], first, [i.inclusion_probability for i in draw.items],
                                     threshold=THRESHOLD, raw_rate=float((scores > THRESHOLD).mean()),
                                     second_labels=second, seed=seed)
    return float(bad.mean()), calibration.to_record()


@pytest.mark.parametrize("oversample", [False, True], ids=["uniform", "oversampled-near-threshold"])
def test_the_stored_corrected_rate_covers_the_truth(oversample):
    """What ``parrotwatch calibrate`` stores (``corrected_low`` .. ``corrected_high``), through the
    review job's own draw, with reviewers who err: the acceptance's 93-97% over 200 seeds."""
    results = [_stored_record(seed, oversample) for seed in SEEDS]
    assert all(r["details"]["corrected_for"] == "detector and reviewer error" for _, r in results)
    coverage = np.mean([r["corrected_low"] <= t <= r["corrected_high"] for t, r in results])
    assert 0.93 <= coverage <= 0.97, coverage
    raw_bias = np.mean([r["raw_rate"] - t for t, r in results])
    assert raw_bias > 0.07  # the raw flagged share, in the same runs, is biased
