"""Pydantic models of the v1 events. Additive changes only; a breaking change is a v2."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from typing_extensions import TypedDict

from parrotwatch.contracts.storable import text_problem, unstorable


def _no_nul(value: str) -> str:
    problem = text_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_storable(model: BaseModel) -> None:
    """Raise ``ValueError`` naming the first string of ``model`` that storage cannot hold
    (see :mod:`parrotwatch.contracts.storable`)."""
    reason = unstorable(model)
    if reason:
        raise ValueError(reason)


#: Text stored in a PostgreSQL ``text`` column (one NUL would fail a whole micro-batch).
StoredStr = Annotated[str, AfterValidator(_no_nul)]
NonEmptyStr = Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]
#: Ids and segment names: keys of PostgreSQL b-tree indexes, whose entries must stay under ~2.7 KB
#: (a longer key fails its whole micro-batch); model, app and request_id share entries, and
#: 3 x 200 characters x 4 UTF-8 bytes = 2.4 KB.
MAX_ID_CHARS = 200
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(_no_nul)]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
MAX_TOKEN_COUNT = 2**31 - 1
# Per-event caps (each rejected with a reason; the whole event is also at most max_event_bytes,
# 1 MiB by default, which bounds every text). Generous for real traffic, small enough that one
# event cannot make the detectors or the drill-down tables work without bound.
MAX_LOGPROB_TOKENS = 32_768  # generated tokens with logprobs (OpenAI's longest outputs fit)
MAX_TOP_LOGPROBS = 20  # alternatives per position (OpenAI's maximum)
MAX_TOKEN_CHARS = 1_000  # one token's text
MAX_MESSAGES = 1_024
MAX_SOURCES = 64
MAX_SAMPLES = 32
NonNegative = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]
LogProb = Annotated[float, Field(le=0, strict=True, allow_inf_nan=False)]


class _Event(BaseModel):
    # Producers may add fields (contracts are extended, never broken); they travel along.
    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)

    @field_validator("timestamp", mode="before", check_fields=False)
    @classmethod
    def _rfc3339_string(cls, value: Any) -> Any:
        # pydantic would read a bare number as Unix seconds; the contract says RFC 3339 text.
        if isinstance(value, int | float):
            raise ValueError("timestamp must be an RFC 3339 string, e.g. 2026-11-28T01:02:03Z")
        return value

    @field_validator("timestamp", mode="after", check_fields=False)
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        check_plausible_time(value)
        return value


def check_plausible_time(value: datetime) -> None:
    """Raise ``ValueError`` for an event time before 2000 or more than a day ahead: a clock decades
    off would move the stream's event-time watermark with it."""
    latest = datetime.now(UTC) + MAX_CLOCK_SKEW
    if not EARLIEST <= value <= latest:
        raise ValueError(f"timestamp {value.isoformat()} is outside {EARLIEST:%Y-%m-%d} .. "
                         f"now + {MAX_CLOCK_SKEW}; check the producer's clock")


def check_prompt_or_messages(prompt: str | None, messages: list | None) -> None:
    """Raise ``ValueError`` unless the request has a ``prompt`` or a non-empty ``messages`` list."""
    if prompt is None and not messages:
        raise ValueError("one of 'prompt' or a non-empty 'messages' list is required")


TokenText = Annotated[str, Field(max_length=MAX_TOKEN_CHARS)]


class TopLogprob(TypedDict):
    """One alternative at a position: ``{token, logprob}``."""

    token: TokenText
    logprob: LogProb


class LogprobToken(TypedDict):
    """One generated token, in OpenAI ``choices[].logprobs.content`` layout.

    A TypedDict, not a model: an event carries hundreds of these, and validating plain dicts is
    2.4x faster than building models (measured in bench/). Extra keys (OpenAI's ``bytes``) are
    not kept in the validated object; the raw event on Kafka keeps them.
    """

    token: TokenText
    logprob: LogProb
    top_logprobs: NotRequired[Annotated[list[TopLogprob], Field(max_length=MAX_TOP_LOGPROBS)]
                              | None]


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: NonEmptyStr
    content: str | list[Any] | None = None


class Usage(BaseModel):
    """Token counts, named after OTel ``gen_ai.usage.input_tokens`` / ``output_tokens``."""

    model_config = ConfigDict(extra="allow")

    # At most 2^31 - 1: stored as PostgreSQL integer (a larger count would fail a whole micro-batch).
    input_tokens: Annotated[int, Field(ge=0, le=MAX_TOKEN_COUNT, strict=True)] | None = None
    output_tokens: Annotated[int, Field(ge=0, le=MAX_TOKEN_COUNT, strict=True)] | None = None
    #: Input tokens read from the provider's prompt cache (part of ``input_tokens``; OpenAI
    #: ``prompt_tokens_details.cached_tokens``, Anthropic ``cache_read_input_tokens``): ``cost_usd``.
    cached_input_tokens: Annotated[int, Field(ge=0, le=MAX_TOKEN_COUNT, strict=True)] | None = None


class InferenceEventV1(_Event):
    """One LLM call: topic ``llm.inference.v1`` or ``POST /v1/inference``."""

    request_id: Identifier = Field(description="Unique id of the LLM call; idempotency key.")
    timestamp: AwareDatetime = Field(description="RFC 3339 time the call finished (event time).")
    model: Identifier
    app: Identifier = "default"
    prompt: str | None = None
    messages: Annotated[list[Message], Field(max_length=MAX_MESSAGES)] | None = None
    response: str
    logprobs: Annotated[list[LogprobToken], Field(max_length=MAX_LOGPROB_TOKENS)] | None = None
    latency_ms: NonNegative | None = None
    time_to_first_token_ms: NonNegative | None = None
    usage: Usage | None = None
    finish_reason: StoredStr | None = None
    sources: Annotated[list[str], Field(max_length=MAX_SOURCES)] | None = None
    samples: Annotated[list[str], Field(max_length=MAX_SAMPLES)] | None = None
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> InferenceEventV1:
        check_prompt_or_messages(self.prompt, self.messages)
        _check_storable(self)
        return self

    def output_tokens(self) -> int | None:
        """``usage.output_tokens`` when logged, else the number of logprob tokens."""
        if self.usage is not None and self.usage.output_tokens is not None:
            return self.usage.output_tokens
        return len(self.logprobs) if self.logprobs is not None else None


class FeedbackEventV1(_Event):
    """User feedback on one request: topic ``llm.feedback.v1`` or ``POST /v1/feedback``."""

    feedback_id: Identifier = Field(description="Idempotency key.")
    request_id: Identifier
    timestamp: AwareDatetime
    thumb: Literal[1, -1] | None = None
    score: Annotated[float, Field(allow_inf_nan=False, strict=True)] | None = None  # not "0.5"
    label: NonEmptyStr | None = None
    correction: StoredStr | None = None
    comment: StoredStr | None = None
    annotator: StoredStr | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("thumb", mode="before")
    @classmethod
    def _integer_thumb(cls, value: Any) -> Any:
        if value is not None and type(value) is not int:  # JSON true / 1.0 are not a thumb
            raise ValueError("thumb must be the integer 1 or -1")
        return value

    @model_validator(mode="after")
    def _has_signal(self) -> FeedbackEventV1:
        signals = (self.thumb, self.score, self.label, self.correction, self.comment)
        if all(s is None for s in signals):
            raise ValueError(
                "feedback needs at least one of 'thumb', 'score', 'label', 'correction', 'comment'"
            )
        _check_storable(self)
        return self


class ScoreEventV1(BaseModel):
    """Per-request scores: topic ``llm.scores.v1``. ``None`` where the input does not allow it."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    timestamp: AwareDatetime
    model: str
    app: str
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

    @field_validator("*", mode="before")
    @classmethod
    def _nan_is_null(cls, value: Any) -> Any:
        return None if isinstance(value, float) and math.isnan(value) else value


class AlertEventV1(BaseModel):
    """An alert transition: topic ``llm.alerts.v1`` and the ``alerts`` table."""

    model_config = ConfigDict(extra="forbid")

    alert_id: NonEmptyStr = Field(description="Stable fingerprint of rule + segment.")
    rule: NonEmptyStr
    status: Literal["firing", "resolved"]
    severity: Literal["info", "warning", "critical"]
    labels: dict[str, str]
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    summary: NonEmptyStr
    evidence: dict[str, Any] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _required_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        missing = {"model", "app", "metric"} - labels.keys()
        if missing:
            raise ValueError(f"labels must include {sorted(missing)}")
        return labels
