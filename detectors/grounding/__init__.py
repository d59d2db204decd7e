"""Grounding of responses in retrieved sources (``hallucination``) and self-consistency with
sampled answers (``self_inconsistency``); see :mod:`parrotwatch.detectors.grounding.scorer`."""

from parrotwatch.detectors.grounding.consistency import self_inconsistency, sentence_inconsistency
from parrotwatch.detectors.grounding.facts import FactIndex
from parrotwatch.detectors.grounding.scorer import (
    DEFAULT_THRESHOLD,
    GroundingInput,
    GroundingResult,
    GroundingScorer,
    SentenceSupport,
    UnsupportedSpan,
    calibrate_threshold,
)
from parrotwatch.detectors.grounding.text import Sentence, source_chunks, split_sentences

__all__ = [
    "DEFAULT_THRESHOLD",
    "FactIndex",
    "GroundingInput",
    "GroundingResult",
    "GroundingScorer",
    "Sentence",
    "SentenceSupport",
    "UnsupportedSpan",
    "calibrate_threshold",
    "self_inconsistency",
    "sentence_inconsistency",
    "source_chunks",
    "split_sentences",
]
