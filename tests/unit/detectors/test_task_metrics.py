"""Golden values of the reference-based task metrics (detectors/task_metrics.py), computed by hand
from the papers' formulas, not by the libraries under test."""

from __future__ import annotations

import math

import pytest

from parrotwatch.detectors.task_metrics import (
    TASK_METRIC_NAMES,
    exact_match,
    squad_normalize,
    task_metrics,
    token_f1,
)


def test_names_and_range():
    m = task_metrics("The tower was completed in 1889.", "The tower opened in 1889.")
    assert tuple(m) == TASK_METRIC_NAMES
    assert all(0.0 <= v <= 1.0 for v in m.values())


def test_identical_answers_score_one_everywhere():
    m = task_metrics("the quick brown fox jumps", "the quick brown fox jumps")
    assert m == pytest.approx(dict.fromkeys(TASK_METRIC_NAMES, 1.0))


def test_rouge_l_by_hand():
    # LCS("the cat sat on the mat", "the cat was on the mat") = "the cat on the mat" = 5 words;
    # P = 5/6, R = 5/6 -> F = 5/6
    got = task_metrics("the cat sat on the mat", "the cat was on the mat")["rouge_l_f"]
    assert got == pytest.approx(5 / 6)
    # LCS("a b c d", "a c") = 2: P = 2/4, R = 2/2 -> F = 2 * 0.5 * 1 / 1.5 = 2/3
    assert task_metrics("a b c d", "a c")["rouge_l_f"] == pytest.approx(2 / 3)


def test_bleu_by_hand():
    # 8-word prediction, 9-word reference: n-gram precisions 8/8, 6/7, 5/6, 4/5;
    # BP = exp(1 - 9/8) -> BLEU = exp(-1/8) * (1 * 6/7 * 5/6 * 4/5) ** (1/4)
    got = task_metrics("the quick brown fox jumps over the dog",
                       "the quick brown fox jumps over the lazy dog")["bleu"]
    assert got == pytest.approx(math.exp(-1 / 8) * (6 / 7 * 5 / 6 * 4 / 5) ** 0.25, rel=1e-9)


def test_bleu_exp_smoothing_by_hand():
    # precisions 5/6, 3/5, 1/4 and 0/3; 'exp' smoothing replaces the first zero count's
    # precision by 1 / (2 * total) = 1/6; equal lengths -> BP = 1
    got = task_metrics("the cat sat on the mat", "the cat was on the mat")["bleu"]
    assert got == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25, rel=1e-9)


def test_chrf_by_hand():
    # "abc" vs "abd": char 1-grams match 2 of 3 (P = R = 2/3), 2-grams 1 of 2 (1/2), 3-grams 0 of 1;
    # no 4..6-grams exist, so the mean runs over 3 orders: F2 = (2/3 + 1/2 + 0) / 3
    assert task_metrics("abc", "abd")["chrf"] == pytest.approx((2 / 3 + 1 / 2) / 3, rel=1e-9)
    # whitespace is ignored
    assert task_metrics("a bc", "abd")["chrf"] == pytest.approx((2 / 3 + 1 / 2) / 3, rel=1e-9)


def test_squad_normalisation_and_exact_match():
    assert squad_normalize("The  Eiffel Tower!") == "eiffel tower"
    assert squad_normalize("An apple, a day") == "apple day"
    assert exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert exact_match("Eiffel Towers", "eiffel tower") == 0.0


def test_token_f1_by_hand():
    # [in, paris, france] vs [paris]: shared 1 -> P = 1/3, R = 1 -> F1 = 0.5
    assert token_f1("in Paris, France", "Paris") == pytest.approx(0.5)
    # multiset overlap: [a.. removed] "cat cat dog" vs "cat dog dog": shared = 1 cat + 1 dog = 2,
    # P = R = 2/3 -> F1 = 2/3
    assert token_f1("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)
    assert token_f1("London", "Paris") == 0.0


def test_empty_answers():
    assert token_f1("", "") == 1.0  # SQuAD 2.0: both empty (no answer) agree
    assert token_f1("the", "") == 1.0  # only an article: empty after normalisation
    assert token_f1("Paris", "") == 0.0
    m = task_metrics("", "Paris")
    assert m["exact_match"] == 0.0 and m["token_f1"] == 0.0 and m["bleu"] == 0.0


def test_order_matters_to_rouge_and_bleu_not_to_token_f1():
    ref = "the tower was completed in march 1889 for the fair"
    shuffled = "fair the for 1889 march in completed was tower the"
    same, mixed = task_metrics(ref, ref), task_metrics(shuffled, ref)
    assert mixed["token_f1"] == pytest.approx(1.0)  # a bag of words
    assert mixed["rouge_l_f"] < same["rouge_l_f"] and mixed["bleu"] < 0.2
    assert mixed["exact_match"] == 0.0
