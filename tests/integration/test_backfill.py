"""Backfill (issue 16): a week of generated history imported with ``parrotwatch backfill`` raises
the same alerts as the live Spark stream over the same events on Kafka, under its own watermark
and with replayed alerts marked; poison lines become dead letters; a rerun adds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from parrotwatch.traffic import Incident, generate_inference_events
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
DAYS = 7
RATE = 0.03  # events per second over 4 segments: ~0.45 per segment and minute, a low-traffic week
MODELS, APPS = ("llama-3-8b", "mistral-7b"), ("search", "code-assistant")
# The stream's watermark is the least of its 3 partitions' latest event times: at 0.03 events/s a
# partition's last event can come minutes before the overall last one
LAG = timedelta(minutes=10)
N = int(DAYS * 86_400 * RATE)


def at(hours: float) -> int:
    return int(hours * 3600 * RATE)


INCIDENTS = [  # a latency spike of 3 hours on day 3, a repetition loop of 2 hours on day 5
    Incident(kind="latency_spike", start_index=at(50), end_index=at(53), model="llama-3-8b", app="search"),
    Incident(kind="repetition_loop", start_index=at(100), end_index=at(102), model="mistral-7b",
             app="code-assistant"),
]


def week() -> list[dict]:
    events = generate_inference_events(N, seed=3, start=T0, rate_per_s=RATE, id_prefix="week",
                                       models=MODELS, apps=APPS, incidents=INCIDENTS)
    for e in events:
        e.pop("logprobs", None)  # the model-free scores below: no confidence rule on this traffic
    return events


def backfill(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parrotwatch.cli", "backfill", *args, "--model-free",
                           "--no-progress"], env=env, capture_output=True, text=True, timeout=600)


def alert_set(rows, until: datetime) -> set[tuple]:
    """(rule, status, model, app, starts_at, ends_at) of the alerts of windows before ``until``."""
    return {(e["rule"], e["status"], e["labels"]["model"], e["labels"]["app"], e["starts_at"],
             e["ends_at"]) for (e,) in rows
            if datetime.fromisoformat(e["ends_at"] or e["starts_at"]) < until}


def test_a_backfilled_week_raises_the_live_streams_alerts(namespace, stream_job, stack, tmp_path):
    events = week()
    last = datetime.fromisoformat(events[-1]["timestamp"])

    # Live: the stream over Kafka, allowed to evaluate the whole week at once.
    import time
    t0 = time.monotonic()
    namespace.produce_events(events)
    job = stream_job(alert_catch_up_hours=24 * (DAYS + 1)).start()
    wait_for(lambda: namespace.scalar("SELECT count(*) FROM inference_scores") >= len(events)
             and (namespace.scalar("SELECT evaluated_until FROM stream_watermarks") or T0)
             >= last - LAG, timeout=480, what="the week scored and evaluated", job=job)
    job.stop()
    live_until = namespace.scalar("SELECT evaluated_until FROM stream_watermarks WHERE sink = 'inference'")
    live = namespace.sql("SELECT event FROM alerts ORDER BY id")
    print(f"live: {time.monotonic() - t0:.0f} s")
    t0 = time.monotonic()

    # Backfill: the same events from a file, into a database of its own.
    path = tmp_path / "week.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    url = stack.postgres.fresh_database(f"{namespace.settings.topic_prefix.strip('.')}_bf")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")},
           "PARROTWATCH_DATABASE_URL": url, "PARROTWATCH_HOME": str(namespace.settings.home)}
    done = backfill(env, str(path), "--name", "week")
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"backfill: {time.monotonic() - t0:.0f} s")
    assert f"{len(events)} stored" in done.stderr, done.stderr
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        replayed = conn.execute("SELECT event FROM alerts ORDER BY id").fetchall()
        marks = conn.execute("SELECT sink, evaluated_until FROM stream_watermarks").fetchall()
        stored = conn.execute("SELECT count(*) FROM inference_scores").fetchone()[0]
    assert stored == len(events)
    assert [m[0] for m in marks] == ["backfill:week"]  # the live watermark was never made or moved
    until = min(live_until, marks[0][1])
    assert until >= last - LAG

    expected = alert_set(live, until)
    fired = {(r[0], r[2], r[3]) for r in expected if r[1] == "firing"}
    assert {("latency_p99_spike", "llama-3-8b", "search"),
            ("repetition_loop", "mistral-7b", "code-assistant")} <= fired, expected
    print(f"{len(expected)} alert transitions live, compared with the backfill's")
    assert alert_set(replayed, until) == expected
    for (event,) in replayed:
        assert event["labels"]["replay"] == "backfill:week"
        assert event["alert_id"].endswith("@backfill:week")


def test_backfill_reads_three_formats_and_dead_letters_poison(stack, tmp_path, namespace):
    t = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
    v1 = {"request_id": "v1-a", "timestamp": t.isoformat(), "model": "m", "app": "a",
          "prompt": "p", "response": "r", "latency_ms": 10}
    openai_pair = {"request": {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]},
                   "response": {"id": "chatcmpl-1", "created": int((t + timedelta(minutes=1)).timestamp()),
                                "model": "gpt-x", "choices": [{"index": 0, "finish_reason": "stop",
                                                                "message": {"role": "assistant",
                                                                            "content": "hello"}}],
                                "usage": {"prompt_tokens": 3, "completion_tokens": 1}},
                   "latency_ms": 120, "app": "chat"}
    start_ns = int((t + timedelta(minutes=2)).timestamp() * 1e9)

    def span(span_id: str, model: str | None) -> dict:
        attrs = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]
        if model:
            attrs.append({"key": "gen_ai.request.model", "value": {"stringValue": model}})
        return {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": span_id, "name": "chat",
                "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(start_ns + 500_000_000),
                "attributes": attrs}

    otlp = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "otel-app"}}]}, "scopeSpans": [{"spans": [
            span("b7ad6b7169203331", "otel-model"), span("b7ad6b7169203332", None),
            span("b7ad6b7169203333", None)]}]}]}
    stale = {**v1, "request_id": "v1-stale", "timestamp": "2001-01-01T00:00:00+00:00"}
    lines = [orjson.dumps(v1), orjson.dumps(openai_pair), orjson.dumps(otlp), b"",
             b'{"request_id": "bad\\u0000", "model": 3}', b"not json at all \x00\xff",
             orjson.dumps({"request": {"messages": "nope"}, "response": {}}),
             orjson.dumps({"request": {"model": "g", "messages": []},
                           "response": {"id": "x", "created": 1e20, "model": "g",
                                        "choices": [{"message": {"content": "a"}}]}}),
             orjson.dumps(v1), orjson.dumps(stale)]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    # a first line that is not JSON must not swallow the file; an undecodable file name is stored
    all_bad = tmp_path / os.fsdecode(b"bad\xff.jsonl")
    all_bad.write_bytes(b"garbage\n{not json either\n")
    url = stack.postgres.fresh_database(f"{namespace.settings.topic_prefix.strip('.')}_mix")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PARROTWATCH_")},
           "PARROTWATCH_DATABASE_URL": url, "PARROTWATCH_HOME": str(namespace.settings.home)}
    only_bad = backfill(env, str(all_bad), "--name", "bad")
    assert only_bad.returncode == 0, only_bad.stderr[-3000:]
    done = backfill(env, str(path), "--name", "mixed", "--close-all")
    assert done.returncode == 0, done.stderr[-3000:]
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT request_id, model, app FROM inference_scores "
                            "ORDER BY event_time").fetchall()
        dead = conn.execute("SELECT source_topic, kafka_offset, stage, reason FROM dead_letters "
                            "ORDER BY source_topic, kafka_offset").fetchall()
        closed = conn.execute("SELECT evaluated_until FROM stream_watermarks WHERE sink = 'backfill:mixed'"
                              ).fetchone()[0]
        firing = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    assert rows == [("v1-a", "m", "a"), ("chatcmpl-1", "gpt-x", "chat"),
                    ("0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", "otel-model", "otel-app")]
    bad = [d for d in dead if d[0].startswith("backfill:bad/bad\\udcff.jsonl@")]
    assert [d[1] for d in bad] == [100_000, 200_000]
    mixed = [d for d in dead if d[0].startswith("backfill:mixed/mixed.jsonl@")]
    assert [d[1] for d in mixed] == [300_001, 300_002, 500_000, 600_000, 700_000, 800_000, 1_000_000], mixed
    reasons = {d[1]: d[3] for d in mixed}
    assert "model" in reasons[300_001] and "model" in reasons[300_002]
    assert "not an OpenAI" in reasons[700_000] and "OverflowError" in reasons[800_000], reasons
    assert "more than 92 days before" in reasons[1_000_000]
    # --close-all closes the last event's window, and no later one: no phantom traffic drop
    assert closed == (t + timedelta(minutes=3)) and firing == 0

    # A rerun of the same backfill stores nothing, dead-letters nothing new and raises nothing.
    again = backfill(env, str(path), "--name", "mixed", "--close-all")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 stored" in again.stderr and "0 alert transitions" in again.stderr, again.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == len(dead)
        assert conn.execute("SELECT count(*) FROM inference_scores").fetchone()[0] == 3
