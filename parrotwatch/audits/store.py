"""Audit runs in PostgreSQL (``parrotwatch/sql/007_audits.sql``): run rows and their status, metrics, a
bounded set of per-sample scores, and the per-spec advisory lock that keeps runs of one spec apart."""

from __future__ import annotations

import hashlib
import math
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from parrotwatch.audits.results import Sample
from parrotwatch.audits.spec import AuditSpec, Storage


def lock_key(spec_name: str) -> int:
    """The spec's advisory-lock key: the first 8 bytes of blake2b("parrotwatch.audit:" + name), signed."""
    digest = hashlib.blake2b(f"parrotwatch.audit:{spec_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _json_safe(value: Any) -> Any:
    """JSON without NaN / infinity (jsonb rejects them): non-finite floats become null."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def bound_samples(samples: Sequence[Sample], max_n: int, seed: int = 0) -> list[Sample]:
    """At most ``max_n`` samples: all when they fit, else a seeded uniform sample within each label, the
    budget split evenly over the labels (a label with fewer samples than its share gives the rest to the
    others); kept in input order."""
    if len(samples) <= max_n:
        return list(samples)
    by_label: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_label.setdefault(s.label, []).append(i)
    rng, keep, left = np.random.default_rng(seed), [], max_n
    groups = sorted(by_label.values(), key=len)
    for j, idx in enumerate(groups):
        q = min(len(idx), left // (len(groups) - j))
        keep += rng.choice(idx, size=q, replace=False).tolist()
        left -= q
    return [samples[i] for i in sorted(keep)]


@dataclass(frozen=True)
class RunRow:
    id: int
    spec_name: str
    spec_hash: str
    trigger: str
    status: str
    scheduled_for: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    report_path: str | None


_RUN_COLUMNS = ("id, spec_name, spec_hash, trigger, status, scheduled_for, created_at, started_at, "
                "finished_at, error, report_path")


class AuditStore:
    """Short autocommit connections per call; the lock has its own connection held for the run."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _conn(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def create_run(self, spec: AuditSpec, trigger: str, scheduled_for: datetime | None = None) -> int:
        with self._conn() as conn:
            return conn.execute(
                "INSERT INTO audit_runs (spec_name, spec_hash, spec, trigger, status, scheduled_for, host, "
                "pid) VALUES (%s, %s, %s, %s, 'scheduled', %s, %s, %s) RETURNING id",
                (spec.name, spec.spec_hash(), Jsonb(spec.model_dump(mode="json")), trigger, scheduled_for,
                 socket.gethostname(), os.getpid())).fetchone()[0]

    def start(self, run_id: int) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE audit_runs SET status = 'running', started_at = clock_timestamp() "
                         "WHERE id = %s", (run_id,))

    def finish(self, run_id: int, status: str, error: str | None = None) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE audit_runs SET status = %s, error = %s, finished_at = clock_timestamp() "
                         "WHERE id = %s", (status, error, run_id))

    def set_report(self, run_id: int, path: Path) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE audit_runs SET report_path = %s WHERE id = %s", (str(path), run_id))

    @contextmanager
    def spec_lock(self, spec_name: str) -> Iterator[bool]:
        """``pg_try_advisory_lock`` of the spec on a connection of its own, held while the block runs
        (released at the end, or by the server when the process dies); yields whether it was taken."""
        conn = self._conn()
        try:
            held = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(spec_name),)).fetchone()[0]
            yield held
            if held:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(spec_name),))
        finally:
            conn.close()

    def running_run(self, spec_name: str) -> int | None:
        with self._conn() as conn:
            row = conn.execute("SELECT id FROM audit_runs WHERE spec_name = %s AND status = 'running' "
                               "ORDER BY id DESC LIMIT 1", (spec_name,)).fetchone()
        return row[0] if row else None

    def ran_for(self, spec_name: str, scheduled_for: datetime, exclude: int) -> int | None:
        """Another run of the spec for the same firing time that got past the lock (several schedulers)."""
        with self._conn() as conn:
            row = conn.execute("SELECT id FROM audit_runs WHERE spec_name = %s AND scheduled_for = %s "
                               "AND id <> %s AND status IN ('running', 'succeeded', 'failed') "
                               "ORDER BY id LIMIT 1",
                               (spec_name, scheduled_for, exclude)).fetchone()
        return row[0] if row else None

    def reap_abandoned(self, spec_name: str, keep: int) -> int:
        """With the spec's lock held, any other ``running`` run of it lost its process: mark it failed."""
        with self._conn() as conn:
            return conn.execute(
                "UPDATE audit_runs SET status = 'failed', finished_at = clock_timestamp(), error = "
                "'abandoned: its process ended without finishing the run' "
                "WHERE spec_name = %s AND status = 'running' AND id <> %s", (spec_name, keep)).rowcount

    def save_results(self, run_id: int, run, storage: Storage) -> None:
        """Metrics and bounded samples of ``run`` (an :class:`~parrotwatch.audits.runner.AuditRun`) in one
        transaction, which also drops the samples of the spec's runs older than the newest
        ``sample_runs_kept``."""
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO audit_metrics (run_id, audit, metric, value, ci_low, ci_high, labels) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(run_id, m.audit, m.metric, None if m.value is None else float(m.value), m.ci_low, m.ci_high,
                  Jsonb(_json_safe(dict(m.labels)))) for r in run.results for m in r.metrics])
            rows = []
            for r in run.results:
                for s in bound_samples(r.samples, storage.max_samples_per_audit):
                    score = None if s.score is None or not math.isfinite(s.score) else float(s.score)
                    extra = Jsonb(_json_safe(dict(s.extra)))
                    rows.append((run_id, s.audit, s.sample_id, s.label, score, extra))
            cur.executemany("INSERT INTO audit_samples (run_id, audit, sample_id, label, score, extra) "
                            "VALUES (%s, %s, %s, %s, %s, %s)", rows)
            cur.execute(
                "DELETE FROM audit_samples WHERE run_id IN (SELECT id FROM audit_runs WHERE spec_name = %s) "
                "AND run_id NOT IN (SELECT id FROM audit_runs WHERE spec_name = %s AND status IN "
                "('running', 'succeeded') ORDER BY id DESC LIMIT %s)",
                (run.spec.name, run.spec.name, storage.sample_runs_kept))

    def runs(self, spec_name: str | None = None, limit: int = 20) -> list[RunRow]:
        """The latest runs, newest first."""
        where, params = ("WHERE spec_name = %s", (spec_name, limit)) if spec_name else ("", (limit,))
        with self._conn() as conn:
            rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM audit_runs {where} ORDER BY id DESC LIMIT %s",
                                params).fetchall()
        return [RunRow(*r) for r in rows]

    def metrics(self, run_id: int) -> list[tuple[str, str, float | None, float | None, float | None, dict]]:
        """``(audit, metric, value, ci_low, ci_high, labels)`` of one run."""
        with self._conn() as conn:
            return conn.execute("SELECT audit, metric, value, ci_low, ci_high, labels FROM audit_metrics "
                                "WHERE run_id = %s ORDER BY audit, metric, labels::text",
                                (run_id,)).fetchall()
