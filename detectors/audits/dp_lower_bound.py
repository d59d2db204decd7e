"""Differential-privacy lower bounds from one training run (Steinke, Nasr, Jagielski 2023, "Privacy
Auditing with One (1) Training Run", NeurIPS 2023, arXiv:2305.08846).

The game. m candidate canaries; each is put into the training set independently with probability 1/2
(S_i = +1 in, -1 out). After training, the auditor scores all m, guesses T_i = +1 ("in") for the r+
highest scores, T_i = -1 ("out") for the r- lowest and abstains (T_i = 0) on the rest. Of the
r = r+ + r- guesses, v = |{i : T_i = S_i}| are correct.

Pure eps-DP (Theorem 3.1): the number of correct guesses W is stochastically dominated by
Binomial(r, q), q = e^eps / (1 + e^eps), the accuracy of eps-DP randomised response:

    P[W >= v] <= P[Binomial(r, q) >= v].

Approximate (eps, delta)-DP (Theorem 5.2, computed as in the paper's Algorithm / Appendix D code, the
p-value of their Corollary 5.4 in arXiv v1):

    P[W >= v] <= P[Binomial(r, q) >= v] + 2 m delta * alpha,
    alpha = max_{1 <= i <= v} P[v - i <= Binomial(r, q) < v] / i.

Either right side is the p-value p(eps) of "the training run was (eps, delta)-DP" given v correct out of
r; it increases with eps. The audit's lower bound at confidence 1 - beta is the largest eps that the
observation rejects, eps_lower = sup {eps >= 0 : p(eps) < beta}: with probability >= 1 - beta over the
inclusion bits, an (eps, delta)-DP run gives eps_lower <= eps. It is 0 when even eps = 0 is not
rejected (guesses no better than chance).

With every guess right (v = r) and delta = 0, p(eps) = q^r, so eps_lower = log(b / (1 - b)) with
b = beta^(1/r): at most log(r / ln(1/beta)) roughly, whatever the model leaks; more guesses raise the
ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import binom

#: the largest eps searched; p(eps) is 1 well before this for any r < 10**9
_EPS_MAX = 50.0


def _check_counts(m: int, r: int, v: int) -> None:
    if not 0 <= v <= r <= m or m < 1:
        raise ValueError(f"need 0 <= v <= r <= m and m >= 1, got m={m}, r={r}, v={v}")


def one_run_p_value(m: int, r: int, v: int, eps: float, delta: float = 0.0) -> float:
    """p(eps): an upper bound on P[W >= v] for an (eps, delta)-DP run with m canaries and r guesses.

    P[Binomial(r, q) >= v] + 2 m delta max_i P[v - i <= Binomial(r, q) < v] / i, capped at 1, with
    q = e^eps / (1 + e^eps). At eps = 0 and delta = 0 it is the chance tail: 3 right out of 3 has
    probability 1/8.

    >>> one_run_p_value(10, 3, 3, 0.0)
    0.125
    """
    _check_counts(m, r, v)
    if not eps >= 0 or not 0 <= delta <= 1:
        raise ValueError(f"need eps >= 0 and 0 <= delta <= 1, got eps={eps}, delta={delta}")
    q = float(expit(eps))
    tail = float(binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    i = np.arange(1, v + 1)
    # P[v - i <= B < v] = P[B >= v - i] - P[B >= v], by the survival function (no cancellation near 1)
    window = binom.sf(v - i - 1, r, q) - tail
    alpha = float(np.max(window / i))
    return min(tail + 2 * m * delta * alpha, 1.0)


def epsilon_lower_bound(m: int, r: int, v: int, *, delta: float = 0.0, beta: float = 0.05) -> float:
    """eps_lower = sup {eps >= 0 : p(eps) < beta}, the eps the audit refutes at confidence 1 - beta.

    p is found to cross beta with ``scipy.optimize.brentq`` (to 1e-10). 0 when p(0) >= beta.

    All 100 guesses right, delta = 0, beta = 0.05: log(b / (1 - b)) with b = 0.05 ** (1 / 100):

    >>> round(epsilon_lower_bound(1000, 100, 100), 3)
    3.493
    """
    _check_counts(m, r, v)
    if not 0 < beta < 1:
        raise ValueError(f"beta must be in (0, 1), got {beta}")

    def excess(eps: float) -> float:
        return one_run_p_value(m, r, v, eps, delta) - beta

    if excess(0.0) >= 0:
        return 0.0
    if excess(_EPS_MAX) < 0:
        return _EPS_MAX
    return float(brentq(excess, 0.0, _EPS_MAX, xtol=1e-10, rtol=1e-12))


@dataclass(frozen=True)
class OneRunGuesses:
    """The auditor's guesses: ``r_plus`` "in" guesses with ``v_plus`` right, ``r_minus`` "out" guesses
    with ``v_minus`` right, over ``m`` candidates. ``guess`` per candidate: +1 in, -1 out, 0 abstain."""

    m: int
    r_plus: int
    v_plus: int
    r_minus: int
    v_minus: int
    guess: tuple[int, ...]

    @property
    def r(self) -> int:
        return self.r_plus + self.r_minus

    @property
    def v(self) -> int:
        return self.v_plus + self.v_minus


def guess_membership(scores: Sequence[float], included: Sequence[bool], k_plus: int,
                     k_minus: int) -> OneRunGuesses:
    """Guess "in" for the ``k_plus`` highest scores, "out" for the ``k_minus`` lowest, abstain on the rest,
    and count the right guesses against ``included``. Ties are broken by candidate order (stable sort),
    which does not depend on ``included``.

    >>> g = guess_membership([0.9, 0.1, 0.8, 0.2, 0.5], [True, False, False, False, True], 2, 2)
    >>> g.guess, g.r, g.v
    ((1, -1, 1, -1, 0), 4, 3)
    """
    s = np.asarray(scores, dtype=np.float64)
    inc = np.asarray(included, dtype=bool)
    m = s.size
    if s.ndim != 1 or inc.shape != s.shape or m == 0 or np.isnan(s).any():
        raise ValueError("scores and included must be non-empty 1-D sequences of one length, "
                         "scores without NaN")
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > m:
        raise ValueError(f"need k_plus, k_minus >= 0 and k_plus + k_minus <= m = {m}, "
                         f"got {k_plus}, {k_minus}")
    order = np.argsort(-s, kind="stable")  # highest first
    guess = np.zeros(m, dtype=np.int64)
    guess[order[:k_plus]] = 1
    if k_minus:
        guess[order[m - k_minus:]] = -1
    v_plus = int(np.count_nonzero((guess == 1) & inc))
    v_minus = int(np.count_nonzero((guess == -1) & ~inc))
    return OneRunGuesses(m, k_plus, v_plus, k_minus, v_minus, tuple(int(g) for g in guess))


@dataclass(frozen=True)
class OneRunAudit:
    """One audit: ``epsilon_lower`` at confidence 1 - ``beta`` for the claimed ``delta`` from the guesses
    with ``k_plus`` / ``k_minus`` (the best of the tried pairs), ``p_value`` = p(eps_lower) for reference;
    ``beta_per_test`` = beta / number of pairs tried (Bonferroni)."""

    epsilon_lower: float
    m: int
    r: int
    v: int
    k_plus: int
    k_minus: int
    delta: float
    beta: float
    beta_per_test: float
    n_tests: int


def one_run_audit(scores: Sequence[float], included: Sequence[bool], *, delta: float = 0.0,
                  beta: float = 0.05, guess_counts: Sequence[tuple[int, int]] | None = None) -> OneRunAudit:
    """The one-run lower bound over several (k_plus, k_minus) guess counts, each tested at beta / n
    (Bonferroni over the n pairs, so the best of them still holds at confidence 1 - beta).

    ``guess_counts`` defaults to k_plus = k_minus = k for k = round(f m), f in 0.05, 0.1, 0.25, 0.5 (at
    least 1, duplicates dropped). Higher ``scores`` mean "more likely in" (e.g. minus the loss).
    """
    m = len(scores)
    if guess_counts is None:
        ks = sorted({max(1, min(m // 2, round(f * m))) for f in (0.05, 0.1, 0.25, 0.5)})
        guess_counts = [(k, k) for k in ks]
    pairs = list(dict.fromkeys((int(a), int(b)) for a, b in guess_counts))
    if not pairs:
        raise ValueError("guess_counts is empty")
    level = beta / len(pairs)
    best: OneRunAudit | None = None
    for k_plus, k_minus in pairs:
        g = guess_membership(scores, included, k_plus, k_minus)
        eps = epsilon_lower_bound(m, g.r, g.v, delta=delta, beta=level)
        if best is None or eps > best.epsilon_lower:
            best = OneRunAudit(eps, m, g.r, g.v, k_plus, k_minus, delta, beta, level, len(pairs))
    assert best is not None
    return best


def clopper_pearson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided Clopper-Pearson interval of a binomial proportion (``scipy.stats.binomtest``).

    >>> lo, hi = clopper_pearson(3, 3)
    >>> round(lo, 4), hi
    (0.2924, 1.0)
    """
    from scipy.stats import binomtest

    if not 0 <= successes <= n or n < 1:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}, {n}")
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def all_correct_bound(r: int, beta: float = 0.05) -> float:
    """eps_lower for v = r, delta = 0 in closed form: log(b / (1 - b)), b = beta^(1/r).

    >>> round(all_correct_bound(100), 3)
    3.493
    """
    b = beta ** (1.0 / r)
    return math.log(b / (1.0 - b))
