"""``parrotwatch calibrate``: each detector against the reviewers' labels, per segment.

For every detector a label of the schema calibrates (``calibrates:`` in the label schema) and
every segment, (model, app) and ``*``/``*``, over a period (of the requests' event time):

* the labelled review items: ``review_labels -> review_items -> inference_scores``; per item the
  first reviewer's valid yes/no answer (by ``labelled_at``) and the second one's if any; a stored
  answer that is not true/false (a buggy client) is skipped with its reason logged; an item the
  detector did not score is passed with a NaN score (it counts for the reviewers' agreement);
* the raw rate: the flagged share of ALL scored requests of the period and segment (the
  ``inference_scores`` column not null), with the threshold in force: the live applied one
  (``calibration_applied``) when ``calibration_apply_thresholds`` is on, else the metric
  registry's (``parrotwatch.detectors.flags.FLAGS``);
* :func:`parrotwatch.detectors.calibration.calibrate.calibrate_detector` (weighted by 1/pi), whose
  ``to_record()`` fills a ``calibration_records`` row.

A segment with fewer than ``min_labels`` labelled items is logged and not stored. The records
of one run and the calibration alerts they cause (:mod:`.alerts`) are written in one
transaction; the alerts are then published to Kafka for the dispatcher (those Kafka did not
acknowledge, by a later run). Corrections are scored
first (:mod:`.corrections`).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from parrotwatch.db import applied_thresholds
from parrotwatch.detectors.alerting.lifecycle import plain
from parrotwatch.detectors.flags import FLAGS
from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.review import alerts as calibration_alerts
from parrotwatch.review.corrections import CorrectionOutcome, score_corrections
from parrotwatch.review.labels import calibrated_labels, yes_no
from parrotwatch.review.sample import connect_utc
from parrotwatch.settings import Settings

log = logging.getLogger(__name__)

MIN_LABELS = 10
DEFAULT_DAYS = 7.0
ALL = "*"
#: Per-row reasons logged in one run before only their count is (a flood helps nobody).
MAX_LOGGED_REASONS = 20

#: Columns of ``calibration_records`` that ``DetectorCalibration.to_record()`` may fill.
RECORD_FLOATS = ("threshold", "auc", "precision_at", "recall_at", "kappa", "kappa_low",
                 "kappa_high", "alpha", "raw_rate", "corrected_rate", "corrected_low",
                 "corrected_high", "sensitivity", "specificity", "suggested_threshold")
RECORD_INTS = ("labelled", "doubly_labelled")
RECORD_JSON = ("target", "calibration_map", "reliability", "details")

Calibrate = Callable[..., Any]


@dataclass(frozen=True)
class Threshold:
    value: float
    higher_is_worse: bool
    source: str  # "registry" | "applied"


@dataclass
class Segment:
    """One detector's labelled items of one segment, aligned arrays."""

    scores: list[float] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    pi: list[float] = field(default_factory=list)


@dataclass
class StoredRecord:
    version: int
    columns: dict[str, Any]


@dataclass
class CalibrationRun:
    period_start: datetime
    period_end: datetime
    tag: str
    records: list[StoredRecord] = field(default_factory=list)
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)  # detector, model, app, why
    alerts: list = field(default_factory=list)
    published: int = 0
    corrections: CorrectionOutcome | None = None
    bad_rows: Counter = field(default_factory=Counter)


#: a calibration window that ends within this of now is live: its records may alert
LIVE_WINDOW = timedelta(hours=1)


class _Reasons:
    """Per-row skip reasons: the first few logged, all counted."""

    def __init__(self, counter: Counter) -> None:
        self.counter, self.logged = counter, 0

    def skip(self, reason: str, where: str, category: str) -> None:
        """Count ``category`` (stored in a record's details, which the dashboards' reader may
        read: no label value in it) and log the full ``reason`` (with the value) a few times."""
        self.counter[category] += 1
        if self.logged < MAX_LOGGED_REASONS:
            log.warning("calibration: %s skipped: %s", where, reason)
            self.logged += 1


def default_calibrate() -> Calibrate:
    from parrotwatch.detectors.calibration.calibrate import calibrate_detector

    return calibrate_detector


def thresholds_in_force(conn: psycopg.Connection, settings: Settings,
                        detectors: list[str]) -> dict[str, Threshold]:
    """Each detector's flag threshold: applied (when opted in) or the registry's."""
    applied = applied_thresholds(conn) if settings.calibration_apply_thresholds else {}
    found = {}
    for d in detectors:
        flag = FLAGS.get(d)
        if flag is None:
            log.error("calibration: %s has no flag threshold in the metric registry; not calibrated", d)
            continue
        worse = flag.direction == "above"
        found[d] = (Threshold(applied[d], worse, "applied") if d in applied
                    else Threshold(flag.threshold, worse, "registry"))
    return found


def raw_rates(conn: psycopg.Connection, detector: str, threshold: Threshold, start: datetime,
              end: datetime) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(model, app): (scored, flagged)}`` over every scored request of the period whose
    segment and period were drawn for review (the population the labels sample: Se and Sp
    measured on it apply to it), with ``(*, *)`` for all of them."""
    column = sql.Identifier(detector)
    op = sql.SQL(">" if threshold.higher_is_worse else "<")
    query = sql.SQL(
        "SELECT model, app, count(*), count(*) FILTER (WHERE {c} {op} %s) FROM inference_scores q "
        "WHERE event_time >= %s AND event_time < %s AND {c} IS NOT NULL AND {c} <> 'NaN'::float8 "
        "AND EXISTS (SELECT 1 FROM review_samples r WHERE r.model = q.model AND r.app = q.app "
        "AND q.event_time >= r.period_start AND q.event_time < r.period_end) "
        "GROUP BY GROUPING SETS ((model, app), ())").format(c=column, op=op)
    return {(m if m is not None else ALL, a if a is not None else ALL): (n, f)
            for m, a, n, f in conn.execute(query, (threshold.value, start, end))}


def labelled_items(conn: psycopg.Connection, detectors: Mapping[str, str], start: datetime,
                   end: datetime, reasons: _Reasons) -> dict[str, dict[tuple[str, str], Segment]]:
    """``{detector: {(model, app): Segment}}`` of the items labelled in the period (the segment
    ``(*, *)`` holds them all).

    An item's probability is its inclusion probability times its sample's response rate
    (labelled items / drawn items): the items of a sample that nobody labelled (skipped, or not
    reached yet) are taken as missing at random within their sample, the weighting-class
    adjustment of nonresponse (Särndal & Lundström 2005, ch. 8). Without it, a sample labelled
    part way would count as if it were complete, and weigh too little against the others."""
    names = list(detectors)
    columns = sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(d)) for d in names)
    query = sql.SQL(
        "WITH response AS (SELECT i.sample_id, count(DISTINCT l.item_id)::float8 "
        "  / nullif(count(DISTINCT i.item_id), 0) AS rate FROM review_items i "
        "  LEFT JOIN review_labels l ON l.item_id = i.item_id "
        "  WHERE i.event_time >= %s AND i.event_time < %s GROUP BY i.sample_id) "
        "SELECT i.item_id, i.model, i.app, i.inclusion_probability * r.rate, l.reviewer, "
        "l.labels, {cols} "
        "FROM review_items i JOIN review_labels l ON l.item_id = i.item_id "
        "JOIN response r ON r.sample_id = i.sample_id "
        "JOIN inference_scores s ON s.request_id = i.request_id "
        "WHERE i.event_time >= %s AND i.event_time < %s "
        "ORDER BY i.item_id, l.labelled_at, l.reviewer").format(cols=columns)
    answers: dict[tuple[str, int], list[float]] = {}
    items: dict[int, tuple[str, str, float, list]] = {}
    for item_id, model, app, pi, reviewer, labels, *scores in conn.execute(
            query, (start, end, start, end)):
        items[item_id] = (model, app, pi, scores)
        for d, key in detectors.items():
            value, reason = yes_no(labels, key)
            if reason:
                reasons.skip(reason, f"label of item {item_id} by {str(reviewer)[:40]!r} for {d}",
                             f"unreadable {key} label")
            elif value is not None:
                answers.setdefault((d, item_id), []).append(value)
    out: dict[str, dict[tuple[str, str], Segment]] = {d: {} for d in names}
    for item_id, (model, app, pi, scores) in items.items():
        for d, score in zip(names, scores, strict=True):
            given = answers.get((d, item_id))
            if not given:
                continue
            # an item the detector did not score still counts for agreement between reviewers;
            # calibrate_detector leaves it (NaN) out of the score-based statistics
            value = float(score) if score is not None and math.isfinite(score) else float("nan")
            for seg in ((model, app), (ALL, ALL)):
                s = out[d].setdefault(seg, Segment())
                s.scores.append(value)
                s.labels.append(given[0])
                s.second.append(given[1] if len(given) > 1 else float("nan"))
                s.pi.append(float(pi))
    return out


def _clean_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def record_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    """``to_record()``'s dict as storable column values: non-finite numbers as NULL, JSON plain."""
    out: dict[str, Any] = {}
    for key in RECORD_FLOATS:
        out[key] = _clean_float(record.get(key))
    for key in RECORD_INTS:
        out[key] = int(record.get(key) or 0)
    for key in RECORD_JSON:
        value = record.get(key)
        out[key] = plain(value) if value is not None else None
    out["details"] = out["details"] or {}
    unknown = set(record) - set(RECORD_FLOATS) - set(RECORD_INTS) - set(RECORD_JSON)
    if unknown:
        log.debug("calibration record keys not stored: %s", sorted(unknown))
    return out


def _insert(conn: psycopg.Connection, columns: dict[str, Any]) -> int:
    names = list(columns)
    values = [Jsonb(v) if k in RECORD_JSON and v is not None else v for k, v in columns.items()]
    query = sql.SQL("INSERT INTO calibration_records ({}) VALUES ({}) RETURNING version").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names)))
    return conn.execute(query, values).fetchone()[0]


def calibrate_all(url: str, settings: Settings, *, start: datetime | None = None,
                  end: datetime | None = None, target_precision: float | None = None,
                  target_recall: float | None = None, min_labels: int = MIN_LABELS, seed: int = 0,
                  level: float = 0.95, publish: bool = True, alert: bool | None = None,
                  kappa_level: float = calibration_alerts.KAPPA_LEVEL,
                  calibrate: Calibrate | None = None) -> CalibrationRun:
    """Calibrate every calibrated detector and segment over [start, end) (default: the last
    :data:`DEFAULT_DAYS` days, by the database clock) and store the records and alerts.

    ``alert``: whether the records may fire or resolve calibration alerts; by default only a
    run over a window that ends about now (within :data:`LIVE_WINDOW`) does, so that a backfill
    over last month neither fires nor resolves the live alerts."""
    calibrate = calibrate or default_calibrate()
    if target_precision is None and target_recall is None:
        target_precision = settings.calibration_target_precision
    detectors = {d: k for d, k in calibrated_labels(settings.review_labels).items() if d in SCORE_NAMES}
    with connect_utc(url) as conn:
        conn.autocommit = True
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        end = end or now
        start = start or end - timedelta(days=DEFAULT_DAYS)
        if not start < end:
            raise ValueError(f"the period's start {start} must be before its end {end}")
        run = CalibrationRun(start, end, f"calibration:{now:%Y%m%dT%H%M%S}:{uuid.uuid4().hex[:8]}")
        with conn.transaction():
            run.corrections = score_corrections(conn)
        thresholds = thresholds_in_force(conn, settings, list(detectors))
        detectors = {d: k for d, k in detectors.items() if d in thresholds}
        if not detectors:
            log.warning("calibration: no label of the schema calibrates a detector with a threshold")
            return run
        reasons = _Reasons(run.bad_rows)
        items = labelled_items(conn, detectors, start, end, reasons)
        planned = []
        for d, label in detectors.items():
            threshold = thresholds[d]
            rates = raw_rates(conn, d, threshold, start, end)
            for (model, app), seg in sorted(items[d].items()):
                why = _plan(seg, rates.get((model, app)), min_labels)
                if why is None:
                    scored, flagged = rates[(model, app)]
                    try:
                        result = calibrate(
                            np.asarray(seg.scores), np.asarray(seg.labels), np.asarray(seg.pi),
                            threshold=threshold.value, raw_rate=flagged / scored,
                            higher_is_worse=threshold.higher_is_worse,
                            second_labels=np.asarray(seg.second), target_precision=target_precision,
                            target_recall=target_recall, seed=seed, level=level)
                        columns = record_columns(result.to_record())
                    except Exception as exc:  # noqa: BLE001 (one segment's data must not stop the rest)
                        why = f"calibration failed: {type(exc).__name__}: {str(exc)[:300]}"
                        log.warning("calibration of %s on %s/%s failed", d, model[:80], app[:80],
                                    exc_info=not isinstance(exc, ValueError))
                if why is not None:
                    run.skipped.append((d, model, app, why))
                    log.info("calibration of %s on %s/%s not stored: %s", d, model[:80], app[:80], why)
                    continue
                columns["details"] = {**columns["details"], "threshold_source": threshold.source,
                                      "raw_scored": scored, "raw_flagged": flagged, "seed": seed,
                                      "skipped_rows": dict(run.bad_rows)}
                planned.append({"detector": d, "label": label, "model": model, "app": app,
                                "period_start": start, "period_end": end, **columns})
        with conn.transaction():
            for columns in planned:
                version = _insert(conn, columns)
                run.records.append(StoredRecord(version, {"version": version, **columns}))
            if alert is None:
                alert = end >= now - LIVE_WINDOW
            if alert:
                run.alerts = calibration_alerts.emit(conn, [r.columns for r in run.records], run.tag,
                                                     now, kappa_level=kappa_level)
    if run.bad_rows:
        log.warning("calibration: rows skipped: %s", dict(run.bad_rows))
    if publish:  # this run's alerts, and any an earlier run could not publish
        try:
            with connect_utc(url) as conn:
                conn.autocommit = True
                run.published = calibration_alerts.publish_pending(conn, settings)
        except Exception as exc:  # noqa: BLE001 (stored alerts stay pending; Kafka may be down)
            log.error("calibration: alerts stored but not published to Kafka (%s: %s); the next "
                      "calibration publishes them again", type(exc).__name__, exc)
    return run


def _plan(seg: Segment, rate: tuple[int, int] | None, min_labels: int) -> str | None:
    """Why a segment is not calibrated, or None."""
    if len(seg.labels) < min_labels:
        return f"{len(seg.labels)} labelled item(s), fewer than {min_labels}"
    if rate is None or rate[0] == 0:
        return "no scored request in the period"
    return None
