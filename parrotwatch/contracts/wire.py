"""msgspec mirrors of the token-logprob part of ``InferenceEventV1`` for the stream's fast parse.

Same contract as :class:`~parrotwatch.contracts.events.LogprobToken` (``token`` a string,
``logprob`` a finite float <= 0, optional ``top_logprobs`` of ``{token, logprob}``, other keys
ignored); msgspec decodes them into compact structs (``gc=False``: they hold no cycles) about 5x
faster than pydantic builds the TypedDicts. Anything these reject is validated again by the
pydantic model, whose message becomes the dead-letter reason; tests/unit/test_fast_parse.py checks
that both accept and reject the same payloads.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import msgspec

# le=0 is the contract; ge=-max excludes -inf (a literal like -1e999 decodes to it), as pydantic's
# allow_inf_nan=False does. JSON has no NaN literal, and msgspec rejects one.
WireLogProb = Annotated[float, msgspec.Meta(le=0, ge=-sys.float_info.max)]


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
    token: str
    logprob: WireLogProb


class WireLogprobToken(_ReadsLikeADict, gc=False):
    token: str
    logprob: WireLogProb
    top_logprobs: list[WireTopLogprob] | None = None


class WireLogprobs(msgspec.Struct, gc=False):
    """Only the ``logprobs`` key of an inference event; the rest is skipped unread."""

    logprobs: list[WireLogprobToken] | None = None


LOGPROBS_DECODER = msgspec.json.Decoder(WireLogprobs)
