"""Lexical degeneration metrics over the response text (no model needed).

Words are w_1..w_M: the response lower-cased and split on white space (ARCHITECTURE.md).
"""

from __future__ import annotations

import zlib


def words(text: str) -> list[str]:
    """w_1..w_M: ``text.lower().split()``."""
    return text.lower().split()


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(tokens[i:] for i in range(n)), strict=False))  # shifted copies


def distinct_n(text: str | list[str], n: int = 2) -> float | None:
    """Distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
    Conversation Models"): ``|set(n-grams)| / |n-grams|`` over the response's words.

    ``None`` when the response has fewer than ``n`` words. ``distinct_2`` is ``distinct_n(t, 2)``.
    ``text`` may also be the already split words.
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
    """
    d = distinct_n(text, n)
    return None if d is None else 1.0 - d


def compression_ratio(text: str) -> float | None:
    """UTF-8 bytes / zlib-compressed bytes (level 9) of the response.

    Repetitive text compresses well, so loops give high ratios; the zlib entropy of Carlini et
    al. 2021, "Extracting Training Data from Large Language Models", uses the same compressor.
    ``None`` for an empty response.
    """
    raw = text.encode("utf-8")
    if not raw:
        return None
    return len(raw) / len(zlib.compress(raw, 9))
