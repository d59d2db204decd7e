"""Thresholds applied from calibration records (opt-in, audited): ``calibration_applied``.

At most one live row per detector (a partial unique index): applying a record revokes the
detector's previous live row in the same transaction, so the stream never sees two thresholds
nor none in between. Every row keeps who applied which record version when, and when it was
revoked, and by whom. The stream reads :func:`parrotwatch.db.applied_thresholds` when
``calibration_apply_thresholds`` is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

#: Advisory lock serialising apply/revoke of every detector ("PWCA").
LOCK_KEY = 0x50574341


class ApplyError(ValueError):
    """A record that cannot be applied, or nothing to revoke; the message says what to do."""


@dataclass(frozen=True)
class Applied:
    id: int
    version: int
    detector: str
    threshold: float
    applied_by: str
    applied_at: datetime
    revoked_at: datetime | None = None


def _check_name(by: str) -> str:
    by = (by or "").strip()
    if not by or len(by) > 200 or "\x00" in by:
        raise ApplyError("--by must name who applies or revokes (1 to 200 characters)")
    return by


def apply_record(conn: psycopg.Connection, version: int, by: str) -> tuple[Applied, Applied | None]:
    """Apply record ``version``'s suggested threshold to its detector; returns (the new live row,
    the one it revoked or None). Refuses a missing record, a record of one segment (the stream
    flags every segment with one threshold per detector) and a record without a suggested
    threshold."""
    by = _check_name(by)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        row = conn.execute("SELECT detector, model, app, suggested_threshold, target FROM "
                           "calibration_records WHERE version = %s", (version,)).fetchone()
        if row is None:
            raise ApplyError(f"no calibration record version {version}; "
                             "`parrotwatch calibrate show` lists them")
        detector, model, app, threshold, target = row
        if (model, app) != ("*", "*"):
            raise ApplyError(f"record {version} calibrates {detector} on {model}/{app} only; the "
                             "stream applies one threshold per detector to every segment, so "
                             "apply a record of segment */* instead")
        if threshold is None or threshold != threshold:
            raise ApplyError(f"record {version} ({detector}) has no suggested threshold: no "
                             f"threshold met its target {target or ''} on the labels it had; "
                             "nothing applied (label more items, or lower the target)")
        previous = _revoke_live(conn, detector, by)
        new = conn.execute(
            "INSERT INTO calibration_applied (version, detector, threshold, applied_by) "
            "VALUES (%s, %s, %s, %s) RETURNING id, version, detector, threshold, applied_by, "
            "applied_at, revoked_at", (version, detector, threshold, by)).fetchone()
    return Applied(*new), previous


def _revoke_live(conn: psycopg.Connection, detector: str, by: str) -> Applied | None:
    row = conn.execute(
        "UPDATE calibration_applied SET revoked_at = clock_timestamp(), revoked_by = %s "
        "WHERE detector = %s AND revoked_at IS NULL RETURNING id, version, detector, threshold, "
        "applied_by, applied_at, revoked_at", (by, detector)).fetchone()
    return Applied(*row) if row else None


def revoke(conn: psycopg.Connection, detector: str, by: str) -> Applied:
    """Revoke ``detector``'s live threshold (the stream goes back to the registry's); returns
    the revoked row. ``by`` is stored with it (``revoked_by``), for the audit trail."""
    by = _check_name(by)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        revoked = _revoke_live(conn, detector, by)
    if revoked is None:
        raise ApplyError(f"{detector} has no applied threshold to revoke; "
                         "`parrotwatch calibrate show` lists the applied ones")
    return revoked


def history(conn: psycopg.Connection, limit: int = 20) -> list[Applied]:
    """The latest applied rows, live or revoked, newest first."""
    return [Applied(*r) for r in conn.execute(
        "SELECT id, version, detector, threshold, applied_by, applied_at, revoked_at FROM "
        "calibration_applied ORDER BY applied_at DESC, id DESC LIMIT %s", (limit,))]


LATEST_RECORDS = """
SELECT DISTINCT ON (detector, model, app) version, detector, label, model, app, period_start,
       period_end, computed_at, labelled, doubly_labelled, threshold, auc, precision_at, recall_at,
       kappa, kappa_low, kappa_high, alpha, raw_rate, corrected_rate, corrected_low,
       corrected_high, suggested_threshold, target
FROM calibration_records ORDER BY detector, model, app, computed_at DESC, version DESC
"""


def latest_records(conn: psycopg.Connection) -> list[dict]:
    """The latest record of each detector and segment, as column dicts."""
    cur = conn.execute(LATEST_RECORDS)
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
