"""Kernel two-sample test with the maximum mean discrepancy: Gretton, Borgwardt, Rasch, Schölkopf &
Smola 2012, "A Kernel Two-Sample Test", JMLR 13:723-773.

For reference x_1..x_m and current y_1..y_n, the unbiased estimator (Lemma 6, eq. 3) is

    MMD²_u = 1/(m(m-1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n-1)) Σ_{i≠j} k(y_i, y_j) - 2/(mn) Σ_{i,j} k(x_i, y_j)

with the Gaussian kernel k(a, b) = exp(-||a - b||² / (2σ²)) and σ the median Euclidean distance
between distinct points of the pooled sample (the median heuristic, Gretton et al. 2012 §8).
The null distribution comes from B random relabellings of the pooled sample (§5: "the bootstrap
... by permutation"), with the p-value p = (1 + #{b : MMD²_b >= MMD²_u}) / (1 + B) (Phipson & Smyth
2010), exact at every sample size. σ depends on the pooled set only, so the test stays exact.

Cost: the (m+n)² kernel matrix once, then a (chunk, m+n) @ (m+n, m+n) product per chunk of
permutations; memory O((m+n)²).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist, squareform

from parrotwatch.detectors.drift._arrays import as_matrix, same_dim

_CHUNK = 128  # permutations per matrix product


@dataclass(frozen=True)
class MMDResult:
    """``mmd2``: unbiased MMD² (may be slightly negative under no drift); ``p_value``: permutation
    p-value, small means drift; ``bandwidth``: the kernel's σ (Euclidean units of the embeddings)."""

    mmd2: float
    p_value: float
    bandwidth: float
    n_permutations: int

    @property
    def statistic(self) -> float:
        """``mmd2``: the statistic of the two-sample test (``protocols.TwoSampleResult``)."""
        return self.mmd2

    def is_drift(self, alpha: float = 0.05) -> bool:
        """Reject "same distribution" at level ``alpha``."""
        return self.p_value < alpha


def rbf_kernel(pooled: np.ndarray, bandwidth: float | None = None) -> tuple[np.ndarray, float]:
    """Gaussian kernel matrix of ``pooled`` and its bandwidth σ (None: the median heuristic).

    The distances between 0, 3 and 4 are 3, 4 and 1, so σ = 3 and k(0, 3) = exp(-3² / (2·3²)):

    >>> kernel, sigma = rbf_kernel(np.array([[0.0], [3.0], [4.0]]))
    >>> sigma
    3.0
    >>> round(float(kernel[0, 1]), 6)  # exp(-1/2)
    0.606531
    >>> kernel.diagonal().tolist()
    [1.0, 1.0, 1.0]
    """
    sq = pdist(pooled, "sqeuclidean")
    if bandwidth is not None:
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        sigma = float(bandwidth)
    else:
        sigma = float(np.median(np.sqrt(sq))) if sq.size else 0.0
        if sigma <= 0.0:  # all points identical: any bandwidth gives the same (zero) statistic
            sigma = 1.0
    kernel = np.exp(-squareform(sq) / (2.0 * sigma * sigma))
    return kernel, sigma


def _mmd2_from_masks(masks: np.ndarray, k0: np.ndarray, row_sums: np.ndarray, m: int, n: int) -> np.ndarray:
    """MMD²_u for each 0/1 row of ``masks`` (1 = in the first sample), with k0 = kernel with zero diagonal.

    With a the indicator of the first sample and r = k0 @ 1: Σxx = aᵀk0a, Σxy = aᵀr - Σxx,
    Σyy = 1ᵀr - 2aᵀr + Σxx, so one matrix product per batch of relabellings gives all three sums.
    """
    sxx = np.einsum("ij,ij->i", masks @ k0, masks)
    ar = masks @ row_sums
    sxy = ar - sxx
    syy = row_sums.sum() - 2.0 * ar + sxx
    return sxx / (m * (m - 1.0)) + syy / (n * (n - 1.0)) - 2.0 * sxy / (m * n)


def mmd_test(reference, current, n_permutations: int = 1000, seed: int | None = 0,
             bandwidth: float | None = None) -> MMDResult:
    """Permutation MMD² test of ``reference`` (m, dim) against ``current`` (n, dim), m, n >= 2.

    ``bandwidth``: a fixed σ (e.g. one kept from the reference so that windows compare on one
    scale); None takes the median heuristic of the pooled sample. Deterministic under ``seed``;
    the inputs are not modified.

    Two points at 0 against two at 1, σ = 1: k = 1 within a sample and exp(-1/2) across, so
    MMD²_u = 1 + 1 - 2 exp(-1/2); the p-value is (1 + #{b : MMD²_b >= MMD²_u}) / (1 + B):

    >>> r = mmd_test([[0.0], [0.0]], [[1.0], [1.0]], n_permutations=9, bandwidth=1.0)
    >>> round(r.mmd2, 6)  # 2 - 2 x 0.606531
    0.786939
    >>> r.p_value in {k / 10 for k in range(1, 11)}
    True

    With one sample a copy of the other (same points), the unbiased estimate is below 0:

    >>> mmd_test([[0.0], [1.0]], [[0.0], [1.0]], n_permutations=9, bandwidth=1.0).mmd2 < 0
    True
    """
    x = as_matrix(reference, "reference", min_rows=2)
    y = as_matrix(current, "current", min_rows=2)
    same_dim(x, y)
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    m, n = len(x), len(y)
    kernel, sigma = rbf_kernel(np.vstack([x, y]), bandwidth)
    np.fill_diagonal(kernel, 0.0)
    row_sums = kernel.sum(axis=1)

    observed_mask = np.zeros((1, m + n))
    observed_mask[0, :m] = 1.0
    observed = float(_mmd2_from_masks(observed_mask, kernel, row_sums, m, n)[0])

    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, n_permutations, _CHUNK):
        size = min(_CHUNK, n_permutations - start)
        order = rng.permuted(np.broadcast_to(np.arange(m + n), (size, m + n)), axis=1)
        masks = np.zeros((size, m + n))
        np.put_along_axis(masks, order[:, :m], 1.0, axis=1)
        null = _mmd2_from_masks(masks, kernel, row_sums, m, n)
        # a relative tolerance so that relabellings equal to the observed split count as ">="
        exceed += int(np.count_nonzero(null >= observed - 1e-12 * max(1.0, abs(observed))))
    return MMDResult(mmd2=observed, p_value=(1.0 + exceed) / (1.0 + n_permutations), bandwidth=sigma,
                     n_permutations=int(n_permutations))


@dataclass(frozen=True)
class MMDTest:
    """:func:`mmd_test` with its options fixed: a ``protocols.TwoSampleTest``.

    ``MMDTest(n_permutations, seed, bandwidth).test(x, y)`` is ``mmd_test(x, y, n_permutations,
    seed, bandwidth)`` (Gretton et al. 2012, see the module docstring).

    >>> x, y = [[0.0], [0.1]], [[5.0], [5.1]]
    >>> MMDTest(n_permutations=9, seed=1).test(x, y) == mmd_test(x, y, n_permutations=9, seed=1)
    True
    """

    n_permutations: int = 1000
    seed: int | None = 0
    bandwidth: float | None = None

    def test(self, reference, current) -> MMDResult:
        """The permutation MMD² test of ``reference`` against ``current``."""
        return mmd_test(reference, current, self.n_permutations, self.seed, self.bandwidth)

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"n_permutations": 99, "seed": 3}
