"""Golden tests of canary exposure (Carlini et al. 2019) and of the canary spaces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from parrotwatch.detectors.audits.canaries import CanarySpace, canary_space
from parrotwatch.detectors.audits.exposure import (
    SkewNormalFit,
    exposure,
    fit_skew_normal,
    log_perplexity,
    rank,
    skew_normal_exposure,
)

# |R| = 8; sorted: 1, 2, 2, 2, 3, 4, 5, 6 (three-way tie at 2)
SPACE = [3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 2.0, 6.0]


@pytest.mark.parametrize(
    ("canary", "expected_rank", "expected_exposure"),
    [
        (1.0, 1, 3.0),  # the most likely candidate: log2 8 - log2 1 = 3 bits
        (2.0, 4, 1.0),  # tied with two others, all share the largest rank 4: 3 - log2 4 = 1
        (3.0, 5, 3.0 - math.log2(5)),  # 1, 2, 2, 2, 3 are <= 3: rank 5, 0.678 bits
        (6.0, 8, 0.0),  # the least likely: rank |R|, exposure 0
    ],
)
def test_exposure_is_the_secret_sharer_definition(canary, expected_rank, expected_exposure):
    assert rank(canary, SPACE) == expected_rank
    assert exposure(canary, SPACE) == pytest.approx(expected_exposure, abs=1e-12)


def test_ties_count_against_the_canary():
    assert rank(7.0, [7.0] * 4) == 4 and exposure(7.0, [7.0] * 4) == 0.0  # all tied: nothing learnt
    # one candidate below a pair of tied ones: the pair share rank 3 of 3
    assert exposure(2.0, [1.0, 2.0, 2.0]) == 0.0
    assert exposure(1.0, [1.0, 2.0, 2.0]) == pytest.approx(math.log2(3))


def test_exposure_does_not_depend_on_the_order_and_rejects_a_space_without_the_canary():
    shuffled = list(np.random.default_rng(0).permutation(SPACE))
    assert [exposure(c, shuffled) for c in SPACE] == [exposure(c, SPACE) for c in SPACE]
    with pytest.raises(ValueError, match="canary included"):
        exposure(0.5, SPACE)  # below every candidate: the canary is not in the space
    with pytest.raises(ValueError, match="NaN"):
        exposure(1.0, [1.0, float("nan")])


def test_log_perplexity_is_in_bits():
    # p = 1/2 then 1/4: -log2(1/2) - log2(1/4) = 1 + 2 = 3 bits
    assert log_perplexity([math.log(0.5), math.log(0.25)]) == pytest.approx(3.0)


@pytest.mark.parametrize("shape", [-1.0, 2.0, 4.0])
def test_skew_normal_extrapolation_is_within_half_a_bit_of_the_exact_rank(shape):
    """10^5 candidates; the fit sees a random 20,000 of them; canaries at ranks 100, 1000, 10000.

    Ranks <= 10 are left out on purpose: the CDF at the r-th smallest of 10^5 draws is Beta(r, 10^5-r+1)
    distributed, so even the true density misses the exact rank there by 1-3 bits (measured over 30
    seeds); a 5,000-candidate sample misses rank 100 by up to 0.9 bits, 20,000 by up to 0.45.
    """
    rng = np.random.default_rng(7)
    space = stats.skewnorm.rvs(shape, loc=20.0, scale=6.0, size=10**5, random_state=rng)
    fit = fit_skew_normal(rng.choice(space, 20_000, replace=False))
    ordered = np.sort(space)
    for r in (100, 1_000, 10_000):
        canary = ordered[r - 1]
        exact = exposure(canary, space)
        assert exact == pytest.approx(math.log2(10**5 / r))
        assert abs(fit.exposure(canary, 10**5) - exact) <= 0.5


def test_skew_normal_exposure_is_capped_at_log2_space_size_and_is_zero_far_above():
    sample = stats.skewnorm.rvs(3.0, loc=10.0, scale=2.0, size=2_000, random_state=1)
    assert skew_normal_exposure(-1e6, sample, 1024) == 10.0  # CDF underflows to 0: rank 1 of 1024
    assert skew_normal_exposure(1e6, sample, 1024) == 0.0
    fit = fit_skew_normal(sample)
    assert isinstance(fit, SkewNormalFit) and fit.n_sample == 2_000
    assert skew_normal_exposure(9.0, sample, 10**9) == fit.exposure(9.0, 10**9)
    with pytest.raises(ValueError):
        fit_skew_normal([1.0, 2.0, 3.0])


def test_exposure_functions_are_deterministic_and_leave_inputs_alone():
    space = np.array(SPACE)
    sample = stats.skewnorm.rvs(2.0, size=500, random_state=3)
    space_before, sample_before = space.copy(), sample.copy()
    assert exposure(3.0, space) == exposure(3.0, space)
    assert skew_normal_exposure(-1.0, sample, 10**6) == skew_normal_exposure(-1.0, sample, 10**6)
    np.testing.assert_array_equal(space, space_before)
    np.testing.assert_array_equal(sample, sample_before)


# ---------------------------------------------------------------- canary spaces


def test_digit_space_enumerates_in_lexicographic_order():
    space = canary_space("my secret number is {}{}{}{}{}")
    assert space.n_slots == 5 and space.size == 10**5
    assert space.canary(0) == "my secret number is 00000"
    assert space.canary(12_345) == "my secret number is 12345"
    assert space.canary(99_999) == "my secret number is 99999"
    with pytest.raises(IndexError):
        space.canary(10**5)


def test_small_space_is_enumerated_whole():
    space = canary_space("pin {}{}{}", alphabet="ab")  # 2**3 = 8 candidates, base-2 order
    assert space.all_canaries() == [f"pin {a}{b}{c}" for a in "ab" for b in "ab" for c in "ab"]
    words = canary_space("{} likes {}", alphabet=["ann", "bob", "cy"])
    assert words.size == 9 and words.canary(5) == "bob likes cy"  # 5 = 1*3 + 2
    assert canary_space("x {{y}} {}", "01").all_canaries() == ["x {y} 0", "x {y} 1"]  # escaped braces
    with pytest.raises(ValueError, match="max_size"):
        canary_space("{}{}{}{}{}{}{}").all_canaries()  # 10**7 > 10**6


def test_random_canaries_are_distinct_reproducible_and_in_the_space():
    space = canary_space("the code is {}{}{}{}{}{}{}{}{}")  # 10**9, as in the paper's experiments
    first = space.random_canaries(50, rng=42)
    assert first == space.random_canaries(50, np.random.default_rng(42))
    assert len(set(first)) == 50
    assert all(c.startswith("the code is ") and c[12:].isdigit() and len(c) == 21 for c in first)
    tiny = canary_space("{}{}", "xyz")
    assert sorted(tiny.random_canaries(9, rng=0)) == sorted(tiny.all_canaries())  # n = |R|: all of R
    with pytest.raises(ValueError):
        tiny.random_canaries(10, rng=0)


@pytest.mark.parametrize(
    ("template", "alphabet"),
    [("no slot", "01"), ("{0}{1}", "01"), ("{name}", "01"), ("{:d}", "01"), ("{}", "0"), ("{}", "00")],
)
def test_bad_spaces_are_rejected(template, alphabet):
    with pytest.raises(ValueError):
        CanarySpace(template, tuple(alphabet))
