"""Pure metrics and detectors over plain Python data.

This package imports neither Spark, Kafka, FastAPI nor a database driver: every metric runs on
plain lists and strings, so the stream, the offline scorer and the audits share one code path.
:mod:`parrotwatch.detectors.protocols` defines the detector kinds (streaming detector, two-sample
test, request scorer) and registers the components of each.
"""

from parrotwatch.detectors.lexical import LexicalScorer, compression_ratio, distinct_n, repetition_rate, words
from parrotwatch.detectors.likelihood import (
    LikelihoodScorer,
    LikelihoodScores,
    likelihood_scores,
    min_k_prob,
    token_entropy,
)
from parrotwatch.detectors.request import RequestInput, RequestScores, score_request, score_requests

__all__ = [
    "LexicalScorer",
    "LikelihoodScorer",
    "LikelihoodScores",
    "RequestInput",
    "RequestScores",
    "compression_ratio",
    "distinct_n",
    "likelihood_scores",
    "min_k_prob",
    "repetition_rate",
    "score_request",
    "score_requests",
    "token_entropy",
    "words",
]
