"""Per-request out-of-distribution score: the k-th nearest-neighbour distance of Sun, Ming, Zhu & Li
2022, "Out-of-Distribution Detection with Deep Nearest Neighbors", ICML.

Embeddings are L2-normalised (as in the paper) and the distance is the cosine distance
d(z, r) = 1 - zᵀr / (||z|| ||r||). For a request z with k-th smallest distance d_k(z) to the reference
set R, the score (the ``ood_score`` of the score contract) is

    ood_score(z) = d_k(z) / q,   q = 99th percentile of { d_k^{(-i)}(r_i) : r_i in R }

where d_k^{(-i)} is the k-th nearest distance to R without r_i itself (leave-one-out), so 1.0 is the
reference's own 99th percentile and about 1% of in-distribution requests score above 1.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from parrotwatch.detectors.drift._arrays import as_matrix, unit_rows


class KnnOod:
    """k-NN OOD scorer over a reference embedding matrix; ``score`` higher = further from the reference.

    ``threshold`` (default 1.0, the calibrated 99th percentile) is what :meth:`predict` compares with.
    A ``protocols.RequestScorer`` of the ``ood_score`` (:meth:`scores`).
    """

    score_names: tuple[str, ...] = ("ood_score",)

    def __init__(self, reference, k: int = 5, quantile: float = 0.99, threshold: float = 1.0):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        self.k = int(k)
        self.quantile = float(quantile)
        self.threshold = float(threshold)
        self._fit(reference)

    def _fit(self, reference) -> None:
        ref = unit_rows(as_matrix(reference, "reference", dtype=np.float32, min_rows=self.k + 1))
        self._index = NearestNeighbors(n_neighbors=self.k, metric="cosine", algorithm="brute").fit(ref)
        loo, _ = self._index.kneighbors(None, n_neighbors=self.k)  # X=None leaves each point out
        scale = float(np.quantile(loo[:, -1], self.quantile))
        self.scale = scale if scale > 0 else 1.0
        self.n_reference = len(ref)

    def _query(self, x, n: int) -> tuple[np.ndarray, np.ndarray]:
        arr = np.asarray(x)
        arr = as_matrix(arr[None, :] if arr.ndim == 1 else arr, "x", dtype=np.float32, min_rows=0)
        if len(arr) == 0:
            return np.zeros((0, n)), np.zeros((0, n), dtype=np.int64)
        dist, idx = self._index.kneighbors(unit_rows(arr), n_neighbors=n)
        return np.maximum(dist, 0.0), idx

    def score(self, x) -> np.ndarray:
        """``ood_score`` of each row of ``x`` (shape ``(n,)``, float64; 1.0 = reference 99th percentile)."""
        dist, _ = self._query(x, self.k)
        return dist[:, -1] / self.scale if len(dist) else np.zeros(0)

    def scores(self, batch) -> list[dict[str, float | None]]:
        """``{"ood_score": s}`` per row of ``batch`` (an ``(n, dim)`` array-like), as :meth:`score`."""
        if len(batch) == 0:
            return []
        return [{"ood_score": float(s)} for s in self.score(batch)]

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"reference": np.random.default_rng(0).normal(size=(60, 8)), "k": 5}

    @classmethod
    def _unit_test_batch(cls) -> np.ndarray:
        return np.random.default_rng(1).normal(0.3, 1.0, size=(6, 8))

    def predict(self, x) -> np.ndarray:
        """True where ``score(x) > threshold``."""
        return self.score(x) > self.threshold

    def nearest(self, x, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Drill-down: indices into the reference (shape ``(len(x), n)``) and their cosine distances,
        nearest first."""
        if not 1 <= n <= self.n_reference:
            raise ValueError(f"n must be in 1..{self.n_reference}, got {n}")
        dist, idx = self._query(x, n)
        return idx, dist
