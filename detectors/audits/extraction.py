"""Training-data extraction audits over token ids and log-probabilities (pure: no model here).

**k-extractable** (Carlini, Ippolito, Jagielski, Lee, Tramer, Zhang 2023, "Quantifying Memorization
Across Neural Language Models", ICLR; arXiv 2022). A training sequence x = p || s is split into its
first k tokens p and the next L = 50 tokens s; s is *extractable with k tokens of context* when the
model's greedy continuation of p reproduces s exactly:

    extractable(x) = [ argmax-decode(p)_{1..L} == s ],      rate = (1/n) sum_x extractable(x)

Sequences shorter than k + L tokens are left out (the paper samples sequences of exactly k + L);
``min_suffix_tokens`` < L opts into comparing such a sequence on its remaining tokens instead. The
beam-search variant replaces greedy decoding by the best beam (the paper's Section 5.2 ablation). The
rate carries a 95% Wilson score interval (Wilson 1927):

    (phat + z^2/2n +- z sqrt(phat (1 - phat) / n + z^2 / 4n^2)) / (1 + z^2/n),   z = 1.96

**Sampled generations ranked by membership metrics** (Carlini et al. 2021, "Extracting Training Data
from Large Language Models", USENIX Security, Section 5.2): sample many generations, score each by
perplexity, zlib ratio, lowercase ratio and reference-model ratio, and inspect the top of each ranking
for verbatim training data. The scores are those of :mod:`parrotwatch.detectors.audits.membership` (higher
= more
likely memorised), which rank exactly as the paper's ratios whenever the log-perplexities are positive.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from parrotwatch.detectors.audits import membership

SUFFIX_TOKENS = 50  # L of Carlini et al. 2023


def split_sequence(token_ids: Sequence[int], prefix_tokens: int, suffix_tokens: int = SUFFIX_TOKENS,
                   min_suffix_tokens: int | None = None) -> tuple[list[int], list[int]] | None:
    """(p, s): the first ``prefix_tokens`` ids and the next ``suffix_tokens``; None when fewer than
    ``min_suffix_tokens`` (default ``suffix_tokens``) ids follow the prefix."""
    if prefix_tokens < 1 or suffix_tokens < 1:
        raise ValueError(f"prefix_tokens and suffix_tokens must be >= 1, got {prefix_tokens, suffix_tokens}")
    need = suffix_tokens if min_suffix_tokens is None else min_suffix_tokens
    if not 1 <= need <= suffix_tokens:
        raise ValueError(f"min_suffix_tokens must be in [1, suffix_tokens={suffix_tokens}], got {need}")
    ids = [int(t) for t in token_ids]
    if len(ids) - prefix_tokens < need:
        return None
    return ids[:prefix_tokens], ids[prefix_tokens:prefix_tokens + suffix_tokens]


def matched_tokens(continuation: Sequence[int], suffix: Sequence[int]) -> int:
    """Length of the longest common prefix of the continuation and the true suffix, in tokens."""
    n = 0
    for a, b in zip(continuation, suffix, strict=False):
        if int(a) != int(b):
            break
        n += 1
    return n


def is_extractable(continuation: Sequence[int], suffix: Sequence[int]) -> bool:
    """True when the continuation's first len(suffix) tokens equal the (non-empty) suffix exactly."""
    if len(suffix) == 0:
        raise ValueError("the true suffix is empty")
    return matched_tokens(continuation, suffix) == len(suffix)


@dataclass(frozen=True)
class ExtractionRate:
    """``n_extracted`` of ``n`` sequences extractable: ``rate`` with its 95% Wilson interval."""

    n: int
    n_extracted: int
    rate: float
    ci_low: float
    ci_high: float


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n (``z``: the normal quantile, 95% default)."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need n >= 1 and 0 <= k <= n, got k={k}, n={n}")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # rounding: keep p inside


def extraction_rates(extracted: Sequence[bool], groups: Sequence[Hashable]) -> dict[Hashable, ExtractionRate]:
    """The extractable rate per group (e.g. the number of times a sequence is in the training set),
    groups in order of first appearance."""
    if len(extracted) != len(groups):
        raise ValueError(f"extracted and groups differ in length: {len(extracted)} != {len(groups)}")
    counts: dict[Hashable, list[int]] = {}
    for hit, g in zip(extracted, groups, strict=True):
        c = counts.setdefault(g, [0, 0])
        c[0] += 1
        c[1] += bool(hit)
    return {g: ExtractionRate(n, k, k / n, *wilson_interval(k, n)) for g, (n, k) in counts.items()}


def generation_scores(logprobs: Sequence[Sequence[float]], texts: Sequence[str],
                      lowercase_logprobs: Sequence[Sequence[float]] | None = None,
                      reference_logprobs: Sequence[Sequence[float]] | None = None) -> dict[str, np.ndarray]:
    """Carlini et al. 2021 metrics of sampled generations, higher = more likely memorised:
    ``perplexity`` (the LOSS score -log ppl), ``zlib``, and when given ``lowercase`` and ``reference``
    (:mod:`parrotwatch.detectors.audits.membership`). ``logprobs[i]`` are the target model's token
    log-probabilities
    of ``texts[i]`` in nats."""
    if len(logprobs) != len(texts):
        raise ValueError(f"logprobs and texts differ in length: {len(logprobs)} != {len(texts)}")
    out = {"perplexity": np.array([membership.loss_score(lp) for lp in logprobs]),
           "zlib": np.array([membership.zlib_score(lp, t) for lp, t in zip(logprobs, texts, strict=True)])}
    if lowercase_logprobs is not None:
        out["lowercase"] = np.array([membership.lowercase_score(lp, lo)
                                     for lp, lo in zip(logprobs, lowercase_logprobs, strict=True)])
    if reference_logprobs is not None:
        out["reference"] = np.array([membership.reference_score(lp, ref)
                                     for lp, ref in zip(logprobs, reference_logprobs, strict=True)])
    return out


def rank_generations(scores: Mapping[str, np.ndarray], top_n: int) -> dict[str, list[int]]:
    """Per metric, the indices of the ``top_n`` highest-scoring generations, best first (ties: lower
    index first)."""
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    return {name: np.argsort(-np.asarray(v, dtype=np.float64), kind="stable")[:top_n].tolist()
            for name, v in scores.items()}
