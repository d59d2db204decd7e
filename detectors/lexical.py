"""Lexical degeneration metrics over the response text (no model needed).

Words are w_1..w_M: the response lower-cased and split on white space (the words of the
score table, ``docs/scores.md``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence


def words(text: str) -> list[str]:
    """w_1..w_M: ``text.lower().split()``.

    >>> words("The cat\tSAT  on it")
    ['the', 'cat', 'sat', 'on', 'it']
    """
    return text.lower().split()


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n)), strict=False))  # shifted copies


def distinct_n(text: str | list[str], n: int = 2) -> float | None:
    """Distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
    Conversation Models"): ``|set(n-grams)| / |n-grams|`` over the response's words.

    ``None`` when the response has fewer than ``n`` words. ``distinct_2`` is ``distinct_n(t, 2)``.
    ``text`` may also be the already split words.

    "a b a b" has the bigrams (a b), (b a), (a b): two distinct of three.

    >>> round(distinct_n("a b a b", 2), 4)
    0.6667
    >>> distinct_n(["x", "y", "z"], 1)
    1.0
    >>> distinct_n("one", 2) is None
    True
    """
    grams = _ngrams(words(text) if isinstance(text, str) else text, n)
    if not grams:
        return None
    return len(set(grams)) / len(grams)


def repetition_rate(text: str | list[str], n: int = 3) -> float | None:
    """Share of repeated word n-grams: ``1 - |set(n-grams)| / |n-grams|`` with n = 3.

    The sequence-level repetition measure ``seq-rep-n`` of Welleck et al. 2020, "Neural Text
    Generation with Unlikelihood Training". 0 for text with no repeated 3-gram, approaching 1 for
    a degenerate loop. ``None`` with fewer than ``n`` words.

    "a b c" three times has 7 trigrams, of which 3 are distinct: 1 - 3/7.

    >>> round(repetition_rate("a b c a b c a b c"), 4)
    0.5714
    >>> repetition_rate("no repeated trigram in this sentence")
    0.0
    """
    d = distinct_n(text, n)
    return None if d is None else 1.0 - d


def compression_ratio(text: str) -> float | None:
    """UTF-8 bytes / zlib-compressed bytes (level 9) of the response.

    Repetitive text compresses well, so loops give high ratios; the zlib entropy of Carlini et
    al. 2021, "Extracting Training Data from Large Language Models", uses the same compressor.
    ``None`` for an empty response.

    >>> compression_ratio("to be or not to be " * 50) > 10 > compression_ratio("to be or not")
    True
    >>> compression_ratio("") is None
    True
    """
    raw = text.encode("utf-8")
    if not raw:
        return None
    return len(raw) / len(zlib.compress(raw, 9))


class LexicalScorer:
    """The lexical degeneration scores (Li et al. 2016; Welleck et al. 2020; Carlini et al. 2021) as
    a ``protocols.RequestScorer``: ``distinct_2``, ``repetition_rate`` (n = 3) and
    ``compression_ratio`` of each response text of a batch.

    >>> looped, empty = LexicalScorer().scores(["a b c a b c a b c", ""])
    >>> looped["distinct_2"], round(looped["repetition_rate"], 4)  # 3 of 8 bigrams, 3 of 7 trigrams
    (0.375, 0.5714)
    >>> empty
    {'distinct_2': None, 'repetition_rate': None, 'compression_ratio': None}
    """

    score_names: tuple[str, ...] = ("distinct_2", "repetition_rate", "compression_ratio")

    def scores(self, batch: Sequence[str]) -> list[dict[str, float | None]]:
        """``{name: value}`` of :data:`score_names` per text of ``batch``."""
        out = []
        for text in batch:
            w = words(text)
            out.append({"distinct_2": distinct_n(w, 2), "repetition_rate": repetition_rate(w, 3),
                        "compression_ratio": compression_ratio(text)})
        return out

    @classmethod
    def _unit_test_batch(cls) -> list[str]:
        return ["Thanks, that fixed my build.", "to be or not to be " * 10, "", "one"]
