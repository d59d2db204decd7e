"""Rule evaluation in the stream: closed windows -> ``parrotwatch.detectors.alerting.Evaluator`` -> alerts.

A window is closed once the stream's watermark (the largest event time stored, minus
``watermark_delay``) passes its end. Each closed window is evaluated once, in order, for every
segment seen in the last ``segment_horizon`` (a segment with no traffic gets a zero-count
window, so a throughput drop is visible). The evaluator's state, the alerts and the evaluation
mark are written in the inference sink's transaction: exactly once, replay or not.

The state is versioned JSON (``Evaluator.to_state()``, a jsonb column), never a pickle: loading
runs no code. A state this code cannot restore (a version it cannot migrate, anything
malformed) is logged with its reason and the evaluator starts afresh; it never fails the
micro-batch, which would fail again on every replay.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from parrotwatch.contracts import AlertEventV1
from parrotwatch.detectors.alerting import Evaluator, RuleSet
from parrotwatch.detectors.alerting.evaluate import STATE_VERSION, MetricStats, WindowAggregate
from parrotwatch.settings import ALERTS_TOPIC, Settings
from parrotwatch.streaming.drift_stage import DriftStage, drift_p_values
from parrotwatch.streaming.windows import WINDOW

SEGMENT_HORIZON = timedelta(hours=6)
WINDOWS_PER_PASS = 1440  # windows evaluated (and loaded) at once: a day of one-minute windows
MAX_CATCH_UP = timedelta(days=1)  # a backlog from long ago evaluates its last day only (live)

log = logging.getLogger(__name__)


def restore_evaluator(ruleset: RuleSet, rules_hash: str, row: tuple[str, Any] | None) -> Evaluator:
    """The evaluator of a stored ``(rules_hash, state JSON text)`` row; a fresh one when there is
    no row, when the rules changed, or (logged at WARNING with the reason) when the state cannot
    be restored. Never raises: a stored state must not fail the micro-batch."""
    if row is None:
        return Evaluator(ruleset)
    stored_hash, text = row
    if stored_hash != rules_hash:
        log.info("alert rules changed (%s -> %s): the evaluator starts afresh", stored_hash, rules_hash)
        return Evaluator(ruleset)
    try:
        state = json.loads(text) if isinstance(text, str | bytes) else text
        evaluator = Evaluator.from_state(ruleset, state)
    except Exception as exc:  # whatever the stored state holds, scoring goes on
        log.warning("alert evaluator state reset, starting afresh (open alerts are forgotten, "
                    "baselines relearn): %s", f"{type(exc).__name__}: {exc}"[:2000])
        return Evaluator(ruleset)
    if state["version"] != STATE_VERSION:
        log.info("alert evaluator state migrated from version %s to %s", state["version"], STATE_VERSION)
    return evaluator


def dump_state(evaluator: Evaluator) -> str:
    """``evaluator.to_state()`` as JSON text for the jsonb column (no NaN: jsonb refuses it)."""
    return json.dumps(evaluator.to_state(), allow_nan=False, separators=(",", ":"))


class AlertStage:
    """Evaluates the closed windows of one watermark ``name`` (``stream_watermarks.sink``) with its
    own evaluator state (``alert_evaluator_state.name``): ``inference`` for the live stream, one
    per backfill (``backfill:<name>``, whose alerts carry ``replay_label``, see
    :mod:`parrotwatch.streaming.backfill`)."""

    def __init__(self, settings: Settings, ruleset: RuleSet, rules_text: str,
                 watermark_delay: timedelta, drift: DriftStage | None = None, *,
                 name: str = "inference", replay_label: str | None = None,
                 max_catch_up: timedelta = MAX_CATCH_UP) -> None:
        self.settings = settings
        self.drift = drift
        self.ruleset = ruleset
        self.rules_hash = hashlib.sha256(rules_text.encode()).hexdigest()[:16]
        self.delay = watermark_delay
        self.name = name
        self.replay_label = replay_label
        self.max_catch_up = max_catch_up

    # -- state -------------------------------------------------------------------------------
    def _load(self, conn: psycopg.Connection) -> Evaluator:
        # As text: the JSON is parsed inside restore_evaluator, where any failure is a reset.
        row = conn.execute("SELECT rules_hash, state::text FROM alert_evaluator_state "
                           "WHERE name = %s FOR UPDATE", (self.name,)).fetchone()
        return restore_evaluator(self.ruleset, self.rules_hash, row)

    def _save(self, conn: psycopg.Connection, evaluator: Evaluator) -> None:
        conn.execute(
            "INSERT INTO alert_evaluator_state (name, rules_hash, state) VALUES (%s, %s, "
            "%s::jsonb) ON CONFLICT (name) DO UPDATE SET rules_hash = EXCLUDED.rules_hash, "
            "state = EXCLUDED.state, updated_at = clock_timestamp()",
            (self.name, self.rules_hash, dump_state(evaluator)))

    # -- windows -----------------------------------------------------------------------------
    def _closed_window_starts(self, conn: psycopg.Connection) -> list[datetime]:
        row = conn.execute("SELECT max_event_time, evaluated_until FROM stream_watermarks "
                           "WHERE sink = %s FOR UPDATE", (self.name,)).fetchone()
        if row is None:
            return []
        watermark, done = row[0] - self.delay, row[1]
        if done is None:
            first = conn.execute("SELECT min(window_start) FROM window_counts "
                                 "WHERE model <> '*'").fetchone()[0]
            if first is None:
                return []
            done = first
        starts = []
        start = max(done, (watermark - self.max_catch_up).replace(second=0, microsecond=0))
        while start + WINDOW <= watermark:
            starts.append(start)
            start += WINDOW
        return starts



    # -- hooks of the inference sink ---------------------------------------------------------
    def evaluate(self, conn: psycopg.Connection, tag: str) -> int:
        """Evaluate the windows closed since the last call, a day of windows at a time (bounded
        memory however far the watermark jumped); returns the alerts emitted."""
        starts = self._closed_window_starts(conn)
        return sum(self._evaluate(conn, tag, starts[i:i + WINDOWS_PER_PASS])
                   for i in range(0, len(starts), WINDOWS_PER_PASS))

    def _evaluate(self, conn: psycopg.Connection, tag: str, starts: list[datetime]) -> int:
        if self.drift is not None:
            self.drift.test_windows(conn, starts)
        evaluator = self._load(conn)
        windows = load_windows(conn, starts)
        try:
            events = [AlertEventV1.model_validate(self._mark(e)) for e in evaluator.evaluate(windows)]
        except Exception as exc:  # a window the rules cannot judge must not fail every batch
            # The evaluator is pure, so nothing was written: keep the state from before these
            # windows, mark them evaluated without alerts, and say so. The next windows go on.
            log.error("alert rules failed on the windows %s to %s, skipped without alerts: %s",
                      starts[0], starts[-1] + WINDOW, f"{type(exc).__name__}: {exc}"[:2000])
            evaluator, events = self._load(conn), []
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alerts (alert_id, status, rule, severity, model, app, metric, "
                "starts_at, ends_at, value, baseline, threshold, summary, event, sink_batch) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(e.alert_id, e.status, e.rule, e.severity, e.labels.get("model"),
                  e.labels.get("app"), e.labels.get("metric"), e.starts_at, e.ends_at, e.value,
                  e.baseline, e.threshold, e.summary, e.model_dump_json(), tag) for e in events])
        conn.execute("UPDATE stream_watermarks SET evaluated_until = %s WHERE sink = %s",
                     (starts[-1] + WINDOW, self.name))
        self._save(conn, evaluator)
        return len(events)

    def _mark(self, event: dict) -> dict:
        """A replayed alert: label ``replay`` and its own alert id, so it never continues,
        resolves or deduplicates against a live alert of the same rule and segment."""
        if self.replay_label is None:
            return event
        return {**event, "alert_id": f"{event['alert_id']}@{self.replay_label}",
                "labels": {**event["labels"], "replay": self.replay_label}}

    def evaluate_silence(self, conn: psycopg.Connection, tag: str, silent_for: timedelta,
                         live_horizon: timedelta) -> int | None:
        """A total outage: when no event was stored for ``silent_for`` (wall clock) while the
        watermark was live (within ``live_horizon`` + ``silent_for`` of the clock), move the
        watermark to now - ``silent_for`` and evaluate the windows that closes, with zero counts
        for every recent segment. Returns the alerts emitted, or None when nothing moved.

        Event-time windows otherwise wait for the next event forever: with no traffic at all no
        micro-batch runs. ``updated_at`` is left alone, so the next call moves it on again, and
        the first stored event ends the silence. Events that arrive later for windows evaluated
        here are stored but, as any late event, no longer change their window's verdict.
        """
        row = conn.execute("SELECT max_event_time, updated_at, clock_timestamp() FROM stream_watermarks "
                           "WHERE sink = 'inference' FOR UPDATE").fetchone()
        if row is None:
            return None
        base, updated_at, now = row
        target = now - silent_for
        if now - updated_at < silent_for or base <= target - live_horizon or target <= base:
            return None
        conn.execute("UPDATE stream_watermarks SET max_event_time = %s WHERE sink = 'inference'",
                     (target,))
        return self.evaluate(conn, tag)

    def messages(self, conn: psycopg.Connection, tag: str,
                 skip_superseded: bool = False) -> list[tuple[str, bytes, bytes]]:
        """The alert events stored under ``tag``, as ``llm.alerts.v1`` messages. With
        ``skip_superseded``, not those a later transition stored under another tag replaced (a
        late send must not undo a "resolved" already published)."""
        topic = self.settings.topic(ALERTS_TOPIC)
        superseded = (" AND NOT EXISTS (SELECT 1 FROM alerts b WHERE b.alert_id = a.alert_id "
                      "AND b.id > a.id AND b.sink_batch <> a.sink_batch)" if skip_superseded else "")
        return [(topic, alert_id.encode(), orjson.dumps(event)) for alert_id, event in
                conn.execute(f"SELECT a.alert_id, a.event FROM alerts a WHERE a.sink_batch = %s"
                             f"{superseded} ORDER BY a.id", (tag,))]


def load_windows(conn: psycopg.Connection, starts: list[datetime]) -> list[WindowAggregate]:
    """The evaluator's typed window aggregates, zero-filled for every segment seen in the
    ``SEGMENT_HORIZON`` before the first window."""
    segments = conn.execute(
        "SELECT DISTINCT model, app FROM window_counts WHERE model NOT IN ('*', 'unknown') "
        "AND window_start > %s AND window_start <= %s",
        (starts[0] - SEGMENT_HORIZON, starts[-1])).fetchall()
    counts = {(m, a, s): (n, ex) for m, a, s, n, ex in conn.execute(
        "SELECT model, app, window_start, requests, examples FROM window_counts "
        "WHERE window_start = ANY(%s)", (starts,))}
    # Feedback per segment of the rated request, joined now rather than when the feedback was
    # stored: feedback that arrived before its request still lands in the right segment.
    feedback = {(m, a, s): (n, down) for m, a, s, n, down in conn.execute(
        "SELECT i.model, i.app, date_trunc('minute', f.event_time) AS w, count(*), "
        "count(*) FILTER (WHERE f.thumb = -1) FROM feedback f "
        "JOIN inference_scores i ON i.request_id = f.request_id "
        "WHERE f.event_time >= %s AND f.event_time < %s GROUP BY 1, 2, 3",
        (starts[0], starts[-1] + WINDOW))}
    metrics: dict[tuple, dict[str, MetricStats]] = {}
    for m, a, s, metric, n, mean, p50, p95, p99, flagged in conn.execute(
            "SELECT model, app, window_start, metric, n, mean, p50, p95, p99, flagged "
            "FROM window_metrics WHERE window_start = ANY(%s)", (starts,)):
        metrics.setdefault((m, a, s), {})[metric] = MetricStats(n, mean, p50, p95, p99, flagged)
    drift = drift_p_values(conn, starts)
    windows = []
    for s in starts:
        for m, a in segments:
            n, ex = counts.get((m, a, s), (0, []))
            fb, td = feedback.get((m, a, s), (0, 0))
            windows.append(WindowAggregate(
                window_start=s, window_end=s + WINDOW, model=m, app=a, count=n, feedback_count=fb,
                thumbs_down=td, drift_p_value=drift.get((m, a, s)), metrics=metrics.get((m, a, s), {}),
                examples=list(ex)))
    return windows


def windows_between(conn: psycopg.Connection, first: datetime, last: datetime) -> list[dict]:
    """Every window start from ``first`` to ``last`` (inclusive), loaded with :func:`load_windows`,
    in the flat layout (``WindowAggregate.as_flat()``: ``model``, ``count``, ``latency_ms_p99``,
    ...) that ``Evaluator.evaluate`` also takes."""
    starts, start = [], first.replace(second=0, microsecond=0)
    while start <= last:
        starts.append(start)
        start += WINDOW
    return [w.as_flat() for w in load_windows(conn, starts)]
