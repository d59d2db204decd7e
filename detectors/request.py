"""All per-request scores that need no model (the registry: :mod:`parrotwatch.detectors.metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from parrotwatch.detectors.cost import PriceTable, default_prices
from parrotwatch.detectors.lexical import LexicalScorer
from parrotwatch.detectors.likelihood import likelihood_scores_many, token_entropy_many
from parrotwatch.detectors.metrics import MODEL_FREE_SCORE_NAMES

_LEXICAL = LexicalScorer()


@dataclass(frozen=True)
class RequestInput:
    """Plain inputs of one request: the adapter maps an inference event onto this."""

    response: str
    logprobs: Sequence[float] | None = None
    top_logprobs: Sequence[Sequence[float]] | None = None
    latency_ms: float | None = None
    output_tokens: int | None = None
    model: str = ""
    input_tokens: int | None = None
    cached_input_tokens: int | None = None


@dataclass(frozen=True)
class RequestScores:
    """Per-request scores; ``None`` where the input does not allow the score."""

    surprisal_mean: float | None = None
    surprisal_max: float | None = None
    perplexity: float | None = None
    entropy_mean: float | None = None
    min_k_prob: float | None = None
    distinct_2: float | None = None
    repetition_rate: float | None = None
    compression_ratio: float | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    regurgitation: float | None = None
    cost_usd: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in MODEL_FREE_SCORE_NAMES}


def tokens_per_s(output_tokens: int | None, latency_ms: float | None) -> float | None:
    """Decoding throughput: output tokens / latency in seconds (``None`` for zero latency)."""
    if output_tokens is None or latency_ms is None or latency_ms <= 0:
        return None
    return output_tokens / (latency_ms / 1000.0)


def score_requests(reqs: Sequence[RequestInput], prices: PriceTable | None = None) -> list[RequestScores]:
    """Every model-free score of each request (definitions in detectors/metrics.py); the likelihood
    family for all requests at once (:func:`~parrotwatch.detectors.likelihood.likelihood_scores_many`);
    ``cost_usd`` from ``prices`` (default: :func:`~parrotwatch.detectors.cost.default_prices`)."""
    prices = prices if prices is not None else default_prices()
    liks = likelihood_scores_many([r.logprobs for r in reqs])
    entropies = token_entropy_many([r.top_logprobs for r in reqs])
    lexical = _LEXICAL.scores([r.response for r in reqs])  # the registered scorer, as its contract tests
    out = []
    for req, lik, entropy, lex in zip(reqs, liks, entropies, lexical, strict=True):
        out.append(RequestScores(
            surprisal_mean=lik.surprisal_mean if lik else None,
            surprisal_max=lik.surprisal_max if lik else None,
            perplexity=lik.perplexity if lik else None,
            min_k_prob=lik.min_k_prob if lik else None,
            entropy_mean=entropy,
            **lex,
            latency_ms=req.latency_ms,
            tokens_per_s=tokens_per_s(req.output_tokens, req.latency_ms),
            cost_usd=prices.cost(req.model, req.input_tokens, req.output_tokens, req.cached_input_tokens),
        ))
    return out


def score_request(req: RequestInput) -> RequestScores:
    """Every model-free score of one request: :func:`score_requests` of one."""
    return score_requests([req])[0]
