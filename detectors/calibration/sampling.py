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

The pipeline samples in two phases (Neyman 1938; Särndal, Swensson & Wretman 1992, ch. 9), so that
only the texts of a small pool are ever stored: the stream keeps request i's text with probability
p1_i = :func:`pool_probability` (a base rate, raised near a threshold and for flagged requests),
decided by a hash of its id (:func:`kept_for_review`: a replayed batch decides the same); then
:func:`second_phase` draws a simple random sample of ``k = min(budget, m)`` of the ``m`` pooled
requests of a period and segment, p2 = k / m. Request i's inclusion probability is
pi_i = p1_i * p2, and the Hájek estimators of :mod:`.estimators` reweight by 1 / pi_i.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

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


def pool_probability(scores: Mapping[str, float | None], thresholds: Mapping[str, float], *,
                     base: float, near_rate: float, flagged_rate: float, near: float,
                     higher_is_worse: Mapping[str, bool] | None = None) -> float:
    """First-phase keep probability p1 of one request: ``base``, raised to ``near_rate`` when a
    score lies within ``near`` of its detector's threshold and to ``flagged_rate`` when a
    detector flags it (the largest applicable rate). 0 when ``base`` is 0 (review is off).

    >>> t = {"toxicity": 0.5}
    >>> args = dict(base=0.05, near_rate=0.25, flagged_rate=0.5, near=0.1)
    >>> [pool_probability({"toxicity": s}, t, **args) for s in (0.1, 0.45, 0.9, None)]
    [0.05, 0.25, 0.5, 0.05]
    """
    if base <= 0:
        return 0.0
    p = base
    for name, threshold in thresholds.items():
        s = scores.get(name)
        if s is None or s != s:
            continue
        worse = (higher_is_worse or {}).get(name, True)
        if (s > threshold) if worse else (s < threshold):
            p = max(p, flagged_rate)
        if abs(s - threshold) <= near:
            p = max(p, near_rate)
    return min(p, 1.0)


def uniform_of(key: str, salt: str = "parrotwatch-review") -> float:
    """A uniform number in [0, 1) fixed by ``key`` (SHA-256), so a decision is reproducible.

    >>> uniform_of("req-1") == uniform_of("req-1"), 0 <= uniform_of("req-1") < 1
    (True, True)
    """
    digest = hashlib.sha256(f"{salt}\0{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def kept_for_review(request_id: str, p: float) -> bool:
    """Whether the stream keeps this request's text: ``uniform_of(request_id) < p``."""
    return p > 0 and uniform_of(request_id) < p


def second_phase(pool_size: int, budget: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A simple random sample without replacement of ``min(budget, pool_size)`` of the
    ``pool_size`` pooled requests: (their indices, sorted; p2 = k / pool_size).

    >>> idx, p2 = second_phase(10, 4, np.random.default_rng(0))
    >>> len(idx), p2
    (4, 0.4)
    """
    if pool_size <= 0:
        return np.zeros(0, dtype=np.int64), 0.0
    k = min(int(budget), pool_size)
    return np.sort(rng.choice(pool_size, size=k, replace=False)), k / pool_size


@dataclass(frozen=True)
class PoolDesign:
    """The stream's first phase: which requests' texts it keeps as review candidates.

    ``thresholds``: (score name, threshold, higher_is_worse) of each reviewed detector.

    >>> d = PoolDesign(0.05, 0.25, 0.5, 0.1, (("toxicity", 0.5, True),))
    >>> d.probability({"toxicity": 0.55}), d.kept("any-id", {"toxicity": 0.55}) in (0.0, 0.5)
    (0.5, True)
    """

    base: float
    near_rate: float
    flagged_rate: float
    near: float
    thresholds: tuple[tuple[str, float, bool], ...] = ()

    def probability(self, scores: Mapping[str, float | None]) -> float:
        return pool_probability(scores, {n: t for n, t, _ in self.thresholds}, base=self.base,
                                near_rate=self.near_rate, flagged_rate=self.flagged_rate,
                                near=self.near,
                                higher_is_worse={n: h for n, _, h in self.thresholds})

    def kept(self, request_id: str, scores: Mapping[str, float | None]) -> float:
        """The keep probability p1 when this request's text is kept, else 0."""
        p = self.probability(scores)
        return p if kept_for_review(request_id, p) else 0.0
