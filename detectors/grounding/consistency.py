"""SelfCheckGPT-style self-consistency of an answer with extra sampled answers.

SelfCheckGPT (Manakul, Liusie & Gales 2023, EMNLP, "SelfCheckGPT: Zero-Resource Black-Box
Hallucination Detection for Generative Large Language Models") scores sentence i of the answer
against N stochastic samples S^1..S^N of the same prompt. Its BERTScore variant is

    S_BERT(i) = 1 - (1/N) * sum_n max_k B(r_i, s_k^n)

with s_k^n the sentences of sample n. This module uses that formula with the sentence-embedding
cosine in place of BERTScore (one encoder call for the whole micro-batch, no extra model), clipped
at 0 so that S(i) stays in [0, 1]:

    S(i)  = 1 - (1/N) * sum_n max_k max(0, cos(e(r_i), e(s_k^n)))      (a sample with no
    score = (1/I) * sum_i S(i)                                           sentence counts as 0)

Higher means less consistent: facts the model invents tend to differ between samples, while facts
it knows recur.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sentence_inconsistency(answer: np.ndarray, samples: Sequence[np.ndarray]) -> np.ndarray:
    """S(i) for each answer sentence: ``answer`` is (I, d), each sample (K_n, d), all unit-norm."""
    if not samples:
        raise ValueError("self-consistency needs at least one sample")
    support = np.zeros(len(answer))
    for sample in samples:
        if len(sample):
            support += np.clip(answer @ sample.T, 0.0, 1.0).max(axis=1)
    return 1.0 - support / len(samples)


def self_inconsistency(answer: np.ndarray, samples: Sequence[np.ndarray]) -> float | None:
    """Mean of :func:`sentence_inconsistency`; ``None`` without answer sentences or samples."""
    if len(answer) == 0 or not samples:
        return None
    return float(sentence_inconsistency(answer, samples).mean())
