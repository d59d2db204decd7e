"""When the inference query counts as idle at the end of its topic (streaming/silence.py), on progress
objects built the way PySpark 4 builds them (``StreamingQueryProgress.fromJson``: offsets as JSON
strings, a JSON null as the string "null")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql.streaming.listener import StreamingQueryProgress

from parrotwatch.streaming.silence import caught_up

NOW = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
END = {"t": {"0": 120, "1": 80}}
IDLE = {"message": "Waiting for next trigger", "isDataAvailable": False, "isTriggerActive": False}


def _progress(rows: int = 0, end=END, latest=END, stamp: str = "2026-12-01T12:00:25.000Z"):
    return StreamingQueryProgress.fromJson({
        "id": "00000000-0000-0000-0000-000000000001", "runId": "00000000-0000-0000-0000-000000000002",
        "name": "inference", "timestamp": stamp, "batchId": 7, "batchDuration": 3,
        "numInputRows": rows, "stateOperators": [],
        "sources": [{"description": "KafkaV2[Subscribe[t]]", "startOffset": END, "endOffset": end,
                     "latestOffset": latest, "numInputRows": rows, "inputRowsPerSecond": 0.0,
                     "processedRowsPerSecond": 0.0}],
        "sink": {"description": "ForeachBatchSink", "numOutputRows": -1}})


def test_an_idle_trigger_at_the_end_of_the_topic_is_caught_up():
    assert caught_up(_progress(), IDLE, NOW)
    assert caught_up(_progress(end=END, latest='{"t":{"0":120,"1":80}}'), IDLE, NOW)  # same offsets


def test_a_running_or_pending_batch_is_not_even_after_an_idle_progress():
    # while a micro-batch runs, lastProgress is still the idle trigger before it
    assert not caught_up(_progress(), {**IDLE, "isTriggerActive": True}, NOW)
    assert not caught_up(_progress(), {**IDLE, "isDataAvailable": True}, NOW)
    assert not caught_up(_progress(), IDLE, NOW + timedelta(minutes=5))  # that progress is stale


def test_rows_a_backlog_unknown_offsets_or_no_progress_are_not():
    assert not caught_up(_progress(rows=5), IDLE, NOW)
    assert not caught_up(_progress(latest={"t": {"0": 121, "1": 80}}), IDLE, NOW)  # more to read
    assert not caught_up(_progress(end=None, latest=None), IDLE, NOW)  # both "null" in PySpark
    assert not caught_up(None, IDLE, NOW) and not caught_up({}, IDLE, NOW)
