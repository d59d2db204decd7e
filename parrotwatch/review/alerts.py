"""Alerts on calibration: a detector that stops agreeing with people, or whose raw flagged share
misstates the true rate of bad answers.

Two rules, checked on every stored calibration record (one detector and segment):

* ``calibration_agreement_low``: Cohen's (1960) kappa between the detector's flags and the
  reviewers' labels below ``kappa_level`` (0.4: "fair" agreement at best on Landis & Koch's 1977
  scale). Severity ``critical`` when even the kappa CI's upper bound is below it, else
  ``warning``.
* ``calibration_rate_diverges``: the raw flagged share outside the CI of the Rogan-Gladen (1978)
  corrected rate, and further from it than ``min_divergence`` (0.05): the dashboards' raw rates
  are biased by more than sampling noise.

Alerts follow the stream's lifecycle per fingerprint (``alert_id`` from
:func:`parrotwatch.detectors.alerting.lifecycle.fingerprint` of the rule and labels): a
``firing`` transition when a condition starts to hold, ``resolved`` when a later record of the
same detector and segment no longer meets it. They are stored in the ``alerts`` table (what
``parrotwatch alerts`` and the Alerts dashboard read), with ``sink_batch`` =
``calibration:<run>``, in the transaction of the records, then published to ``llm.alerts.v1``,
where the dispatcher routes them to its receivers like every stream alert.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.detectors.alerting.lifecycle import fingerprint, plain
from parrotwatch.settings import ALERTS_TOPIC, Settings

log = logging.getLogger(__name__)

AGREEMENT = "calibration_agreement_low"
DIVERGENCE = "calibration_rate_diverges"
KAPPA_LEVEL = 0.4
MIN_DIVERGENCE = 0.05


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one record: ``condition`` True (bad), False (clear), None (no data)."""

    rule: str
    condition: bool | None
    severity: str
    value: float | None
    threshold: float | None
    baseline: float | None
    summary: str


def _num(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    if value is None or isinstance(value, bool | str | bytes):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def check_record(record: Mapping[str, Any], *, kappa_level: float = KAPPA_LEVEL,
                 min_divergence: float = MIN_DIVERGENCE) -> list[Finding]:
    """The two rules' verdicts on one record (the columns of ``calibration_records``).

    >>> [f.condition for f in check_record({"kappa": 0.2, "kappa_high": 0.5, "raw_rate": 0.1,
    ...     "corrected_rate": 0.3, "corrected_low": 0.2, "corrected_high": 0.4})]
    [True, True]
    >>> [f.severity for f in check_record({"kappa": 0.2, "kappa_high": 0.3})][:1]
    ['critical']
    >>> [f.condition for f in check_record({"kappa": 0.8, "raw_rate": 0.1, "corrected_rate": 0.12,
    ...     "corrected_low": 0.05, "corrected_high": 0.2})]
    [False, False]
    """
    detector = record.get("detector", "detector")
    kappa, high = _num(record, "kappa"), _num(record, "kappa_high")
    if kappa is None:
        agreement = Finding(AGREEMENT, None, "warning", None, kappa_level, None, "")
    else:
        sure = high is not None and high < kappa_level
        ci = f" (CI upper bound {high:.2f})" if high is not None else ""
        agreement = Finding(
            AGREEMENT, kappa < kappa_level, "critical" if sure else "warning", kappa, kappa_level,
            None, f"{detector} agrees with the reviewers at kappa {kappa:.2f}{ci}, below "
                  f"{kappa_level:g}: its flags are not to be trusted on this segment.")
    raw, corrected = _num(record, "raw_rate"), _num(record, "corrected_rate")
    low, up = _num(record, "corrected_low"), _num(record, "corrected_high")
    if None in (raw, corrected, low, up):
        divergence = Finding(DIVERGENCE, None, "warning", None, min_divergence, None, "")
    else:
        bad = (raw < low or raw > up) and abs(raw - corrected) > min_divergence
        divergence = Finding(
            DIVERGENCE, bad, "warning", corrected, min_divergence, raw,
            f"{detector}'s raw flagged share {raw:.3f} is outside the corrected rate's CI "
            f"[{low:.3f}, {up:.3f}] (corrected {corrected:.3f}): its rate misstates the share of "
            "bad answers.")
    return [agreement, divergence]


#: Advisory lock of calibration-alert transitions ("PWCL").
EMIT_LOCK = 0x5057434C


def _last_transitions(conn: psycopg.Connection, alert_ids: list[str]) -> dict[str, tuple[str, datetime]]:
    """The latest stored (status, starts_at) of each alert id."""
    return {a: (s, t) for a, s, t in conn.execute(
        "SELECT DISTINCT ON (alert_id) alert_id, status, starts_at FROM alerts "
        "WHERE alert_id = ANY(%s) ORDER BY alert_id, id DESC", (alert_ids,))}


def emit(conn: psycopg.Connection, records: Iterable[Mapping[str, Any]], tag: str, now: datetime, *,
         kappa_level: float = KAPPA_LEVEL, min_divergence: float = MIN_DIVERGENCE) -> list[AlertEventV1]:
    """The alert transitions the ``records`` cause, inserted into ``alerts`` under ``tag`` (the
    caller's transaction); returns them. Each record needs detector, label, model, app, version,
    period_start, period_end and the statistics columns."""
    # one emitter at a time (the scheduler and a manual run): each reads the last transitions
    # and writes the next ones under this lock, so no transition is written twice
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (EMIT_LOCK,))
    planned = []
    for record in records:
        labels = {"model": str(record["model"]), "app": str(record["app"]),
                  "metric": str(record["detector"]), "label": str(record["label"]),
                  "source": "calibration"}
        for finding in check_record(record, kappa_level=kappa_level, min_divergence=min_divergence):
            planned.append((fingerprint(finding.rule, labels), labels, finding, record))
    last = _last_transitions(conn, [p[0] for p in planned])
    events = []
    for alert_id, labels, finding, record in planned:
        status, started = last.get(alert_id, ("resolved", None))
        if finding.condition and status != "firing":
            event = _event(alert_id, labels, finding, record, "firing", now, None)
        elif finding.condition is False and status == "firing":
            event = _event(alert_id, labels, finding, record, "resolved", started, now)
        else:
            continue
        events.append(event)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alerts (alert_id, status, rule, severity, model, app, metric, starts_at, "
            "ends_at, value, baseline, threshold, summary, event, sink_batch) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(e.alert_id, e.status, e.rule, e.severity, e.labels["model"], e.labels["app"],
              e.labels["metric"], e.starts_at, e.ends_at, e.value, e.baseline, e.threshold,
              e.summary, e.model_dump_json(), tag) for e in events])
    return events


def _event(alert_id: str, labels: dict, finding: Finding, record: Mapping[str, Any], status: str,
           starts_at: datetime, ends_at: datetime | None) -> AlertEventV1:
    where = f"{labels['model']}/{labels['app']}"
    summary = (f"{finding.rule} on {where}: {finding.summary}" if status == "firing" else
               f"{finding.rule} on {where} resolved: calibration version {record.get('version')} "
               "no longer meets the condition.")
    evidence = plain({
        "calibration_version": record.get("version"),
        "labelled": record.get("labelled"),
        "kappa": [record.get("kappa"), record.get("kappa_low"), record.get("kappa_high")],
        "raw_rate": record.get("raw_rate"),
        "corrected_rate": [record.get("corrected_rate"), record.get("corrected_low"),
                           record.get("corrected_high")],
        "window": {"start": record["period_start"], "end": record["period_end"]},
    })
    return AlertEventV1(alert_id=alert_id, rule=finding.rule, status=status,
                        severity=finding.severity, labels=labels, starts_at=starts_at,
                        ends_at=ends_at, value=finding.value, baseline=finding.baseline,
                        threshold=finding.threshold, summary=summary[:1000], evidence=evidence)


def publish(settings: Settings, events: list[AlertEventV1], timeout_s: float = 10.0) -> int:
    """Send ``events`` to ``llm.alerts.v1`` (keyed by alert id, as the stream does), for the
    dispatcher; returns how many were acknowledged. Raises on a broker that cannot be reached."""
    if not events:
        return 0
    from kafka import KafkaProducer

    from parrotwatch.stack.kafka_auth import client_options

    producer = KafkaProducer(**client_options(settings), acks="all", client_id="parrotwatch-calibrate",
                             max_block_ms=int(timeout_s * 1000), request_timeout_ms=int(timeout_s * 1000))
    try:
        topic = settings.topic(ALERTS_TOPIC)
        for future in [producer.send(topic, key=e.alert_id.encode(), value=e.model_dump_json().encode())
                       for e in events]:
            future.get(timeout=timeout_s)
    finally:
        producer.close(timeout=timeout_s)
    return len(events)


def pending(conn: psycopg.Connection) -> dict[str, list[AlertEventV1]]:
    """The stored calibration alerts Kafka has not acknowledged yet, by run tag, oldest first."""
    out: dict[str, list[AlertEventV1]] = {}
    for tag, event in conn.execute(
            "SELECT a.sink_batch, a.event FROM alerts a WHERE a.sink_batch LIKE 'calibration:%%' "
            "AND NOT EXISTS (SELECT 1 FROM calibration_alert_publications p "
            "WHERE p.sink_batch = a.sink_batch) ORDER BY a.id"):
        out.setdefault(tag, []).append(AlertEventV1.model_validate(event))
    return out


def publish_pending(conn: psycopg.Connection, settings: Settings, timeout_s: float = 10.0) -> int:
    """Publish every run's unacknowledged calibration alerts (this run's, and those of earlier
    runs that found Kafka down), marking each run once Kafka acknowledged all of its alerts;
    returns how many were published. Raises when the broker cannot be reached: the alerts stay
    pending for the next run."""
    published = 0
    for tag, events in pending(conn).items():
        published += publish(settings, events, timeout_s)
        conn.execute("INSERT INTO calibration_alert_publications (sink_batch, alerts) "
                     "VALUES (%s, %s) ON CONFLICT DO NOTHING", (tag, len(events)))
    return published
