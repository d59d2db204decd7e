"""llm.scores.v1 message bytes of the sink (streaming/messages.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pytest

from parrotwatch.contracts.dead_letters import rfc3339 as _rfc3339
from parrotwatch.streaming.messages import SCORE_NAMES, score_message
from parrotwatch.streaming.records import TS


@pytest.mark.parametrize("when", [datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
                                  datetime(2026, 11, 1, 10, 0, 1, 123000, tzinfo=UTC),
                                  datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)])
def test_score_message_as_the_sink_reads_rows_from_arrow(when):
    row = pa.table({"request_id": ["r1"], "event_time": pa.array([when], TS), "model": ["m"],
                    "app": ["a"], **{k: pa.array([0.25 if i % 2 else None], pa.float64())
                                     for i, k in enumerate(SCORE_NAMES)}}).to_pylist()[0]
    message = orjson.loads(score_message(row))
    assert message["timestamp"] == _rfc3339(when) and message["timestamp"].endswith("Z")
    assert list(message) == ["request_id", "timestamp", "model", "app", *SCORE_NAMES]
    assert [message[k] for k in SCORE_NAMES] == [0.25 if i % 2 else None for i in range(len(SCORE_NAMES))]
