"""Membership-inference scores of one text: higher = more likely a member of the training data.

l_1..l_N are the natural-log probabilities log p(x_t | x_<t) of the text's N tokens under the target
model (nats); log-perplexity is logppl = -(1/N) sum_t l_t (nats per token, >= 0).

    LOSS       (Yeom et al. 2018, "Privacy Risk in Machine Learning")    (1/N) sum_t l_t = -logppl
    zlib       (Carlini et al. 2021, "Extracting Training Data from Large Language Models")
                                                                         -logppl / zlib_bits(text)
    lowercase  (Carlini et al. 2021)                                     -logppl / logppl(text.lower())
    reference  (Carlini et al. 2021; Mireshghallah et al. 2022, "Quantifying Privacy Risks of Masked
               Language Models Using Membership Inference Attacks")     logppl_ref - logppl
    Min-K%     (Shi et al. 2023)
    ``parrotwatch.detectors.likelihood.min_k_prob``
    Min-K%++   (Zhang et al. 2024, "Min-K%++: Improved Baseline for Detecting Pre-Training Data from LLMs")
                                                                         see :func:`min_k_plus_plus`

Carlini et al. rank zlib_bits / logppl and logppl_lower / logppl; the negated reciprocals used here rank
texts identically whenever both log-perplexities are positive and never divide by a vanishing logppl.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from parrotwatch.detectors.likelihood import min_k_prob

__all__ = [
    "loss_score",
    "lowercase_score",
    "min_k_plus_plus",
    "min_k_prob",
    "next_token_logp_moments",
    "reference_score",
    "zlib_bits",
    "zlib_score",
]


def _mean(logprobs: Sequence[float], what: str = "logprobs") -> float:
    values = np.asarray(logprobs, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D sequence of per-token log-probabilities")
    return float(values.mean())


def loss_score(logprobs: Sequence[float]) -> float:
    """LOSS attack: the mean token log-probability (1/N) sum_t l_t = -mean NLL, in nats per token."""
    return _mean(logprobs)


def zlib_bits(text: str) -> int:
    """zlib entropy in bits: 8 * len(zlib.compress(UTF-8 bytes)), zlib's default level as in Carlini et al."""
    raw = text.encode("utf-8")
    if not raw:
        raise ValueError("zlib entropy of an empty text is undefined")
    return 8 * len(zlib.compress(raw))


def zlib_score(logprobs: Sequence[float], text: str) -> float:
    """zlib ratio: -logppl / zlib_bits(text), in nats per token per bit of compressed text."""
    return _mean(logprobs) / zlib_bits(text)


def lowercase_score(logprobs: Sequence[float], lowercase_logprobs: Sequence[float]) -> float:
    """Lowercase ratio: -logppl(text) / logppl(text.lower()) (dimensionless).

    ``lowercase_logprobs`` are the target model's token log-probabilities of ``text.lower()`` (its own
    tokenisation, so the token counts may differ).
    """
    lower = -_mean(lowercase_logprobs, "lowercase_logprobs")
    if lower <= 0:
        raise ValueError("the lowercased text has log-perplexity 0: the ratio is undefined")
    return _mean(logprobs) / lower


def reference_score(logprobs: Sequence[float], reference_logprobs: Sequence[float]) -> float:
    """Reference-model ratio: (1/N) sum l_t - (1/M) sum l_ref,t = logppl_ref - logppl, nats per token.

    ``reference_logprobs`` are the same text's token log-probabilities under the reference model.
    """
    return _mean(logprobs) - _mean(reference_logprobs, "reference_logprobs")


def next_token_logp_moments(logprob_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mu_t = E_{z~p_t}[log p_t(z)] = sum_z p log p and var_t = sum_z p (log p)^2 - mu_t^2 (clamped at 0),
    from the full next-token log-distributions, one row (over the vocabulary) per position, in nats."""
    lp = np.asarray(logprob_rows, dtype=np.float64)
    if lp.ndim != 2:
        raise ValueError(f"logprob_rows must be 2-D (positions x vocabulary), got shape {lp.shape}")
    p = np.exp(lp)
    lp = np.where(p > 0, lp, 0.0)  # p log p -> 0 as p -> 0: drop the -inf of impossible tokens
    mu = (p * lp).sum(axis=1)
    return mu, np.maximum((p * lp**2).sum(axis=1) - mu**2, 0.0)


def min_k_plus_plus(
    logprobs: Sequence[float], mean_logp: Sequence[float], var_logp: Sequence[float], k: float = 0.2
) -> float:
    """Min-K%++ (Zhang et al. 2024): z_t = (l_t - mu_t) / sigma_t, score = mean of the floor(k N) (at
    least one) smallest z_t, in standard deviations. mu_t, sigma_t^2 are the mean and variance of log p(z)
    for z ~ p(. | x_<t) (:func:`next_token_logp_moments`). A position with sigma_t = 0 (a point mass, so
    l_t = mu_t = 0) has z_t = 0.
    """
    lp, mu, var = (np.asarray(a, dtype=np.float64) for a in (logprobs, mean_logp, var_logp))
    if not (lp.ndim == 1 and lp.shape == mu.shape == var.shape):
        raise ValueError(
            f"logprobs, mean_logp, var_logp need one equal length, got {lp.shape, mu.shape, var.shape}"
        )
    if (var < 0).any():
        raise ValueError("var_logp must be >= 0 (clamp rounding errors of E[x^2] - mu^2 at 0)")
    sigma = np.sqrt(var)
    z = np.divide(lp - mu, sigma, out=np.zeros_like(lp), where=sigma > 0)
    return min_k_prob(z, k)
