"""The stream's per-record step on plain Arrow batches, without Spark."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from parrotwatch.scoring import parse_inference, score_event
from parrotwatch.traffic import encode, generate_inference_events
from streaming.records import INFERENCE_SCHEMA, inference_rows, process_batches

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


def test_dead_letter_message_truncates_huge_payloads_but_keeps_the_reason():
    import orjson

    from streaming.sinks import DLQ_PAYLOAD_BYTES, dead_letter_message

    row = {"payload": b"\x01" * (3 * DLQ_PAYLOAD_BYTES), "topic": "t", "partition": 0,
           "offset": 7, "kafka_timestamp": None, "reason": "event is too big"}
    message = dead_letter_message(row)
    assert len(message) < 8 * 1024 * 1024
    body = orjson.loads(message)
    assert body["payload_truncated"] is True and body["reason"] == "event is too big"
    assert len(body["payload"]) == DLQ_PAYLOAD_BYTES


def test_the_regurgitation_index_is_loaded_once_per_process(tmp_path):
    from detectors.audits.ngram_index import ExactIndex
    from parrotwatch import scoring

    path = tmp_path / "idx.npz"
    ExactIndex.from_documents(["one two three four five six seven eight nine ten"], n=4).save(path)
    before = len(scoring.INDEX_LOADS)
    first = scoring.regurgitation_index(str(path))
    for _ in range(5):
        assert scoring.regurgitation_index(str(path)) is first
    assert len(scoring.INDEX_LOADS) == before + 1
    assert scoring.regurgitation_index(None) is None
