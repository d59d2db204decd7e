"""RMIA, offline: the Relative Membership Inference Attack of Zarifzadeh, Liu, Lee & Shokri 2024,
"Low-Cost High-Power Membership Inference Attacks" (ICML 2024, arXiv:2312.03262), with OUT reference
models only. Higher score = more likely a member.

Symbols:

- theta: the target model; theta'_1..theta'_k: k reference models trained like theta but *without* the
  audited texts (all OUT; the audit takes 1 <= k <= 4).
- x: an audited text; z in Z: population texts, trained on by neither theta nor any theta'_j.
- Pr(x | theta): the probability the model gives x. For a language model it is the geometric mean of the
  token probabilities, ``exp((1/N) sum_t log p(x_t | x_<t))`` (:func:`sequence_probability`).
- a in [0, 1]: the offline parameter; gamma > 0: the threshold on the pairwise likelihood ratio.

Formulas (paper Sections 3 and 4; "offline" = no IN reference model, Pr_IN(x) ~ a Pr_OUT(x) + (1 - a)):

    Pr_OUT(x) = (1/k) sum_j Pr(x | theta'_j)
    Pr(x)     = 1/2 (Pr_IN(x) + Pr_OUT(x)) = 1/2 ((1 + a) Pr_OUT(x) + (1 - a))
    ratio(x)  = Pr(x | theta) / Pr(x)                        (likewise ratio(z) for each z in Z)
    LR(x, z)  = ratio(x) / ratio(z)
    Score(x)  = (1/|Z|) sum_{z in Z} 1[LR(x, z) > gamma]     in [0, 1], a multiple of 1/|Z|

a = 1 gives Pr(x) = Pr_OUT(x), the plain reference-calibrated ratio; a = 0 gives Pr(x) = (1 + Pr_OUT(x)) / 2,
which damps the reference models' influence when Pr_OUT is small. The paper writes ``>= gamma``; ML Privacy
Meter (``modules/mia/attacks/rmia.py``, ``run_rmia``) compares strictly, ``ratios > 1.0``, and so does this
module, so that the scores match it exactly (they differ only on exact ties, e.g. x = z).

Why the geometric mean for an LM: ML Privacy Meter's LLM path (``get_signals.py``, ``get_softmax`` for a
``PreTrainedModel``) takes ``exp(sum_t mask_t log p_t / sum_t mask_t)``, the exp of the mean token
log-probability, and this module matches it. The whole-sequence probability exp(sum_t log p_t) would be
~1e-100 for a 100-token text: the constant (1 - a) / 2 would then swamp Pr_OUT(x) in Pr(x) for any a < 1,
and the score would rank texts by length as much as by memorization. The per-token geometric mean lies in
(0, 1], like the class probability of the paper's image classifiers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["likelihood_ratios", "offline_marginal", "rmia_scores", "sequence_probability"]


def sequence_probability(logprobs: Sequence[float]) -> float:
    """Pr(x | theta) of a text: exp((1/N) sum_t l_t), l_t its N token log-probabilities (nats); in (0, 1].

    >>> round(sequence_probability([np.log(0.5), np.log(0.125)]), 6)  # (1/2 * 1/8) ** (1/2) = 1/4
    0.25
    """
    lp = np.asarray(logprobs, dtype=np.float64)
    if lp.ndim != 1 or lp.size == 0:
        raise ValueError("logprobs must be a non-empty 1-D sequence of per-token log-probabilities")
    if not np.isfinite(lp).all() or (lp > 0).any():
        raise ValueError("token log-probabilities must be finite and <= 0")
    return float(np.exp(lp.mean()))


def _probabilities(values, what: str, ndim: int) -> np.ndarray:
    p = np.asarray(values, dtype=np.float64)
    if ndim == 2 and p.ndim == 1:
        p = p[:, None]  # one reference model
    if p.ndim != ndim or p.size == 0 or (ndim == 2 and p.shape[1] == 0):
        raise ValueError(f"{what} must be a non-empty {ndim}-D array, got shape {p.shape}")
    if not (np.isfinite(p).all() and (p > 0).all() and (p <= 1).all()):
        raise ValueError(f"{what} must be probabilities in (0, 1]")
    return p


def offline_marginal(reference_probs, offline_a: float) -> np.ndarray:
    """Pr(x) = 1/2 ((1 + a) Pr_OUT(x) + (1 - a)), Pr_OUT(x) the mean over the columns (reference models) of
    ``reference_probs`` (texts x models; a 1-D array is one model).

    >>> offline_marginal([[0.2, 0.4]], 0.5).round(6).tolist()  # 1/2 (1.5 * 0.3 + 0.5) = 0.475
    [0.475]
    """
    if not 0 <= offline_a <= 1:
        raise ValueError(f"offline_a must be in [0, 1], got {offline_a}")
    ref = _probabilities(reference_probs, "reference_probs", 2)
    return 0.5 * ((1 + offline_a) * ref.mean(axis=1) + (1 - offline_a))


def likelihood_ratios(target_probs, reference_probs, offline_a: float) -> np.ndarray:
    """ratio(x) = Pr(x | theta) / Pr(x), Pr(x) by :func:`offline_marginal`; one per text."""
    target = _probabilities(target_probs, "target_probs", 1)
    marginal = offline_marginal(reference_probs, offline_a)
    if marginal.shape != target.shape:
        raise ValueError(f"target_probs has {target.size} texts but reference_probs {marginal.size}")
    return target / marginal


def rmia_scores(target_x, reference_x, target_z, reference_z, offline_a: float = 0.3,
                gamma: float = 1.0, block: int = 1024) -> np.ndarray:
    """Score(x) = share of the population z with ratio(x) / ratio(z) > gamma, for each audited text x.

    ``target_x`` (n,) and ``reference_x`` (n, k): Pr(x | theta) and Pr(x | theta'_j) of the audited texts;
    ``target_z`` (m,) and ``reference_z`` (m, k): the same for the population. ``block`` rows of the n x m
    comparison are held at once.

    Two texts, two population points, one reference model, a = 1 (ratio = target / reference):
    ratio(x) = 0.5 / 0.25 = 2 and 0.1 / 0.2 = 0.5; ratio(z) = 0.3 / 0.3 = 1 and 0.4 / 0.1 = 4.
    x_1 beats z_1 only (2 / 1 > 1, 2 / 4 < 1), x_2 beats neither:

    >>> rmia_scores([0.5, 0.1], [0.25, 0.2], [0.3, 0.4], [0.3, 0.1], offline_a=1.0).tolist()
    [0.5, 0.0]
    """
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    ratio_x = likelihood_ratios(target_x, reference_x, offline_a)
    ratio_z = likelihood_ratios(target_z, reference_z, offline_a)
    k_x = _probabilities(reference_x, "reference_x", 2).shape[1]
    k_z = _probabilities(reference_z, "reference_z", 2).shape[1]
    if k_x != k_z:
        raise ValueError(f"reference_x has {k_x} reference models but reference_z {k_z}")
    scores = np.empty(ratio_x.size)
    for start in range(0, ratio_x.size, block):
        part = ratio_x[start:start + block, None] / ratio_z[None, :]
        scores[start:start + block] = (part > gamma).mean(axis=1)
    return scores
