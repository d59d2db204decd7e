"""msgspec mirror of ``InferenceEventV1`` for the hot path: the stream and ``parrotwatch score``.

The pydantic model is the contract (JSON Schema, API, the dead-letter reasons). Validating a 6.8 KB
event with ~50 logprob tokens and 5 alternatives each took it 100 us, most of it building ~300 dicts;
msgspec decodes the same payload into compact structs in about a quarter of that (measured in
docs/benchmarks.md). The structs read like the model: the same attribute names, ``output_tokens()``,
and ``t["logprob"]`` on tokens like the contract's TypedDicts.

Same rules as the model: non-empty ids, names and roles, ids and names of at most 200 characters,
no NUL in what is stored as text; an
RFC 3339 timestamp with a UTC offset, from 2000 to a day ahead; ``prompt`` or non-empty ``messages``;
finite ``latency_ms`` and ``time_to_first_token_ms`` >= 0; token counts integers in 0..2^31-1;
logprobs finite and <= 0; strict types (no bool for a number, no float for an integer, no number for
a string). Producers' extra keys are skipped unread (the record on Kafka keeps them). Anything this
rejects is validated again by the pydantic model, whose verdict stands and whose message becomes the
reason (:func:`parrotwatch.scoring.parse_inference`); tests/unit/parrotwatch/contracts/test_wire.py
checks that both accept and reject the same payloads. ``gc=False``: decoded JSON holds no reference cycles.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any

import msgspec

from parrotwatch.contracts.events import (
    MAX_ID_CHARS,
    MAX_LOGPROB_TOKENS,
    MAX_MESSAGES,
    MAX_SAMPLES,
    MAX_SOURCES,
    MAX_TOKEN_CHARS,
    MAX_TOKEN_COUNT,
    MAX_TOP_LOGPROBS,
    InferenceEventV1,
    check_plausible_time,
    check_prompt_or_messages,
)
from parrotwatch.contracts.storable import unstorable

_MAX = sys.float_info.max  # le=_MAX / ge=-_MAX exclude the infinities a literal like 1e999 decodes to
NoNul = Annotated[str, msgspec.Meta(pattern="^[^\x00]*$")]  # stored as PostgreSQL text
NonEmpty = Annotated[str, msgspec.Meta(min_length=1, pattern="^[^\x00]*$")]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS, pattern="^[^\x00]*$")]
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=_MAX)]
LogProb = Annotated[float, msgspec.Meta(le=0, ge=-_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKEN_COUNT)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
TokenText = Annotated[str, msgspec.Meta(max_length=MAX_TOKEN_CHARS)]


class _ReadsLikeADict(msgspec.Struct, gc=False):
    """``t["logprob"]`` and ``t.get("top_logprobs")`` read it like the contract's TypedDicts."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class WireTopLogprob(_ReadsLikeADict, gc=False):
    token: TokenText
    logprob: LogProb


class WireLogprobToken(_ReadsLikeADict, gc=False):
    token: TokenText
    logprob: LogProb
    top_logprobs: Annotated[list[WireTopLogprob], msgspec.Meta(max_length=MAX_TOP_LOGPROBS)] | None = None


class WireMessage(msgspec.Struct, gc=False):
    role: NonEmpty
    content: str | list[Any] | None = None


class WireUsage(msgspec.Struct, gc=False):
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    cached_input_tokens: Count | None = None


class WireInferenceEvent(msgspec.Struct, kw_only=True, gc=False):
    """One ``llm.inference.v1`` event, as :class:`~parrotwatch.contracts.events.InferenceEventV1`."""

    request_id: Identifier
    # Decoded as its text, made an aware datetime by __post_init__: msgspec rounds digits past the
    # microsecond (``.1234567`` -> ``.123457``) where the model truncates them (``.123456``).
    timestamp: str  # a datetime once decoded (see __post_init__)
    model: Identifier
    app: Identifier = "default"
    prompt: str | None = None
    messages: Annotated[list[WireMessage], msgspec.Meta(max_length=MAX_MESSAGES)] | None = None
    response: str
    logprobs: Annotated[list[WireLogprobToken], msgspec.Meta(max_length=MAX_LOGPROB_TOKENS)] | None = None
    latency_ms: NonNegative | None = None
    time_to_first_token_ms: NonNegative | None = None
    usage: WireUsage | None = None
    finish_reason: NoNul | None = None
    sources: Annotated[list[str], msgspec.Meta(max_length=MAX_SOURCES)] | None = None
    samples: Annotated[list[str], msgspec.Meta(max_length=MAX_SAMPLES)] | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.timestamp = _aware_time(self.timestamp)

    def output_tokens(self) -> int | None:
        """``usage.output_tokens`` when logged, else the number of logprob tokens."""
        if self.usage is not None and self.usage.output_tokens is not None:
            return self.usage.output_tokens
        return len(self.logprobs) if self.logprobs is not None else None


def _aware_time(text: str) -> datetime:
    """RFC 3339 text (msgspec already refused anything else) -> aware datetime, fraction truncated
    to microseconds as the model does."""
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot > 7:
            text = text[:dot + 7] + text[end:]
    return msgspec.convert(text, AwareTime)


#: An event as the scoring code takes it: this struct (the fast path) or the pydantic model, which have
#: the same attributes and ``output_tokens()``.
InferenceEvent = WireInferenceEvent | InferenceEventV1

_DECODER = msgspec.json.Decoder(WireInferenceEvent)


def decode_inference(raw: bytes) -> WireInferenceEvent:
    """The event in ``raw``; raises ``msgspec.DecodeError`` / ``msgspec.ValidationError`` /
    ``ValueError`` when it breaks the contract (the caller asks the pydantic model why)."""
    event = _DECODER.decode(raw)
    check_plausible_time(event.timestamp)
    check_prompt_or_messages(event.prompt, event.messages)
    # Storable text (parrotwatch.contracts.storable): the parser already refused lone surrogates,
    # so a NUL can only come from a \u0000 escape, and only then is the whole event walked;
    # otherwise only the free-form values (metadata, list contents), for their depth.
    if b"\\u0000" in raw:
        # producers' extra fields are not decoded here: let the model, which reads them, decide
        reason = unstorable(event) or "a \\u0000 escape outside the decoded fields"
    else:
        reason = unstorable(event.metadata, "metadata", 1) if event.metadata else None
        for i, m in enumerate(event.messages or ()):
            if reason is None and isinstance(m.content, list):
                reason = unstorable(m.content, f"messages.{i}.content", 3)
    if reason:
        raise ValueError(reason)
    return event
