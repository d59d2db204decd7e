"""Golden tests of the pure extraction audit: k-extractable splits and matches, Wilson intervals, and the
Carlini et al. 2021 ranking of sampled generations."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from scipy.stats import binomtest

from parrotwatch.detectors.audits import extraction as ex
from parrotwatch.detectors.audits import membership


def test_split_takes_k_prefix_tokens_and_the_next_suffix_tokens():
    ids = list(range(100))
    prefix, suffix = ex.split_sequence(ids, prefix_tokens=32)  # L = 50 by default (Carlini et al. 2023)
    assert prefix == list(range(32)) and suffix == list(range(32, 82))
    assert ex.split_sequence(list(range(81)), 32) is None  # 49 tokens after the prefix: left out
    assert ex.split_sequence(list(range(82)), 32) == (list(range(32)), list(range(32, 82)))


def test_split_with_min_suffix_compares_shorter_sequences_on_what_remains():
    assert ex.split_sequence(list(range(40)), 32, 50, min_suffix_tokens=8) == (list(range(32)),
                                                                              list(range(32, 40)))
    assert ex.split_sequence(list(range(39)), 32, 50, min_suffix_tokens=8) is None
    with pytest.raises(ValueError):
        ex.split_sequence(list(range(10)), 2, 5, min_suffix_tokens=6)
    with pytest.raises(ValueError):
        ex.split_sequence(list(range(10)), 0)


def test_extractable_is_an_exact_match_of_the_whole_suffix():
    suffix = [5, 6, 7]
    assert ex.is_extractable([5, 6, 7], suffix)
    assert ex.is_extractable([5, 6, 7, 9, 9], suffix)  # tokens past the suffix do not matter
    assert not ex.is_extractable([5, 6, 8], suffix)
    assert not ex.is_extractable([5, 6], suffix)  # stopped early (EOS): not extracted
    assert ex.matched_tokens([5, 6, 8], suffix) == 2 and ex.matched_tokens([1], suffix) == 0
    assert ex.matched_tokens(np.array([5, 6, 7]), np.array(suffix)) == 3
    with pytest.raises(ValueError):
        ex.is_extractable([1], [])


def test_wilson_interval_golden_values():
    # 5 of 10, z = 1.96: centre 0.5, half-width 1.96 sqrt(0.025 + 3.8415/400) / 1.38415 = 0.26342
    low, high = ex.wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    # 0 of 10: [0, z^2 / (n + z^2)] = [0, 3.8415 / 13.8415]
    assert ex.wilson_interval(0, 10) == pytest.approx((0.0, 3.841459 / 13.841459), abs=1e-6)
    assert ex.wilson_interval(10, 10)[1] == 1.0
    # the same interval as scipy's binomtest(...).proportion_ci(method="wilson")
    for k, n in [(3, 17), (40, 64), (1, 1000)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert ex.wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
    with pytest.raises(ValueError):
        ex.wilson_interval(3, 2)


def test_rates_per_group_in_order_of_first_appearance():
    rates = ex.extraction_rates([True, False, True, True, False], [64, 1, 64, 16, 1])
    assert list(rates) == [64, 1, 16]
    assert (rates[64].n, rates[64].n_extracted, rates[64].rate) == (2, 2, 1.0)
    assert (rates[1].n, rates[1].n_extracted, rates[1].rate) == (2, 0, 0.0)
    assert (rates[1].ci_low, rates[1].ci_high) == pytest.approx(ex.wilson_interval(0, 2))
    with pytest.raises(ValueError):
        ex.extraction_rates([True], [1, 2])


def test_generation_scores_are_the_membership_scores():
    lp = [[math.log(0.5)] * 4, [math.log(0.1), math.log(0.9)]]
    texts = ["aaaa aaaa", "the quick brown fox"]
    lower = [[math.log(0.6)] * 4, [math.log(0.2)] * 3]
    ref = [[math.log(0.25)] * 4, [math.log(0.5)] * 2]
    s = ex.generation_scores(lp, texts, lower, ref)
    assert list(s) == ["perplexity", "zlib", "lowercase", "reference"]
    assert s["perplexity"][0] == pytest.approx(math.log(0.5))  # -log ppl: higher = more likely memorised
    for i in range(2):
        assert s["zlib"][i] == membership.zlib_score(lp[i], texts[i])
        assert s["lowercase"][i] == membership.lowercase_score(lp[i], lower[i])
        assert s["reference"][i] == membership.reference_score(lp[i], ref[i])
    # ln 0.5 - ln 0.25 = ln 2: the target finds the text twice as likely per token as the reference
    assert s["reference"][0] == pytest.approx(math.log(2))
    assert list(ex.generation_scores(lp, texts)) == ["perplexity", "zlib"]


def test_ranking_is_descending_with_ties_by_index():
    ranks = ex.rank_generations({"a": np.array([0.1, 0.9, 0.5, 0.9]), "b": [3, 2, 1, 0]}, top_n=3)
    assert ranks == {"a": [1, 3, 2], "b": [0, 1, 2]}
    with pytest.raises(ValueError):
        ex.rank_generations({"a": [1.0]}, top_n=0)


def test_pure_functions_are_deterministic_pickle_and_leave_inputs_alone():
    ids = list(range(90))
    before = copy.deepcopy(ids)
    assert ex.split_sequence(ids, 10) == ex.split_sequence(ids, 10)
    assert ids == before
    rate = ex.extraction_rates([True, False], ["x", "x"])["x"]
    assert pickle.loads(pickle.dumps(rate)) == rate
    for f in (ex.split_sequence, ex.matched_tokens, ex.is_extractable, ex.wilson_interval,
              ex.extraction_rates, ex.generation_scores, ex.rank_generations):
        assert f.__doc__
