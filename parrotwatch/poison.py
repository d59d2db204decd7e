"""The poison corpus: records built to break every stored field, stage and sink of the pipeline.

Each case is one raw Kafka value (or API body) with what must happen to it: ``"ok"`` (scored and
stored as sent) or ``"dlq"`` (dead-lettered with a reason that names the field). The integration
tests send the whole corpus through the API and straight to Kafka, followed by valid events,
and check that every case lands as expected and that the valid events are all scored. A new
stored field, stage or sink adds its cases here.

Every case is built on a valid event of :mod:`parrotwatch.traffic`, on an ``app`` of its own: a
new segment is where the drift stage stores a reference excerpt of the prompt (how one NUL once
stopped all scoring).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from parrotwatch.traffic import encode, generate_feedback_events, generate_inference_events

Expect = Literal["ok", "dlq"]
# A bad record under a key just under the broker's 8 MiB message limit: a dead letter that
# carried its key whole would be over the limit, and fail its batch on every replay.
HUGE_KEY_BYTES = 8 * 1024 * 1024 - 64 * 1024


@dataclass(frozen=True)
class PoisonCase:
    name: str
    topic: Literal["inference", "feedback"]
    raw: bytes | None
    expect: Expect
    request_id: str | None  # the id a scored case is stored under
    key: bytes | None = None  # the Kafka key to send it with (None: its name)

    @property
    def api_path(self) -> str:
        return f"/v1/{self.topic}"


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def _deep_json(depth: int) -> bytes:
    return b'{"k":' * depth + b'"leaf"' + b"}" * depth


_NUL = "a\u0000b"
# name -> (change to a valid event, expected); the change edits the event dict in place, or
# returns raw bytes when the poison cannot be written as a Python value (escapes, raw bytes).
_INFERENCE: dict[str, tuple[Callable[[dict], bytes | None], Expect]] = {
    "nul_prompt": (lambda e: e.update(prompt=_NUL), "dlq"),
    "nul_response": (lambda e: e.update(response=_NUL), "dlq"),
    "nul_response_with_sources": (lambda e: e.update(response=_NUL, sources=["a source"]), "dlq"),
    "nul_source": (lambda e: e.update(sources=["fine", _NUL]), "dlq"),
    "nul_sample": (lambda e: e.update(samples=[_NUL]), "dlq"),
    "nul_logprob_token": (lambda e: e.update(logprobs=[{"token": _NUL, "logprob": -0.1}]), "dlq"),
    "nul_top_logprob_token": (lambda e: e.update(logprobs=[{"token": "a", "logprob": -0.1,
                                                            "top_logprobs": [{"token": _NUL,
                                                                              "logprob": -1.0}]}]),
                              "dlq"),
    "nul_metadata_key": (lambda e: e.update(metadata={_NUL: 1}), "dlq"),
    "nul_metadata_value": (lambda e: e.update(metadata={"k": [1, {"x": _NUL}]}), "dlq"),
    "nul_message_content": (lambda e: e.update(messages=[{"role": "user", "content": _NUL}]),
                            "dlq"),
    "nul_message_role": (lambda e: e.update(messages=[{"role": _NUL, "content": "hi"}]), "dlq"),
    "nul_app": (lambda e: e.update(app=_NUL), "dlq"),
    "nul_extra_field": (lambda e: e.update(extra_note=_NUL), "dlq"),
    "lone_high_surrogate": (lambda e: encode(e).replace(b'"response":"', b'"response":"\\ud800'),
                            "dlq"),
    "lone_low_surrogate": (lambda e: encode(e).replace(b'"response":"', b'"response":"\\udfff'),
                           "dlq"),
    "metadata_300_deep": (lambda e: encode({**e, "metadata": None}).replace(
        b'"metadata":null', b'"metadata":' + _deep_json(300)), "dlq"),
    "metadata_10000_deep": (lambda e: encode({**e, "metadata": None}).replace(
        b'"metadata":null', b'"metadata":' + _deep_json(10_000)), "dlq"),
    "logprobs_of_ones_400kb": (lambda e: encode({**e, "logprobs": None}).replace(
        b'"logprobs":null', b'"logprobs":[' + b",".join([b"1"] * 200_000) + b"]"), "dlq"),
    "too_many_logprobs": (lambda e: e.update(logprobs=[{"token": "a", "logprob": -0.1}] * 40_000),
                          "dlq"),
    "token_text_too_long": (lambda e: e.update(logprobs=[{"token": "x" * 1001, "logprob": -0.1}]),
                            "dlq"),
    "too_many_sources": (lambda e: e.update(sources=["s"] * 65), "dlq"),
    "too_many_samples": (lambda e: e.update(samples=["s"] * 33), "dlq"),
    "int_past_int64": (lambda e: encode({**e, "usage": {"input_tokens": 1}}).replace(
        b'"input_tokens":1', b'"input_tokens":' + str(2**70).encode()), "dlq"),
    "int_past_int32": (lambda e: e.update(usage={"input_tokens": 1, "output_tokens": 2**31}),
                       "dlq"),
    "float_overflow": (lambda e: encode({**e, "latency_ms": 1}).replace(
        b'"latency_ms":1', b'"latency_ms":1e400'), "dlq"),
    "nan_literal": (lambda e: encode({**e, "latency_ms": 1}).replace(
        b'"latency_ms":1', b'"latency_ms":NaN'), "dlq"),
    "metadata_int_past_uint64": (lambda e: encode({**e, "metadata": {"n": 1}}).replace(
        b'"n":1', b'"n":' + str(2**70).encode()), "dlq"),
    "metadata_nan": (lambda e: encode({**e, "metadata": {"n": 1}}).replace(b'"n":1', b'"n":NaN'),
                     "dlq"),
    "huge_kafka_key": (lambda e: b"{oops", "dlq"),  # sent with a key of HUGE_KEY_BYTES
    "id_too_long": (lambda e: e.update(request_id=e["request_id"] + "x" * 200), "dlq"),
    "top_level_array": (lambda e: b"[" + encode(e) + b"]", "dlq"),
    "empty_object_list": (lambda e: b"[" + b",".join([b"{}"] * 50_000) + b"]", "dlq"),
    "null_payload": (lambda e: None, "dlq"),
    "invalid_utf8": (lambda e: encode(e).replace(b'"response":"', b'"response":"\xc3\x28'),
                     "dlq"),
    "bad_timestamp": (lambda e: e.update(timestamp="2026-13-45T25:61:00Z"), "dlq"),
    # storable oddities that must be scored as sent
    "escaped_backslash_u0000": (lambda e: e.update(prompt="literal \\u0000 text"), "ok"),
    "emoji_and_rtl_everywhere": (lambda e: e.update(
        model="m\U0001f99c", prompt="\u202eevil\u202c \U0001f600", response="ok \u2028 fine",
        metadata={"\U0001f511": "\u00e9" * 50}), "ok"),
    "long_unicode_ids": (lambda e: e.update(
        request_id=e["request_id"][:20] + "\U0001f99c" * 180, app="\u00e9" * 200), "ok"),
    "empty_sources_and_samples": (lambda e: e.update(sources=["", " "], samples=[""]), "ok"),
    "many_sentences": (lambda e: e.update(response="Short one. " * 3_000,
                                          sources=["Short one."]), "ok"),
    "metadata_30_deep": (lambda e: e.update(metadata=_nested(29)), "ok"),
    "many_metadata_keys": (lambda e: e.update(metadata={f"k{i}": i for i in range(5_000)}), "ok"),
    "whitespace_id": (lambda e: e.update(request_id=" " + e["request_id"]), "ok"),
    # a slow poison: valid, 0.9 MB, scored in bounded time (docs/hardening.md)
    "huge_rag_event": (lambda e: e.update(
        response="The cat sat on the mat. " * 15_000, sources=["The dog ran. " * 4_000] * 4,
        samples=["A sample answer. " * 1_500] * 4, logprobs=None), "ok"),
    "zero_length_response": (lambda e: e.update(response="", logprobs=[]), "ok"),
    # the relational grounding checks (negation, antonyms, units, roles): contradictions and
    # thousands of names, numbers and units in one sentence, scored in bounded time
    "contradicting_units_and_roles": (lambda e: e.update(
        response=" ".join(f"Kor{i} acquired Vel{i} for 5 miles per second, not {i} \u00b0F"
                          for i in range(3_000)),
        sources=[" ".join(f"Vel{i} acquired Kor{i} for 5 km per minute, {i} \u00b0C."
                          for i in range(300))], logprobs=None), "ok"),
    # cost_usd: token counts at the contract's limit, more cached tokens than input, a model name
    # that extends a priced one with an emoji tag (priced, finite)
    "usage_at_limits": (lambda e: e.update(
        model="gpt-4o-mini-\U0001f99c", usage={"input_tokens": 2**31 - 1, "output_tokens": 2**31 - 1,
                                           "cached_input_tokens": 2**31 - 1}), "ok"),
    # deobfuscation and language identification: every trick at once, and tens of thousands of
    # letters to join, map or shorten, in several scripts (bounded: each reads a prefix)
    "obfuscated_multilingual_response": (lambda e: e.update(
        response="k i l l   t h e   j o b   " * 8_000 + "\u200b".join("idiot" * 2_000)
        + "\uff59\uff4f\uff55 " * 5_000 + "\u042d\u0442\u043e \u043f\u043b\u043e\u0445\u043e. " * 2_000
        + "aaaaabbbbbcccccddddd" * 5_000 + " f.u.c.k" * 5_000 + " 1d10t $tup1d" * 5_000,
        logprobs=None), "ok"),
    # texts kept for human review: escapes that inflate JSON six-fold, 4-byte characters, markup
    "control_characters_everywhere": (lambda e: e.update(
        prompt="\x1b[31m" * 5_000, response="\x01\x1f\x7f" * 20_000, sources=["\x08" * 5_000],
        logprobs=None), "ok"),
    "astral_plane_response": (lambda e: e.update(response="\U0001f99c" * 100_000, logprobs=None),
                              "ok"),
    "markup_for_the_review_page": (lambda e: e.update(
        prompt="<script>alert(1)</script>", response="<img src=x onerror=alert(1)>&lt;",
        sources=["</textarea><b>x</b>"]), "ok"),
}

_FEEDBACK: dict[str, tuple[Callable[[dict], bytes | None], Expect]] = {
    "feedback_nul_comment": (lambda f: f.update(comment=_NUL), "dlq"),
    "feedback_nul_correction": (lambda f: f.update(correction=_NUL), "dlq"),
    "feedback_nul_label": (lambda f: f.update(label=_NUL), "dlq"),
    "feedback_nul_annotator": (lambda f: f.update(annotator=_NUL), "dlq"),
    "feedback_nul_metadata_key": (lambda f: f.update(metadata={_NUL: "x"}), "dlq"),
    "feedback_deep_metadata": (lambda f: encode({**f, "metadata": None}).replace(
        b'"metadata":null', b'"metadata":' + _deep_json(300)), "dlq"),
    "feedback_score_overflow": (lambda f: encode({**f, "score": 1}).replace(
        b'"score":1', b'"score":1e400'), "dlq"),
    "feedback_metadata_int_past_uint64": (lambda f: encode({**f, "metadata": {"n": 1}}).replace(
        b'"n":1', b'"n":' + str(2**70).encode()), "dlq"),
    "feedback_unicode": (lambda f: f.update(comment="tr\u00e8s bien \U0001f44d \u202e",
                                            metadata={"k": "\u00e9"}), "ok"),
}


def poison_corpus(prefix: str = "poison") -> list[PoisonCase]:
    """Every case, on fresh ids under ``prefix`` (one app per case)."""
    cases = []
    events = generate_inference_events(len(_INFERENCE), seed=404, id_prefix=prefix)
    base = generate_feedback_events(events, share=1.0, seed=404)  # before the changes below
    for (name, (change, expect)), event in zip(_INFERENCE.items(), events, strict=True):
        event["app"] = f"{prefix}-{name}"[:200]
        raw = change(event)
        if raw is None and name != "null_payload":
            raw = encode(event)
        key = b"k" * HUGE_KEY_BYTES if name == "huge_kafka_key" else None
        cases.append(PoisonCase(name, "inference", raw, expect,
                                event["request_id"] if expect == "ok" else None, key))
    for i, (name, (change, expect)) in enumerate(_FEEDBACK.items()):
        fb = {**base[i % len(base)], "feedback_id": f"{prefix}-fb-{name}"}
        raw = change(fb)
        cases.append(PoisonCase(name, "feedback", raw if raw is not None else encode(fb), expect,
                                fb["feedback_id"] if expect == "ok" else None))
    return cases


def as_json(case: PoisonCase) -> Any:
    """The case as a Python value for an HTTP client, or None when it is not valid JSON."""
    try:
        return orjson.loads(case.raw) if case.raw is not None else None
    except orjson.JSONDecodeError:
        return None
