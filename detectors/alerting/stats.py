"""Tests behind the alert rules: exact tests on (pooled) counts and Benjamini-Hochberg FDR control.

Shares: Fisher's exact test against the baseline share, or the beta-binomial predictive test
against a baseline that may borrow strength from related segments (empirical Bayes prior,
``fit_beta_prior``). Request rates: the conditional binomial test of two Poisson rates. Trends:
the Theil-Sen slope."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import betabinom, binom, fisher_exact, norm, theilslopes


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


@dataclass(frozen=True)
class BetaPrior:
    """A Beta(a, b) prior on a segment's baseline share: mean a / (a + b), worth a + b samples."""

    a: float
    b: float

    @property
    def mean(self) -> float:
        """a / (a + b)."""
        return self.a / (self.a + self.b)


#: Current trials above which ``beta_binomial_test`` uses the normal approximation.
EXACT_MAX_N = 20_000
#: Jeffreys' prior Beta(1/2, 1/2): what a segment with no related segments starts from.
JEFFREYS = BetaPrior(0.5, 0.5)


def fit_beta_prior(counts: Sequence[tuple[float, float]], min_strength: float = 10.0,
                   max_strength: float = 2000.0) -> BetaPrior:
    """Empirical-Bayes Beta prior of the shares of related segments, by the method of moments.

    Kleinman (1973), "Proportions with extraneous variance: single and independent samples",
    JASA 68(341), eq. (2.4); the beta-binomial moments of Tamura & Young (1987), Biometrics
    43(4). With segments i = 1..g holding k_i events of n_i trials, N = sum n_i, the pooled
    share m = (K + 1/2) / (N + 1) (Jeffreys-smoothed, so it is never 0) and
    S = sum_i n_i (k_i / n_i - m)^2, a Beta(m M, (1 - m) M) prior gives

        E[S] = m (1 - m) [(g - 1) + rho (N - sum_i n_i^2 / N - (g - 1))],  rho = 1 / (M + 1),

    so rho-hat = (S / (m (1 - m)) - (g - 1)) / (N - sum n_i^2 / N - (g - 1)) and M = 1 / rho - 1,
    clipped to [min_strength, max_strength]: segments that agree lend up to ``max_strength``
    samples of evidence, segments that differ lend ``min_strength``. Segments without trials
    are left out; with fewer than two the prior is :data:`JEFFREYS`.

    Three segments of 0 events in 1,000 trials agree perfectly: the prior is as strong as allowed,
    centred on (0 + 1/2) / 3,001:

    >>> p = fit_beta_prior([(0, 1000), (0, 1000), (0, 1000)])
    >>> round(p.a + p.b), round(p.mean * 3001, 6)
    (2000, 0.5)
    >>> fit_beta_prior([(5, 10), (0, 1000)]).a + fit_beta_prior([(5, 10), (0, 1000)]).b  # disagree
    10.0
    """
    if not 0 < min_strength <= max_strength:
        raise ValueError("need 0 < min_strength <= max_strength")
    rows = [(float(k), float(n)) for k, n in counts]
    if any(not 0 <= k <= n for k, n in rows):
        raise ValueError("need 0 <= k <= n for every segment")
    rows = [(k, n) for k, n in rows if n > 0]
    g = len(rows)
    if g < 2:
        return JEFFREYS
    big_n = sum(n for _, n in rows)
    m = (sum(k for k, _ in rows) + 0.5) / (big_n + 1.0)
    s = sum(n * (k / n - m) ** 2 for k, n in rows)
    denom = big_n - sum(n * n for _, n in rows) / big_n - (g - 1)
    rho = (s / (m * (1 - m)) - (g - 1)) / denom if denom > 0 else 1.0
    rho = min(max(rho, 1.0 / (max_strength + 1.0)), 1.0 / (min_strength + 1.0))
    strength = 1.0 / rho - 1.0
    return BetaPrior(m * strength, (1.0 - m) * strength)


def beta_binomial_test(cur_k: int, cur_n: int, base_k: float, base_n: float,
                       prior: BetaPrior = JEFFREYS) -> RateRatioResult:
    """One-sided predictive test that cur_k events in cur_n trials exceed the baseline share.

    The baseline share theta has the posterior Beta(a + base_k, b + base_n - base_k) given the
    prior Beta(a, b) (Jeffreys', or an empirical-Bayes one from related segments: Efron &
    Morris 1975, "Data analysis using Stein's estimator and its generalizations", JASA 70).
    Under "no change" the current count follows the posterior predictive beta-binomial law

        p = P(X >= cur_k),   X ~ BetaBinomial(cur_n, a + base_k, b + base_n - base_k),

    exact for small counts and honest about a thin baseline (its uncertainty widens the law;
    Gelman et al. 2013, "Bayesian Data Analysis", 3rd ed., ch. 6, posterior predictive checks).
    Above ``EXACT_MAX_N`` trials (where the exact sum would take seconds and gigabytes) the law is
    replaced by the normal one of the same mean n mu and variance n mu (1 - mu) (a + b + n) /
    (a + b + 1), with a continuity correction.
    ``ratio`` is the current share over the posterior mean; ``insufficient`` when cur_n is 0.

    4 loops in 10 answers against 0 in 600 with Jeffreys' prior (posterior Beta(0.5, 600.5)):

    >>> r = beta_binomial_test(4, 10, 0, 600)
    >>> f"{r.p_value:.1e}", round(r.baseline_share, 6)
    ('1.0e-08', 0.000832)
    """
    if not (0 <= cur_k <= cur_n and 0 <= base_k <= base_n):
        raise ValueError(f"need 0 <= k <= n, got cur {cur_k}/{cur_n}, base {base_k}/{base_n}")
    a, b = prior.a + base_k, prior.b + base_n - base_k
    base = a / (a + b)
    if cur_n == 0:
        return RateRatioResult(None, None, None, base, insufficient=True)
    cur = cur_k / cur_n
    if cur_k == 0:
        p = 1.0
    elif cur_n <= EXACT_MAX_N:
        p = float(betabinom.sf(cur_k - 1, cur_n, a, b))
    else:  # scipy sums the pmf term by term: beyond this, the normal law of the same two moments
        var = cur_n * base * (1 - base) * (a + b + cur_n) / (a + b + 1)
        p = float(norm.sf((cur_k - 0.5 - cur_n * base) / math.sqrt(var))) if var > 0 else float(cur > base)
    return RateRatioResult(cur / base, min(1.0, max(p, 0.0)), cur, base, insufficient=False)


def rate_drop_test(cur_count: float, cur_windows: int, base_count: float,
                   base_windows: int) -> float:
    """One-sided exact p-value that the current request rate fell below the baseline rate.

    Przyborowski & Wilenski (1940), "Homogeneity of results in testing samples from Poisson
    series", Biometrika 31: with Poisson counts X over t1 windows and Y over t0 windows, given
    X + Y = K the current count is Binomial(K, t1 / (t1 + t0)) when the rates are equal, so

        p = P(Binomial(K, t1 / (t1 + t0)) <= X).

    2 requests in 6 windows against 300 in 60 (5 a window, 30 expected):

    >>> f"{rate_drop_test(2, 6, 300, 60):.1e}"
    '1.5e-10'
    """
    if cur_windows < 1 or base_windows < 1 or cur_count < 0 or base_count < 0:
        raise ValueError("need windows >= 1 and counts >= 0")
    k, total = round(cur_count), round(cur_count + base_count)
    return float(binom.cdf(k, total, cur_windows / (cur_windows + base_windows)))


def theil_sen_slope(times: Sequence[float], values: Sequence[float]) -> float | None:
    """The median of the pairwise slopes (Theil 1950; Sen 1968, "Estimates of the regression
    coefficient based on Kendall's tau", JASA 63), robust to a third of outliers
    (``scipy.stats.theilslopes``); non-finite points are left out; None with fewer than 3 points
    or a single time.

    >>> theil_sen_slope([0, 1, 2, 3, 4], [0.0, 2.0, 4.0, 6.0, 100.0])
    2.0
    """
    pts = [(t, y) for t, y in zip(times, values, strict=True) if math.isfinite(t) and math.isfinite(y)]
    if len(pts) < 3 or len({t for t, _ in pts}) < 2:
        return None
    return float(theilslopes([y for _, y in pts], [t for t, _ in pts]).slope)
