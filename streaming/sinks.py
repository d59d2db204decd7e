"""Exactly-once sinks for ``foreachBatch`` (which Spark may replay after a crash).

For micro-batch ``b`` of sink ``s``:

1. PostgreSQL, one transaction: rows are inserted ``ON CONFLICT DO NOTHING`` keyed by their id,
   each new row tagged ``sink_batch = "s:b"``; dead letters keyed by (topic, partition, offset).
   A replay inserts nothing new, and a client retry of one ``request_id`` is stored once.
   Derived state (window aggregates, alert state) is updated in the same transaction, only the
   first time batch ``b`` is stored (its ``sink_batches`` row did not exist yet).
2. Kafka, one transaction: the score messages of the rows tagged ``s:b`` and the batch's dead
   letters (and alerts stored with the tag), committed together with a marker (offset ``b + 1``
   of consumer group ``s`` on the marker topic). A replayed batch whose marker is committed is
   not published again; an aborted one is published whole. Readers use
   ``isolation.level=read_committed``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow as pa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata

from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.gc_pause import gc_paused
from parrotwatch.settings import DLQ_TOPIC, SCORES_TOPIC, Settings
from parrotwatch.stack.kafka import MAX_MESSAGE_BYTES, SINK_MARKERS_TOPIC
from parrotwatch.stack.kafka_auth import client_options
from parrotwatch.streaming.derived import insert_dead_letters
from parrotwatch.streaming.isolation import describe, fetch_records, find_culprits, is_data_error
from parrotwatch.streaming.messages import dead_letter_key, dead_letter_message, score_message
from parrotwatch.streaming.records import dead_letter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableSpec:
    """Where the ``ok`` rows of a stream land, and what they publish."""

    table: str
    id_column: str
    columns: tuple[str, ...]  # from the arrow rows, in table order
    publish_topic: str | None  # per-row messages of newly stored rows (None: no publishing)


INFERENCE_TABLE = TableSpec(
    table="inference_scores",
    id_column="request_id",
    columns=("request_id", "event_time", "model", "app", *SCORE_NAMES, "input_tokens",
             "output_tokens", "finish_reason", "score_source", "language"),
    publish_topic=SCORES_TOPIC,
)

FEEDBACK_TABLE = TableSpec(
    table="feedback",
    id_column="feedback_id",
    columns=("feedback_id", "request_id", "event_time", "thumb", "score", "label", "correction",
             "comment", "annotator", "metadata"),
    publish_topic=None,
)


def sink_identity(checkpoint: Path, name: str) -> str:
    """A sink id bound to its checkpoint: a new checkpoint restarts batch ids, so new markers."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    id_file = checkpoint / "parrotwatch-sink-id"
    if not id_file.exists() or not id_file.read_text().strip():
        tmp = id_file.with_suffix(".tmp")
        tmp.write_text(f"{name}-{uuid.uuid4().hex[:12]}")
        tmp.replace(id_file)  # atomic: a crash never leaves an empty id
    return id_file.read_text().strip()


Message = tuple[str, bytes | None, bytes]
AfterStore = Callable[[psycopg.Connection, str, list[dict], list[dict]], None]
BeforeStore = Callable[[psycopg.Connection, list[dict]], None]
ExtraMessages = Callable[[psycopg.Connection, str], list[Message]]


TXN_TIMEOUT_MS = 60_000
ISOLATION_ROUNDS = 3  # searches for refused records per batch (see _write_isolating)


def _bounded(producer: KafkaProducer, result) -> None:
    """Wait for a transactional request, at most ``TXN_TIMEOUT_MS``.

    kafka-python's ``send_offsets_to_transaction`` / ``commit_transaction`` wait without a bound,
    and were seen to wait forever when the broker restarted mid-transaction. So we make the same
    calls on its transaction manager (private) and bound the wait: on timeout the batch fails,
    the job restarts the query from its checkpoint with a new producer, whose
    ``init_transactions`` aborts the stuck transaction; the replay then publishes it whole.
    """
    producer._sender.wakeup()
    if not result.wait(timeout_ms=TXN_TIMEOUT_MS):
        raise KafkaTimeoutError(f"transactional request not answered in {TXN_TIMEOUT_MS} ms")


class TransactionalSink:
    """``foreachBatch`` callable writing one stream's rows exactly once (see module docstring)."""

    def __init__(self, settings: Settings, spec: TableSpec, sink_id: str, database_url: str,
                 after_store: AfterStore | None = None,
                 extra_messages: ExtraMessages | None = None,
                 before_store: BeforeStore | None = None,
                 forget: Callable[[], None] | None = None):
        """``before_store(conn, ok_rows)`` may complete the rows (e.g. scores that need state
        kept in the database) in the batch's transaction; ``after_store(conn, tag, new_rows,
        dead_letters)`` runs in it the first time the batch is stored; ``extra_messages(conn,
        tag)`` gives more Kafka messages of the batch (read back by ``tag``, so a replay
        publishes the same ones). ``forget()`` drops what the hooks cache between batches: it runs
        after a transaction is rolled back (a cache may hold what only that transaction saw)."""
        self.forget = forget
        self.before_store = before_store
        self.after_store = after_store
        self.extra_messages = extra_messages
        self.settings = settings
        self.spec = spec
        self.sink_id = sink_id
        self.database_url = database_url
        self._producer: KafkaProducer | None = None
        self._next_batch: int | None = None  # first batch id whose Kafka part is not committed
        self._marker = TopicPartition(settings.topic(SINK_MARKERS_TOPIC), 0)

    # -- Kafka side ---------------------------------------------------------------------------
    def _kafka(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                **client_options(self.settings),
                transactional_id=f"parrotwatch-sink.{self.sink_id}",
                enable_idempotence=True, acks="all", linger_ms=5, batch_size=512 * 1024,
                max_request_size=MAX_MESSAGE_BYTES,
            )
            self._producer.init_transactions()  # fences a zombie and aborts its open transaction
        return self._producer

    def close(self) -> None:
        """Close the producer; never raises. With the broker away, ``close`` cannot flush: what it holds
        belongs to a transaction that was never committed (the broker aborts it, the batch runs again
        from the checkpoint), so it is dropped rather than allowed to stop the job's restart loop."""
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        try:
            producer.close(timeout=5)
        except KafkaError as exc:
            log.warning("sink %s: producer closed without flushing (%s); its open transaction is "
                        "aborted and the batch replays from the checkpoint", self.sink_id, exc)
            # kafka-python 3.0's close() raises from its flush before it reaches its own force-close
            # of the sender thread; do that step here so no thread keeps retrying the old broker
            sender = getattr(producer, "_sender", None)
            if sender is not None:
                with suppress(Exception):
                    sender.force_close()

    def _committed_batches(self) -> int:
        if self._next_batch is None:
            self._kafka()  # fence a zombie first: its in-flight commit completes or aborts
            consumer = KafkaConsumer(**client_options(self.settings),
                                     group_id=self.sink_id, enable_auto_commit=False,
                                     isolation_level="read_committed")
            try:
                self._next_batch = consumer.committed(self._marker) or 0
            finally:
                consumer.close()
        return self._next_batch

    def _publish(self, batch_id: int, messages: list[tuple[str, bytes | None, bytes]]) -> None:
        producer = self._kafka()
        producer.begin_transaction()
        sent = [producer.send(topic, key=key, value=value) for topic, key, value in messages]
        producer.flush(timeout=TXN_TIMEOUT_MS / 1000)
        failed = [f.exception for f in sent if f.failed()]
        if failed:  # a send can fail without failing the transaction: never commit past it
            producer.abort_transaction()
            raise KafkaError(f"{len(failed)} of {len(sent)} messages not sent: {failed[0]!r}")
        tm = producer._transaction_manager
        _bounded(producer, tm.send_offsets_to_transaction(
            {self._marker: OffsetAndMetadata(batch_id + 1, "", -1)}, self.sink_id))
        _bounded(producer, tm.begin_commit())
        self._next_batch = batch_id + 1

    # -- PostgreSQL side -----------------------------------------------------------------------
    def _store(self, conn: psycopg.Connection, tag: str, ok: list[dict], dlq: list[dict]) -> int:
        spec = self.spec
        cols = (*spec.columns, "kafka_partition", "kafka_offset", "kafka_timestamp", "sink_batch")
        with conn.cursor() as cur:
            cur.execute(f"CREATE TEMP TABLE incoming (LIKE {spec.table} INCLUDING DEFAULTS) "
                        "ON COMMIT DROP")
            with cur.copy(f"COPY incoming ({', '.join(cols)}) FROM STDIN") as copy:
                for row in ok:
                    copy.write_row([*(row[c] for c in spec.columns), row["partition"],
                                    row["offset"], row["kafka_timestamp"], tag])
            cur.execute(
                f"INSERT INTO {spec.table} ({', '.join(cols)}) "
                f"SELECT DISTINCT ON ({spec.id_column}) {', '.join(cols)} FROM incoming "
                f"ORDER BY {spec.id_column}, kafka_partition, kafka_offset "
                f"ON CONFLICT ({spec.id_column}) DO NOTHING")
            stored = cur.rowcount
            if dlq:
                insert_dead_letters(cur, dlq)
        return stored

    def _refused_before(self, conn: psycopg.Connection, ok: list[dict]) -> dict[tuple, dict]:
        """Dead letters a sink write already refused among ``ok`` (a replay of a batch whose
        isolation was committed: it must dead-letter the same records, not store them)."""
        if not ok:
            return {}
        return {(t, p, o): {"topic": t, "partition": p, "offset": o, "reason": reason,
                            "payload": payload, "kafka_timestamp": ts, "payload_bytes": size,
                            "payload_sha256": sha, "stage": stage, "key": None}
                for t, p, o, reason, payload, ts, size, sha, stage in conn.execute(
                    "SELECT source_topic, kafka_partition, kafka_offset, reason, payload, "
                    "kafka_timestamp, payload_bytes, payload_sha256, stage FROM dead_letters "
                    "WHERE stage = 'store' AND (source_topic, kafka_partition, kafka_offset) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[]))",
                    ([r["topic"] for r in ok], [r["partition"] for r in ok],
                     [r["offset"] for r in ok]))}

    def _write(self, conn: psycopg.Connection, batch_id: int, tag: str, ok: list[dict],
               dlq: list[dict], rows_in: int, started: float) -> _Written:
        """The batch's PostgreSQL transaction (see the module docstring)."""
        first_time = conn.execute(
            "INSERT INTO sink_batches (sink, batch_id, rows_in, rows_stored, dead_letters, "
            "duration_ms) VALUES (%s, %s, %s, 0, %s, 0) ON CONFLICT DO NOTHING",
            (self.sink_id, batch_id, rows_in, len(dlq))).rowcount == 1
        if not first_time:
            refused = self._refused_before(conn, ok)
            if refused:
                ok = [r for r in ok if (r["topic"], r["partition"], r["offset"]) not in refused]
                dlq = [*dlq, *refused.values()]
        if self.before_store is not None:
            self.before_store(conn, ok)
        stored = self._store(conn, tag, ok, dlq)
        new_ids = {r[0] for r in conn.execute(
            f"SELECT {self.spec.id_column} FROM {self.spec.table} WHERE sink_batch = %s",
            (tag,))}
        new_rows = []
        for r in ok:  # first occurrence of each id stored by this batch
            if r[self.spec.id_column] in new_ids:
                new_ids.discard(r[self.spec.id_column])
                new_rows.append(r)
        if first_time and self.after_store is not None:
            # Derived state (window aggregates, alerts) moves once per batch, replay or not.
            self.after_store(conn, tag, new_rows, dlq)
        extra_messages = self.extra_messages(conn, tag) if self.extra_messages else []
        conn.execute("UPDATE sink_batches SET rows_stored = %s, dead_letters = %s, duration_ms = %s"
                     " WHERE sink = %s AND batch_id = %s AND rows_stored = 0",
                     (stored, len(dlq), (time.perf_counter() - started) * 1000, self.sink_id,
                      batch_id))
        return _Written(stored, new_rows, dlq, extra_messages)

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, options="-c TimeZone=UTC", connect_timeout=10)

    def _write_isolating(self, batch_id: int, tag: str, ok: list[dict], dlq: list[dict],
                         rows_in: int, started: float) -> _Written:
        """:meth:`_write`, committed; when it fails on data, the records it refuses are found
        (:mod:`parrotwatch.streaming.isolation`), dead-lettered with stage ``store``, and the rest written.
        A write can fail again once those are out (a culprit the first failure hid): the search
        runs again on what is left, up to ``ISOLATION_ROUNDS`` times. Records that fail only
        together are not found: the batch is then retried whole."""
        for rounds in range(ISOLATION_ROUNDS + 1):
            try:
                with self._connect() as conn:
                    return self._write(conn, batch_id, tag, ok, dlq, rows_in, started)
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                if rounds == ISOLATION_ROUNDS:
                    raise RuntimeError(f"batch {batch_id} still fails on data after {rounds} "
                                       "rounds of isolation; retrying it whole") from exc
                log.warning("batch %s of %s: the write failed on data (%s); isolating the "
                            "records it refuses", batch_id, self.sink_id, describe(exc))
                self._forget()
            ok, dlq = self._isolate(batch_id, tag, ok, dlq, rows_in, started)
        raise AssertionError("unreachable")

    def _isolate(self, batch_id: int, tag: str, ok: list[dict], dlq: list[dict], rows_in: int,
                 started: float) -> tuple[list[dict], list[dict]]:
        """``ok`` and ``dlq`` with the records a write refuses moved to new dead letters."""
        def probe(subset) -> BaseException | None:
            try:
                with self._connect() as conn, conn.transaction(force_rollback=True):
                    self._write(conn, batch_id, tag, [r for r in subset if r["kind"] == "ok"],
                                [r for r in subset if r["kind"] == "dlq"], rows_in, started)
                return None
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                return exc
            finally:
                self._forget()  # caches may hold what the rolled-back probe saw

        if (error := probe([])) is not None:  # not the records: state or code; retry the batch
            raise RuntimeError(f"batch {batch_id} fails on data with no record in it "
                               f"({describe(error)}); retrying it whole") from error
        culprits = find_culprits([*ok, *dlq], probe)
        if not culprits:
            raise RuntimeError(f"batch {batch_id} fails on data, but no record fails alone; "
                               "retrying it whole")
        bad = {id(row) for row, _ in culprits}
        ok = [r for r in ok if id(r) not in bad]
        dlq = [r for r in dlq if id(r) not in bad]
        raws = fetch_records(client_options(self.settings), [
            (r["topic"], r["partition"], r["offset"]) for r, _ in culprits if r["kind"] == "ok"])
        for row, error in culprits:
            where = (row["topic"], row["partition"], row["offset"])
            if row["kind"] == "ok":
                reason = f"the {self.spec.table} sink could not store it: {describe(error)}"
                raw = raws.get(where)
            else:  # a dead letter that cannot be stored as it is: keep where it came from
                reason = f"its dead letter could not be stored ({describe(error)}): {row['reason']}"
                raw = None
            log.error("batch %s: dead-lettering %s:%s:%s (%s)", batch_id, *where, reason)
            dlq.append({**row, **dead_letter(raw, reason, "store", self.settings.redact_pii)})
        return ok, dlq

    def _forget(self) -> None:
        if self.forget is not None:
            self.forget()

    @gc_paused()  # a batch's rows are ~10^6 acyclic objects: see parrotwatch.gc_pause
    def __call__(self, batch_df, batch_id: int) -> None:
        started = time.perf_counter()
        table: pa.Table = batch_df.toArrow()  # runs the Spark job: read, parse, score
        rows = table.to_pylist()
        computed = time.perf_counter()
        ok = [r for r in rows if r["kind"] == "ok"]
        dlq = [r for r in rows if r["kind"] == "dlq"]
        tag = f"{self.sink_id}:{batch_id}"
        written = self._write_isolating(batch_id, tag, ok, dlq, len(rows), started)
        stored, new_rows, dlq = written.stored, written.new_rows, written.dead_letters
        wrote = time.perf_counter()
        if batch_id < self._committed_batches():
            log.info("batch %s of %s already published; skipping Kafka", batch_id, self.sink_id)
            return
        messages = []
        if self.spec.publish_topic:
            topic = self.settings.topic(self.spec.publish_topic)
            messages += [(topic, r["request_id"].encode(), score_message(r)) for r in new_rows]
        dlq_topic = self.settings.topic(DLQ_TOPIC)
        messages += [(dlq_topic, dead_letter_key(r["key"]), dead_letter_message(r)) for r in dlq]
        messages += written.extra_messages
        if messages:  # an empty batch publishes nothing, so it needs no marker either
            self._publish(batch_id, messages)
        done = time.perf_counter()
        log.info("batch %s: %s rows, %s stored, %s dead letters, %.0f ms (spark %.0f, "
                 "postgres %.0f, kafka %.0f)", batch_id, len(rows), stored, len(dlq),
                 (done - started) * 1000, (computed - started) * 1000,
                 (wrote - computed) * 1000, (done - wrote) * 1000)


@dataclass(frozen=True)
class _Written:
    """What a batch's PostgreSQL transaction stored, and what it publishes."""

    stored: int
    new_rows: list[dict]
    dead_letters: list[dict]
    extra_messages: list[Message]
