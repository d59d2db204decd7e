"""Grounding of a response in its retrieved sources: the ``hallucination`` score.

The unit is the sentence, as in RAGAS faithfulness (Es et al. 2024, EACL demo: "faithfulness =
supported statements / statements") and FActScore (Min et al. 2023: the share of atomic facts a
knowledge source supports). Here, with sentences r_1..r_I of the response and chunks c_1..c_J of
the sources (:mod:`parrotwatch.detectors.grounding.text`):

    sim_i     = max_j cos(e(r_i), e(c_j))                     (sentence encoder, unit vectors)
    supported = sim_i >= threshold
                and no number, date or name of r_i is missing from the sources
                    (:mod:`parrotwatch.detectors.grounding.facts`)
                and, when an NLI model is given, P(entail | c_best(i), r_i) >= nli_threshold
                    (:mod:`parrotwatch.detectors.grounding.nli`)
    hallucination = #{i : not supported_i} / I                (0..1; None without sources or
                                                               without a response sentence)

Bounded work per request, whatever its size: the response is read up to its first
``MAX_SENTENCES`` sentences (within its first ``MAX_TEXT_CHARS`` characters), the sources and the
samples up to ``MAX_TEXT_CHARS`` characters each in all, and at most ``MAX_CHUNKS`` source chunks
are compared. Without the bounds, one 0.9 MB request with sources and samples took 41 s on two
CPU cores (23 s in the 20,000 x 25,000 similarity matrix, 9.5 s splitting sentences); the result
says when it was cut (``truncated``).

``threshold`` comes from :func:`calibrate_threshold` on a labelled calibration split
(``bench/hallucination_eval.py``; docs/hallucination.md gives the numbers). With ``samples``, the
result also carries the SelfCheckGPT-style ``self_inconsistency`` of
:mod:`parrotwatch.detectors.grounding.consistency`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from parrotwatch.detectors.grounding.consistency import self_inconsistency
from parrotwatch.detectors.grounding.facts import FactIndex
from parrotwatch.detectors.grounding.text import source_chunks, split_sentences
from parrotwatch.detectors.models.encoder import EncoderSpec, get_encoder

#: calibrated on the calibration split of bench/rag_set.py with all-MiniLM-L6-v2: the 5% quantile
#: of its faithful sentences' best similarity is 0.784 (rounded down here); rerun
#: ``bench/hallucination_eval.py`` after changing the encoder, and recalibrate on your own data
DEFAULT_THRESHOLD = 0.78
MAX_SENTENCES = 256  # response sentences graded, and sentences per sample
MAX_TEXT_CHARS = 100_000  # of the response, of all sources together, of all samples together
MAX_CHUNKS = 2_048  # source chunks compared


def _bounded(texts: Sequence[str], limit: int = MAX_TEXT_CHARS) -> tuple[list[str], bool]:
    """The leading texts holding at most ``limit`` characters in all (the last one cut), and
    whether anything was left out."""
    out, left = [], limit
    for text in texts:
        if left <= 0:
            return out, True
        out.append(text[:left])
        left -= len(text)
    return out, left < 0


@dataclass(frozen=True)
class GroundingInput:
    """One request: the ``response``, its retrieved ``sources`` and extra sampled answers."""

    response: str
    sources: Sequence[str] | None = None
    samples: Sequence[str] | None = None


@dataclass(frozen=True)
class SentenceSupport:
    """The evidence for one response sentence (continuous scores, before any threshold)."""

    text: str
    start: int
    end: int
    similarity: float  # best cosine with a source chunk
    best_chunk: str
    unsupported_facts: tuple[str, ...]
    entailment: float | None = None  # P(entailment | best_chunk, text); None without NLI


@dataclass(frozen=True)
class UnsupportedSpan:
    """A response sentence judged unsupported, with its ``[start, end)`` span for drill-down."""

    text: str
    start: int
    end: int
    similarity: float
    unsupported_facts: tuple[str, ...]
    entailment: float | None = None


@dataclass(frozen=True)
class GroundingResult:
    """``hallucination`` (share of unsupported sentences) and ``self_inconsistency`` in 0..1."""

    hallucination: float | None
    self_inconsistency: float | None
    unsupported: tuple[UnsupportedSpan, ...] = ()
    n_sentences: int = 0
    truncated: bool = False  # the request was over a bound (MAX_SENTENCES, MAX_TEXT_CHARS, ...)

    def as_dict(self) -> dict[str, float | None]:
        return {"hallucination": self.hallucination, "self_inconsistency": self.self_inconsistency}


def calibrate_threshold(faithful_similarities: Sequence[float], fpr: float = 0.05) -> float:
    """The similarity threshold that flags at most a share ``fpr`` of faithful sentences: their
    ``fpr`` quantile (alibi-detect's ``infer_threshold`` idea, on the faithful class only)."""
    sims = np.asarray(faithful_similarities, dtype=float)
    if sims.size == 0 or not 0.0 <= fpr < 1.0:
        raise ValueError("need at least one similarity and 0 <= fpr < 1")
    return float(np.quantile(sims, fpr, method="lower"))


class GroundingScorer:
    """Sentence-level support of responses by their sources, scored micro-batch at a time.

    ``encoder_spec``: the sentence encoder (default all-MiniLM-L6-v2); ``nli_path``: optional
    local NLI cross-encoder directory; ``threshold``: minimum best cosine for support;
    ``nli_threshold``: minimum P(entailment); ``window``: sentences per source chunk;
    ``check_facts``: require every number, date and name to occur in a source. A
    ``protocols.RequestScorer`` of ``hallucination`` and ``self_inconsistency`` (:meth:`scores`).
    """

    score_names: tuple[str, ...] = ("hallucination", "self_inconsistency")

    def __init__(self, encoder_spec: EncoderSpec | None = None, nli_path: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, nli_threshold: float = 0.5, window: int = 2,
                 check_facts: bool = True):
        self.encoder_spec = encoder_spec or EncoderSpec()
        self.nli_path = nli_path
        self.threshold = threshold
        self.nli_threshold = nli_threshold
        self.window = window
        self.check_facts = check_facts

    def __repr__(self) -> str:
        return (f"GroundingScorer(encoder_spec={self.encoder_spec!r}, nli_path={self.nli_path!r}, "
                f"threshold={self.threshold}, nli_threshold={self.nli_threshold}, "
                f"window={self.window}, check_facts={self.check_facts})")

    def _nli(self):
        from parrotwatch.detectors.grounding.nli import get_nli

        return get_nli(self.nli_path, self.encoder_spec.device)

    def evidence_batch(self, items: Sequence[GroundingInput]
                       ) -> tuple[list[list[SentenceSupport] | None], list[float | None]]:
        """Per item: the support of each response sentence (``None`` without sources) and the
        self-inconsistency (``None`` without samples). All sentences and chunks of the batch go
        through ONE encoder call, and all NLI pairs through one batched NLI pass."""
        supports, inconsistency, _ = self._evidence(items)
        return supports, inconsistency

    def _evidence(self, items: Sequence[GroundingInput]):
        """:meth:`evidence_batch`, and per item whether it was over a bound."""
        index: dict[str, int] = {}

        def ids(texts) -> list[int]:
            return [index.setdefault(t, len(index)) for t in texts]

        plans, truncated = [], []
        for item in items:
            (response,), cut_response = _bounded([item.response])
            sents = split_sentences(response)
            sources, cut_sources = _bounded(item.sources or ())
            chunks = source_chunks(sources, self.window) if sources else []
            texts, cut_samples = _bounded(item.samples or ())
            samples = [ids(s.text for s in split_sentences(x)[:MAX_SENTENCES]) for x in texts]
            truncated.append(cut_response or cut_sources or cut_samples
                                  or len(sents) > MAX_SENTENCES or len(chunks) > MAX_CHUNKS)
            sents, chunks = sents[:MAX_SENTENCES], chunks[:MAX_CHUNKS]
            plans.append((sents, ids(s.text for s in sents), chunks, ids(chunks), samples))
        if index:
            emb = get_encoder(self.encoder_spec).encode(list(index))
        else:
            emb = np.zeros((0, 1), dtype=np.float32)

        supports: list[list[SentenceSupport] | None] = []
        inconsistency: list[float | None] = []
        for item, (sents, sent_ids, chunks, chunk_ids, samples) in zip(items, plans, strict=True):
            answer = emb[sent_ids]
            inconsistency.append(self_inconsistency(answer, [emb[s] for s in samples]))
            if not chunks:
                supports.append(None)
                continue
            sims = answer @ emb[chunk_ids].T if sents else np.zeros((0, len(chunks)))
            facts = FactIndex(item.sources) if self.check_facts else None
            supports.append([
                SentenceSupport(s.text, s.start, s.end, float(row.max()), chunks[int(row.argmax())],
                                facts.unsupported(s.text) if facts else ())
                for s, row in zip(sents, sims, strict=True)])
        if self.nli_path:
            supports = self._add_entailment(supports)
        return supports, inconsistency, truncated

    def _add_entailment(self, supports):
        pairs = [(s.best_chunk, s.text) for per_item in supports if per_item for s in per_item]
        if not pairs:
            return supports
        probs = iter(self._nli().entailment(*zip(*pairs, strict=True)).tolist())
        return [None if per_item is None else
                [SentenceSupport(s.text, s.start, s.end, s.similarity, s.best_chunk,
                                 s.unsupported_facts, next(probs)) for s in per_item]
                for per_item in supports]

    def is_supported(self, s: SentenceSupport) -> bool:
        """The decision for one sentence (see the module docstring)."""
        return (s.similarity >= self.threshold and not s.unsupported_facts
                and (s.entailment is None or s.entailment >= self.nli_threshold))

    def score_batch(self, items: Sequence[GroundingInput]) -> list[GroundingResult]:
        """One :class:`GroundingResult` per item, in order."""
        supports, inconsistency, truncated = self._evidence(items)
        results = []
        for per_item, incons, cut in zip(supports, inconsistency, truncated, strict=True):
            if per_item is None:
                results.append(GroundingResult(None, incons, truncated=cut))
                continue
            bad = tuple(UnsupportedSpan(s.text, s.start, s.end, s.similarity, s.unsupported_facts,
                                        s.entailment)
                        for s in per_item if not self.is_supported(s))
            share = len(bad) / len(per_item) if per_item else None
            results.append(GroundingResult(share, incons, bad, len(per_item), cut))
        return results

    def scores(self, batch: Sequence[GroundingInput]) -> list[dict[str, float | None]]:
        """``GroundingResult.as_dict()`` per item of ``batch``, as :meth:`score_batch`."""
        return [r.as_dict() for r in self.score_batch(batch)]

    @classmethod
    def _unit_test_batch(cls) -> list[GroundingInput]:
        return [GroundingInput("The tower opened in 1889. It is 500 metres tall.",
                               ["The Eiffel Tower opened in 1889 and is 330 metres tall."],
                               ["It opened in 1889.", "The tower opened in 1889."]),
                GroundingInput("No sources here."),
                GroundingInput("Paris is in France.", ["Paris is the capital of France."])]

    def score(self, response: str, sources: Sequence[str] | None,
              samples: Sequence[str] | None = None) -> GroundingResult:
        """:meth:`score_batch` of a single request."""
        return self.score_batch([GroundingInput(response, sources, samples)])[0]
