"""Model-based quality scores of a batch of inference events: the one code path of the stream's
Python workers and of ``parrotwatch score``.

Each text is embedded once per batch and the embeddings are shared by the detectors:

* the ``language`` of the response (:mod:`parrotwatch.detectors.language`, on the text as
  deobfuscated), which decides whether the language-bound detectors can read it;
* ``toxicity`` of the response (:mod:`parrotwatch.detectors.toxicity`), null in a language it does
  not read, with ``toxicity_unread`` 1 (else 0);
* ``hallucination`` when the event has ``sources`` (:mod:`parrotwatch.detectors.grounding`), with the
  unsupported spans kept for drill-down; null with ``hallucination_unread`` 1 when the response is
  in a language the grounding checks do not read;
* the likelihood scores from a reference causal LM when the event has no ``logprobs`` and a
  reference LM is configured (``score_source = 'reference_lm'``);
* the prompt and response embeddings (float16), which the stream's driver turns into
  ``ood_score`` and per-window drift tests (:mod:`parrotwatch.streaming.drift_stage`).

Models are loaded once per process (:func:`quality_models`); every load is appended to
``load_log`` (one JSON line with the pid), so a test can check "once per worker".
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parrotwatch.contracts.wire import InferenceEvent
from parrotwatch.detectors.deobfuscate import deobfuscate
from parrotwatch.detectors.language import MAX_CHARS, LanguageSupport, identify
from parrotwatch.detectors.likelihood import likelihood_scores
from parrotwatch.detectors.models.encoder import EncoderSpec, get_encoder

DETECTORS = ("toxicity", "hallucination", "drift", "reference_lm", "pii", "injection")
MAX_PII_SPANS = 50  # drill-down: PII findings kept per request (types and offsets, never values)
TOP_SURPRISING_TOKENS = 5  # drill-down: the most surprising tokens kept per response
MAX_SPANS = 10  # drill-down: unsupported spans kept per response
MAX_SPAN_CHARS = 500


@dataclass(frozen=True)
class QualityConfig:
    """Which model-based detectors run, and with which local models (never downloaded)."""

    detectors: tuple[str, ...] = ("toxicity", "hallucination", "drift")
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    toxicity_classifier: str | None = None
    nli_model: str | None = None
    reference_lm: str | None = None
    load_log: str | None = None
    cache_dir: str | None = None  # fitted detector weights (e.g. toxicity), shared by workers
    #: torch intra-op threads of the process that loads the models (None: torch's default, one per core).
    #: The stream sets it to ``spark.task.cpus``: Spark runs one Python worker per task slot, and workers
    #: that each start a thread per core oversubscribe the cores (SPARK-28843 limits OpenMP the same way).
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.detectors) - set(DETECTORS))
        if unknown:
            raise ValueError(f"unknown quality detector(s) {unknown}; valid: {list(DETECTORS)}")
        if "reference_lm" in self.detectors and not self.reference_lm:
            raise ValueError("the 'reference_lm' detector needs a local model path "
                             "(PARROTWATCH_REFERENCE_LM; `parrotwatch testbed build` makes one)")

    @property
    def enabled(self) -> bool:
        return bool(self.detectors)

    def uses(self, name: str) -> bool:
        return name in self.detectors

    @property
    def needs_encoder(self) -> bool:
        return any(self.uses(d) for d in ("toxicity", "hallucination", "drift"))

    @classmethod
    def from_settings(cls, settings: Any) -> QualityConfig:
        detectors = tuple(settings.quality_detectors)
        if settings.reference_lm and "reference_lm" not in detectors:
            detectors += ("reference_lm",)
        return cls(
            detectors=detectors,
            encoder=EncoderSpec(model=settings.encoder_model, precision=settings.encoder_precision),
            toxicity_classifier=settings.toxicity_classifier,
            nli_model=settings.nli_model,
            reference_lm=str(settings.reference_lm) if settings.reference_lm else None,
            load_log=str(settings.logs_dir / "model-loads.jsonl"),
            cache_dir=str(settings.home / "model-cache"),
        )


class QualityModels:
    """The models of one :class:`QualityConfig`, built once per process."""

    def __init__(self, config: QualityConfig) -> None:
        self.config = config
        if config.torch_threads is not None and config.detectors:
            import torch

            torch.set_num_threads(config.torch_threads)
        self.encoder = get_encoder(config.encoder) if config.needs_encoder else None
        self.toxicity = self.grounding = self.lm = self.injection = None
        if config.uses("injection"):
            from parrotwatch.detectors.injection import InjectionScorer

            self.injection = InjectionScorer(encoder_spec=config.encoder)
        if config.uses("toxicity"):
            from parrotwatch.detectors.toxicity import ToxicityScorer

            self.toxicity = ToxicityScorer(encoder_spec=config.encoder,
                                           classifier_path=config.toxicity_classifier,
                                           cache_dir=config.cache_dir)
        if config.uses("hallucination"):
            from parrotwatch.detectors.grounding import GroundingScorer

            self.grounding = GroundingScorer(encoder_spec=config.encoder, nli_path=config.nli_model)
        if config.uses("reference_lm"):
            from parrotwatch.detectors.models.causal_lm import CausalLMSpec, get_causal_lm

            self.lm = get_causal_lm(CausalLMSpec(model=config.reference_lm))
        if config.load_log:
            os.makedirs(os.path.dirname(config.load_log), exist_ok=True)
            with open(config.load_log, "a") as f:
                torch = sys.modules.get("torch")
                f.write(json.dumps({"pid": os.getpid(), "time": time.time(),
                                    "torch_threads": torch.get_num_threads() if torch else None,
                                    "detectors": list(config.detectors),
                                    "encoder": config.encoder.model}) + "\n")


_MODELS: dict[QualityConfig, QualityModels] = {}
_LOCK = threading.Lock()


def quality_models(config: QualityConfig) -> QualityModels:
    with _LOCK:
        if config not in _MODELS:
            _MODELS[config] = QualityModels(config)
        return _MODELS[config]


@dataclass
class QualityResult:
    """Model-based scores and drill-down of one event (``None``: not computed)."""

    scores: dict[str, float | None]
    score_source: str | None = None
    language: str | None = None
    drilldown: dict[str, list] | None = None
    #: the response's PII findings, all of them (the drill-down keeps at most MAX_PII_SPANS of both sides)
    pii_response: tuple | None = None
    prompt_embedding: bytes | None = None
    response_embedding: bytes | None = None


def prompt_text(event: InferenceEvent) -> str:
    """The request's input text: ``prompt``, else the text content of the chat messages."""
    if event.prompt is not None:
        return event.prompt
    parts = []
    for m in event.messages or ():
        if isinstance(m.content, str):
            parts.append(m.content)
        elif isinstance(m.content, list):  # OpenAI content parts: keep the text ones
            parts += [p.get("text") for p in m.content if isinstance(p, dict)]
    return "\n".join(p for p in parts if isinstance(p, str) and p)  # a non-string "text" is no text


def surprising_tokens(tokens: Sequence[str], logprobs: Sequence[float],
                      n: int = TOP_SURPRISING_TOKENS) -> list[dict]:
    """The ``n`` tokens of highest surprisal ``-log p``, in decreasing order."""
    if not len(logprobs):
        return []
    lp = np.asarray(logprobs, dtype=np.float64)
    top = np.argsort(lp, kind="stable")[:n]
    return [{"position": int(i), "token": tokens[i], "surprisal": round(float(-lp[i]), 4)}
            for i in top]


def _f16(matrix: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in matrix.astype(np.float16)]


def score_quality(events: Sequence[InferenceEvent], config: QualityConfig) -> list[QualityResult]:
    """Model-based scores of ``events`` (one batch: each text embedded once)."""
    results = [QualityResult(scores={}) for _ in events]
    if not events or not config.enabled:
        return results
    models = quality_models(config)
    responses = [e.response for e in events]
    response_emb = models.encoder.encode(responses) if models.encoder is not None else None
    languages = None
    if models.toxicity is not None:
        assessed = models.toxicity.assess(responses, embeddings=response_emb)
        languages = assessed.languages
        for r, t, reason in zip(results, assessed.scores, assessed.reasons, strict=True):
            r.scores["toxicity"] = None if reason else float(t)
            r.scores["toxicity_unread"] = 1.0 if reason else 0.0
    if models.grounding is not None:
        languages = languages or [identify(deobfuscate(t[:MAX_CHARS])).code for t in responses]
        _grounding(events, results, models.grounding, languages)
    for r, code in zip(results, languages or [None] * len(results), strict=True):
        r.language = code
    if config.uses("drift"):
        prompt_emb = models.encoder.encode([prompt_text(e) for e in events])
        for r, p, q in zip(results, _f16(prompt_emb), _f16(response_emb), strict=True):
            r.prompt_embedding, r.response_embedding = p, q
    if config.uses("pii"):
        _pii(events, results)
    if models.injection is not None:
        _injection(events, results, models.injection)
    _likelihood(events, results, models.lm)
    return results


def user_text(event: InferenceEvent) -> str | None:
    """What the app's users (and its retrieved documents) put into the request: ``prompt``, else
    the text of every message but the system's (the developer writes those), else None."""
    if event.prompt is not None:
        return event.prompt
    parts = []
    for m in event.messages or ():
        if m.role == "system":
            continue
        if isinstance(m.content, str):
            parts.append(m.content)
        elif isinstance(m.content, list):
            parts += [p.get("text") for p in m.content if isinstance(p, dict)]
    return "\n".join(p for p in parts if isinstance(p, str) and p) or None


def _pii(events, results) -> None:
    from parrotwatch.detectors.pii import pii_findings

    # the user's input, not the app's own system prompt (its contact address would count every time)
    found = pii_findings([{"prompt": user_text(e), "response": e.response} for e in events])
    for r, f in zip(results, found, strict=True):
        spans = [(side, s) for side, ss in (("prompt", f.prompt), ("response", f.response)) for s in ss or ()]
        r.scores["pii_count"] = float(len(spans))
        r.pii_response = tuple(f.response or ())
        if spans:
            r.drilldown = {**(r.drilldown or {}), "pii_entities": [
                {"side": side, "type": s.entity_type, "start": s.start, "end": s.end}
                for side, s in spans[:MAX_PII_SPANS]]}


def _injection(events, results, scorer) -> None:
    for r, a in zip(results, scorer.assess([user_text(e) for e in events]), strict=True):
        r.scores["injection_score"] = a.injection_score
        if a.injection_score is not None and a.injection_score >= 0.5:
            r.drilldown = {**(r.drilldown or {}), "injection_match": {
                "family": a.nearest_family, "nearest_id": a.nearest_id,
                "similarity": None if a.similarity is None else round(float(a.similarity), 4),
                "chunk": (a.matched_chunk or "")[:MAX_SPAN_CHARS]}}


def _grounding(events, results, scorer, languages: Sequence[str]) -> None:
    from parrotwatch.detectors.grounding import GroundingInput

    support = LanguageSupport("hallucination", scorer.languages)
    todo = []
    for i, e in enumerate(events):
        if not e.sources:
            continue
        unread = not support.reads(languages[i])
        results[i].scores["hallucination_unread"] = 1.0 if unread else 0.0
        if not unread:
            todo.append(i)
    if not todo:
        return
    items = [GroundingInput(response=events[i].response, sources=list(events[i].sources),
                            samples=list(events[i].samples) if events[i].samples else None)
             for i in todo]
    for i, g in zip(todo, scorer.score_batch(items), strict=True):
        results[i].scores["hallucination"] = g.hallucination
        spans = [{"text": s.text[:MAX_SPAN_CHARS], "start": s.start, "end": s.end,
                  "similarity": round(float(s.similarity), 4),
                  "unsupported_facts": list(s.unsupported_facts)[:10],
                  "reasons": [f.detail[:MAX_SPAN_CHARS] for f in s.findings[:5]]}
                 for s in g.unsupported[:MAX_SPANS]]
        if spans:
            results[i].drilldown = {**(results[i].drilldown or {}), "unsupported_spans": spans}


def _likelihood(events, results, lm) -> None:
    """Surprising tokens from the logged logprobs, or from the reference LM when none."""
    missing = []
    for i, e in enumerate(events):
        if e.logprobs:
            tokens = [t["token"] for t in e.logprobs]
            top = surprising_tokens(tokens, [t["logprob"] for t in e.logprobs])
            results[i].score_source = "logprobs"
            results[i].drilldown = {**(results[i].drilldown or {}), "surprising_tokens": top}
        elif e.response:
            missing.append(i)
    if lm is None or not missing:
        return
    for i, ts in zip(missing, lm.score_texts([events[i].response for i in missing]), strict=True):
        if not len(ts.logprobs):
            continue
        lik = likelihood_scores(list(map(float, ts.logprobs)))
        results[i].scores.update(surprisal_mean=lik.surprisal_mean, surprisal_max=lik.surprisal_max,
                                 perplexity=lik.perplexity, min_k_prob=lik.min_k_prob)
        results[i].score_source = "reference_lm"
        results[i].drilldown = {**(results[i].drilldown or {}),
                                "surprising_tokens": surprising_tokens(ts.tokens, ts.logprobs)}
