"""Parse, validate and score raw events: the one code path of the stream and ``parrotwatch score``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from pydantic import TypeAdapter, ValidationError

from parrotwatch.contracts import FeedbackEventV1, InferenceEventV1
from parrotwatch.contracts.reasons import (  # noqa: F401 (re-exported: the stream's records use them)
    MAX_REASON_CHARS,
    MAX_REASON_ERRORS,
    bounded_reason,
    describe_validation_error,
)
from parrotwatch.contracts.wire import InferenceEvent, WireLogprobToken, decode_inference
from parrotwatch.detectors.audits.ngram_index import NgramIndex, load_index
from parrotwatch.detectors.audits.pii_leakage import leaked_pii_spans
from parrotwatch.detectors.audits.regurgitation import longest_overlap
from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.detectors.request import RequestInput, score_requests
from parrotwatch.quality import QualityConfig, QualityResult, score_quality, user_text

_INFERENCE = TypeAdapter(InferenceEventV1)
_FEEDBACK = TypeAdapter(FeedbackEventV1)


class InvalidEvent(ValueError):
    """A record that breaks its contract; ``str(exc)`` is the dead-letter reason."""




def _check_raw(raw: bytes, max_bytes: int) -> None:
    if len(raw) > max_bytes:
        raise InvalidEvent(f"event is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"payload is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc


def _validate(adapter: TypeAdapter, raw: bytes, max_bytes: int) -> Any:
    if raw is None:
        raise InvalidEvent("record has no value (null payload)")
    _check_raw(raw, max_bytes)
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidEvent(f"not valid JSON: {exc.errors()[0]['msg']}") from exc
        raise InvalidEvent(describe_validation_error(exc)) from exc


def parse_inference(raw: bytes, max_bytes: int = 1_048_576) -> InferenceEvent:
    """Validate one ``llm.inference.v1`` payload; raises :class:`InvalidEvent` with the reason.

    Fast path: msgspec (:mod:`parrotwatch.contracts.wire`, the same rules, 4x faster). Whatever it
    rejects is validated again by the pydantic ``InferenceEventV1``: its verdict stands, and its
    message is the reason.
    """
    if raw is not None and len(raw) <= max_bytes:
        try:
            return decode_inference(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError):
            pass
    return _validate(_INFERENCE, raw, max_bytes)


def parse_feedback(raw: bytes, max_bytes: int = 1_048_576) -> FeedbackEventV1:
    """Validate one ``llm.feedback.v1`` payload; raises :class:`InvalidEvent` with the reason."""
    return _validate(_FEEDBACK, raw, max_bytes)


def request_input(event: InferenceEvent) -> RequestInput:
    """Map an inference event onto the plain inputs of the detectors."""
    lps = event.logprobs
    if lps and isinstance(lps[0], WireLogprobToken):  # parse_inference's fast path
        logprobs = [t.logprob for t in lps]
        top = [[a.logprob for a in t.top_logprobs] if t.top_logprobs else [] for t in lps]
    elif lps:  # validated by the pydantic model: TypedDicts
        logprobs = [t["logprob"] for t in lps]
        top = [[a["logprob"] for a in (t.get("top_logprobs") or ())] for t in lps]
    else:
        logprobs = top = None
    return RequestInput(
        response=event.response,
        logprobs=logprobs,
        top_logprobs=top,
        latency_ms=event.latency_ms,
        output_tokens=event.output_tokens(),
        model=event.model,
        input_tokens=event.usage.input_tokens if event.usage else None,
        cached_input_tokens=event.usage.cached_input_tokens if event.usage else None,
    )


_INDEXES: dict[str, NgramIndex] = {}
INDEX_LOADS: list[str] = []  # every load, so tests can check "once per worker process"


def regurgitation_index(path: str | None) -> NgramIndex | None:
    """The training-corpus n-gram index at ``path``, loaded once per process."""
    if not path:
        return None
    if path not in _INDEXES:
        _INDEXES[path] = load_index(path)
        INDEX_LOADS.append(path)
    return _INDEXES[path]


def utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC)


@dataclass(frozen=True)
class ScoredEvent:
    """Identity, segment and scores of one request: a row of ``inference_scores``."""

    request_id: str
    timestamp: datetime
    model: str
    app: str
    scores: dict[str, float | None]
    quality: QualityResult | None = field(default=None, compare=False)

    def as_record(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "model": self.model,
            "app": self.app,
            **self.scores,
        }


def score_events(events: Sequence[InferenceEvent], regurgitation_index: NgramIndex | None = None,
                 quality: QualityConfig | None = None) -> list[ScoredEvent]:
    """All scores of a batch of events: the model-free ones per event, the model-based ones
    (with ``quality``) batched. ``regurgitation`` only with a training-corpus index;
    ``ood_score`` is filled later by the stream's drift stage (it needs the segment's reference)."""
    extra = score_quality(events, quality) if quality is not None and quality.enabled else None
    out = []
    model_free = score_requests([request_input(event) for event in events])
    for i, event in enumerate(events):
        scores = model_free[i].as_dict()
        if regurgitation_index is not None:
            scores["regurgitation"] = float(longest_overlap(event.response, regurgitation_index).tokens)
        q = extra[i] if extra is not None else None
        if q is not None:
            scores.update({k: v for k, v in q.scores.items() if scores.get(k) is None})
            if regurgitation_index is not None and q.pii_response is not None:
                scores["pii_regurgitated"] = _pii_regurgitated(event, q, regurgitation_index)
        out.append(ScoredEvent(
            request_id=event.request_id,
            timestamp=utc(event.timestamp),
            model=event.model,
            app=event.app,
            scores={k: scores.get(k) for k in SCORE_NAMES},
            quality=q,
        ))
    return out


def _pii_regurgitated(event: InferenceEvent, q: QualityResult, index: NgramIndex) -> float:
    """How many of the response's PII findings it repeats from the training corpus (values the
    request's prompt or sources hold excluded); marks them ``in_corpus`` in the drill-down's
    ``pii_entities`` where it lists them."""
    spans = [(s.start, s.end, s.entity_type) for s in q.pii_response or ()]
    context = [user_text(event), *(event.sources or ())]
    leaked = [spans[i] for i in leaked_pii_spans(event.response, spans, index, context)]
    marked = {(start, end) for start, end, _ in leaked}
    for e in (q.drilldown or {}).get("pii_entities", ()):
        if e["side"] == "response" and (e["start"], e["end"]) in marked:
            e["in_corpus"] = True
    return float(len(leaked))


def score_events_or_reasons(events: Sequence[InferenceEvent], regurgitation_index: NgramIndex | None
                            = None, quality: QualityConfig | None = None) -> list[ScoredEvent | str]:
    """:func:`score_events`, but a detector failure costs only the events it fails on: those get
    the reason (``"scoring failed: ..."``) instead of their scores."""
    try:
        return list(score_events(events, regurgitation_index, quality))
    except Exception:
        out: list[ScoredEvent | str] = []
        for event in events:
            try:
                out.append(score_events([event], regurgitation_index, quality)[0])
            except Exception as exc:
                out.append(f"scoring failed: {type(exc).__name__}: {exc}")
        return out


def score_event(event: InferenceEvent, regurgitation_index: NgramIndex | None = None
                ) -> ScoredEvent:
    """All model-free scores of one event (see :func:`score_events`)."""
    return score_events([event], regurgitation_index)[0]
