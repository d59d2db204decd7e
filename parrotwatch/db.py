"""PostgreSQL access: connections with timeouts, schema migrations owned by the project, and the
dashboards' read-only role (``parrotwatch/sql/012_reader_role.sql``)."""

from __future__ import annotations

import logging
import os
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from parrotwatch.sql import READER_ROLE

log = logging.getLogger(__name__)

_LOCK_KEY = 0x5057_4D49  # advisory lock: one migrator at a time

#: Statements of the project's own short queries (CLI, status, provisioning) end after this.
STATEMENT_TIMEOUT_MS = 30_000
#: Seconds to wait for a server that does not answer (libpq waits forever without it).
CONNECT_TIMEOUT_S = 10
# TCP keepalives: a server that vanished (host down, SIGSTOP) is noticed within ~1 minute.
_KEEPALIVES = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10",
               "keepalives_count": "3"}


def conninfo(url: str, *, statement_timeout_ms: int | None = STATEMENT_TIMEOUT_MS,
             connect_timeout_s: int = CONNECT_TIMEOUT_S, lock_timeout_ms: int | None = None,
             options: str = "", **params: Any) -> str:
    """``url`` as a libpq connection string with a connect timeout, TCP keepalives and server-side
    timeouts (``options=-c statement_timeout=...``). What the URL sets itself wins; ``None``
    leaves a timeout to the server's default. ``options`` (e.g. ``-c TimeZone=UTC``) is added to
    the URL's own; extra ``params`` (e.g. ``application_name``) are added unless the URL has them.
    Also for ``psycopg.AsyncConnection.connect(conninfo(url))``."""
    info = conninfo_to_dict(url)
    info.setdefault("connect_timeout", str(int(connect_timeout_s)))
    for key, value in (_KEEPALIVES | {k: str(v) for k, v in params.items()}).items():
        info.setdefault(key, value)
    options = f'{info.get("options") or os.environ.get("PGOPTIONS", "")} {options}'.strip()
    for name, ms in (("statement_timeout", statement_timeout_ms), ("lock_timeout", lock_timeout_ms)):
        if ms is not None and name not in options:
            options = f"{options} -c {name}={int(ms)}".strip()
    if options:
        info["options"] = options
    return make_conninfo("", **info)


def connect(url: str, *, statement_timeout_ms: int | None = STATEMENT_TIMEOUT_MS,
            connect_timeout_s: int = CONNECT_TIMEOUT_S, lock_timeout_ms: int | None = None,
            options: str = "", autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """``psycopg.connect`` with a connect timeout and a statement timeout (see :func:`conninfo`);
    ``kwargs`` go to ``psycopg.connect`` (``row_factory``, ``prepare_threshold``...).

    Use it for every connection: a database that hangs must make a command fail within bounded
    time, not wait forever. ``statement_timeout_ms=None`` for work that may legitimately run
    long (migrations)."""
    info = conninfo(url, statement_timeout_ms=statement_timeout_ms,
                    connect_timeout_s=connect_timeout_s, lock_timeout_ms=lock_timeout_ms,
                    options=options)
    return psycopg.connect(info, autocommit=autocommit, **kwargs)


def migrations() -> list[tuple[str, str]]:
    """``(version, sql)`` of every ``parrotwatch/sql/NNN_*.sql``, in order."""
    files = sorted(f for f in resources.files("parrotwatch.sql").iterdir()
                   if f.name.endswith(".sql"))
    return [(f.name.removesuffix(".sql"), f.read_text()) for f in files]


def migrate(url: str) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; returns their names."""
    applied_now = []
    # no statement timeout: a migration may rewrite a large table, or wait for another migrator
    with connect(url, statement_timeout_ms=None, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, text in migrations():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(text)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                log.info("applied migration %s", version)
                applied_now.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def applied_thresholds(conn: psycopg.Connection) -> dict[str, float]:
    """``{detector: threshold}`` of the thresholds applied from calibration records and not
    revoked (``parrotwatch calibrate apply``): the review jobs and the stream read them."""
    return {d: float(t) for d, t in conn.execute(
        "SELECT detector, threshold FROM calibration_applied WHERE revoked_at IS NULL")}


def delete_expired_review_texts(conn: psycopg.Connection, text_days: float) -> tuple[int, int]:
    """Enforce the review texts' retention (docs/review.md): delete the texts of review items
    past ``expires_at`` and pool texts kept over ``text_days`` without being drawn; returns
    (expired item texts, old pool texts). Labels, items and statistics stay. The review jobs
    (``parrotwatch review purge``) and the stream (so that retention holds without them) call it."""
    expired = conn.execute(
        "DELETE FROM review_texts t USING review_items i WHERE i.request_id = t.request_id "
        "AND i.expires_at <= clock_timestamp()").rowcount
    old = conn.execute(
        "DELETE FROM review_texts t WHERE stored_at < clock_timestamp() - "
        "make_interval(secs => %s::float8) AND NOT EXISTS (SELECT 1 FROM review_items i "
        "WHERE i.request_id = t.request_id)", (text_days * 86400.0,)).rowcount
    return expired, old


class ReaderRoleError(RuntimeError):
    """The reader role is missing, or cannot be given a login; the message says what to do."""


def provision_reader(admin_url: str, password: str) -> None:
    """Give :data:`READER_ROLE` LOGIN and ``password``, connected as the pipeline's own account
    (``admin_url``, which applied the migrations). Idempotent.

    The password reaches the server only as a SCRAM-SHA-256 verifier computed here (libpq's
    ``PQencryptPasswordConn``), so no server log of the statement can hold it."""
    if not password:
        raise ReaderRoleError("the reader's password is empty")
    with connect(admin_url, autocommit=True) as conn:
        ready = conn.execute(
            "SELECT to_regclass('dead_letter_reasons') IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", (READER_ROLE,)).fetchone()
        if not ready[0]:
            raise ReaderRoleError(
                f"role {READER_ROLE} or its grants are missing in this database: apply the "
                "migrations first (`parrotwatch up`, or the image's `migrate` role)")
        verifier = conn.pgconn.encrypt_password(password.encode(), READER_ROLE.encode(),
                                                b"scram-sha-256").decode()
        try:
            conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(READER_ROLE), sql.Literal(verifier)))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ReaderRoleError(
                f"this account may not alter role {READER_ROLE} ({exc.diag.message_primary}): "
                "have a DBA run `ALTER ROLE parrotwatch_reader LOGIN PASSWORD '...'` and pass "
                "that password with --no-provision-reader") from None


def reader_conninfo(url: str, password: str | None = None) -> str:
    """``url``'s server and database as a libpq connection string for the reader role, with
    ``password``."""
    info = conninfo_to_dict(url)
    info["user"] = READER_ROLE
    info.pop("password", None)
    if password is not None:
        info["password"] = password
    return make_conninfo("", **info)
