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
from parrotwatch.detectors.grounding.lexicon import get_lexicon
from parrotwatch.detectors.grounding.pair_model import PairModel, load_pair_model, pair_features
from parrotwatch.detectors.grounding.relations import (
    MAX_CHARS,
    Finding,
    polarity_findings,
    role_findings,
    unit_findings,
)
from parrotwatch.detectors.grounding.text import Chunk, chunks_of, split_sentences
from parrotwatch.detectors.models.encoder import EncoderSpec, get_encoder

#: calibrated on the calibration split of bench/rag_set.py with all-MiniLM-L6-v2: the 5% quantile
#: of its faithful sentences' best similarity is 0.784 (rounded down here); rerun
#: ``bench/hallucination_eval.py`` after changing the encoder, and recalibrate on your own data
DEFAULT_THRESHOLD = 0.65
MAX_SENTENCES = 256  # response sentences graded, and sentences per sample
MAX_TEXT_CHARS = 100_000  # of the response, of all sources together, of all samples together
MAX_CHUNKS = 2_048  # source chunks compared
#: a source passage is "matched" by a sentence when its similarity is within this margin of the
#: best one; a sentence's names and numbers must occur in a matched passage (entity swaps)
MATCH_MARGIN = 0.1
#: the relational checks (finding kinds) that decide by default, and all of them. ``negation``
#: and ``misplaced`` catch more errors but flag about one faithful paraphrase in six on
#: bench/data/grounding_relations_eval.jsonl (docs/hallucination.md), so they are opt-in
DEFAULT_CHECKS = ("antonym", "unit", "role")
ALL_CHECKS = ("antonym", "unit", "role", "negation", "misplaced", "learned")


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
    findings: tuple[Finding, ...] = ()  # contradictions with the matched passage (relations)


@dataclass(frozen=True)
class UnsupportedSpan:
    """A response sentence judged unsupported, with its ``[start, end)`` span for drill-down."""

    text: str
    start: int
    end: int
    similarity: float
    unsupported_facts: tuple[str, ...]
    entailment: float | None = None
    findings: tuple[Finding, ...] = ()


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


def matched_passages(sims: np.ndarray, chunks: Sequence[Chunk],
                     margin: float = MATCH_MARGIN, limit: int = 8) -> list[int]:
    """Indices of the chunks a sentence matches: similarity within ``margin`` of the best, and,
    for a window of sentences, at least that of each sentence in it (a window is only matched
    as a whole when the sentence draws on all of it, not when one of its sentences carries it).
    The best chunk comes first; at most ``limit`` chunks, the most similar."""
    best = int(sims.argmax())
    single = {c.first: float(sims[i]) for i, c in enumerate(chunks) if c.first == c.last}
    out = [best]
    for i, c in enumerate(chunks):
        if i == best or sims[i] < sims[best] - margin:
            continue
        if c.first == c.last or sims[i] >= max(single.get(k, -1.0) for k in range(c.first,
                                                                                    c.last + 1)):
            out.append(i)
    return [best] + sorted(out[1:], key=lambda i: -sims[i])[:limit - 1]


def relational_evidence(sentence: str, sims: np.ndarray, chunks: Sequence[Chunk],
                        missing: Sequence[str], pair_model: PairModel | None = None
                        ) -> tuple[tuple[str, ...], tuple[Finding, ...]]:
    """The sentence's unsupported facts and its contradictions with the passages it matches.

    A number a unit conversion supports is no longer missing. A name or number that the sources
    hold, but no matched passage, is ``misplaced`` (an entity swap). A polarity, unit or role
    contradiction counts only when it holds against the best chunk AND the best single sentence
    (a window can carry an unrelated negation); so does the ``pair_model``'s verdict."""
    matched = matched_passages(sims, chunks)
    best_single = max((i for i, c in enumerate(chunks) if c.first == c.last), key=lambda i: sims[i])
    judged = [matched[0]] + ([best_single] if best_single != matched[0] else [])
    lexicon = get_lexicon()
    per_passage, converted = [], set()
    for i in judged:
        units, conv = unit_findings(sentence, chunks[i].text)
        converted |= conv
        found = (polarity_findings(sentence, chunks[i].text, lexicon) + units
                 + role_findings(sentence, chunks[i].text, lexicon))
        if pair_model is not None:
            features = pair_features(sentence, chunks[i].text, float(sims[i]), lexicon)
            p = pair_model.probability(features)
            if p > pair_model.threshold:
                found.append(Finding("learned", f"the consistency model rates it inconsistent "
                                                f"with the source (p = {p:.2f})"))
        per_passage.append(found)
    kinds = set.intersection(*({f.kind for f in fs} for fs in per_passage))
    findings = [f for f in per_passage[0] if f.kind in kinds]
    missing = tuple(m for m in missing if m not in converted)
    matched_text = " ".join(chunks[i].text for i in matched)
    present = FactIndex([matched_text])
    misplaced = [f for f in present.unsupported(sentence[:MAX_CHARS])
                 if f not in missing and f not in converted]
    if misplaced:
        findings.append(Finding("misplaced", "in the sources, but not in the passage this "
                                             f"sentence matches: {', '.join(misplaced[:5])}"))
    return missing, tuple(findings)


class GroundingScorer:
    """Sentence-level support of responses by their sources, scored micro-batch at a time.

    ``encoder_spec``: the sentence encoder (default all-MiniLM-L6-v2); ``nli_path``: optional
    local NLI cross-encoder directory; ``threshold``: minimum best cosine for support;
    ``nli_threshold``: minimum P(entailment); ``window``: sentences per source chunk;
    ``check_facts``: require every number, date and name to occur in a source;
    ``check_relations``: also require them in a matched passage, and no polarity, unit or role
    contradiction with it (:mod:`parrotwatch.detectors.grounding.relations`);
    ``use_pair_model``: also require the learned pair model's consistency verdict
    (:mod:`parrotwatch.detectors.grounding.pair_model`; only with ``check_relations``). A
    ``protocols.RequestScorer`` of ``hallucination`` and ``self_inconsistency`` (:meth:`scores`).
    """

    #: Languages the grounding checks read: the sentence encoder, the fact rules (names, units,
    #: WordNet polarity and roles) and the splitter are English; other responses are not scored.
    languages: tuple[str, ...] = ("en",)

    score_names: tuple[str, ...] = ("hallucination", "self_inconsistency")

    def __init__(self, encoder_spec: EncoderSpec | None = None, nli_path: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, nli_threshold: float = 0.5, window: int = 2,
                 check_facts: bool = True, check_relations: bool = True,
                 use_pair_model: bool = False, checks: Sequence[str] = DEFAULT_CHECKS):
        self.encoder_spec = encoder_spec or EncoderSpec()
        self.nli_path = nli_path
        self.threshold = threshold
        self.nli_threshold = nli_threshold
        self.window = window
        self.check_facts = check_facts
        self.check_relations = check_relations
        self.use_pair_model = use_pair_model
        unknown = set(checks) - set(ALL_CHECKS)
        if unknown:
            raise ValueError(f"unknown grounding checks {sorted(unknown)}; known: {ALL_CHECKS}")
        self.checks = tuple(checks) + (("learned",) if use_pair_model else ())

    def __repr__(self) -> str:
        return (f"GroundingScorer(encoder_spec={self.encoder_spec!r}, nli_path={self.nli_path!r}, "
                f"threshold={self.threshold}, nli_threshold={self.nli_threshold}, "
                f"window={self.window}, check_facts={self.check_facts}, "
                f"check_relations={self.check_relations}, "
                f"use_pair_model={self.use_pair_model}, checks={self.checks!r})")

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
            chunks = chunks_of(sources, self.window) if sources else []
            texts, cut_samples = _bounded(item.samples or ())
            samples = [ids(s.text for s in split_sentences(x)[:MAX_SENTENCES]) for x in texts]
            truncated.append(cut_response or cut_sources or cut_samples
                                  or len(sents) > MAX_SENTENCES or len(chunks) > MAX_CHUNKS)
            sents, chunks = sents[:MAX_SENTENCES], chunks[:MAX_CHUNKS]
            plans.append((sents, ids(s.text for s in sents), chunks, ids(c.text for c in chunks),
                          samples))
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
            supports.append([self._support(s, row, chunks, facts)
                             for s, row in zip(sents, sims, strict=True)])
        if self.nli_path:
            supports = self._add_entailment(supports)
        return supports, inconsistency, truncated

    def _support(self, sentence, sims: np.ndarray, chunks: Sequence[Chunk],
                 facts: FactIndex | None) -> SentenceSupport:
        best = int(sims.argmax())
        missing = facts.unsupported(sentence.text) if facts else ()
        findings: tuple[Finding, ...] = ()
        if self.check_relations:
            model = load_pair_model() if self.use_pair_model else None
            missing, findings = relational_evidence(sentence.text, sims, chunks, missing, model)
            findings = tuple(f for f in findings if f.kind in self.checks)
        return SentenceSupport(sentence.text, sentence.start, sentence.end, float(sims[best]),
                               chunks[best].text, missing, findings=findings)

    def _add_entailment(self, supports):
        pairs = [(s.best_chunk, s.text) for per_item in supports if per_item for s in per_item]
        if not pairs:
            return supports
        probs = iter(self._nli().entailment(*zip(*pairs, strict=True)).tolist())
        return [None if per_item is None else
                [SentenceSupport(s.text, s.start, s.end, s.similarity, s.best_chunk,
                                 s.unsupported_facts, next(probs), s.findings) for s in per_item]
                for per_item in supports]

    def is_supported(self, s: SentenceSupport) -> bool:
        """The decision for one sentence (see the module docstring)."""
        return (s.similarity >= self.threshold and not s.unsupported_facts and not s.findings
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
                                        s.entailment, s.findings)
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
