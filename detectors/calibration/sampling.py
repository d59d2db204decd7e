"""Review sampling with known inclusion probabilities (Poisson sampling, Hájek 1964).

Each request i of a period and segment is drawn for review independently with probability pi_i,
so any estimate can be reweighted by 1/pi_i (Horvitz & Thompson 1952). The design spends a
budget of n expected labels on three parts:

* a uniform share: every request gets the same base probability;
* oversampling near the threshold: requests whose score lies within ``near`` of the detector's
  threshold, where its errors are, get extra probability;
* oversampling of flagged requests.

The expected sample size sum_i pi_i equals the budget (or N when the budget exceeds N): the
part sizes are fixed, then probabilities capped at 1 are redistributed to the others.
"""

from __future__ import annotations

import numpy as np


def inclusion_probabilities(scores, threshold: float, budget: float, *, near: float = 0.0,
                            near_share: float = 0.0, flagged_share: float = 0.0,
                            higher_is_worse: bool = True) -> np.ndarray:
    """pi_i of each request for an expected ``budget`` labels.

    ``near_share`` of the budget goes to the requests with |score - threshold| <= ``near``,
    ``flagged_share`` to the flagged ones, the rest uniformly to all; a request in several parts
    gets the sum. A request without a score (NaN) is in the uniform part only.

    >>> inclusion_probabilities([0.1, 0.2, 0.3, 0.9], threshold=0.5, budget=2).tolist()
    [0.5, 0.5, 0.5, 0.5]
    >>> p = inclusion_probabilities([0.1, 0.45, 0.55, 0.9], 0.5, budget=2, near=0.1, near_share=0.5)
    >>> p.tolist(), float(p.sum())
    ([0.25, 0.75, 0.75, 0.25], 2.0)
    """
    s = np.asarray(scores, dtype=np.float64)
    n = s.size
    if n == 0:
        return np.zeros(0)
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    if near_share < 0 or flagged_share < 0 or near_share + flagged_share > 1:
        raise ValueError("near_share and flagged_share must be >= 0 and sum to at most 1")
    scored = ~np.isnan(s)
    near_mask = scored & (np.abs(s - threshold) <= near)
    flagged = scored & ((s > threshold) if higher_is_worse else (s < threshold))
    weights = np.full(n, 1.0 - near_share - flagged_share) / n
    for share, mask in ((near_share, near_mask), (flagged_share, flagged)):
        if share and mask.any():
            weights[mask] += share / mask.sum()
        elif share:  # nobody in this part: its share goes to everyone
            weights += share / n
    return _scale_to(weights, min(budget, n))


def _scale_to(weights: np.ndarray, total: float) -> np.ndarray:
    """pi proportional to ``weights``, capped at 1, summing to ``total`` (the capped mass is
    redistributed to the uncapped requests, as in probability-proportional-to-size designs)."""
    pi = np.zeros_like(weights)
    free = weights > 0
    remaining = total
    while True:
        pi[free] = remaining * weights[free] / weights[free].sum()
        over = free & (pi > 1)
        if not over.any():
            return pi
        pi[over] = 1.0
        free &= ~over
        remaining = total - (~free & (pi == 1)).sum()
        if not free.any() or remaining <= 0:
            return np.minimum(pi, 1.0)


def poisson_sample(pi, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn independently with probabilities ``pi`` (the sample size is random).

    >>> poisson_sample([1.0, 0.0, 1.0], np.random.default_rng(0)).tolist()
    [0, 2]
    """
    pi = np.asarray(pi, dtype=np.float64)
    return np.flatnonzero(rng.random(pi.size) < pi)
