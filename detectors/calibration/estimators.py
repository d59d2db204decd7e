"""Estimators from a review sample drawn with known inclusion probabilities pi_i.

Every estimator weights a labelled request by w_i = 1/pi_i (Horvitz & Thompson 1952) and is a
ratio of weighted sums, the Hájek (1971) form R = sum_s w_i y_i / sum_s w_i z_i, whose variance
under Poisson sampling is estimated by linearisation (Särndal, Swensson & Wretman 1992, 5.5):

    u_i = (y_i - R z_i) / sum_s w_i z_i,    V(R) = sum_s (1 - pi_i) / pi_i^2 * u_i^2.

A detector's sensitivity Se = P(flag | bad) and specificity Sp = P(no flag | good) are such ratios
over the labelled requests. Its raw flagged share r over all requests is known exactly, but
r = p Se + (1 - p)(1 - Sp) is biased for the true rate p of bad answers. The Rogan-Gladen (1978)
estimator inverts it:

    p = (r + Sp - 1) / (Se + Sp - 1),

with a delta-method variance (Se and Sp come from disjoint units, so their covariance is 0):

    V(p) = (p / J)^2 V(Se) + ((1 - p) / J)^2 V(Sp),    J = Se + Sp - 1 (Youden's index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its standard error and a normal ``level`` interval clipped to [lo, hi]."""

    value: float
    se: float
    low: float
    high: float


def interval(value: float, se: float, level: float, lo: float = 0.0, hi: float = 1.0) -> Estimate:
    """The normal ``level`` interval value +- z se, clipped to [lo, hi]."""
    z = float(norm.ppf(0.5 + level / 2))
    return Estimate(value, se, max(lo, value - z * se), min(hi, value + z * se))


def hajek_ratio(y, z, pi, level: float = 0.95) -> Estimate:
    """R = sum w y / sum w z over the sample, with its linearisation SE (see the module).

    ``y``, ``z`` and ``pi`` are the sampled units' values. The share of bad answers among four
    labels, one drawn with certainty and three with probability 1/2:

    >>> r = hajek_ratio(y=[1, 0, 0, 1], z=[1, 1, 1, 1], pi=[1.0, 0.5, 0.5, 0.5])
    >>> round(r.value, 6), round(r.se, 4)  # 3 / 7; V = 2 (3/49)^2 * 2 + 2 (4/49)^2 = 68/2401
    (0.428571, 0.1683)
    """
    y, z, pi = (np.asarray(a, dtype=np.float64) for a in (y, z, pi))
    if np.any(pi <= 0) or np.any(pi > 1):
        raise ValueError("inclusion probabilities must lie in (0, 1]")
    w = 1.0 / pi
    denominator = float(np.sum(w * z))
    if denominator == 0:
        return Estimate(float("nan"), float("nan"), 0.0, 1.0)
    value = float(np.sum(w * y)) / denominator
    u = (y - value * z) / denominator
    return interval(value, float(np.sqrt(np.sum((1 - pi) / pi**2 * u**2))), level)


def hajek_influence(y, z, pi) -> tuple[float, np.ndarray]:
    """R = sum w y / sum w z and each sampled unit's weighted linearised value
    e_i = w_i (y_i - R z_i) / sum w z, so that V(R) = sum (1 - pi_i) e_i^2 (the module's formula
    with w_i folded in). Smooth functions of several Hájek ratios combine their e_i by the chain
    rule (Woodruff 1971), which :func:`hajek_ratio` alone cannot do.

    >>> r, e = hajek_influence([1, 0], [1, 1], [0.5, 0.5])
    >>> r, e.tolist()  # V = 2 * 0.5 * 0.25^2 = 0.0625, as hajek_ratio's
    (0.5, [0.25, -0.25])
    """
    y, z, pi = (np.asarray(a, dtype=np.float64) for a in (y, z, pi))
    w = 1.0 / pi
    denominator = float(np.sum(w * z))
    if denominator == 0:
        return float("nan"), np.full(y.size, np.nan)
    value = float(np.sum(w * y)) / denominator
    return value, w * (y - value * z) / denominator


@dataclass(frozen=True)
class Prevalence:
    """The corrected rate of bad answers next to the raw flagged share it corrects."""

    corrected: Estimate
    raw: float
    sensitivity: Estimate
    specificity: Estimate
    labels: int


def rogan_gladen(raw_rate: float, flags, labels, pi, level: float = 0.95) -> Prevalence:
    """The true rate of bad answers from the detector's raw flagged share over all requests
    (``raw_rate``) and its measured sensitivity and specificity on the labelled sample
    (``flags``: the detector's verdict, ``labels``: the reviewers', 1 = bad; ``pi``: each sampled
    request's inclusion probability). Rogan & Gladen (1978); variance as in the module.

    A detector that flags 17% of requests, with Se = 0.8 and Sp = 0.9, means 10% are bad:

    >>> flags  = [1] * 8 + [0] * 2 + [1] * 9 + [0] * 81
    >>> labels = [1] * 10 + [0] * 90
    >>> p = rogan_gladen(0.17, flags, labels, [0.5] * 100)
    >>> round(p.corrected.value, 6), round(p.sensitivity.value, 2), round(p.specificity.value, 2)
    (0.1, 0.8, 0.9)
    """
    f, y, pi = (np.asarray(a, dtype=np.float64) for a in (flags, labels, pi))
    se = hajek_ratio(f * y, y, pi, level)
    sp = hajek_ratio((1 - f) * (1 - y), 1 - y, pi, level)
    youden = se.value + sp.value - 1
    if not np.isfinite(youden) or youden <= 0:  # the detector is no better than chance here
        corrected = Estimate(float("nan"), float("nan"), 0.0, 1.0)
    else:
        p = (raw_rate + sp.value - 1) / youden
        var = (p / youden) ** 2 * se.se**2 + ((1 - p) / youden) ** 2 * sp.se**2
        corrected = interval(float(np.clip(p, 0.0, 1.0)), float(np.sqrt(var)), level)
    return Prevalence(corrected, float(raw_rate), se, sp, int(y.size))


def weighted_kappa(a, b, weights=None) -> float:
    """Cohen's (1960) kappa between two raters' labels, each pair weighted (by 1/pi):
    kappa = (p_o - p_e) / (1 - p_e) on the weighted confusion matrix; equals scikit-learn's
    ``cohen_kappa_score(a, b, sample_weight=weights)``.

    >>> weighted_kappa([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    a, b = np.asarray(a), np.asarray(b)
    w = np.ones(a.size) if weights is None else np.asarray(weights, dtype=np.float64)
    classes = np.union1d(a, b)
    ia, ib = np.searchsorted(classes, a), np.searchsorted(classes, b)
    m = np.zeros((classes.size, classes.size))
    np.add.at(m, (ia, ib), w)
    m /= m.sum()
    observed = np.trace(m)
    expected = float(m.sum(axis=1) @ m.sum(axis=0))
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


def weighted_auc(scores, labels, weights=None) -> float:
    """ROC AUC of ``scores`` for ``labels`` (1 = bad), each request weighted (by 1/pi): the
    weighted Mann-Whitney probability that a bad request outscores a good one, ties counting
    half (Hanley & McNeil 1982); equals ``roc_auc_score(labels, scores, sample_weight=weights)``.

    >>> weighted_auc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0])
    0.875
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    w = np.ones(s.size) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    _, starts = np.unique(s, return_index=True)
    bounds = np.append(starts, s.size)
    below, total = 0.0, 0.0  # weight of good requests scored below; sum over bad of wins
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        good = float(w[lo:hi][~y[lo:hi]].sum())
        bad = float(w[lo:hi][y[lo:hi]].sum())
        total += bad * (below + good / 2)
        below += good
    pairs = float(w[y].sum() * w[~y].sum())
    return total / pairs if pairs else float("nan")
