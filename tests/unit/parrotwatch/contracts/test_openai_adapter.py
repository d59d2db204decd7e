"""OpenAI chat-completion request/response pairs -> inference event v1."""

from __future__ import annotations

import copy
import math
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from parrotwatch.contracts.openai_adapter import from_openai_chat
from parrotwatch.scoring import score_event

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a concise geography assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "temperature": 0.2,
    "logprobs": True,
    "top_logprobs": 2,
}

_TOKENS = [  # (token, logprob, second alternative's logprob)
    ("The", -0.01, -4.7),
    (" capital", -0.2, -1.8),
    (" of", -0.05, -3.0),
    (" France", -0.3, -1.5),
    (" is", -0.1, -2.4),
    (" Paris", math.log(0.5), math.log(0.5)),  # two equally likely alternatives
    (".", -0.4, -1.1),
]

RESPONSE = {
    "id": "chatcmpl-9JxB7qZkL2",
    "object": "chat.completion",
    "created": 1714564800,  # 2024-05-01T12:00:00Z
    "model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_a2ff031fb5",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The capital of France is Paris.",
                "refusal": None,
            },
            "logprobs": {
                "content": [
                    {
                        "token": tok,
                        "logprob": lp,
                        "bytes": list(tok.encode()),
                        "top_logprobs": [
                            {"token": tok, "logprob": lp, "bytes": list(tok.encode())},
                            {"token": " Lyon", "logprob": alt, "bytes": list(b" Lyon")},
                        ],
                    }
                    for tok, lp, alt in _TOKENS
                ],
                "refusal": None,
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 24, "completion_tokens": 7, "total_tokens": 31},
}


def _entropy(logprobs: list[float]) -> float:
    """Independent reference: H of the renormalised distribution, in nats."""
    z = sum(math.exp(lp) for lp in logprobs)
    return -sum(math.exp(lp) / z * math.log(math.exp(lp) / z) for lp in logprobs)


def test_maps_a_realistic_pair():
    event = from_openai_chat(REQUEST, RESPONSE, latency_ms=350.0, app="geo-bot")
    assert event.request_id == "chatcmpl-9JxB7qZkL2"
    assert event.timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert event.model == "gpt-4o-mini-2024-07-18"
    assert event.app == "geo-bot"
    assert [(m.role, m.content) for m in event.messages] == [
        (m["role"], m["content"]) for m in REQUEST["messages"]
    ]
    assert event.prompt is None
    assert event.response == "The capital of France is Paris."
    assert event.finish_reason == "stop"
    assert event.latency_ms == 350.0
    assert (event.usage.input_tokens, event.usage.output_tokens) == (24, 7)
    assert [t["token"] for t in event.logprobs] == [t for t, _, _ in _TOKENS]
    assert [t["logprob"] for t in event.logprobs] == [lp for _, lp, _ in _TOKENS]
    assert [a["logprob"] for a in event.logprobs[1]["top_logprobs"]] == [-0.2, -1.8]
    assert event.samples is None


def test_mapped_event_is_scorable():
    scored = score_event(from_openai_chat(REQUEST, RESPONSE, latency_ms=350.0))
    record = scored.as_record()
    lps = [lp for _, lp, _ in _TOKENS]
    # (0.01 + 0.2 + 0.05 + 0.3 + 0.1 + ln 2 + 0.4) / 7 = 1.753147 / 7 = 0.250450
    mean = -sum(lps) / 7
    assert record["request_id"] == "chatcmpl-9JxB7qZkL2"
    assert record["timestamp"] == "2024-05-01T12:00:00Z"
    assert record["surprisal_mean"] == pytest.approx(mean)
    assert record["surprisal_mean"] == pytest.approx(0.250450, abs=1e-6)
    assert record["surprisal_max"] == pytest.approx(math.log(2))  # " Paris", p = 0.5
    assert record["perplexity"] == pytest.approx(math.exp(mean))
    assert record["min_k_prob"] == pytest.approx(math.log(0.5))  # floor(0.2 * 7) = 1 smallest
    expected_entropy = sum(_entropy([lp, alt]) for _, lp, alt in _TOKENS) / 7
    assert record["entropy_mean"] == pytest.approx(expected_entropy)
    assert record["distinct_2"] == pytest.approx(1.0)  # 5 distinct bigrams of 5
    assert record["repetition_rate"] == pytest.approx(0.0)
    raw = b"The capital of France is Paris."
    assert record["compression_ratio"] == pytest.approx(len(raw) / len(zlib.compress(raw, 9)))
    assert record["latency_ms"] == 350.0
    assert record["tokens_per_s"] == pytest.approx(20.0)  # 7 tokens / 0.35 s


def test_overrides_and_inputs_left_untouched():
    request, response = copy.deepcopy(REQUEST), copy.deepcopy(RESPONSE)
    ts = datetime(2024, 5, 1, 14, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    event = from_openai_chat(request, response, timestamp=ts, request_id="gw-42")
    assert (event.request_id, event.timestamp) == ("gw-42", ts)
    assert (request, response) == (REQUEST, RESPONSE)
    request["messages"][1]["content"] = "changed"
    assert event.messages[1].content == "What is the capital of France?"


def test_extra_choices_become_samples_and_tool_calls_give_empty_text():
    response = copy.deepcopy(RESPONSE)
    second = {"index": 1, "message": {"role": "assistant", "content": "Paris."}}
    response["choices"].append(second)
    assert from_openai_chat(REQUEST, response).samples == ["Paris."]
    tool = copy.deepcopy(RESPONSE)
    tool["choices"][0] = {
        "index": 0,
        "message": {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
        "finish_reason": "tool_calls",
    }
    event = from_openai_chat(REQUEST, tool)
    assert (event.response, event.finish_reason, event.logprobs) == ("", "tool_calls", None)


@pytest.mark.parametrize("choices", [None, []])
def test_missing_choices_is_a_clear_error(choices):
    response = {k: v for k, v in RESPONSE.items() if k != "choices"}
    if choices is not None:
        response["choices"] = choices
    with pytest.raises(ValueError, match="response has no choices"):
        from_openai_chat(REQUEST, response)


def test_other_missing_parts_are_named():
    with pytest.raises(ValueError, match="request has no 'messages'"):
        from_openai_chat({"model": "gpt-4o-mini"}, RESPONSE)
    no_id = {k: v for k, v in RESPONSE.items() if k != "id"}
    with pytest.raises(ValueError, match="no 'id'; pass request_id"):
        from_openai_chat(REQUEST, no_id)
    assert from_openai_chat(REQUEST, no_id, request_id="r-1").request_id == "r-1"
    no_created = {k: v for k, v in RESPONSE.items() if k != "created"}
    with pytest.raises(ValueError, match="'created'; pass timestamp"):
        from_openai_chat(REQUEST, no_created)
    no_message = {**RESPONSE, "choices": [{"index": 0, "finish_reason": "stop"}]}
    with pytest.raises(ValueError, match=r"choices\[0\] has no 'message'"):
        from_openai_chat(REQUEST, no_message)


def test_contract_violations_name_the_field():
    with pytest.raises(ValidationError, match="timestamp"):
        from_openai_chat(REQUEST, RESPONSE, timestamp=datetime(2024, 5, 1, 12, 0))  # naive
    bad = copy.deepcopy(RESPONSE)
    bad["choices"][0]["logprobs"]["content"][0]["logprob"] = 0.5
    with pytest.raises(ValidationError, match="logprobs.0.logprob"):
        from_openai_chat(REQUEST, bad)
