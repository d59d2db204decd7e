"""When the stream counts as caught up (streaming/silence.py): its last trigger read nothing and each
Kafka source's end offsets are its latest, as Spark reports them (JSON strings or parsed)."""

from __future__ import annotations

from streaming.silence import caught_up

END = '{"t":{"0":120,"1":80}}'


def _progress(rows: int, end=END, latest=END) -> dict:
    return {"numInputRows": rows, "sources": [{"endOffset": end, "latestOffset": latest}]}


def test_idle_trigger_at_the_end_of_the_topic_is_caught_up():
    assert caught_up(_progress(0))
    assert caught_up(_progress(0, end={"t": {"0": 120, "1": 80}}, latest=END))  # parsed vs JSON


def test_a_batch_with_rows_a_backlog_or_no_progress_is_not():
    assert not caught_up(_progress(5))
    assert not caught_up(_progress(0, latest='{"t":{"0":121,"1":80}}'))  # more to read
    assert not caught_up(_progress(0, latest=None))  # offsets unknown
    assert not caught_up({"numInputRows": 0, "sources": []})
    assert not caught_up(None) and not caught_up({})
