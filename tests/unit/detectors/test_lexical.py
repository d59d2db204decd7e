"""Golden values and properties of the lexical metrics (detectors/lexical.py)."""

from __future__ import annotations

import zlib

import pytest

from parrotwatch.detectors.lexical import compression_ratio, distinct_n, repetition_rate, words

PROSE = (
    "Python is an interpreted, interactive, object-oriented programming language. It "
    "incorporates modules, exceptions, dynamic typing, very high level dynamic data types, and "
    "classes. It supports multiple programming paradigms beyond object-oriented programming, "
    "such as procedural and functional programming."
)
LOOP = "I am not sure. " * 40


def test_words_lowercase_and_whitespace_split():
    assert words("The  Cat\tsat\nDOWN") == ["the", "cat", "sat", "down"]


def test_distinct_2_counted_by_hand():
    # the cat sat on the cat -> bigrams (the cat)(cat sat)(sat on)(on the)(the cat):
    # 5 total, 4 distinct -> 0.8
    assert distinct_n("the cat sat on the cat", 2) == pytest.approx(0.8)
    # a b c a b c -> (a b)(b c)(c a)(a b)(b c): 5 total, 3 distinct -> 0.6
    assert distinct_n("a b c a b c", 2) == pytest.approx(0.6)
    # lower-cased first: "The the THE" -> (the the)(the the): 2 total, 1 distinct -> 0.5
    assert distinct_n("The the THE", 2) == pytest.approx(0.5)


def test_repetition_rate_counted_by_hand():
    # the cat sat on the cat -> (the cat sat)(cat sat on)(sat on the)(on the cat):
    # 4 distinct of 4 -> 1 - 4/4 = 0
    assert repetition_rate("the cat sat on the cat") == pytest.approx(0.0)
    # a b c a b c -> (a b c)(b c a)(c a b)(a b c): 3 distinct of 4 -> 1 - 3/4 = 0.25
    assert repetition_rate("a b c a b c") == pytest.approx(0.25)
    # x x x x x -> 3 trigrams, all (x x x): 1 - 1/3
    assert repetition_rate("x x x x x") == pytest.approx(2 / 3)


def test_compression_ratio_matches_zlib_directly():
    for text in (PROSE, LOOP, "héllo wörld ✓"):
        raw = text.encode("utf-8")
        assert compression_ratio(text) == pytest.approx(len(raw) / len(zlib.compress(raw, 9)))
    # UTF-8 bytes, not characters: "é" is 2 bytes
    raw = "é".encode()
    assert compression_ratio("é") == pytest.approx(2 / len(zlib.compress(raw, 9)))


def test_none_when_input_does_not_allow_the_score():
    assert distinct_n("", 2) is None
    assert repetition_rate("") is None
    assert compression_ratio("") is None
    assert distinct_n("hello", 2) is None  # < 2 words
    assert distinct_n("   \n ", 2) is None
    assert repetition_rate("hello world") is None  # < 3 words
    assert distinct_n("hello world", 2) == pytest.approx(1.0)


@pytest.mark.parametrize("text", [PROSE, LOOP, "a b c a b c", "x x x x", "one two three"])
def test_rates_are_in_unit_interval(text):
    assert 0.0 <= repetition_rate(text) <= 1.0
    assert 0.0 < distinct_n(text, 2) <= 1.0


def test_degenerate_loop_scores_worse_than_prose():
    assert repetition_rate(LOOP) > 0.9
    assert repetition_rate(PROSE) == pytest.approx(0.0)
    assert repetition_rate(LOOP) > repetition_rate(PROSE)
    assert distinct_n(LOOP, 2) < distinct_n(PROSE, 2)
    assert compression_ratio(LOOP) > 5.0
    assert compression_ratio(LOOP) > 2 * compression_ratio(PROSE)


def test_deterministic():
    first = (distinct_n(PROSE, 2), repetition_rate(PROSE), compression_ratio(PROSE))
    second = (distinct_n(PROSE, 2), repetition_rate(PROSE), compression_ratio(PROSE))
    assert first == second
