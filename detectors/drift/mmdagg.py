"""Aggregated kernel two-sample test (MMDAgg): Schrab, Kim, Albert, Laurent, Guedj & Gretton 2023,
"MMD Aggregated Two-Sample Test", JMLR 24(194).

One MMD test per kernel λ of a collection Λ, each with a weight w_λ (Σ w_λ <= 1), combined with a
level correction u that accounts for how correlated the tests are. For reference x_1..x_m and
current y_1..y_n, MMD²_λ is the unbiased estimator of Gretton et al. 2012 (as in ``mmd.py``)

    MMD²_λ = Σ_{i≠j} k_λ(x_i,x_j)/(m(m-1)) + Σ_{i≠j} k_λ(y_i,y_j)/(n(n-1))
             - 2 Σ_{i,j} k_λ(x_i,y_j)/(mn)

and the test rejects when, for some λ, MMD²_λ exceeds the (1 - u_α w_λ) quantile of its
permutation distribution, i.e. when min_λ p_λ / w_λ < u_α (Schrab et al. 2023, Algorithm 1). The
collection is the default of the authors' package (github.com/antoninschrab/mmdagg): Laplace k(a,b) =
exp(-‖a-b‖₁/λ) and Gaussian k(a,b) = exp(-‖a-b‖₂²/λ²), each with 10 bandwidths spaced
geometrically from λ_min/2 to 2λ_max, λ_min the smallest distance (the 5% quantile, at least 0.1,
when the smallest is below 0.1), λ_max the largest (at least 0.3); uniform weights w_λ = 1/|Λ|.
Here the distances are those of the pooled sample (the package takes reference-current pairs),
so Λ does not depend on the labels and the test stays exact.

Calibration. B₁ + B₂ random relabellings of the pooled sample, the same for every kernel:

    p_λ(s) = (1 + #{b <= B₁ : MMD²_λ,b >= s}) / (1 + B₁)          (per-kernel p-value of a value s)
    T = min_λ p_λ(MMD²_λ) / w_λ,  T_b the same for relabelling b = B₁+1..B₁+B₂
    p_value = (1 + #{b : T_b <= T}) / (1 + B₂)                     (Phipson & Smyth 2010)

Beyond the largest of the B₁ values, p_λ(s) = exp(-(s - max_b MMD²_λ,b) / sd_λ) / (1 + B₁) (sd_λ:
their standard deviation), our addition: without it T stops at |Λ| / (1 + B₁) and, as some
relabellings reach that floor too, the p-value stopped at 0.0025-0.0045 at B₁ = B₂ = 2000 on
text embeddings, too coarse for alert rules at 0.005 after Bonferroni; with it the floor is 1/(1 + B₂).
It only moves quantiles beyond the sampled range (u w_λ < 1/(1 + B₁)), and T stays one fixed
function of the statistics, so the p-value stays exact.

``p_value < α`` is MMDAgg's rule with u_α = sup{u : (1 + #{b : T_b <= u}) / (1 + B₂) < α}: the
paper estimates u_α by B₃ bisection steps on this step function; it jumps only at the T_b, so u_α
is the k-th smallest T_b (k the smallest with (1 + k)/(1 + B₂) >= α), taken directly. The
observed statistics and the B₂ relabellings are exchangeable under "same distribution" given the
first B₁, so the p-value is exact at every sample size (m != n included).

Cost: per kernel, the (m+n)² kernel matrix and one (chunk, m+n) @ (m+n, m+n) product per chunk of
relabellings: 20 x (B₁ + B₂) x (m+n)² multiply-adds; memory O((m+n)²).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist, squareform

from parrotwatch.detectors.drift._arrays import as_matrix, same_dim
from parrotwatch.detectors.drift.mmd import _mmd2_from_masks

_CHUNK = 256  # relabellings per matrix product
_NORMS = {"laplace": "cityblock", "gaussian": "sqeuclidean"}


@dataclass(frozen=True)
class MMDAggResult:
    """``p_value``: the aggregated permutation p-value, small means drift; ``statistic``:
    -log10 T with T = min_λ p_λ / w_λ (larger means more different); ``kernels``: (kind,
    bandwidth λ) per kernel, with its ``mmd2s`` and per-kernel ``kernel_p_values`` p_λ; ``fired``:
    the kernels whose test rejects at the level ``alpha`` the test ran with (p_λ < u w_λ)."""

    statistic: float
    p_value: float
    kernels: tuple[tuple[str, float], ...]
    mmd2s: tuple[float, ...]
    kernel_p_values: tuple[float, ...]
    alpha: float
    u: float
    fired: tuple[tuple[str, float], ...]
    n_permutations: int
    n_calibration: int

    @property
    def kernel(self) -> tuple[str, float]:
        """The kernel with the smallest weighted p-value: the first to fire as the level grows."""
        return self.kernels[int(np.argmin(self.kernel_p_values))]  # uniform weights

    def is_drift(self, alpha: float = 0.05) -> bool:
        """Reject "same distribution" at level ``alpha``."""
        return self.p_value < alpha


def bandwidth_collection(distances: np.ndarray, number: int = 10) -> np.ndarray:
    """``number`` bandwidths from λ_min/2 to 2 λ_max, geometric (Schrab et al. 2023; module docstring).

    Distances 1, 2 and 4: λ_min = 1, λ_max = 4, so the collection runs from 0.5 to 8:

    >>> bandwidth_collection(np.array([1.0, 2.0, 4.0]), 5).round(6).tolist()
    [0.5, 1.0, 2.0, 4.0, 8.0]

    All points identical (every distance 0): the floors keep the bandwidths positive.

    >>> bandwidth_collection(np.zeros(3), 3).round(3).tolist()
    [0.05, 0.173, 0.6]
    """
    if number < 1:
        raise ValueError(f"need at least 1 bandwidth, got {number}")
    lo = float(np.min(distances)) if distances.size else 0.0
    if lo < 0.1:
        lo = max(float(np.quantile(distances, 0.05)) if distances.size else 0.0, 0.1)
    hi = 2.0 * max(float(np.max(distances)) if distances.size else 0.0, 0.3)
    return np.geomspace(lo / 2.0, hi, number) if number > 1 else np.array([np.sqrt(lo / 2.0 * hi)])


def _p_values(sorted_null: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(1 + #{null >= v}) / (1 + B) for each v, the null sorted ascending (ties count as >=); beyond
    the largest null value, 1/(1 + B) x exp(-(v - max) / sd) with sd the null's standard deviation.

    >>> null = np.array([0.0, 1.0, 2.0])  # sd = 0.816
    >>> _p_values(null, np.array([-1.0, 1.0, 2.0, 2.816497])).round(4).tolist()
    [1.0, 0.75, 0.5, 0.092]
    """
    tol = 1e-12 * np.maximum(1.0, np.abs(values))
    count = len(sorted_null) - np.searchsorted(sorted_null, values - tol, side="left")
    sd = float(np.std(sorted_null))
    beyond = np.exp(-np.maximum(values - sorted_null[-1], 0.0) / sd) if sd > 0 else 1.0
    beyond = np.maximum(beyond, np.finfo(float).tiny)  # T > 0, so the statistic stays finite
    return np.where(count > 0, 1.0 + count, beyond) / (1.0 + len(sorted_null))


def level_correction(t_null: np.ndarray, alpha: float) -> float:
    """u_α = sup{u : (1 + #{b : T_b <= u}) / (1 + B₂) < α}, where the paper's bisection converges: the
    k-th smallest T_b, k the smallest integer with (1 + k)/(1 + B₂) >= α (0 when k = 0: nothing
    rejects); the test rejects when T < u_α. ``t_null``: the B₂ calibration statistics T_b, sorted.

    With B₂ = 19 and α = 0.25, k = 4: T < the 4th smallest T_b rejects, and p < 0.25 means at most 3
    of the 19 T_b are <= T:

    >>> level_correction(np.arange(1.0, 20.0), 0.25)
    4.0
    """
    k = int(np.ceil(alpha * (1.0 + len(t_null)) - 1.0 - 1e-9))
    return float(t_null[k - 1]) if k >= 1 else 0.0


def mmdagg_test(reference, current, seed: int | None = 0, *, alpha: float = 0.05,
                kernels: Sequence[str] = ("laplace", "gaussian"), n_bandwidths: int = 10,
                bandwidths: Sequence[float] | None = None, n_permutations: int = 2000,
                n_calibration: int = 2000) -> MMDAggResult:
    """MMDAgg test of ``reference`` (m, dim) against ``current`` (n, dim), m, n >= 2 (module docstring).

    ``kernels``: any of "laplace", "gaussian"; ``bandwidths``: the λ of every kernel (None:
    :func:`bandwidth_collection` of the pooled distances, ``n_bandwidths`` per kernel);
    ``n_permutations`` (B₁) relabellings give the per-kernel p-values and ``n_calibration`` (B₂)
    more the level correction; ``alpha`` only sets ``u`` and ``fired``. Deterministic under
    ``seed``; the inputs are not modified.

    Two points at 0 against two at 1, one Gaussian kernel with λ = √2 (``mmd_test``'s σ = 1):

    >>> r = mmdagg_test([[0.0], [0.0]], [[1.0], [1.0]], kernels=("gaussian",), bandwidths=[2**0.5],
    ...                 n_permutations=99, n_calibration=99)
    >>> round(r.mmd2s[0], 6)  # 2 - 2 exp(-1/2), as mmd_test
    0.786939
    >>> r.kernel[0], round(r.kernel[1], 6), r.p_value > 0.1  # 1 split in 3 is as extreme: no rejection
    ('gaussian', 1.414214, True)
    """
    x = as_matrix(reference, "reference", min_rows=2)
    y = as_matrix(current, "current", min_rows=2)
    same_dim(x, y)
    if n_permutations < 1 or n_calibration < 1:
        raise ValueError(f"n_permutations and n_calibration must be >= 1: {n_permutations}, {n_calibration}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    unknown = set(kernels) - set(_NORMS)
    if not kernels or unknown:
        raise ValueError(f"kernels must be a non-empty subset of {sorted(_NORMS)}, got {list(kernels)}")
    if bandwidths is not None and not (len(bandwidths) and all(np.isfinite(b) and b > 0 for b in bandwidths)):
        raise ValueError(f"bandwidths must be positive and finite, got {bandwidths}")
    m, n = len(x), len(y)
    pooled = np.vstack([x, y])

    rng = np.random.default_rng(seed)
    total = n_permutations + n_calibration
    masks = np.zeros((total + 1, m + n))
    masks[0, :m] = 1.0  # row 0: the observed split
    order = rng.permuted(np.broadcast_to(np.arange(m + n), (total, m + n)), axis=1)
    np.put_along_axis(masks[1:], order[:, :m], 1.0, axis=1)
    del order

    labels, stats = [], []
    for kind in dict.fromkeys(kernels):
        condensed = pdist(pooled, _NORMS[kind])  # ‖·‖₁ for Laplace, ‖·‖₂² for Gaussian
        if bandwidths is None:
            scale = np.sqrt(condensed) if kind == "gaussian" else condensed
            lambdas = bandwidth_collection(scale, n_bandwidths)
        else:
            lambdas = bandwidths
        distances = squareform(condensed)
        for lam in lambdas:
            lam = float(lam)
            kernel = np.exp(-distances / (lam * lam if kind == "gaussian" else lam))
            np.fill_diagonal(kernel, 0.0)
            row_sums = kernel.sum(axis=1)
            stats.append(np.concatenate([_mmd2_from_masks(masks[i:i + _CHUNK], kernel, row_sums, m, n)
                                         for i in range(0, total + 1, _CHUNK)]))
            labels.append((kind, lam))
    stats = np.array(stats)  # (kernels, 1 + B1 + B2): observed, B1 quantile set, B2 calibration set
    weights = np.full(len(labels), 1.0 / len(labels))

    null = np.sort(stats[:, 1:n_permutations + 1], axis=1)
    others = np.concatenate([stats[:, :1], stats[:, n_permutations + 1:]], axis=1)
    p_lambda = np.array([_p_values(null[k], others[k]) for k in range(len(labels))])
    t_all = (p_lambda / weights[:, None]).min(axis=0)
    t_obs, t_null = t_all[0], np.sort(t_all[1:])
    p_value = (1.0 + np.count_nonzero(t_null <= t_obs)) / (1.0 + n_calibration)
    u = level_correction(t_null, alpha)
    fired = tuple(lab for lab, t in zip(labels, p_lambda[:, 0] / weights, strict=True) if t < u)
    return MMDAggResult(statistic=float(-np.log10(t_obs)), p_value=float(p_value), kernels=tuple(labels),
                        mmd2s=tuple(float(s) for s in stats[:, 0]),
                        kernel_p_values=tuple(float(p) for p in p_lambda[:, 0]), alpha=float(alpha), u=u,
                        fired=fired, n_permutations=int(n_permutations), n_calibration=int(n_calibration))


@dataclass(frozen=True)
class MMDAggTest:
    """:func:`mmdagg_test` with its options fixed: a ``protocols.TwoSampleTest``.

    ``MMDAggTest(seed, ...).test(x, y)`` is ``mmdagg_test(x, y, seed, ...)`` (Schrab et al. 2023,
    see the module docstring).

    >>> x, y = [[0.0], [0.1], [0.2]], [[5.0], [5.1]]
    >>> MMDAggTest(seed=1, n_permutations=9).test(x, y) == mmdagg_test(x, y, 1, n_permutations=9)
    True
    """

    seed: int | None = 0
    alpha: float = 0.05
    kernels: tuple[str, ...] = ("laplace", "gaussian")
    n_bandwidths: int = 10
    n_permutations: int = 2000
    n_calibration: int = 2000

    def test(self, reference, current) -> MMDAggResult:
        """The MMDAgg test of ``reference`` against ``current``."""
        return mmdagg_test(reference, current, self.seed, alpha=self.alpha, kernels=self.kernels,
                           n_bandwidths=self.n_bandwidths, n_permutations=self.n_permutations,
                           n_calibration=self.n_calibration)

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"seed": 3, "n_permutations": 199, "n_calibration": 199}
