"""Defence in depth on the real PostgreSQL and broker: a record that the contract let through but
a sink write refuses is dead-lettered alone (stage ``store``), the rest of its batch is stored,
and a replay of the batch gives exactly the same result."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from parrotwatch.streaming.derived import inference_after_store, store_drilldown
from parrotwatch.streaming.job import alert_stage
from parrotwatch.streaming.records import INFERENCE_SCHEMA, inference_rows
from parrotwatch.streaming.sinks import INFERENCE_TABLE, TransactionalSink
from parrotwatch.traffic import encode, generate_inference_events

pytestmark = pytest.mark.integration


class ArrowBatch:
    """What the sink reads of Spark's micro-batch DataFrame: ``toArrow()``."""

    def __init__(self, rows: list[dict]) -> None:
        self.table = pa.Table.from_pylist(rows, schema=INFERENCE_SCHEMA)

    def toArrow(self) -> pa.Table:  # noqa: N802 (Spark's name)
        return self.table


def _sink(namespace, name: str = "iso") -> TransactionalSink:
    alerts = alert_stage(namespace.settings)

    def after(conn, tag, new_rows, dead_letters):
        store_drilldown(conn, tag, new_rows)
        inference_after_store(conn, tag, new_rows, dead_letters)
        alerts.evaluate(conn, tag)

    return TransactionalSink(namespace.settings, INFERENCE_TABLE, f"{name}-sink",
                             namespace.database_url, after_store=after,
                             extra_messages=alerts.messages)


def _on_kafka(namespace, events: list[dict]) -> list[dict]:
    """Produce the events and return their scored rows with their real Kafka origin."""
    topic = namespace.topic("llm.inference.v1")
    producer = KafkaProducer(bootstrap_servers=namespace.settings.bootstrap, acks="all")
    metas = [producer.send(topic, key=e["request_id"].encode(), value=encode(e)).get(30)
             for e in events]
    producer.close()
    rows = inference_rows([encode(e) for e in events], 1 << 20)
    now = datetime.now(UTC)
    for row, meta in zip(rows, metas, strict=True):
        row.update(key=b"k", topic=topic, partition=meta.partition, offset=meta.offset,
                   kafka_timestamp=now)
    return rows


def test_a_row_the_database_refuses_is_dead_lettered_alone_and_replays_the_same(namespace):
    events = generate_inference_events(40, seed=31, id_prefix="iso")
    rows = _on_kafka(namespace, events)
    assert all(r["kind"] == "ok" for r in rows)
    # Two rows the contract would have refused, as if a rule had a gap: a NUL in a stored column
    # (COPY refuses it) and a NUL in the drill-down (jsonb refuses it, in the after-store stage).
    rows[7]["finish_reason"] = "st\x00op"
    rows[23]["drilldown"] = orjson.dumps({"surprising_tokens": [{"token": "\x00"}]}).decode()
    sink = _sink(namespace)
    sink(ArrowBatch(rows), 0)

    stored = {r[0] for r in namespace.sql("SELECT request_id FROM inference_scores")}
    assert stored == {e["request_id"] for e in events} - {rows[7]["request_id"],
                                                           rows[23]["request_id"]}
    letters = namespace.sql("SELECT kafka_offset, stage, reason, payload, payload_bytes "
                            "FROM dead_letters ORDER BY kafka_offset")
    assert sorted(o for o, *_ in letters) == sorted([rows[7]["offset"], rows[23]["offset"]])
    for _offset, stage, reason, payload, size in letters:
        assert stage == "store" and "inference_scores sink could not store it" in reason
        assert payload is not None and size == len(payload)  # read back from Kafka
    dlq = [orjson.loads(m.value) for m in namespace.read_topic("llm.dlq.v1", expected=2)]
    assert sorted(d["offset"] for d in dlq) == sorted(o for o, *_ in letters)
    assert len(namespace.read_topic("llm.scores.v1", expected=38)) == 38

    # Spark replays the batch (a crash after the commit): same rows, same dead letters, no
    # duplicate on Kafka.
    again = _sink(namespace)
    again(ArrowBatch(rows), 0)
    assert namespace.scalar("SELECT count(*) FROM inference_scores") == 38
    assert namespace.scalar("SELECT count(*) FROM dead_letters") == 2
    assert len(namespace.read_topic("llm.dlq.v1", expected=2, timeout=10)) == 2
    # ... and a replay whose Kafka part was never committed republishes the same dead letters
    written = again._write_isolating(0, "iso-sink:0", [r for r in rows], [], len(rows), 0.0)
    assert sorted(r["offset"] for r in written.dead_letters) == sorted(o for o, *_ in letters)
    assert len(written.new_rows) == 38  # the rows this batch stored, republished with them

    # the next batch goes through untouched
    more = _on_kafka(namespace, generate_inference_events(5, seed=32, id_prefix="iso-next"))
    again(ArrowBatch(more), 1)
    assert namespace.scalar("SELECT count(*) FROM inference_scores") == 43


TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
_EXAMPLE = itertools.count(1)  # fresh ids and batch ids for every example (hypothesis may replay)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT), min_size=1, max_size=4))
def test_every_event_the_contract_accepts_stores(namespace, texts):
    """Property, on the real database: whatever text an accepted event carries (prompt, response,
    a logprob token, a source), its batch stores without a dead letter from the sink."""
    example = next(_EXAMPLE)
    base = generate_inference_events(len(texts), seed=len(texts), id_prefix=f"prop-{example}")
    events = [{**e, "prompt": p, "response": r, "sources": [s],
               "logprobs": [{"token": t, "logprob": -0.25}]}
              for e, (p, r, t, s) in zip(base, texts, strict=True)]
    rows = inference_rows([encode(e) for e in events], 1 << 20)
    now = datetime.now(UTC)
    ok = []
    for i, row in enumerate(rows):
        row.update(key=None, topic="prop", partition=0, offset=example * 10 + i,
                   kafka_timestamp=now)
        if row["kind"] == "ok":
            ok.append(row)
        else:  # only text storage cannot hold is refused
            assert "NUL" in row["reason"] or "surrogate" in row["reason"], row["reason"]
    sink = _sink(namespace, "prop")
    written = sink._write_isolating(example, f"prop:{example}", ok, [], len(ok), 0.0)
    assert [r for r in written.dead_letters if r.get("stage") == "store"] == []
    assert written.stored == len({r["request_id"] for r in ok})
