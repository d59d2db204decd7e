"""How far people agree with each other, and with a detector.

* Krippendorff's (2004, 2011) alpha between the reviewers who labelled the same items,
  alpha = 1 - D_o / D_e (observed over expected disagreement), for nominal labels (yes/no) and
  for interval or ordinal ones (the 1-5 "helpful" scale), by the ``krippendorff`` package. Items
  with one reviewer are missing values (NaN) and pair with nothing. Alpha describes the reviewers
  on the reviewed items, so it is not reweighted by 1/pi.
* A CI for Cohen's (1960) kappa between a detector's flags and the reviewers' labels, weighted
  by 1/pi (:func:`~parrotwatch.detectors.calibration.estimators.weighted_kappa`): a seeded
  percentile bootstrap over items (Efron & Tibshirani 1993, ch. 13). Chosen over the delta method
  (Fleiss, Cohen & Everitt 1969) because kappa is a bounded, skewed ratio and a review period has
  few labels: the normal interval can cross 1 where the percentile one cannot. Resampling items
  with their weights estimates the variance of a weighted statistic under with-replacement
  sampling (Rao & Wu 1988); it omits the finite-population correction 1 - pi, so it errs wide
  when inclusion probabilities are large.
* The reviewers' own error, from the items two of them labelled, and the prevalence corrected
  for it (:func:`reviewer_corrected_prevalence`).
"""

from __future__ import annotations

from dataclasses import dataclass

import krippendorff
import numpy as np

from parrotwatch.detectors.calibration.estimators import (
    Estimate,
    hajek_influence,
    interval,
    weighted_kappa,
)

LEVELS = ("nominal", "ordinal", "interval", "ratio")
NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), float("nan"))


def doubly_labelled(first, second) -> np.ndarray:
    """Mask of the items both reviewers labelled (neither label NaN)."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (first, second))
    return ~np.isnan(a) & ~np.isnan(b)


def krippendorff_alpha(first, second, level: str = "nominal") -> float | None:
    """Krippendorff's alpha between two reviewers, ``first[i]`` and ``second[i]`` labelling item
    i (NaN where a reviewer did not). None when fewer than 2 items have both labels, or when every
    pairable label has the same value (alpha is then undefined: D_e = 0).

    >>> krippendorff_alpha([1, 1, 0], [1, 1, float("nan")]) is None  # 0 only on an unpaired item
    True

    >>> round(krippendorff_alpha([1, 1, 0, 0, 1], [1, 1, 0, 1, float("nan")]), 4)  # 1 - 7*2/30
    0.5333
    >>> krippendorff_alpha([1, 0], [1, float("nan")]) is None
    True
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    data = np.vstack([np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)])
    if doubly_labelled(data[0], data[1]).sum() < 2:
        return None
    if np.unique(data[~np.isnan(data)]).size < 2:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):  # D_e = 0 among the pairable values
        alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    return alpha if np.isfinite(alpha) else None


def kappa_interval(a, b, weights=None, *, seed: int = 0, level: float = 0.95,
                   resamples: int = 2000) -> Estimate:
    """Weighted Cohen's kappa between ``a`` and ``b`` with its bootstrap SE and percentile
    ``level`` interval (see the module: resampling items, with their weights). NaN when kappa is
    undefined (fewer than 2 items, or both raters constant on the same value).

    >>> k = kappa_interval([1, 1, 0, 0] * 10, [1, 0, 0, 0] * 10, seed=1)
    >>> k.value, k.low < 0.5 < k.high <= 1
    (0.5, True)
    """
    a, b = np.asarray(a), np.asarray(b)
    w = np.ones(a.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if a.size < 2:
        return NAN_ESTIMATE
    value = weighted_kappa(a, b, w)
    if not np.isfinite(value):
        return NAN_ESTIMATE
    classes = np.union1d(a, b)
    k = classes.size
    cell = np.searchsorted(classes, a) * k + np.searchsorted(classes, b)
    rng = np.random.default_rng(seed)
    kappas = []
    chunk = max(1, 2_000_000 // a.size)  # resamples per batch: bounded memory
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        idx = rng.integers(0, a.size, size=(size, a.size))
        offset = np.arange(size)[:, None] * k * k
        m = np.bincount((offset + cell[idx]).ravel(), weights=w[idx].ravel(),
                        minlength=size * k * k).reshape(size, k, k)
        m /= m.sum(axis=(1, 2), keepdims=True)
        observed = np.trace(m, axis1=1, axis2=2)
        expected = np.einsum("bi,bi->b", m.sum(axis=2), m.sum(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            kappas.append(np.where(expected < 1, (observed - expected) / (1 - expected), np.nan))
    kappas = np.concatenate(kappas)
    kappas = kappas[np.isfinite(kappas)]
    if kappas.size < 2:
        return Estimate(value, float("nan"), float("nan"), float("nan"))
    low, high = np.percentile(kappas, [50 * (1 - level), 50 * (1 + level)])
    return Estimate(value, float(np.std(kappas, ddof=1)), float(low), float(high))


@dataclass(frozen=True)
class ReviewerCorrection:
    """The prevalence corrected for the detector's error and for the reviewers' own."""

    corrected: Estimate        # the true rate of bad answers
    reviewer_rate: Estimate    # q: the share reviewers would call bad (Rogan-Gladen vs labels)
    reviewer_error: Estimate   # e: a reviewer's error rate
    doubly_labelled: int


def reviewer_corrected_prevalence(raw_rate: float, flags, labels, second_labels, pi, *,
                                  level: float = 0.95) -> ReviewerCorrection:
    """The true rate p of bad answers when the reviewers themselves err.

    Two layers of Rogan & Gladen (1978). First, the detector's raw flagged share r over all
    requests, with its sensitivity and specificity measured against the first reviewer's labels,
    gives q, the share of requests a reviewer would call bad: r = q Se' + (1 - q)(1 - Sp') holds
    for any labels, so this layer needs no assumption. Second, a reviewer who errs with rate e
    calls q = p (1 - e) + (1 - p) e bad, so p = (q - e) / (1 - 2 e).

    e comes from the items two reviewers labelled. **Assumptions**: reviewers err with one rate
    e < 1/2 on bad and good items alike (symmetric, exchangeable reviewers), and independently
    of each other given the truth (conditional independence, as in latent-class models: Dawid &
    Skene 1979; Hui & Walter 1980). Then the weighted disagreement share d = 2 e (1 - e), so
    e = (1 - sqrt(1 - 2 d)) / 2. The doubly-labelled items are taken as a random share
    s = (doubly labelled / labelled) of the labelled ones, inclusion probability pi_i s.

    Variance by linearisation (Woodruff 1971): each unit's linearised value is
    g_i = dp/dq e^q_i + dp/de e^e_i, with e^q from the Rogan-Gladen layer (sample S, probability
    pi) and e^e from d (subsample S2, probability pi s), and

        V(p) = sum_S (1 - pi) (e^q)^2 (dp/dq)^2 + sum_S2 (1 - pi s) (e^e)^2 (dp/de)^2
               + 2 sum_S2 (1 - pi) (dp/dq e^q) (dp/de e^e),

    dp/dq = 1 / (1 - 2e), dp/de = (2q - 1) / (1 - 2e)^2, de/dd = 1 / (2 (1 - 2e)). NaN when the
    detector or the reviewers are no better than chance, or no item has two labels.

    >>> flags  = [1] * 8 + [0] * 2 + [1] * 9 + [0] * 81
    >>> labels = [1] * 10 + [0] * 90
    >>> c = reviewer_corrected_prevalence(0.17, flags, labels, labels, [0.5] * 100)
    >>> round(c.corrected.value, 6), c.reviewer_error.value  # reviewers agree: e = 0
    (0.1, 0.0)
    """
    f, y, y2, pi = (np.asarray(x, dtype=np.float64) for x in (flags, labels, second_labels, pi))
    nan = ReviewerCorrection(NAN_ESTIMATE, NAN_ESTIMATE, NAN_ESTIMATE, 0)
    double = doubly_labelled(y, y2)
    if y.size == 0 or not double.any():
        return nan
    se, e_se = hajek_influence(f * y, y, pi)
    sp, e_sp = hajek_influence((1 - f) * (1 - y), 1 - y, pi)
    youden = se + sp - 1
    if not np.isfinite(youden) or youden <= 0:
        return ReviewerCorrection(NAN_ESTIMATE, NAN_ESTIMATE, NAN_ESTIMATE, int(double.sum()))
    q = (raw_rate + sp - 1) / youden
    e_q = (-q * e_se + (1 - q) * e_sp) / youden
    reviewer_rate = interval(q, float(np.sqrt(np.sum((1 - pi) * e_q**2))), level)

    share = double.sum() / y.size
    pi2 = pi[double] * share
    d, e_d = hajek_influence(y[double] != y2[double], np.ones(pi2.size), pi2)
    if d >= 0.5:  # reviewers no better than chance
        return ReviewerCorrection(NAN_ESTIMATE, reviewer_rate, NAN_ESTIMATE, int(double.sum()))
    err = (1 - np.sqrt(1 - 2 * d)) / 2
    e_err = e_d / (2 * (1 - 2 * err))
    reviewer_error = interval(float(err), float(np.sqrt(np.sum((1 - pi2) * e_err**2))), level)

    p = (q - err) / (1 - 2 * err)
    g_q = e_q / (1 - 2 * err)
    g_e = e_err * (2 * q - 1) / (1 - 2 * err) ** 2
    var = (np.sum((1 - pi) * g_q**2) + np.sum((1 - pi2) * g_e**2)
           + 2 * np.sum((1 - pi[double]) * g_q[double] * g_e))
    corrected = interval(float(np.clip(p, 0.0, 1.0)), float(np.sqrt(max(var, 0.0))), level)
    return ReviewerCorrection(corrected, reviewer_rate, reviewer_error, int(double.sum()))
