"""Tests behind the alert rules: a one-sided rate-ratio test and Benjamini-Hochberg FDR control."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import fisher_exact


@dataclass(frozen=True)
class RateRatioResult:
    """Current share k/n against the baseline share, and how surprising the excess is.

    ``ratio`` is (cur_k / cur_n) / (base_k / base_n): ``inf`` when the baseline share is 0 and
    the current one is not, ``None`` when both are 0 or the test is ``insufficient`` (fewer than
    ``min_n`` trials on either side, where ``p_value`` is ``None`` too).
    """

    ratio: float | None
    p_value: float | None
    current_share: float | None
    baseline_share: float | None
    insufficient: bool


def rate_ratio_test(cur_k: int, cur_n: int, base_k: int, base_n: int, min_n: int = 1) -> RateRatioResult:
    """One-sided test that the current share cur_k/cur_n exceeds the baseline share base_k/base_n.

    Fisher's exact test (Fisher 1935, "The logic of inductive inference", JRSS 98(1)) on the
    2x2 table [[cur_k, cur_n - cur_k], [base_k, base_n - base_k]] with the alternative
    "greater": conditioning on the K = cur_k + base_k events, under equal shares cur_k follows
    the hypergeometric law of K draws from cur_n + base_n trials of which cur_n are current, and

        p = P(X >= cur_k),   X ~ Hypergeometric(N = cur_n + base_n, K, n = cur_n).

    Exact for any counts, so a guard of a few samples is enough (``scipy.stats.fisher_exact``).

    3 of 5 now against 0 of 5 before: K = 3 events, and all 3 fall in the current 5 of the 10
    trials with probability C(5, 3) C(5, 0) / C(10, 3) = 10 / 120:

    >>> r = rate_ratio_test(3, 5, 0, 5)
    >>> r.ratio, r.current_share, r.baseline_share, round(r.p_value, 6)
    (inf, 0.6, 0.0, 0.083333)
    >>> rate_ratio_test(2, 4, 1, 4).ratio  # 0.5 / 0.25
    2.0
    >>> rate_ratio_test(1, 2, 0, 50, min_n=5)
    RateRatioResult(ratio=None, p_value=None, current_share=0.5, baseline_share=0.0, insufficient=True)
    """
    for name, k, n in (("cur", cur_k, cur_n), ("base", base_k, base_n)):
        if k < 0 or n < 0 or k > n:
            raise ValueError(f"need 0 <= {name}_k <= {name}_n, got {name}_k={k}, {name}_n={n}")
    if cur_n < min_n or base_n < min_n or cur_n == 0 or base_n == 0:
        cur = cur_k / cur_n if cur_n else None
        base = base_k / base_n if base_n else None
        return RateRatioResult(None, None, cur, base, insufficient=True)
    cur, base = cur_k / cur_n, base_k / base_n
    if base > 0:
        ratio: float | None = cur / base
    else:
        ratio = math.inf if cur > 0 else None
    table = [[cur_k, cur_n - cur_k], [base_k, base_n - base_k]]
    p = float(fisher_exact(table, alternative="greater").pvalue)
    return RateRatioResult(ratio, min(1.0, p), cur, base, insufficient=False)


def benjamini_hochberg(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses to reject so that the false discovery rate stays at most ``q``.

    Benjamini & Hochberg (1995), "Controlling the false discovery rate: a practical and
    powerful approach to multiple testing", JRSS B 57(1). With the m p-values sorted,
    p_(1) <= ... <= p_(m), let i* = max{i : p_(i) <= i q / m}; reject the i* smallest (none if
    no i qualifies). Step-up: a p_(i) above its own bound is still rejected when a larger one
    passes. Same decisions as ``scipy.stats.false_discovery_control(p) <= q``.

    With m = 4 and q = 0.05 the bounds are 0.0125, 0.025, 0.0375, 0.05: only 0.01 passes. With
    m = 3, 0.02 misses its bound 0.0167 but is rejected, as 0.03 passes its 0.0333 (step-up):

    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.2], 0.05)
    [True, False, False, False]
    >>> benjamini_hochberg([0.02, 0.03, 0.5], 0.05)
    [True, True, False]
    >>> benjamini_hochberg([], 0.05)
    []
    """
    if not 0 < q < 1:
        raise ValueError("q must be in (0, 1)")
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return []
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be in [0, 1]")
    order = np.argsort(p, kind="stable")
    m = p.size
    passes = p[order] <= q * np.arange(1, m + 1) / m
    reject = np.zeros(m, dtype=bool)
    if passes.any():
        i_star = int(np.nonzero(passes)[0].max())
        reject[order[: i_star + 1]] = True
    return reject.tolist()
