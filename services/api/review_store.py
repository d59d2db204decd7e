"""The review queue in PostgreSQL (tables of ``parrotwatch/sql/014_review.sql``): blocking calls,
run by the routes in a worker thread.

An item is *in the queue* while its text exists (a ``review_texts`` row, ``expires_at`` in the
future). A reviewer's next item is the oldest one in the queue with fewer labels than
``reviewers_needed`` that this reviewer has neither labelled nor skipped. A label is stored at
most once per (item, reviewer), and never beyond ``reviewers_needed``: the item's row is locked
while the checks and the insert run, in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from parrotwatch.db import connect

#: seconds to wait for the database before answering 503
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 10_000

#: The items in the queue, found through the index ``review_items_live (expires_at)``: a range
#: scan over the live items only, however many expired ones pile up behind them (walking
#: ``created_at`` order instead, or merge-joining every item with review_texts, reads them all).
#: MATERIALIZED keeps the planner from folding the range into one of those plans.
_LIVE = """
    WITH live AS MATERIALIZED (
        SELECT item_id, request_id, model, app, event_time, scores, reviewers_needed, created_at
        FROM review_items WHERE expires_at > now())"""
#: ...of which those open to a reviewer: texts kept, labels missing, not labelled nor skipped by
#: them.
_OPEN_FOR = """
    FROM live i JOIN review_texts t ON t.request_id = i.request_id
    WHERE (SELECT count(*) FROM review_labels l WHERE l.item_id = i.item_id) < i.reviewers_needed
      AND NOT EXISTS (SELECT 1 FROM review_labels l
                      WHERE l.item_id = i.item_id AND l.reviewer = %(reviewer)s)
      AND NOT EXISTS (SELECT 1 FROM review_skips s
                      WHERE s.item_id = i.item_id AND s.reviewer = %(reviewer)s)"""
NEXT_ITEM = (_LIVE + """
    SELECT i.item_id, i.request_id, i.model, i.app, i.event_time, i.scores,
           t.prompt, t.response, t.sources""" + _OPEN_FOR + """
    ORDER BY i.created_at, i.item_id LIMIT 1""")
REMAINING = _LIVE + "\n    SELECT count(*) AS n" + _OPEN_FOR


class NotInQueue(LookupError):
    """No such item, or its text is gone: nothing to label (404)."""


class AlreadyDone(Exception):
    """The reviewer labelled it already, or it has all its labels (409)."""


def _connect(url: str):
    return connect(url, connect_timeout_s=CONNECT_TIMEOUT_S,
                   statement_timeout_ms=STATEMENT_TIMEOUT_MS, row_factory=dict_row)


def next_item(url: str, reviewer: str, *, show_scores: bool) -> dict[str, Any] | None:
    """The reviewer's next item with its text and the reviewer's progress; ``None`` when the
    queue holds nothing more for them. ``scores`` only when ``show_scores``."""
    with _connect(url) as conn:
        row = conn.execute(NEXT_ITEM, {"reviewer": reviewer}).fetchone()
        if row is None:
            return None
        remaining = conn.execute(REMAINING, {"reviewer": reviewer}).fetchone()["n"]
        labelled = conn.execute("SELECT count(*) AS n FROM review_labels WHERE reviewer = %s",
                                (reviewer,)).fetchone()["n"]
    scores = row.pop("scores")
    if show_scores:
        row["scores"] = scores
    row["progress"] = {"labelled_by_you": labelled, "remaining_for_you": remaining}
    return row


def _lock_open_item(conn, item_id: int) -> int:
    """Lock the item's row; its ``reviewers_needed``. :class:`NotInQueue` when it is not in the
    queue."""
    row = conn.execute(
        "SELECT i.reviewers_needed, i.expires_at > now() AND EXISTS "
        "(SELECT 1 FROM review_texts t WHERE t.request_id = i.request_id) AS open "
        "FROM review_items i WHERE i.item_id = %s FOR UPDATE", (item_id,)).fetchone()
    if row is None:
        raise NotInQueue(f"There is no review item {item_id}; ask GET /v1/review/next for one.")
    if not row["open"]:
        raise NotInQueue(f"Review item {item_id} is no longer in the queue: its text expired "
                         "(review.text_days); ask GET /v1/review/next for another.")
    return row["reviewers_needed"]


def add_label(url: str, item_id: int, reviewer: str, labels: dict[str, Any],
              comment: str | None) -> datetime:
    """Store the reviewer's labels of an item; when they were stored. Raises
    :class:`NotInQueue` or :class:`AlreadyDone`; stores nothing then."""
    with _connect(url) as conn, conn.transaction():
        needed = _lock_open_item(conn, item_id)
        by = [r["reviewer"] for r in conn.execute(
            "SELECT reviewer FROM review_labels WHERE item_id = %s", (item_id,))]
        if reviewer in by:
            raise AlreadyDone(f"You already labelled review item {item_id}; a label cannot be "
                              "changed or sent twice. Ask GET /v1/review/next for another.")
        if len(by) >= needed:
            raise AlreadyDone(f"Review item {item_id} already has all its labels ({needed}); "
                              "ask GET /v1/review/next for another.")
        row = conn.execute(
            "INSERT INTO review_labels (item_id, reviewer, labels, comment) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (item_id, reviewer) DO NOTHING "
            "RETURNING labelled_at", (item_id, reviewer, Jsonb(labels), comment)).fetchone()
        if row is None:  # unreachable under the row lock; kept so nothing is ever stored twice
            raise AlreadyDone(f"You already labelled review item {item_id}.")
        return row["labelled_at"]


def skip(url: str, item_id: int, reviewer: str) -> None:
    """Record that the reviewer passes on an item (again: no change)."""
    with _connect(url) as conn, conn.transaction():
        found = conn.execute("SELECT 1 FROM review_items WHERE item_id = %s",
                             (item_id,)).fetchone()
        if found is None:
            raise NotInQueue(f"There is no review item {item_id}; ask GET /v1/review/next for "
                             "one.")
        conn.execute("INSERT INTO review_skips (item_id, reviewer) VALUES (%s, %s) "
                     "ON CONFLICT (item_id, reviewer) DO NOTHING", (item_id, reviewer))
