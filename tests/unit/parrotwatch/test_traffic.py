"""The traffic generator emits contract-valid, deterministic events and truly malformed ones."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from parrotwatch.scoring import InvalidEvent, parse_feedback, parse_inference
from parrotwatch.traffic import (
    MALFORMED_KINDS,
    Incident,
    encode,
    generate_feedback_events,
    generate_inference_events,
    malformed_records,
)

N = 800
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return generate_inference_events(N, seed=7, start=START, rate_per_s=20.0)


def test_every_event_parses_and_ids_are_unique(events: list[dict]) -> None:
    parsed = [parse_inference(encode(e)) for e in events]
    assert [p.request_id for p in parsed] == [f"req-{i:07d}" for i in range(N)]
    assert len({e["request_id"] for e in events}) == N
    assert all(e["timestamp"].endswith("Z") for e in events)
    assert parsed[0].timestamp == START
    assert parsed[-1].timestamp == START + timedelta(seconds=(N - 1) / 20.0)
    assert all(p.usage.output_tokens == len(p.response.split()) for p in parsed)
    assert all(p.latency_ms >= p.time_to_first_token_ms > 0 for p in parsed)
    share = lambda key: sum(key in e for e in events) / N  # noqa: E731
    assert 0.3 < share("messages") < 0.6 and 0.4 < share("prompt") < 0.7
    assert 0.1 < share("sources") < 0.4 and 0.15 < share("metadata") < 0.45
    assert {e["model"] for e in events} == {"gpt-4o-mini", "llama-3-8b", "mistral-7b"}
    assert {e["app"] for e in events} == {"support-bot", "search", "code-assistant"}
    assert {e["finish_reason"] for e in events} == {"stop", "length"}


def test_encode_is_compact_json(events: list[dict]) -> None:
    assert orjson.loads(encode(events[0])) == events[0]
    assert b"\n" not in encode(events[0])


def test_about_half_carry_plausible_logprobs(events: list[dict]) -> None:
    with_lp = [e for e in events if "logprobs" in e]
    assert 0.4 < len(with_lp) / N < 0.6
    all_lp = []
    for e in with_lp:
        assert "".join(t["token"] for t in e["logprobs"]) == e["response"]
        for tok in e["logprobs"]:
            tops = tok["top_logprobs"]
            assert len(tops) == 5 and len({t["token"] for t in tops}) == 5
            assert {"token": tok["token"], "logprob": tok["logprob"]} in tops
            assert [t["logprob"] for t in tops] == sorted([t["logprob"] for t in tops])[::-1]
            assert all(t["logprob"] <= 0 for t in tops)
            assert sum(math.exp(t["logprob"]) for t in tops) <= 1.0 + 1e-12
            all_lp.append(tok["logprob"])
    assert sum(-3 <= lp <= 0 for lp in all_lp) / len(all_lp) > 0.9
    assert 0.2 < -sum(all_lp) / len(all_lp) < 1.0  # mean surprisal, nats per token


def test_deterministic_under_a_seed_and_different_across_seeds() -> None:
    a = generate_inference_events(200, seed=3)
    assert encode(a) == encode(generate_inference_events(200, seed=3))
    b = generate_inference_events(200, seed=4)
    assert sum(x["response"] != y["response"] for x, y in zip(a, b, strict=True)) > 150
    assert [x["request_id"] for x in a] == [y["request_id"] for y in b]


@pytest.mark.parametrize("kind", ["latency_spike", "repetition_loop", "low_confidence"])
def test_incidents_alter_only_their_range(events: list[dict], kind: str) -> None:
    lo, hi = 200, 500
    hit = generate_inference_events(N, seed=7, start=START, rate_per_s=20.0,
                                    incidents=[Incident(kind, lo, hi, model="llama-3-8b")])
    for i, (before, after) in enumerate(zip(events, hit, strict=True)):
        if not (lo <= i < hi and before["model"] == "llama-3-8b"):
            assert after == before, i
            continue
        parse_inference(encode(after))
        if kind == "latency_spike":
            assert after["latency_ms"] == pytest.approx(before["latency_ms"] * 10, abs=0.1)
            assert after["response"] == before["response"]
        elif kind == "repetition_loop":
            words = after["response"].split()
            assert len(words) in (256, 512) and len(set(words)) <= 6
            assert after["usage"]["output_tokens"] == len(words)
            assert after["finish_reason"] == "length"
            ttft, old = before["time_to_first_token_ms"], before["usage"]["output_tokens"]
            per_token = (after["latency_ms"] - ttft) / len(words)
            assert per_token == pytest.approx((before["latency_ms"] - ttft) / old, rel=0.01)
        else:
            assert after["response"] == before["response"]
            assert ("logprobs" in after) == ("logprobs" in before)
            if "logprobs" in before:
                lps = [t["logprob"] for t in after["logprobs"]]
                assert sum(lps) / len(lps) < -1.0 and after["logprobs"] != before["logprobs"]
    changed = sum(a != b for a, b in zip(events, hit, strict=True))
    assert changed > 25


def test_low_confidence_lowers_mean_logprob_strongly(events: list[dict]) -> None:
    hit = generate_inference_events(N, seed=7, start=START, rate_per_s=20.0,
                                    incidents=[Incident("low_confidence", 0, N)])

    def mean_lp(evs: list[dict]) -> float:
        lps = [t["logprob"] for e in evs if "logprobs" in e for t in e["logprobs"]]
        return sum(lps) / len(lps)

    assert mean_lp(hit) < mean_lp(events) - 2.0


def test_incident_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="incident kind"):
        Incident("meltdown", 0, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        generate_inference_events(1, start=datetime(2026, 1, 1))


def test_malformed_records_are_all_rejected_with_a_reason() -> None:
    records = malformed_records(3 * len(MALFORMED_KINDS), seed=1)
    assert Counter(kind for _, kind in records) == {k: 3 for k in MALFORMED_KINDS}
    for payload, kind in records:
        with pytest.raises(InvalidEvent) as err:
            parse_inference(payload)
        assert str(err.value).strip(), kind
        if kind == "oversize":
            assert 1_048_576 < len(payload) <= 1_048_576 + 64
            assert "over the" in str(err.value)
        if kind == "invalid_utf8":
            assert b"\xff\xfe" in payload and "UTF-8" in str(err.value)


def test_oversize_follows_the_configured_limit() -> None:
    for payload, kind in malformed_records(2 * len(MALFORMED_KINDS), max_event_bytes=20_000):
        if kind == "oversize":
            assert 20_000 < len(payload) <= 20_064
            with pytest.raises(InvalidEvent, match="over the 20000-byte limit"):
                parse_inference(payload, max_bytes=20_000)


def test_feedback_events_parse_and_point_at_requests(events: list[dict]) -> None:
    feedback = generate_feedback_events(events, share=0.2, seed=2)
    assert 0.15 * N < len(feedback) < 0.25 * N
    by_id = {e["request_id"]: e for e in events}
    assert len({f["feedback_id"] for f in feedback}) == len(feedback)
    for f in feedback:
        parsed = parse_feedback(encode(f))
        request = parse_inference(encode(by_id[f["request_id"]]))
        assert parsed.timestamp > request.timestamp
    assert {f["thumb"] for f in feedback} == {1, -1}
    assert generate_feedback_events(events, share=0.2, seed=2) == feedback


def test_feedback_is_negative_on_repetition_loops() -> None:
    evs = generate_inference_events(400, seed=5, incidents=[Incident("repetition_loop", 0, 400)])
    feedback = generate_feedback_events(evs, share=1.0)
    assert len(feedback) == 400
    assert all(f["thumb"] == -1 and f["label"] == "repetition" for f in feedback)
