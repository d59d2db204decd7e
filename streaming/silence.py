"""Total outages: the stream's windows close on the wall clock once every event source went silent.

Windows close on event time (``parrotwatch.streaming.alert_stage``): with no traffic at all, no micro-batch
runs and
no window ever closes, so the worst outage of all would raise no alert. The job's driver calls
:meth:`SilenceClock.tick` about once a second. Every ``every`` it checks that the inference query
has caught up (its last trigger read nothing and its Kafka source has no offsets left: a job that
restarts on a backlog is not silent, it is busy), then lets
:meth:`parrotwatch.streaming.alert_stage.AlertStage.evaluate_silence` move the watermark to
now - ``silent_for`` and evaluate, in one transaction. The alerts it emits are published to
``llm.alerts.v1`` after the commit, at least once (``silence_evaluations.published_at``), for the dispatcher.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from kafka import KafkaProducer

from parrotwatch.streaming.alert_stage import AlertStage

log = logging.getLogger("parrotwatch.stream")

#: a watermark further behind the clock than this is a replay or a backfill, never an outage
LIVE_HORIZON = timedelta(hours=1)
#: an idle query's progress is at most ~10 s old (spark.sql.streaming.noDataProgressEventInterval)
PROGRESS_FRESH = timedelta(seconds=30)


def _offsets(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def caught_up(progress: dict | None, status: dict, now: datetime) -> bool:
    """Whether the query is idle at the end of its topic: no trigger running and no data waiting
    (``status``), and its last progress (an idle one, which Spark records every 10 s) read no rows,
    with each source's end offsets equal to its latest and not older than ``PROGRESS_FRESH``.

    While a micro-batch runs, ``lastProgress`` still shows the trigger before it, which may be idle:
    without the status and freshness checks a batch slower than the silence would look silent.
    """
    if status.get("isTriggerActive", True) or status.get("isDataAvailable", True):
        return False
    if not progress or progress.get("numInputRows", 1) != 0:
        return False
    stamp = progress.get("timestamp")
    if not stamp or now - datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) > PROGRESS_FRESH:
        return False
    sources = progress.get("sources") or []
    for source in sources:
        end, latest = _offsets(source.get("endOffset")), _offsets(source.get("latestOffset"))
        if end is None or latest is None or end != latest:  # PySpark reports a JSON null as "null"
            return False
    return bool(sources)


class SilenceClock:
    """Wall-clock evaluation of a silent stream (see the module docstring)."""

    def __init__(self, alerts: AlertStage, database_url: str, bootstrap: str, silent_for: timedelta,
                 every: timedelta = timedelta(seconds=30), live_horizon: timedelta = LIVE_HORIZON,
                 kafka_security: dict[str, Any] | None = None):
        """``kafka_security``: kafka-python security options (``kafka_auth.client_options``)."""
        self.alerts, self.database_url, self.bootstrap = alerts, database_url, bootstrap
        self.kafka_security = {k: v for k, v in (kafka_security or {}).items()
                               if k != "bootstrap_servers"}
        self.silent_for, self.every, self.live_horizon = silent_for, every, live_horizon
        self._next = 0.0
        self._producer: KafkaProducer | None = None

    def tick(self, query) -> int | None:
        """Evaluate when due and the inference ``query`` is idle at the end of its topic; returns the
        alerts emitted, None when nothing moved. Bounded waits: it runs in the job's supervision loop."""
        if time.monotonic() < self._next:
            return None
        self._next = time.monotonic() + self.every.total_seconds()
        emitted = None
        if caught_up(query.lastProgress, query.status, datetime.now(UTC)):
            tag = f"silence:{datetime.now(UTC).isoformat()}"
            try:
                with self._connect() as conn:
                    # a sink batch holds the watermark row: it is not silent, give way to it at once
                    conn.execute("SET LOCAL lock_timeout = '500ms'")
                    emitted = self.alerts.evaluate_silence(conn, tag, self.silent_for, self.live_horizon)
                    if emitted is not None:
                        conn.execute("INSERT INTO silence_evaluations (tag, alerts) VALUES (%s, %s)",
                                     (tag, emitted))
            except psycopg.errors.LockNotAvailable:
                return None
            if emitted is not None:  # every `every` while silent: loud only when it alerts
                log.log(logging.INFO if emitted else logging.DEBUG,
                        "no traffic for %s: windows closed on the wall clock, %s alert(s)",
                        self.silent_for, emitted)
        self.publish_pending()
        return emitted

    def publish_pending(self) -> int:
        """Send the alerts of silence evaluations not yet published; returns the messages sent."""
        sent = 0
        with self._connect() as conn:
            tags = [r[0] for r in conn.execute("SELECT tag FROM silence_evaluations WHERE "
                                               "published_at IS NULL AND alerts > 0 ORDER BY tag")]
            for tag in tags:
                # published late: never over a newer transition the sink already sent
                messages = self.alerts.messages(conn, tag, skip_superseded=True)
                producer = self._kafka()
                for future in [producer.send(topic, key=key, value=value)
                               for topic, key, value in messages]:
                    future.get(timeout=10)  # raises: published_at stays unset, sent next tick
                conn.execute("UPDATE silence_evaluations SET published_at = clock_timestamp() "
                             "WHERE tag = %s", (tag,))
                conn.commit()
                sent += len(messages)
        return sent

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, options="-c TimeZone=UTC", connect_timeout=5)

    def _kafka(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, **self.kafka_security,
                                           acks="all",
                                           enable_idempotence=True, client_id="parrotwatch-silence")
        return self._producer

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=10)
            except Exception:  # closing must not stop the job's restart loop
                log.warning("closing the silence clock's producer failed", exc_info=True)
