"""Golden and property tests of the one-run DP audit bound (Steinke, Nasr, Jagielski 2023, "Privacy Auditing
with One (1) Training Run")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import binom

from parrotwatch.detectors.audits.dp_lower_bound import (
    all_correct_bound,
    clopper_pearson,
    epsilon_lower_bound,
    guess_membership,
    one_run_audit,
    one_run_p_value,
)


@pytest.mark.parametrize(("r", "expected"), [(10, 1.0519), (100, 3.4930), (1000, 5.8091)])
def test_all_guesses_right_without_delta_is_the_closed_form(r, expected):
    # P[Binomial(r, q) >= r] = q^r = beta  =>  q = beta^(1/r), eps = log(q / (1 - q))
    b = 0.05 ** (1 / r)
    assert math.log(b / (1 - b)) == pytest.approx(expected, abs=1e-4)
    assert epsilon_lower_bound(10_000, r, r, beta=0.05) == pytest.approx(expected, abs=1e-4)
    assert all_correct_bound(r, 0.05) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("r", "v"), [(100, 75), (50, 40), (1000, 560)])
def test_without_delta_the_bound_is_where_the_binomial_tail_crosses_beta(r, v):
    eps = epsilon_lower_bound(10 * r, r, v, beta=0.05)
    assert eps > 0
    assert binom.sf(v - 1, r, expit(eps)) == pytest.approx(0.05, abs=1e-7)
    assert binom.sf(v - 1, r, expit(eps - 1e-3)) < 0.05 < binom.sf(v - 1, r, expit(eps + 1e-3))


def test_p_value_with_delta_by_hand():
    # r = 3 guesses, v = 2 right, eps = 0 (q = 1/2), m = 10, delta = 0.01:
    # tail P[B >= 2] = 4/8; alpha = max(P[B = 1] / 1, P[0 <= B < 2] / 2) = max(3/8, 4/16) = 3/8;
    # p = 1/2 + 2 * 10 * 0.01 * 3/8 = 0.575
    assert one_run_p_value(10, 3, 2, 0.0, 0.01) == pytest.approx(0.575, abs=1e-12)
    assert one_run_p_value(10, 3, 2, 0.0, 0.0) == pytest.approx(0.5, abs=1e-12)
    assert one_run_p_value(10, 3, 3, 0.0) == pytest.approx(0.125, abs=1e-12)
    assert one_run_p_value(10, 3, 2, 0.0, 1.0) == 1.0  # capped


@pytest.mark.parametrize(("m", "r", "v", "delta", "printed"), [
    (1000, 100, 75, 1e-4, 0.673),       # arXiv:2305.08846v1 Appendix D's worked example (0.67298, rounded)
    (100_000, 1510, 1439, 1e-5, 2.675),  # its Section 7 / Fig. 11 figure (2.67585, printed as 2.675)
])
def test_the_papers_printed_values(m, r, v, delta, printed):
    # the printed figures as quoted by a public reproduction of the paper; ours agree to the last digit
    assert epsilon_lower_bound(m, r, v, delta=delta, beta=0.05) == pytest.approx(printed, abs=1e-3)


def test_monotone_in_correct_guesses_and_in_guesses():
    by_v = [epsilon_lower_bound(1000, 100, v, delta=1e-5) for v in range(0, 101, 5)]
    assert all(a <= b for a, b in zip(by_v, by_v[1:], strict=False))
    assert by_v[-1] > by_v[-2] > by_v[-3] > 0
    # the same number right out of more guesses is weaker evidence
    by_r = [epsilon_lower_bound(1000, r, 80, delta=1e-5) for r in (80, 90, 100, 120, 160)]
    assert all(a > b for a, b in zip(by_r, by_r[1:], strict=False))
    # all guesses right: more guesses, a higher ceiling
    all_right = [epsilon_lower_bound(1000, r, r) for r in (10, 50, 100, 500, 1000)]
    assert all(a < b for a, b in zip(all_right, all_right[1:], strict=False))


@pytest.mark.parametrize(("m", "r", "v"), [(1000, 100, 75), (1000, 1000, 1000), (200, 60, 50), (500, 20, 20)])
def test_delta_only_lowers_the_bound(m, r, v):
    bounds = [epsilon_lower_bound(m, r, v, delta=d) for d in (0.0, 1e-6, 1e-5, 1e-4, 1e-3)]
    assert all(a >= b for a, b in zip(bounds, bounds[1:], strict=False))
    assert bounds[0] > bounds[-1]


@pytest.mark.parametrize(("r", "v"), [(100, 50), (100, 30), (100, 0), (1, 1), (4, 3), (0, 0)])
def test_no_better_than_chance_gives_zero(r, v):
    # 1 of 1 and 3 of 4 have chance probabilities 1/2 and 5/16 >= beta
    assert epsilon_lower_bound(1000, r, v, delta=1e-5) == 0.0


def test_guesses_top_and_bottom_and_counts_right_ones():
    scores = [0.9, 0.1, 0.8, 0.2, 0.5, 0.5]
    included = [True, False, False, False, True, True]
    g = guess_membership(scores, included, 2, 3)
    assert g.guess == (1, -1, 1, -1, 0, -1)  # tie 0.5/0.5: the later one is the lower in stable order
    assert (g.r_plus, g.v_plus, g.r_minus, g.v_minus, g.r, g.v) == (2, 1, 3, 2, 5, 3)
    assert guess_membership(scores, included, 0, 0).r == 0
    with pytest.raises(ValueError, match="k_plus"):
        guess_membership(scores, included, 4, 3)
    with pytest.raises(ValueError, match="one length"):
        guess_membership(scores, included[:-1], 1, 1)


def test_audit_takes_the_best_guess_count_at_beta_over_their_number():
    rng = np.random.default_rng(0)
    included = rng.random(400) < 0.5
    scores = included * 1.0 + rng.normal(0, 1.0, 400)
    a = one_run_audit(scores, included, delta=1e-5, beta=0.05)
    assert (a.m, a.n_tests, a.beta_per_test) == (400, 4, 0.0125)
    each = []
    for k in (20, 40, 100, 200):
        g = guess_membership(scores, included, k, k)
        each.append(epsilon_lower_bound(400, g.r, g.v, delta=1e-5, beta=0.0125))
    assert a.epsilon_lower == pytest.approx(max(each), abs=1e-12) and a.epsilon_lower > 0.3
    assert a.k_plus == a.k_minus == (20, 40, 100, 200)[int(np.argmax(each))]


def test_scores_independent_of_the_bits_rarely_give_a_positive_bound():
    # eps = 0: the scores tell nothing, so P[bound > 0] <= beta = 0.05
    rng = np.random.default_rng(1)
    positive = sum(one_run_audit(rng.normal(size=100), rng.random(100) < 0.5).epsilon_lower > 0
                   for _ in range(300))
    assert positive <= 30  # expected <= 15; P[Binomial(300, 0.05) > 30] < 1e-4


def test_randomised_response_is_audited_below_its_eps_and_not_vacuously():
    # each bit released by eps-DP randomised response (right with probability e^eps / (1 + e^eps)),
    # then guessed from it: valid (bound <= eps with probability >= 1 - beta) and informative
    eps, m = 2.0, 400
    rng = np.random.default_rng(2)
    bounds = []
    for _ in range(150):
        bits = rng.random(m) < 0.5
        released = np.where(rng.random(m) < expit(eps), bits, ~bits)
        bounds.append(one_run_audit(released.astype(float), bits, guess_counts=[(200, 200)]).epsilon_lower)
    bounds = np.array(bounds)
    assert np.mean(bounds > eps) <= 0.1
    assert np.mean(bounds) > 1.2


def test_clopper_pearson_golden():
    lo, hi = clopper_pearson(3, 3)  # lower = (0.025)^(1/3) for all successes
    assert lo == pytest.approx(0.025 ** (1 / 3), abs=1e-9) and hi == 1.0
    lo, hi = clopper_pearson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError):
        epsilon_lower_bound(10, 5, 6)
    with pytest.raises(ValueError):
        epsilon_lower_bound(10, 11, 5)
    with pytest.raises(ValueError):
        epsilon_lower_bound(10, 5, 5, beta=1.0)
    with pytest.raises(ValueError):
        one_run_p_value(10, 5, 5, -1.0)
