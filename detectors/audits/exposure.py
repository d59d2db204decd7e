"""Canary exposure (Carlini, Liu, Erlingsson, Kos, Song 2019, "The Secret Sharer: Evaluating and Testing
Unintended Memorization in Neural Networks", USENIX Security).

    log-perplexity (Def. 1, bits)  Px(x_1..x_n) = -log2 Pr(x_1..x_n) = sum_i -log2 Pr(x_i | x_<i)
    rank (Def. 3)                  rank(s[r]) = |{r' in R : Px(s[r']) <= Px(s[r])}|
    exposure (Def. 4, bits)        exposure(s[r]) = log2 |R| - log2 rank(s[r])

R is the whole candidate space, the canary included, so 1 <= rank <= |R| and 0 <= exposure <= log2 |R|.
Ties count against the canary (the "<=" of Def. 3): candidates tied with it all share the largest rank.

Extrapolation (Section 4.3), when R is too large to score: fit a skew-normal density rho to the
log-perplexities of a random sample of candidates and take

    exposure ~= -log2 integral_{-inf}^{Px(s[r])} rho(x) dx = -log2 CDF_rho(Px(s[r])),

capped at log2 |R| (the rank is at least 1). A skew-normal is a location-scale family, so any positive
affine change of units (bits, nats, per token) gives the same value, exactly as for the exact rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def log_perplexity(logprobs: Sequence[float]) -> float:
    """Px in bits from the candidate's per-token natural-log probabilities: -sum_i l_i / ln 2.

    Three tokens of probability 1/2 are 3 bits:

    >>> round(log_perplexity([math.log(0.5)] * 3), 12)
    3.0
    """
    return float(-np.sum(np.asarray(logprobs, dtype=np.float64)) / math.log(2))


def _values(x: Sequence[float], what: str) -> np.ndarray:
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or np.isnan(values).any():
        raise ValueError(f"{what} must be a non-empty 1-D sequence without NaN")
    return values


def rank(canary_log_ppl: float, space_log_ppls: Sequence[float]) -> int:
    """rank = |{r' in R : Px(r') <= Px(canary)}| over the log-perplexities of all of R, canary included.

    Ties count against the canary: both candidates at 2.0 are at or below it.

    >>> rank(2.0, [1.0, 2.0, 3.0, 2.0])
    3
    """
    r = int(np.count_nonzero(_values(space_log_ppls, "space_log_ppls") <= canary_log_ppl))
    if r == 0:
        raise ValueError("no candidate is <= the canary: space_log_ppls must cover all of R, canary included")
    return r


def exposure(canary_log_ppl: float, space_log_ppls: Sequence[float]) -> float:
    """Exact exposure in bits, log2 |R| - log2 rank, with |R| = len(space_log_ppls).

    Of 8 candidates, the most likely one (rank 1) has the largest exposure, log2 8 = 3 bits; one
    of rank 2 has log2 8 - log2 2 = 2 bits, the least likely (rank 8) none:

    >>> space = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    >>> exposure(1.0, space), exposure(2.0, space), exposure(8.0, space)
    (3.0, 2.0, 0.0)
    """
    return math.log2(len(space_log_ppls)) - math.log2(rank(canary_log_ppl, space_log_ppls)) + 0.0


@dataclass(frozen=True)
class SkewNormalFit:
    """Skew-normal fitted by maximum likelihood (``scipy.stats.skewnorm.fit``) to sampled log-perplexities."""

    shape: float
    loc: float
    scale: float
    n_sample: int

    def exposure(self, canary_log_ppl: float, space_size: int) -> float:
        """min(-log2 CDF(canary_log_ppl), log2 space_size), in bits.

        With shape 0 the skew-normal is the normal law: CDF(loc) = 1/2 is 1 bit, and a canary far
        below every candidate is capped at log2 |R| = log2 1024 = 10 bits.

        >>> fit = SkewNormalFit(shape=0.0, loc=5.0, scale=1.0, n_sample=100)
        >>> fit.exposure(5.0, 1024), fit.exposure(-100.0, 1024)
        (1.0, 10.0)
        """
        if space_size < 1:
            raise ValueError(f"space_size must be >= 1, got {space_size}")
        log_cdf = float(stats.skewnorm.logcdf(canary_log_ppl, self.shape, self.loc, self.scale))
        return min(-log_cdf / math.log(2), math.log2(space_size)) + 0.0  # -log_cdf may be +inf


def fit_skew_normal(sample_log_ppls: Sequence[float]) -> SkewNormalFit:
    """Fit the skew-normal of Section 4.3 to the log-perplexities of a random sample of R (>= 10 values).

    >>> fit = fit_skew_normal([float(x) for x in range(20)])
    >>> fit.n_sample, fit.scale > 0
    (20, True)
    """
    values = _values(sample_log_ppls, "sample_log_ppls")
    if values.size < 10 or not np.isfinite(values).all():
        raise ValueError("the skew-normal fit needs at least 10 finite log-perplexities")
    shape, loc, scale = stats.skewnorm.fit(values)
    return SkewNormalFit(float(shape), float(loc), float(scale), int(values.size))


def skew_normal_exposure(canary_log_ppl: float, sample_log_ppls: Sequence[float], space_size: int) -> float:
    """Extrapolated exposure in bits: ``fit_skew_normal(sample).exposure(canary, space_size)``.

    Fit once with :func:`fit_skew_normal` when several canaries share one space.

    A canary more likely than every sampled candidate gets more bits than one in their middle:

    >>> sample = [float(x) for x in range(10, 30)]
    >>> skew_normal_exposure(0.0, sample, 10**6) > skew_normal_exposure(20.0, sample, 10**6)
    True
    """
    return fit_skew_normal(sample_log_ppls).exposure(canary_log_ppl, space_size)
