"""The stream's per-record step on plain Arrow batches, without Spark."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from parrotwatch.scoring import parse_inference, score_event
from parrotwatch.streaming.records import INFERENCE_SCHEMA, inference_rows, process_batches
from parrotwatch.traffic import encode, generate_inference_events

KAFKA_SCHEMA = pa.schema([("key", pa.binary()), ("value", pa.binary()), ("topic", pa.string()),
                          ("partition", pa.int32()), ("offset", pa.int64()),
                          ("timestamp", pa.timestamp("us", tz="UTC"))])


def test_one_output_row_per_record_with_origin_and_reason():
    events = generate_inference_events(3, seed=1)
    values = [encode(e) for e in events] + [b"{oops", b"\xff\xfe"]
    now = datetime(2026, 11, 28, tzinfo=UTC)
    batch = pa.RecordBatch.from_pydict({
        "key": [b"k%d" % i for i in range(5)], "value": values, "topic": ["t"] * 5,
        "partition": [0, 1, 2, 0, 1], "offset": [10, 11, 12, 13, 14], "timestamp": [now] * 5,
    }, schema=KAFKA_SCHEMA)
    (out,) = list(process_batches([batch], inference_rows, INFERENCE_SCHEMA, 1 << 20))
    rows = out.to_pylist()
    assert [r["kind"] for r in rows] == ["ok", "ok", "ok", "dlq", "dlq"]
    assert [r["offset"] for r in rows] == [10, 11, 12, 13, 14]
    assert [r["key"] for r in rows] == [b"k0", b"k1", b"k2", b"k3", b"k4"]
    assert "not valid JSON" in rows[3]["reason"] and rows[3]["payload"] == b"{oops"
    assert "UTF-8" in rows[4]["reason"] and rows[4]["payload"] == b"\xff\xfe"
    expected = score_event(parse_inference(values[0])).scores
    assert {k: rows[0][k] for k in expected} == expected
    assert rows[0]["request_id"] == events[0]["request_id"] and rows[0]["reason"] is None


def test_a_dead_letter_is_bounded_whatever_its_record_weighs():
    """A 3 MiB record whose reason lists ~10^5 errors gives a dead letter of a few KB: its head,
    its whole size and hash, and the first errors (it was once 20x the record, over the broker's
    message limit, and failed its batch on every replay)."""
    import hashlib

    import orjson

    from parrotwatch.streaming.messages import dead_letter_message
    from parrotwatch.streaming.records import DLQ_HEAD_BYTES, dead_letter, inference_rows

    raw = b"{\"request_id\": \"r\", \"logprobs\": [" + b",".join([b"1"] * 30_000) + b"]}" + b" " * (3 << 20)
    over_cap = b'{"request_id": "r", "logprobs": [' + b",".join([b"1"] * 40_000) + b"]}"
    row, capped = inference_rows([raw, over_cap], max_bytes=8 << 20)
    assert row["kind"] == "dlq" and row["stage"] == "parse"
    assert len(row["reason"]) <= 2_000 and "29,993 more errors" in row["reason"]
    assert "at most 32768 items" in capped["reason"]
    assert row["payload"] == raw[:DLQ_HEAD_BYTES] and row["payload_bytes"] == len(raw)
    assert row["payload_sha256"] == hashlib.sha256(raw).hexdigest()
    message = dead_letter_message({**row, "topic": "t", "partition": 0, "offset": 7,
                                   "kafka_timestamp": None})
    assert len(message) < 64 * 1024
    body = orjson.loads(message)
    assert body["payload_truncated"] is True and body["payload_bytes"] == len(raw)
    assert body["stage"] == "parse" and body["reason"] == row["reason"]
    small = dead_letter(b"{oops", "not valid JSON", "parse")
    assert small["payload"] == b"{oops" and small["payload_bytes"] == 5


def test_a_row_arrow_cannot_hold_becomes_a_dead_letter_and_the_batch_goes_on():
    from parrotwatch.streaming.records import FEEDBACK_SCHEMA

    now = datetime(2026, 11, 28, tzinfo=UTC)
    batch = pa.RecordBatch.from_pydict({
        "key": [b"a", b"b"], "value": [b"good", b"bad"], "topic": ["t"] * 2,
        "partition": [0, 0], "offset": [1, 2], "timestamp": [now] * 2}, schema=KAFKA_SCHEMA)

    def rows_with_a_poison(raws, max_bytes):  # a lone surrogate has no UTF-8 for Arrow
        return [{"feedback_id": "f1" if raw == b"good" else "f\ud800", "kind": "ok"}
                for raw in raws]

    (out,) = list(process_batches([batch], rows_with_a_poison, FEEDBACK_SCHEMA, 1 << 20))
    rows = out.to_pylist()
    assert [(r["kind"], r["stage"]) for r in rows] == [("ok", None), ("dlq", "build")]
    assert rows[1]["payload"] == b"bad" and "convert" in rows[1]["reason"]
    assert rows[0]["feedback_id"] == "f1"


def test_the_regurgitation_index_is_loaded_once_per_process(tmp_path):
    from parrotwatch import scoring
    from parrotwatch.detectors.audits.ngram_index import ExactIndex

    path = tmp_path / "idx.npz"
    ExactIndex.from_documents(["one two three four five six seven eight nine ten"], n=4).save(path)
    before = len(scoring.INDEX_LOADS)
    first = scoring.regurgitation_index(str(path))
    for _ in range(5):
        assert scoring.regurgitation_index(str(path)) is first
    assert len(scoring.INDEX_LOADS) == before + 1
    assert scoring.regurgitation_index(None) is None


def test_a_dead_letter_never_carries_a_huge_key():
    from parrotwatch.streaming.messages import DLQ_KEY_BYTES, dead_letter_key

    assert dead_letter_key(None) is None and dead_letter_key(b"req-1") == b"req-1"
    huge = b"k" * (8 << 20)
    capped = dead_letter_key(huge)
    assert len(capped) <= DLQ_KEY_BYTES and capped.endswith(
        __import__("hashlib").sha256(huge).hexdigest().encode())
