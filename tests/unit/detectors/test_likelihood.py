"""Golden values and properties of the token-likelihood metrics (detectors/likelihood.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from parrotwatch.detectors.likelihood import (
    likelihood_scores,
    likelihood_scores_many,
    min_k_prob,
    token_entropy,
    token_entropy_many,
)


def test_surprisal_golden_three_tokens():
    # l = [-0.1, -2.3, -0.5]: surprisal_mean = (0.1 + 2.3 + 0.5) / 3 = 2.9 / 3 = 0.96667
    # surprisal_max = 2.3; perplexity = exp(0.96667) = 2.62917
    # min_k_prob: floor(0.2 * 3) = 0 -> at least one -> the smallest, -2.3
    s = likelihood_scores([-0.1, -2.3, -0.5])
    assert s.surprisal_mean == pytest.approx(0.966667, abs=1e-6)
    assert s.surprisal_max == pytest.approx(2.3)
    assert s.perplexity == pytest.approx(math.exp(2.9 / 3))
    assert s.perplexity == pytest.approx(2.62917, abs=1e-5)
    assert s.min_k_prob == pytest.approx(-2.3)


def test_min_k_prob_ten_tokens_is_mean_of_two_smallest():
    # N = 10 -> floor(0.2 * 10) = 2 smallest: -1.0 and -0.9 -> -0.95 (order does not matter)
    lps = [-0.3, -1.0, -0.1, -0.5, -0.9, -0.2, -0.7, -0.4, -0.6, -0.8]
    assert min_k_prob(lps) == pytest.approx(-0.95)
    assert likelihood_scores(lps).min_k_prob == pytest.approx(-0.95)
    # N = 5 -> floor(1.0) = 1 -> the minimum
    assert min_k_prob([-0.1, -0.2, -3.0, -0.4, -0.5]) == pytest.approx(-3.0)
    # k = 0.5 on N = 4 -> 2 smallest: (-2 + -3) / 2
    assert min_k_prob([-1.0, -2.0, -3.0, -0.5], k=0.5) == pytest.approx(-2.5)


def test_min_k_prob_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        min_k_prob([])
    with pytest.raises(ValueError, match="k must be"):
        min_k_prob([-1.0], k=0.0)
    with pytest.raises(ValueError, match="k must be"):
        min_k_prob([-1.0], k=1.5)


def test_no_tokens_gives_none():
    assert likelihood_scores([]) is None
    assert token_entropy([]) is None
    assert token_entropy([[], []]) is None


def test_certain_tokens_have_zero_surprisal_and_unit_perplexity():
    s = likelihood_scores([0.0, 0.0])
    assert s.surprisal_mean == pytest.approx(0.0)
    assert s.perplexity == pytest.approx(1.0)


def test_perplexity_overflow_is_inf_not_an_error():
    assert likelihood_scores([-800.0]).perplexity == math.inf


def test_entropy_two_equal_alternatives_is_ln2():
    # p = (1/2, 1/2) -> H = ln 2 = 0.693147 nats; renormalised, so the logged mass need not be 1
    assert token_entropy([[-0.5, -0.5]]) == pytest.approx(math.log(2))
    assert token_entropy([[math.log(0.25), math.log(0.25)]]) == pytest.approx(math.log(2))


def test_entropy_golden_values():
    # p = (1/2, 1/4, 1/4): H = 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2 = 1.039721
    assert token_entropy([[math.log(0.5), math.log(0.25), math.log(0.25)]]) == pytest.approx(
        1.5 * math.log(2)
    )
    # one alternative -> H = 0; mean over positions (ln 2 + 0) / 2; empty positions skipped
    assert token_entropy([[-0.7]]) == pytest.approx(0.0)
    assert token_entropy([[-1.0, -1.0], [-0.2]]) == pytest.approx(math.log(2) / 2)
    assert token_entropy([[], [-1.0, -1.0]]) == pytest.approx(math.log(2))


def test_metrics_do_not_mutate_input_and_are_deterministic():
    lps = [-0.3, -1.0, -0.1, -0.5, -0.9, -0.2, -0.7, -0.4, -0.6, -0.8]
    tops = [[-0.1, -2.5], [-0.3, -1.5, -4.0]]
    lps_copy, tops_copy = list(lps), [list(t) for t in tops]
    first = (likelihood_scores(lps), min_k_prob(lps), token_entropy(tops))
    second = (likelihood_scores(lps), min_k_prob(lps), token_entropy(tops))
    assert lps == lps_copy
    assert tops == tops_copy
    assert first == second


def test_less_likely_text_has_higher_surprisal():
    fluent = likelihood_scores([-0.05, -0.1, -0.02, -0.2])
    garbled = likelihood_scores([-3.0, -5.5, -2.2, -4.1])
    assert garbled.surprisal_mean > fluent.surprisal_mean
    assert garbled.perplexity > fluent.perplexity
    assert garbled.min_k_prob < fluent.min_k_prob


def _ragged_texts(seed: int, n: int = 60):
    """Texts of 0-40 tokens (some None), log-probs in [-12, 0], 0-5 alternatives per position."""
    rng = np.random.default_rng(seed)
    logprobs, tops = [], []
    for _ in range(n):
        size = int(rng.integers(0, 40))
        logprobs.append(None if size == 0 and rng.random() < 0.5 else list(-rng.exponential(1.5, size)))
        tops.append([list(np.log(rng.dirichlet(np.ones(int(w)))) - rng.exponential(0.2))
                     if w else [] for w in rng.integers(0, 6, size)] if size else None)
    return logprobs, tops


@pytest.mark.parametrize("seed", range(5))
def test_many_at_once_equals_one_at_a_time(seed):
    logprobs, tops = _ragged_texts(seed)
    many = likelihood_scores_many(logprobs)
    for text, got in zip(logprobs, many, strict=True):
        want = likelihood_scores(text) if text else None
        if want is None:
            assert got is None
        else:
            for field in ("surprisal_mean", "surprisal_max", "perplexity", "min_k_prob"):
                assert getattr(got, field) == pytest.approx(getattr(want, field), rel=1e-12, abs=1e-12)
    for text, got in zip(tops, token_entropy_many(tops), strict=True):
        want = token_entropy(text) if text else None
        assert (got is None) == (want is None)
        if want is not None:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_many_at_once_golden_and_edge_cases():
    many = likelihood_scores_many([[-0.1, -2.3, -0.5], None, [], [-800.0],
                                   [-0.3, -1.0, -0.1, -0.5, -0.9, -0.2, -0.7, -0.4, -0.6, -0.8]])
    assert many[0].surprisal_mean == pytest.approx(0.966667, abs=1e-6) and many[0].min_k_prob == -2.3
    assert many[1] is None and many[2] is None
    assert many[3].perplexity == math.inf
    assert many[4].min_k_prob == pytest.approx(-0.95)
    assert likelihood_scores_many([]) == [] and token_entropy_many([None, [], [[]]]) == [None] * 3
    half = math.log(0.5)
    assert token_entropy_many([[[half, half]], [[0.0], [half, half, -math.inf]]]) == pytest.approx(
        [math.log(2), math.log(2) / 2])  # ragged widths, and a zero-probability alternative
    with pytest.raises(ValueError, match="k must be"):
        likelihood_scores_many([[-1.0]], k=0)


def test_many_at_once_does_not_mutate_its_input():
    logprobs, tops = _ragged_texts(9, n=10)
    before = (repr(logprobs), repr(tops))
    likelihood_scores_many(logprobs), token_entropy_many(tops)
    assert (repr(logprobs), repr(tops)) == before
