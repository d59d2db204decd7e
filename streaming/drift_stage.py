"""Embedding drift in the stream's driver: per-request ``ood_score`` and per-window drift tests.

State lives in PostgreSQL and moves in the inference sink's transaction (exactly once):

* the **reference** of each (model, app, side): the embeddings of the segment's first
  ``drift_reference_size`` requests (``drift_reference``), fixed once complete;
* a **bottom-k sample** of each open window (``drift_samples``): a request is kept when the hash
  of its ``request_id`` is among the ``drift_window_sample`` smallest of its window, which is a
  uniform sample without replacement that a replay or a restart reproduces exactly;
* when the watermark closes a window, MMD² with a permutation p-value and a domain classifier
  compare its sample with the reference (``drift_windows``); the window's ``drift_p_value`` seen
  by the alert rules is Bonferroni's ``min(1, 2 min(p_prompt, p_response))``.

``ood_score`` (the prompt's k-NN distance to the reference, 1.0 = the reference's 99th
percentile) is null while the segment's reference is incomplete.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from datetime import datetime

import numpy as np
import orjson
import psycopg

from parrotwatch.detectors.drift import KnnOod, domain_classifier_test, mmd_test
from parrotwatch.streaming.windows import window_start

log = logging.getLogger(__name__)

SIDES = ("prompt", "response")
MIN_WINDOW_SAMPLE = 20  # a window with fewer sampled requests is not tested
# The MMD permutation p-value drives the rules; the classifier gives its AUC only (its own
# permutation test costs 5 x 201 fits per window).
N_PERMUTATIONS = 1000  # the smallest p-value is 1/1001: the rules need p < 0.005 after Bonferroni
NEAREST_REFERENCES = 3


def hash_rank(request_id: str) -> float:
    """A uniform number in [0, 1) fixed by the request id (the bottom-k sampling key)."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _matrix(blobs: list[bytes]) -> np.ndarray:
    return np.stack([np.frombuffer(b, dtype=np.float16) for b in blobs]).astype(np.float32)


class DriftStage:
    def __init__(self, reference_size: int, window_sample: int, seed: int = 0) -> None:
        self.reference_size = reference_size
        self.window_sample = window_sample
        self.seed = seed
        self._knn: dict[tuple[str, str], tuple[KnnOod, list[str]]] = {}  # frozen references
        self._full: set[tuple[str, str]] = set()  # segments whose reference is complete

    def forget(self) -> None:
        """Drop the cached references: a rolled-back transaction may have filled them."""
        self._knn.clear()
        self._full.clear()

    # -- reference -----------------------------------------------------------------------------
    def _reference(self, conn: psycopg.Connection, model: str, app: str
                   ) -> tuple[KnnOod, list[str]] | None:
        """The fitted k-NN scorer of a complete prompt reference, cached (it never changes)."""
        key = (model, app)
        if key not in self._knn:
            rows = conn.execute(
                "SELECT excerpt, embedding FROM drift_reference WHERE model = %s AND app = %s "
                "AND side = 'prompt' ORDER BY request_id", key).fetchall()
            if len(rows) < self.reference_size:
                return None
            self._knn[key] = (KnnOod(_matrix([r[1] for r in rows])), [r[0] or "" for r in rows])
        return self._knn[key]

    def before_store(self, conn: psycopg.Connection, rows: list[dict]) -> None:
        """Fill ``ood_score`` (and the nearest references of an out-of-distribution request)."""
        by_segment: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in rows:
            if r.get("prompt_embedding") is not None:
                by_segment[(r["model"], r["app"])].append(r)
        for (model, app), seg_rows in by_segment.items():
            ref = self._reference(conn, model, app)
            if ref is None:
                continue
            knn, excerpts = ref
            x = _matrix([r["prompt_embedding"] for r in seg_rows])
            scores = knn.score(x)
            idx, dist = knn.nearest(x, NEAREST_REFERENCES)
            for i, (r, s) in enumerate(zip(seg_rows, scores, strict=True)):
                r["ood_score"] = float(s)
                if s > 1.0:
                    near = [{"text": excerpts[j], "distance": round(float(d), 4)}
                            for j, d in zip(idx[i], dist[i], strict=True)]
                    dd = orjson.loads(r["drilldown"]) if r.get("drilldown") else {}
                    r["drilldown"] = orjson.dumps({**dd, "nearest_reference": near}).decode()

    # -- after the rows are stored (first time of the batch only) --------------------------------
    def after_store(self, conn: psycopg.Connection, tag: str, new_rows: list[dict]) -> None:
        rows = [r for r in new_rows if r.get("prompt_embedding") is not None]
        if not rows:
            return
        self._grow_references(conn, rows)
        self._sample_windows(conn, rows)

    def _grow_references(self, conn: psycopg.Connection, rows: list[dict]) -> None:
        by_segment: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in rows:
            by_segment[(r["model"], r["app"])].append(r)
        for (model, app), seg_rows in by_segment.items():
            if (model, app) in self._full:  # a complete reference never changes: no query
                continue
            have = conn.execute("SELECT count(*) FROM drift_reference WHERE model = %s AND app = %s"
                                " AND side = 'prompt'", (model, app)).fetchone()[0]
            room = self.reference_size - have
            if room <= 0:  # seen complete in the database (committed), so it stays complete
                self._full.add((model, app))
                continue
            take = sorted(seg_rows, key=lambda r: (r["event_time"], r["request_id"]))[:room]
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO drift_reference (model, app, side, request_id, excerpt, embedding) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(model, app, side, r["request_id"],
                      r.get("prompt_excerpt") if side == "prompt" else None, r[f"{side}_embedding"])
                     for r in take for side in SIDES])

    def _sample_windows(self, conn: psycopg.Connection, rows: list[dict]) -> None:
        values, touched = [], set()
        for r in rows:
            start = window_start(r["event_time"])
            rank = hash_rank(r["request_id"])
            for side in SIDES:
                values.append((r["model"], r["app"], side, start, r["request_id"], rank,
                               r[f"{side}_embedding"]))
                touched.add((r["model"], r["app"], side, start))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO drift_samples (model, app, side, window_start, request_id, rank, "
                "embedding) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", values)
            # keep the bottom k of every touched window
            cur.executemany(
                "DELETE FROM drift_samples WHERE model = %s AND app = %s AND side = %s AND "
                "window_start = %s AND rank > (SELECT rank FROM drift_samples WHERE model = %s "
                "AND app = %s AND side = %s AND window_start = %s ORDER BY rank "
                "OFFSET %s LIMIT 1)",
                [(*t, *t, self.window_sample - 1) for t in touched])

    # -- closed windows ----------------------------------------------------------------------------
    def test_windows(self, conn: psycopg.Connection, starts: list[datetime]) -> int:
        """Drift tests of every segment's sample of the closed windows ``starts``; returns tests."""
        if not starts:
            return 0
        samples: dict[tuple, list[bytes]] = defaultdict(list)
        for m, a, side, s, emb in conn.execute(
                "SELECT model, app, side, window_start, embedding FROM drift_samples "
                "WHERE window_start = ANY(%s) ORDER BY model, app, side, window_start, rank",
                (starts,)):
            samples[(m, a, side, s)].append(emb)
        tested = 0
        references: dict[tuple, np.ndarray | None] = {}
        for (m, a, side, s), blobs in sorted(samples.items()):
            if (m, a, side) not in references:
                ref = conn.execute("SELECT embedding FROM drift_reference WHERE model = %s AND "
                                   "app = %s AND side = %s ORDER BY request_id", (m, a, side)).fetchall()
                references[(m, a, side)] = (_matrix([r[0] for r in ref])
                                            if len(ref) >= self.reference_size else None)
            reference = references[(m, a, side)]
            if reference is None or len(blobs) < MIN_WINDOW_SAMPLE:
                continue
            current = _matrix(blobs)
            mmd = mmd_test(reference, current, n_permutations=N_PERMUTATIONS, seed=self.seed)
            clf = domain_classifier_test(reference, current, seed=self.seed, n_permutations=0)
            conn.execute(
                "INSERT INTO drift_windows (model, app, window_start, side, n_reference, n_current,"
                " mmd2, p_value, classifier_auc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (m, a, s, side, len(reference), len(current), float(mmd.mmd2), float(mmd.p_value),
                 float(clf.auc)))
            tested += 1
        conn.execute("DELETE FROM drift_samples WHERE window_start = ANY(%s)", (starts,))
        return tested


def drift_p_values(conn: psycopg.Connection, starts: list[datetime]) -> dict[tuple, float]:
    """``(model, app, window_start) -> min(1, sides x min p)`` over the window's drift tests."""
    out = {}
    for m, a, s, p_min, sides in conn.execute(
            "SELECT model, app, window_start, min(p_value), count(*) FROM drift_windows "
            "WHERE window_start = ANY(%s) GROUP BY 1, 2, 3", (starts,)):
        out[(m, a, s)] = min(1.0, float(p_min) * sides)
    return out
