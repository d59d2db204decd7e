"""Poison alert records cannot stall the dispatcher's consumer (issue 12, items 2 and 4).

Real Kafka, PostgreSQL and HTTP. Each poison record is dead-lettered with its reason, the valid
records after it are delivered, and the consumer never re-reads a batch (``seeks == 0``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from parrotwatch.services.dispatcher.config import parse_receivers
from parrotwatch.services.dispatcher.service import Dispatcher
from parrotwatch.settings import ALERTS_TOPIC
from tests.integration.conftest import wait_for
from tests.integration.test_dispatcher_faults import Recorder, alert

pytestmark = pytest.mark.integration


def poison(start: datetime) -> dict[str, bytes | None]:
    good = alert("p", start)
    dump = json.dumps(good).encode()
    return {
        "nul label": json.dumps(good | {"labels": good["labels"] | {"app": "a\x00b"}}).encode(),
        "nul label key": json.dumps(good | {"labels": good["labels"] | {"k\x00": "v"}}).encode(),
        "nul evidence": json.dumps(good | {"evidence": {"x": ["\x00"]}}).encode(),
        "lone surrogate escape": dump.replace(b'"a"', b'"\\udc80"'),
        "lone surrogate bytes": dump.replace(b'"a"', b'"\xed\xb2\x80"'),
        "NaN value": json.dumps(good | {"value": float("nan")}).encode(),
        "invalid json": b'{"alert_id": "x", ',
        "not utf-8": b"\xff\xfe\xfd",
        "tombstone": None,
        "1 MB labels": json.dumps(good | {"labels": good["labels"] | {
            f"l{i}": "x" * 1000 for i in range(1000)}}).encode(),
    }


def test_poison_records_are_dead_lettered_and_the_valid_ones_delivered(namespace):
    receiver = Recorder()
    config = parse_receivers({"receivers": [{"name": "r", "kind": "slack", "url": receiver.url}],
                              "delivery": {"poll_interval_s": 0.2}})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    records = poison(start)
    valid = [alert(f"v{i}", start) for i in range(10)]
    producer = namespace.producer()
    topic = namespace.topic(ALERTS_TOPIC)
    for value in records.values():  # one key, one partition: the offsets are the send order
        producer.send(topic, key=b"same-key", value=value)
    for event in valid:
        producer.send(topic, key=b"same-key", value=json.dumps(event).encode())
    producer.flush()
    producer.close()
    try:
        with Dispatcher(namespace.settings, config, namespace.database_url) as dispatcher:
            wait_for(lambda: len(receiver.first_seen()) == 10, 60, "the 10 valid alerts delivered")
            assert dispatcher.consumer.seeks == 0  # the consumer never went back
            assert not dispatcher.failed
        assert set(receiver.first_seen()) == {e["alert_id"] for e in valid}
        letters = namespace.sql("SELECT kafka_offset, reason, length(payload) FROM dead_letters "
                                "WHERE source_topic = %s ORDER BY kafka_offset", topic)
        assert [o for o, _, _ in letters] == list(range(len(records)))
        reasons = dict(zip(records, [r for _, r, _ in letters], strict=True))
        for name in ("nul label", "nul label key", "nul evidence"):
            assert "NUL" in reasons[name], reasons[name]
        assert "not a JSON number" in reasons["NaN value"]
        assert "over the 262144-byte limit" in reasons["1 MB labels"]
        assert letters[-1][2] == 64 * 1024  # the 1 MB payload kept as its head
        for name in ("lone surrogate escape", "lone surrogate bytes", "invalid json", "not utf-8",
                     "tombstone"):
            assert reasons[name].startswith("invalid alert event v1"), (name, reasons[name])
        print("poison -> dead letter: " + "; ".join(f"{n}: {r[:70]}" for n, r in reasons.items()))
    finally:
        receiver.close()


REFUSE = """
CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.alert_id LIKE 'refused%' THEN
    RAISE EXCEPTION 'value refused for %', NEW.alert_id USING ERRCODE = 'data_exception';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_marked BEFORE INSERT ON alert_outbox
FOR EACH ROW EXECUTE FUNCTION refuse_marked();
"""


def test_a_record_the_database_refuses_fails_its_batch_once(namespace):
    """A value that passes every check but that the database still refuses (here: a trigger
    raising a data exception, standing in for a case nobody foresaw): the batch is stored record
    by record, the refused record is dead-lettered, and the batch is never re-read."""
    with psycopg.connect(namespace.database_url, autocommit=True) as conn:
        conn.execute(REFUSE)  # no parameters: several statements, '%' as is
    receiver = Recorder()
    config = parse_receivers({"receivers": [{"name": "r", "kind": "slack", "url": receiver.url}],
                              "delivery": {"poll_interval_s": 0.2}})
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    events = [alert("before", start), alert("refused-1", start), alert("after", start)]
    producer = namespace.producer()
    for event in events:
        producer.send(namespace.topic(ALERTS_TOPIC), key=b"k", value=json.dumps(event).encode())
    producer.flush()
    producer.close()
    try:
        with Dispatcher(namespace.settings, config, namespace.database_url) as dispatcher:
            wait_for(lambda: set(receiver.first_seen()) == {"before", "after"}, 60,
                     "the two storable alerts delivered")
            assert dispatcher.consumer.seeks == 0 and dispatcher.consumer.isolated_batches >= 1
        (reason,) = namespace.scalar("SELECT array_agg(reason) FROM dead_letters")
        assert reason.startswith("the database refused this alert record: DataException") and \
            "value refused for refused-1" in reason
    finally:
        receiver.close()
