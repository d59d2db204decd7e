"""Backfill: import historical traffic from files as if it had been live, without Kafka or Spark.

``parrotwatch backfill FILE...`` reads inference events v1 (JSONL), OTLP/JSON traces (one
``ExportTraceServiceRequest`` per line, or a whole file) and OpenAI request/response logs (JSONL of
``{"request": {...}, "response": {...}, "latency_ms"?, "app"?}``), scores them with the stream's own
code (:func:`parrotwatch.streaming.records.inference_rows`), and stores them in event-time order,
one hour of event time per PostgreSQL transaction, through the same steps as the stream's inference
sink: the rows (``ON CONFLICT DO NOTHING`` on ``request_id``), drill-down, drift references,
window aggregates, and the alert rules over each window the backfill's watermark closes.

What differs from the live stream, on purpose:

* **Its own watermark and evaluator.** A backfill named ``N`` keeps its watermark in
  ``stream_watermarks`` (sink ``backfill:N``) and its rules' state in ``alert_evaluator_state``
  (name ``backfill:N``): the live watermark and the live baselines are never moved. Its windows
  are the shared ``window_counts`` / ``window_metrics`` (the dashboards show history as if live).
* **No catch-up limit.** The live stream evaluates at most the last day of a backlog; a backfill
  evaluates every window of its range, weeks included, one hour at a time.
* **Replayed alerts are marked.** Each alert carries the label ``replay = backfill:N``, and its
  ``alert_id`` ends in ``@backfill:N``, so it never continues, resolves or deduplicates against a
  live alert; it is stored in ``alerts`` (``sink_batch`` ``backfill:N:<chunk>``) and published on
  ``llm.alerts.v1`` only with ``publish=True`` (``--publish``), so replayed history pages nobody
  unless asked.
* **Restartable.** Each hour is one transaction; rerunning the same backfill (same name) skips the
  stored requests, merges no window twice and evaluates only windows not evaluated yet.

Records that cannot be read, parsed or scored are stored in ``dead_letters`` with their reason
(``source_topic`` ``backfill:<file name>``, ``kafka_partition`` the file's index, ``kafka_offset``
the line number), as the stream stores its own: nothing is dropped silently, and no record stops
the run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from parrotwatch.contracts.openai_adapter import from_openai_chat
from parrotwatch.contracts.otlp import JSON, OtlpDecodeError, decode_traces, map_traces
from parrotwatch.contracts.reasons import bounded_reason
from parrotwatch.detectors.alerting import load_rules
from parrotwatch.detectors.alerting.rules import DEFAULT_RULES_PATH
from parrotwatch.detectors.flags import FLAGS
from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.quality import QualityConfig
from parrotwatch.settings import ALERTS_TOPIC, Settings
from parrotwatch.streaming.alert_stage import AlertStage
from parrotwatch.streaming.derived import (
    applied_flags,
    insert_dead_letters,
    store_drilldown,
    store_review_texts,
)
from parrotwatch.streaming.drift_stage import DriftStage
from parrotwatch.streaming.records import DLQ_HEAD_BYTES, inference_rows
from parrotwatch.streaming.window_store import merge_windows
from parrotwatch.streaming.windows import WINDOW, partials, window_start

log = logging.getLogger(__name__)

COLUMNS = ("request_id", "event_time", "model", "app", *SCORE_NAMES, "input_tokens", "output_tokens",
           "finish_reason", "score_source", "language")
CHUNK = timedelta(hours=1)  # event time per transaction
SCORE_BATCH = 2_000  # events scored together
NO_CATCH_UP_LIMIT = timedelta(days=36_500)
MAX_DAYS = 92.0  # events further before the last one are dead letters (see run_backfill)


SPANS_PER_LINE = 100_000  # dead-letter offsets: line x this + the span's index in the line


@dataclass
class Item:
    """One input record: where it came from (``offset``: its line x ``SPANS_PER_LINE`` + its span's
    index in that line), and its inference event v1 as JSON bytes, or why not."""

    offset: int
    source: str
    raw: bytes | None
    reason: str | None = None


@dataclass
class BackfillReport:
    name: str
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    windows_evaluated: int = 0
    alerts: int = 0
    first: datetime | None = None
    last: datetime | None = None
    reasons: dict[str, int] = field(default_factory=dict)


def _otlp_items(tree: bytes, line: int, source: str, settings: Settings) -> Iterator[Item]:
    at = line * SPANS_PER_LINE
    try:
        batch = map_traces(decode_traces(tree, JSON), app_attribute=settings.otlp_app_attribute)
    except OtlpDecodeError as exc:
        yield Item(at, source, tree, f"not OTLP/JSON traces: {exc}")
        return
    except Exception as exc:  # noqa: BLE001 (a record must not stop the backfill)
        yield Item(at, source, tree, f"unexpected {type(exc).__name__} reading OTLP/JSON: {exc}")
        return
    for k, span in enumerate(batch.spans[:SPANS_PER_LINE]):
        if span.event is None:
            yield Item(at + k, source, span.span_json, span.reason or "unmappable LLM span")
            continue
        try:
            yield Item(at + k, source, orjson.dumps(span.event))
        except Exception as exc:  # noqa: BLE001
            yield Item(at + k, source, span.span_json, f"the span's event cannot be encoded: {exc}")


def _openai_item(obj: dict, raw: bytes, line: int, source: str) -> Item:
    try:
        event = from_openai_chat(obj["request"], obj["response"], latency_ms=obj.get("latency_ms"),
                                 app=obj.get("app") or "default")
        return Item(line * SPANS_PER_LINE, source, event.model_dump_json(exclude_none=True).encode())
    except Exception as exc:  # noqa: BLE001 (any content the adapter refuses is a dead letter)
        what = f"{type(exc).__name__}: {exc}"
        return Item(line * SPANS_PER_LINE, source, raw,
                    f"not an OpenAI chat request/response pair: {what[:300]}")


def _whole_document(data: bytes) -> Any:
    """The file as one JSON object when it is one (a pretty-printed OTLP/JSON export), else None."""
    if data.lstrip()[:1] != b"{" or data.count(b"\n") < 2:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def read_items(paths: list[Path], settings: Settings, name: str = "history") -> Iterator[Item]:
    """Every record of ``paths``, in file and line order, recognised per line: OTLP/JSON traces
    (``resourceSpans``), an OpenAI pair (``request`` and ``response``), else an inference event v1
    (parsed and validated later, with the stream's own parser). A file that parses whole as one JSON
    object over several lines (pretty-printed OTLP/JSON) is read as one record. A record's source is
    ``backfill:<name>/<file name>@<content hash>``, so its dead letters are keyed apart from any other
    file's, and the same file in a rerun gives the same keys."""
    for path in paths:
        data = path.read_bytes()
        # a file name is bytes on Linux: undecodable ones come as lone surrogates PostgreSQL refuses
        shown = path.name.encode("utf-8", "backslashreplace").decode("utf-8")
        source = f"backfill:{name}/{shown}@{hashlib.sha256(data).hexdigest()[:12]}"
        whole = _whole_document(data)
        if whole is not None:
            if "resourceSpans" in whole or "resource_spans" in whole:
                yield from _otlp_items(data, 1, source, settings)
            else:
                yield Item(SPANS_PER_LINE, source, data)
            continue
        for line, raw in enumerate(data.splitlines(), start=1):
            if not raw.strip():
                continue
            if len(raw) > max(settings.max_event_bytes, settings.max_request_bytes):
                yield Item(line * SPANS_PER_LINE, source, raw,
                           f"the line is {len(raw):,} bytes, over the request limit")
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                obj = None  # the stream's parser gives the reason
            if isinstance(obj, dict) and ("resourceSpans" in obj or "resource_spans" in obj):
                yield from _otlp_items(raw, line, source, settings)
            elif isinstance(obj, dict) and "request" in obj and "response" in obj:
                yield _openai_item(obj, raw, line, source)
            else:
                yield Item(line * SPANS_PER_LINE, source, raw)


def _dead(item: Item, reason: str, stage: str, redact_pii: bool = False) -> dict[str, Any]:
    raw = item.raw
    head = raw[:DLQ_HEAD_BYTES] if raw is not None else None
    if redact_pii:
        from parrotwatch.streaming.redaction import redact_payload

        head = redact_payload(head)
    return {"topic": item.source, "partition": 0, "offset": item.offset,
            "reason": bounded_reason(reason), "stage": stage,
            "payload": head,
            "payload_bytes": len(raw) if raw is not None else None,
            "payload_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None}


def score_items(items: list[Item], settings: Settings, quality: QualityConfig | None,
                advance: Callable[[int], None] = lambda n: None) -> tuple[list[dict], list[dict]]:
    """(scored rows sorted by event time, dead letters) of ``items``."""
    index = str(settings.regurgitation_index) if settings.regurgitation_index else None
    rows, dead = [], []
    readable = [i for i in items if i.reason is None]
    dead += [_dead(i, i.reason, "map", settings.redact_pii) for i in items if i.reason is not None]
    for start in range(0, len(readable), SCORE_BATCH):
        chunk = readable[start:start + SCORE_BATCH]
        raws = [i.raw for i in chunk]
        for item, row in zip(chunk, inference_rows(raws, settings.max_event_bytes, index, quality,
                                                   redact_pii=settings.redact_pii), strict=True):
            if row["kind"] == "dlq":
                dead.append(_dead(item, row["reason"], row["stage"], settings.redact_pii))
            else:
                rows.append({**row, "partition": 0, "offset": item.offset, "source": item.source})
        advance(len(chunk))
    rows.sort(key=lambda r: (r["event_time"], r["partition"], r["offset"]))
    return rows, dead


class Backfill:
    """Stores scored rows hour by hour under the backfill's own watermark ``backfill:<name>``."""

    def __init__(self, settings: Settings, name: str, *, drift: DriftStage | None = None) -> None:
        self.settings = settings
        self.sink = f"backfill:{name}"
        rules_path = settings.alert_rules or DEFAULT_RULES_PATH
        text = Path(rules_path).read_text()
        self.delay = timedelta(seconds=settings.watermark_delay_seconds)
        self.drift = drift
        self.alerts = AlertStage(settings, load_rules(text), text, self.delay, drift, name=self.sink,
                                 replay_label=self.sink, max_catch_up=NO_CATCH_UP_LIMIT)

    def _start(self, conn: psycopg.Connection, first: datetime) -> None:
        """The backfill's watermark row; its first window is the first event's (not the oldest
        window of the whole table, which a fresh live stream starts from)."""
        first_window = first.replace(second=0, microsecond=0)
        conn.execute("INSERT INTO stream_watermarks (sink, max_event_time, evaluated_until) "
                     "VALUES (%s, %s, %s) ON CONFLICT (sink) DO NOTHING",
                     (self.sink, first_window, first_window))

    def store_chunk(self, conn: psycopg.Connection, tag: str, rows: list[dict], dead: list[dict],
                    watermark: datetime) -> tuple[int, int]:
        """One transaction: rows, dead letters, derived state, windows, then the alert rules over
        the windows ``watermark`` closes (``watermark`` is an event time, as the live sink stores
        it: the alert stage takes the delay off). Returns (rows newly stored, alerts)."""
        with conn.transaction():
            if self.drift is not None:
                self.drift.before_store(conn, rows)
            with conn.cursor() as cur:
                cols = (*COLUMNS, "kafka_partition", "kafka_offset", "sink_batch")
                stored: set[str] = set()
                if rows:  # an empty executemany sends nothing, and has no result to fetch
                    cur.executemany(
                        f"INSERT INTO inference_scores ({', '.join(cols)}) VALUES "
                        f"({', '.join(['%s'] * len(cols))}) ON CONFLICT (request_id) DO NOTHING "
                        "RETURNING request_id",
                        [(*(r[c] for c in COLUMNS), r["partition"], r["offset"], tag) for r in rows],
                        returning=True)
                    while True:
                        row = cur.fetchone()
                        if row is not None:
                            stored.add(row[0])
                        if not cur.nextset():
                            break
                if dead:
                    insert_dead_letters(cur, dead)
            new_rows = []
            for r in rows:  # the first occurrence of each id stored now (as the live sink keeps)
                if r["request_id"] in stored:
                    stored.discard(r["request_id"])
                    new_rows.append(r)
            if self.drift is not None:
                self.drift.after_store(conn, tag, new_rows)
            store_drilldown(conn, tag, new_rows)
            store_review_texts(conn, tag, new_rows)
            flags = applied_flags(conn) if self.settings.calibration_apply_thresholds else FLAGS
            merge_windows(conn, partials(new_rows, SCORE_NAMES, flags))
            conn.execute("UPDATE stream_watermarks SET max_event_time = greatest(max_event_time, %s), "
                         "updated_at = clock_timestamp() WHERE sink = %s", (watermark, self.sink))
            alerts = self.alerts.evaluate(conn, tag)
        return len(new_rows), alerts


def run_backfill(settings: Settings, database_url: str, paths: list[Path], name: str, *,
                 quality: QualityConfig | None = None, close_all: bool = False,
                 max_days: float = MAX_DAYS,
                 progress: Callable[[str, int], Any] | None = None) -> BackfillReport:
    """Read, score and store ``paths`` under the backfill ``name``; see the module docstring.

    ``close_all``: also evaluate the windows after the last event's watermark (the input is
    complete); by default they stay open, as in the live stream, until a later backfill of the
    same name moves the watermark on. ``max_days``: events more than this before the last one are
    dead letters (one stray timestamp from 2001 must not make the rules walk 25 years of minutes).
    ``progress(what, total)`` gives a context manager with ``update(n)`` (a tqdm bar), or None."""
    from contextlib import nullcontext

    report = BackfillReport(name)
    items = list(read_items(paths, settings, name))
    report.records = len(items)
    bar = progress("scoring", len(items)) if progress else nullcontext()
    with bar as b:
        rows, dead = score_items(items, settings, quality, b.update if b is not None else (lambda n: None))
    if rows:
        floor = rows[-1]["event_time"] - timedelta(days=max_days)
        stale = [r for r in rows if r["event_time"] < floor]
        if stale:
            by_offset = {(i.source, i.offset): i for i in items}
            rows = rows[len(stale):]  # sorted by event time: the stale ones come first
            dead += [_dead(by_offset[(r["source"], r["offset"])],
                           f"event time {r['event_time']:%Y-%m-%d %H:%M} is more than {max_days:g} days "
                           f"before the backfill's last event ({floor + timedelta(days=max_days):%Y-%m-%d}); "
                           "backfill it on its own, or raise --max-days", "range", settings.redact_pii)
                     for r in stale]
    for d in dead:
        key = d["reason"][:60]
        report.reasons[key] = report.reasons.get(key, 0) + 1
    report.dead_letters = len(dead)
    uses_drift = quality is not None and quality.uses("drift")
    drift = (DriftStage(settings.drift_reference_size, settings.drift_window_sample)
             if uses_drift else None)
    backfill = Backfill(settings, name, drift=drift)
    with psycopg.connect(database_url, autocommit=True, options="-c TimeZone=UTC") as conn:
        if not rows:
            if dead:
                backfill.store_chunk(conn, f"{backfill.sink}:dead", [], dead, datetime.min)
            return report
        report.first, report.last = rows[0]["event_time"], rows[-1]["event_time"]
        backfill._start(conn, report.first)
        chunks = _chunks(rows, report.first)
        bar = progress("storing (hours of event time)", len(chunks)) if progress else nullcontext()
        with bar as b:
            for i, (_end, chunk) in enumerate(chunks):
                watermark = chunk[-1]["event_time"]  # as the live sink stores it (before the delay)
                if close_all and i == len(chunks) - 1:  # just past the last event's window
                    watermark = window_start(report.last) + WINDOW + backfill.delay
                stored, alerts = backfill.store_chunk(conn, f"{backfill.sink}:{i}", chunk,
                                                      dead if i == 0 else [], watermark)
                report.stored += stored
                report.duplicates += len(chunk) - stored
                report.alerts += alerts
                if b is not None:
                    b.update(1)
        evaluated = conn.execute("SELECT evaluated_until FROM stream_watermarks WHERE sink = %s",
                                 (backfill.sink,)).fetchone()[0]
        report.windows_evaluated = int((evaluated - report.first.replace(second=0, microsecond=0))
                                       / WINDOW) if evaluated else 0
    return report


def publish_alerts(settings: Settings, database_url: str, name: str) -> int:
    """Publish the backfill's stored alert transitions on ``llm.alerts.v1`` (``--publish``), in
    order, with ``acks=all``; returns how many. They keep their ``replay`` label and alert ids."""
    from parrotwatch.stack.kafka import MAX_MESSAGE_BYTES
    from parrotwatch.stack.kafka_auth import client_options

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT alert_id, event FROM alerts WHERE starts_with(sink_batch, %s) "
                            "ORDER BY id", (f"backfill:{name}:",)).fetchall()
    if not rows:
        return 0
    from kafka import KafkaProducer

    producer = KafkaProducer(**client_options(settings), acks="all", max_request_size=MAX_MESSAGE_BYTES)
    try:
        topic = settings.topic(ALERTS_TOPIC)
        futures = [producer.send(topic, key=alert_id.encode(), value=orjson.dumps(event))
                   for alert_id, event in rows]
        producer.flush()
        for future in futures:  # flush() does not raise for a failed send; get() does
            future.get(timeout=30)
    finally:
        producer.close()
    return len(rows)


def _chunks(rows: list[dict], first: datetime) -> list[tuple[datetime, list[dict]]]:
    """Rows (sorted by event time) cut at each CHUNK of event time after ``first``'s hour;
    (the chunk's end, its rows)."""
    out: list[tuple[datetime, list[dict]]] = []
    base = first.replace(minute=0, second=0, microsecond=0)
    for r in rows:
        end = base + CHUNK * ((r["event_time"] - base) // CHUNK + 1)
        if out and out[-1][0] == end:
            out[-1][1].append(r)
        else:
            out.append((end, [r]))
    return out
