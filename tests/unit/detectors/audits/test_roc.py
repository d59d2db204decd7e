"""ROC AUC, bootstrap CI and TPR@FPR against scikit-learn and hand examples; the log-log plot."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from parrotwatch.detectors.audits.roc import RocReport, bootstrap_aucs, plot_roc, roc_report


def _gaussian_scores(n_per_class: int, shift: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(shift, 1.0, n_per_class), rng.normal(0.0, 1.0, n_per_class)])
    labels = np.concatenate([np.ones(n_per_class, int), np.zeros(n_per_class, int)])
    return scores, labels


def _brute_force_tpr_at_fpr(scores, labels, target):
    """Independent of roc_curve: try every threshold t, predict member when score >= t."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    best = 0.0
    for t in np.unique(scores):
        if np.mean(neg >= t) <= target:
            best = max(best, float(np.mean(pos >= t)))
    return best


def test_perfectly_separated_scores():
    report = roc_report([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 1, 1, 0, 0, 0], n_bootstrap=50)
    assert report.auc == 1.0 and report.auc_ci_low == 1.0 and report.auc_ci_high == 1.0
    assert dict(report.tpr_at_fpr) == {0.001: 1.0, 0.01: 1.0}
    assert (report.n_members, report.n_nonmembers) == (3, 3)


def test_hand_example():
    # members 0.35, 0.8; non-members 0.1, 0.4. Pairs won by the member: (0.35>0.1), (0.8>0.1), (0.8>0.4);
    # lost: (0.35<0.4) -> AUC = 3/4. Thresholds inf, .8, .4, .35, .1 give (FPR, TPR) =
    # (0,0) (0,.5) (.5,.5) (.5,1) (1,1): TPR@0.1% = 0.5 (threshold .8), TPR@50% = 1 (threshold .35).
    report = roc_report([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], n_bootstrap=50, fpr_targets=(0.001, 0.5))
    assert report.auc == pytest.approx(0.75)
    assert dict(report.tpr_at_fpr) == {0.001: 0.5, 0.5: 1.0}
    assert report.fpr == (0.0, 0.0, 0.5, 0.5, 1.0) and report.tpr == (0.0, 0.5, 0.5, 1.0, 1.0)


def test_ties_count_one_half():
    # one member, one non-member, equal scores: AUC 1/2, and no threshold separates them
    report = roc_report([1.0, 1.0], [1, 0], n_bootstrap=20)
    assert report.auc == 0.5 and dict(report.tpr_at_fpr) == {0.001: 0.0, 0.01: 0.0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_curve_and_tpr_at_fpr_match_scikit_learn(seed):
    scores, labels = _gaussian_scores(1_500, shift=1.5, seed=seed)
    scores = np.round(scores, 2)  # plenty of ties
    report = roc_report(scores, labels, n_bootstrap=100, fpr_targets=(0.001, 0.01, 0.1))
    assert report.auc == roc_auc_score(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_array_equal(report.fpr, fpr)
    np.testing.assert_array_equal(report.tpr, tpr)
    fpr_d, tpr_d, _ = roc_curve(labels, scores)  # the default, thinned curve gives the same TPR@FPR
    for target, value in report.tpr_at_fpr.items():
        assert value == tpr_d[fpr_d <= target].max()
        assert value == _brute_force_tpr_at_fpr(scores, labels, target)
    assert 0 < report.tpr_at_fpr[0.001] <= report.tpr_at_fpr[0.01] <= report.tpr_at_fpr[0.1] < 1


def test_bootstrap_replicates_equal_roc_auc_score_on_the_same_resamples():
    scores, labels = _gaussian_scores(60, shift=0.7, seed=3)
    scores = np.round(scores, 1)
    pos, neg = scores[labels == 1], scores[labels == 0]
    aucs = bootstrap_aucs(pos, neg, n_bootstrap=5, seed=11)
    rng = np.random.default_rng(11)  # the same draws, one block of 5 resamples
    x, y = rng.choice(pos, (5, pos.size)), rng.choice(neg, (5, neg.size))
    y_true = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    for b in range(5):
        assert aucs[b] == pytest.approx(roc_auc_score(y_true, np.r_[x[b], y[b]]), abs=1e-12)


def test_bootstrap_ci_contains_the_auc_and_narrows_with_more_samples():
    widths = []
    for n in (100, 2_000):
        scores, labels = _gaussian_scores(n, shift=0.5, seed=5)
        report = roc_report(scores, labels, n_bootstrap=300, seed=0)
        assert report.auc_ci_low < report.auc < report.auc_ci_high
        widths.append(report.auc_ci_high - report.auc_ci_low)
    # the standard error shrinks like 1/sqrt(n): 20x the samples, about 4.5x narrower
    assert widths[1] < widths[0] / 3


def test_bootstrap_ci_has_the_width_of_a_95_percent_interval():
    # Hanley & McNeil 1982: SE^2 = (A(1-A) + (n1-1)(Q1-A^2) + (n0-1)(Q2-A^2)) / (n1 n0),
    # Q1 = A/(2-A), Q2 = 2A^2/(1+A); a 95% interval is about 2 * 1.96 * SE wide
    # (over seeds 0-4 the bootstrap width / that = 0.97-1.04; a 80% interval would give ~0.65)
    n = 2_000
    scores, labels = _gaussian_scores(n, shift=0.5, seed=2)
    report = roc_report(scores, labels, n_bootstrap=1_000, seed=2)
    a = report.auc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (n * n))
    assert (report.auc_ci_high - report.auc_ci_low) / (2 * 1.959964 * se) == pytest.approx(1.0, abs=0.12)


def test_report_is_deterministic_frozen_and_leaves_inputs_alone():
    scores, labels = _gaussian_scores(200, seed=9)
    s_before, l_before = scores.copy(), labels.copy()
    first = roc_report(scores, labels, n_bootstrap=200, seed=4)
    assert first == roc_report(scores, labels, n_bootstrap=200, seed=4)
    assert first.auc_ci_low != roc_report(scores, labels, n_bootstrap=200, seed=5).auc_ci_low
    np.testing.assert_array_equal(scores, s_before)
    np.testing.assert_array_equal(labels, l_before)
    assert roc_report(list(scores), list(labels), n_bootstrap=200, seed=4) == first  # plain lists too
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.auc = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.tpr_at_fpr[0.5] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("scores", "labels"),
    [([0.1, 0.2], [1, 1]), ([0.1, 0.2], [1, 2]), ([0.1, float("nan")], [1, 0]), ([0.1], [1, 0])],
)
def test_bad_inputs_are_rejected(scores, labels):
    with pytest.raises(ValueError):
        roc_report(scores, labels, n_bootstrap=10)


def test_plot_is_written(tmp_path):
    reports: dict[str, RocReport] = {}
    for name, shift in (("LOSS", 1.0), ("zlib", 0.5)):
        scores, labels = _gaussian_scores(500, shift=shift, seed=1)
        reports[name] = roc_report(scores, labels, n_bootstrap=50)
    path = plot_roc(reports, tmp_path / "roc.png")
    assert path == tmp_path / "roc.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError):
        plot_roc({}, tmp_path / "empty.png")
