"""The scoring job: ``python -m parrotwatch.streaming.job`` (or ``spark-submit`` of this file).

Two streaming queries in one Spark application:

* ``llm.inference.v1`` -> parse, validate, score -> ``inference_scores`` + ``llm.scores.v1``
* ``llm.feedback.v1``  -> parse, validate         -> ``feedback``
and every invalid record of either -> ``dead_letters`` + ``llm.dlq.v1`` with its reason.
Checkpoints live under ``$PARROTWATCH_HOME/checkpoints``.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from parrotwatch.contracts.review_labels import LabelSchemaError, calibration_labels, load_label_schema
from parrotwatch.db import connect, delete_expired_review_texts, migrate
from parrotwatch.detectors.alerting import load_rules
from parrotwatch.detectors.alerting.rules import DEFAULT_RULES_PATH as DEFAULT_RULES
from parrotwatch.detectors.calibration.sampling import PoolDesign
from parrotwatch.detectors.flags import FLAGS
from parrotwatch.quality import QualityConfig
from parrotwatch.settings import FEEDBACK_TOPIC, INFERENCE_TOPIC, Settings, load_settings
from parrotwatch.stack.kafka_auth import client_options
from parrotwatch.stack.urls import database_url
from parrotwatch.streaming.alert_stage import AlertStage
from parrotwatch.streaming.derived import (
    applied_flags,
    feedback_after_store,
    inference_after_store,
    store_drilldown,
    store_review_texts,
)
from parrotwatch.streaming.drift_stage import DriftStage
from parrotwatch.streaming.session import build_session
from parrotwatch.streaming.silence import SilenceClock
from parrotwatch.streaming.sinks import FEEDBACK_TABLE, INFERENCE_TABLE, TransactionalSink, sink_identity
from parrotwatch.streaming.transforms import parse_feedback_rows, read_kafka, score_inference

log = logging.getLogger("parrotwatch.stream")


def alert_stage(settings: Settings, drift: DriftStage | None = None) -> AlertStage:
    path = settings.alert_rules or DEFAULT_RULES
    text = Path(path).read_text()
    return AlertStage(settings, load_rules(text), text,
                      timedelta(seconds=settings.watermark_delay_seconds), drift=drift,
                      max_catch_up=timedelta(hours=settings.alert_catch_up_hours))


def review_pool(settings: Settings) -> PoolDesign | None:
    """Which requests' texts the stream keeps for human review (docs/review.md); None = none,
    also when the label schema cannot be read (scoring goes on; the error is logged)."""
    if settings.review_pool_rate <= 0:
        return None
    try:
        detectors = calibration_labels(load_label_schema(settings.review_labels))
    except LabelSchemaError as exc:
        log.error("no review texts are kept: the label schema is broken (%s)", exc)
        return None
    thresholds = tuple((d, FLAGS[d].threshold, FLAGS[d].direction == "above")
                       for d in detectors if d in FLAGS)
    return PoolDesign(settings.review_pool_rate, settings.review_pool_near_rate,
                      settings.review_pool_flagged_rate, settings.review_near, thresholds)


def start_queries(spark, settings: Settings, db_url: str) -> tuple[list, list, SilenceClock | None]:
    """The two queries (inference first), their sinks, and the inference stream's silence clock
    (None when ``silence_after_seconds`` is 0)."""
    queries, sinks = [], []
    quality = replace(QualityConfig.from_settings(settings),
                      torch_threads=int(spark.conf.get("spark.task.cpus", "1")))
    drift = (DriftStage(settings.drift_reference_size, settings.drift_window_sample)
             if quality.uses("drift") else None)
    alerts = alert_stage(settings, drift)

    def inference_then_alerts(conn, tag, new_rows, dead_letters) -> None:
        if drift is not None:
            drift.after_store(conn, tag, new_rows)
        store_drilldown(conn, tag, new_rows)
        store_review_texts(conn, tag, new_rows)
        flags = applied_flags(conn) if settings.calibration_apply_thresholds else FLAGS
        inference_after_store(conn, tag, new_rows, dead_letters, flags)
        alerts.evaluate(conn, tag)

    plans = [
        ("inference", INFERENCE_TOPIC, score_inference, INFERENCE_TABLE, inference_then_alerts,
         alerts.messages),
        ("feedback", FEEDBACK_TOPIC, parse_feedback_rows, FEEDBACK_TABLE, feedback_after_store,
         None),
    ]
    index = str(settings.regurgitation_index) if settings.regurgitation_index else None
    extra_args = {"inference": (index, quality, review_pool(settings), settings.redact_pii)}
    before = {"inference": drift.before_store if drift is not None else None}
    forget = {"inference": drift.forget if drift is not None else None}
    for name, topic, step, spec, after_store, extra in plans:
        checkpoint = settings.checkpoints_dir / f"{settings.topic_prefix}{name}"
        sink = TransactionalSink(settings, spec, sink_identity(checkpoint, name), db_url,
                                 after_store=after_store, extra_messages=extra,
                                 before_store=before.get(name), forget=forget.get(name))
        query = (
            read_kafka(spark, settings, settings.topic(topic))
            .transform(step, settings.max_event_bytes, *extra_args.get(name, ()))
            .writeStream.foreachBatch(sink)
            .option("checkpointLocation", str(checkpoint / "spark"))
            .trigger(processingTime=f"{settings.trigger_seconds} seconds")
            .queryName(f"{settings.topic_prefix}{name}")
            .start()
        )
        queries.append(query)
        sinks.append(sink)
    silent_for = timedelta(seconds=settings.silence_after_seconds)
    silence = (SilenceClock(alerts, db_url, settings.bootstrap, silent_for,
                            every=min(timedelta(seconds=30), silent_for / 2),
                            kafka_security=client_options(settings))
               if settings.silence_after_seconds else None)
    return queries, sinks, silence


def write_status(settings: Settings, queries: list) -> None:
    """``run/stream-status.json``: what ``parrotwatch status`` shows of the stream."""
    status = {
        "updated_at": time.time(),
        "queries": {
            q.name: {"active": q.isActive, "progress": q.lastProgress} for q in queries
        },
    }
    path = settings.stream_status_file
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, default=str))
    tmp.replace(path)


def log_progress(queries: list, logged: dict[str, int]) -> None:
    """One line per finished micro-batch that moved data: where its time went (Spark's durationMs:
    latestOffset, queryPlanning, addBatch = our sink, walCommit, commitOffsets, ...)."""
    for q in queries:
        progress = q.lastProgress
        if not progress or progress.get("numInputRows", 0) == 0:
            continue
        batch = progress.get("batchId", -1)
        if logged.get(q.name) == batch:
            continue
        logged[q.name] = batch
        log.info("query %s batch %s: %s rows, %s", q.name, batch, progress.get("numInputRows"),
                 " ".join(f"{k}={v}" for k, v in sorted(progress.get("durationMs", {}).items())))


class ReviewRetention:
    """Deletes expired review texts every ``every`` seconds, on its own connection (never in a
    sink's transaction), so that their retention holds even where no review job runs."""

    def __init__(self, settings: Settings, db_url: str, every: float = 600.0) -> None:
        self.settings, self.db_url, self.every = settings, db_url, every
        self.next_at = time.monotonic()

    def tick(self) -> None:
        if self.settings.review_pool_rate <= 0 or time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.every
        try:
            with connect(self.db_url, autocommit=True) as conn:
                expired, old = delete_expired_review_texts(conn, self.settings.review_text_days)
            if expired or old:
                log.info("review retention: %d expired item texts, %d old pool texts deleted",
                         expired, old)
        except Exception:  # database away: the next tick tries again
            log.warning("review retention failed; trying again later", exc_info=True)


def run_until_stopped(spark, settings: Settings, db_url: str, stopping: list[bool]) -> int:
    """Run the queries; when one fails (broker or database away), restart all from their
    checkpoints with exponential backoff. Returns the exit code once asked to stop."""
    backoff = 2.0
    retention = ReviewRetention(settings, db_url)
    while not stopping:
        started = time.monotonic()
        queries, sinks, silence = start_queries(spark, settings, db_url)
        log.info("streaming queries started: %s", [q.name for q in queries])
        logged: dict[str, int] = {}
        while all(q.isActive for q in queries) and not stopping:
            write_status(settings, queries)
            try:
                log_progress(queries, logged)
            except Exception:  # a log line must never stop the job
                log.debug("progress not logged", exc_info=True)
            if silence is not None:
                try:
                    silence.tick(queries[0])
                except Exception:  # database or broker away: the queries restart on their own
                    log.warning("silence check failed; trying again later", exc_info=True)
            retention.tick()
            time.sleep(1.0)
        for q in queries:
            if q.isActive:
                q.stop()
        write_status(settings, queries)
        if silence is not None:
            silence.close()
        for sink in sinks:
            try:
                sink.close()
            except Exception:  # a sink that cannot close must not end the restart loop
                log.exception("closing a sink failed; restarting anyway")
        failed = [q for q in queries if q.exception() is not None]
        if not failed or time.monotonic() - started > 300:  # ran fine for a while: start over
            backoff = 2.0
        if not failed:
            continue
        for q in failed:
            log.error("query %s failed; restarting from its checkpoint in %.0fs: %s",
                      q.name, backoff, str(q.exception()).splitlines()[0])
        time.sleep(backoff)
        backoff = min(backoff * 2, 60.0)
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = load_settings()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    db_url = database_url(settings)
    migrate(db_url)
    spark = build_session(settings)
    stopping: list[bool] = []

    def stop(signum, _frame):
        log.info("signal %s: stopping after the current micro-batch", signum)
        stopping.append(True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return run_until_stopped(spark, settings, db_url, stopping)
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
