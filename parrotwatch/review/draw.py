"""The second phase of review sampling, as pure code: which pooled requests of one period and
segment become review items, with which inclusion probability, and which get two reviewers.

The stream kept request i's text with probability p1_i (its ``pool_probability``); a simple random
sample of k = min(budget, m) of the m pooled requests is drawn
(:func:`parrotwatch.detectors.calibration.sampling.second_phase`, p2 = k / m), so the item's
inclusion probability is pi_i = p1_i * p2 (two-phase sampling: Särndal, Swensson & Wretman 1992,
ch. 9). A share of the drawn items, chosen by a simple random sample among them, is given to two
reviewers (inter-annotator agreement); that second draw does not change pi_i.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from parrotwatch.detectors.calibration.sampling import second_phase


@dataclass(frozen=True)
class DrawnItem:
    request_id: str
    inclusion_probability: float
    reviewers_needed: int


@dataclass(frozen=True)
class Draw:
    items: tuple[DrawnItem, ...]
    p2: float
    not_drawn: tuple[str, ...]


def segment_rng(seed: int, model: str, app: str, period_start: str) -> np.random.Generator:
    """A generator fixed by the run's ``seed`` and the segment and period, so each (segment,
    period) draws independently of the others and of the order they are drawn in."""
    digest = hashlib.sha256("\x1f".join((model, app, period_start)).encode("utf-8", "surrogatepass"))
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int.from_bytes(digest.digest()[:8], "big")])


def draw_review_set(pool: Sequence[tuple[str, float]], budget: int, double_share: float,
                    rng: np.random.Generator) -> Draw:
    """Draw from ``pool`` = [(request_id, pool_probability)], in a fixed order (the caller sorts
    it by request id, so a seed reproduces the draw).

    >>> pool = [(f"r{i}", 0.5) for i in range(10)]
    >>> d = draw_review_set(pool, budget=4, double_share=0.5, rng=np.random.default_rng(1))
    >>> len(d.items), d.p2, {i.inclusion_probability for i in d.items}, len(d.not_drawn)
    (4, 0.4, {0.2}, 6)
    >>> sum(i.reviewers_needed == 2 for i in d.items)
    2
    """
    if not 0 <= double_share <= 1:
        raise ValueError(f"double_share must lie in [0, 1], got {double_share}")
    for request_id, p1 in pool:
        if not 0 < p1 <= 1:
            raise ValueError(f"request {request_id!r} has pool_probability {p1}, outside (0, 1]")
    indices, p2 = second_phase(len(pool), budget, rng)
    k = len(indices)
    doubles = set(rng.choice(k, size=int(round(double_share * k)), replace=False).tolist()) if k else set()
    items = [DrawnItem(pool[i][0], float(pool[i][1]) * p2, 2 if j in doubles else 1)
             for j, i in enumerate(indices.tolist())]
    # in random order: items are queued in insertion order, and request ids often follow time,
    # so a queue labelled part way must not be a biased (say, the earliest) part of the sample
    items = tuple(items[j] for j in rng.permutation(k).tolist())
    drawn = set(indices.tolist())
    return Draw(items, p2, tuple(r for i, (r, _) in enumerate(pool) if i not in drawn))
