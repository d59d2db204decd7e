"""A sink whose producer cannot flush (the broker went away mid-transaction) closes without raising, so
the stream job's restart loop goes on (CI saw the job exit on exactly this KafkaTimeoutError)."""

from __future__ import annotations

from kafka.errors import KafkaTimeoutError

from parrotwatch.streaming.sinks import TransactionalSink


class _Sender:
    def __init__(self) -> None:
        self.forced = False

    def force_close(self) -> None:
        self.forced = True


class _UnflushableProducer:
    """Stands in for kafka-python's producer at the moment its broker is gone."""

    def __init__(self) -> None:
        self._sender = _Sender()

    def close(self, timeout=None):
        raise KafkaTimeoutError("Timeout waiting for future")


def test_close_swallows_a_flush_timeout_and_stops_the_sender(caplog):
    sink = object.__new__(TransactionalSink)  # only close() is exercised
    sink.sink_id = "inference-test"
    producer = _UnflushableProducer()
    sink._producer = producer
    sink.close()
    assert sink._producer is None and producer._sender.forced
    assert "closed without flushing" in caplog.text
    sink.close()  # idempotent
