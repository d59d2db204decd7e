"""Dataset inference: was this *set* of texts used in training? (Maini, Jia, Papernot & Dziedzic 2024,
"LLM Dataset Inference: Did you train on my dataset?")

Single-text membership scores are weak; their aggregate over a set is not. Input: a matrix of membership
features (one row per text, one column per method, e.g. LOSS, zlib, Min-K%) for the *suspect* set S and
for a *validation* set V known not to be in training and drawn from the same distribution as S.

1. Split S and V each in two halves at random (seeded): S_A, S_B and V_A, V_B.
2. On A, standardise each feature (z = (x - mean_A) / sd_A, mean and sd over S_A and V_A together) and fit
   a linear model of "is suspect": L2-regularised logistic regression, s(x) = w . z(x) + b.
3. On B, score every text with s (the decision value, affine in the features) and run a one-sided Welch
   t-test of H0: E[s | S_B] <= E[s | V_B] against H1: E[s | S_B] > E[s | V_B]:

       t  = (mean(s_S) - mean(s_V)) / sqrt(var_S / n_S + var_V / n_V)      (sample variances, ddof = 1)
       df = (var_S / n_S + var_V / n_V)^2 / ((var_S / n_S)^2 / (n_S - 1) + (var_V / n_V)^2 / (n_V - 1))
       p  = P(T_df >= t)                                                 (scipy.stats.ttest_ind,
                                                                          equal_var=False, 'greater')

A small p says the suspect set scores as "more member-like" than held-out data of its own distribution:
evidence that it was trained on. The test assumes S and V are i.i.d. from one distribution apart from
training; if they differ in distribution (see :mod:`parrotwatch.detectors.audits.blind`) a small p is
evidence of that shift, not of training. The weights are fitted on A only, so under H0 the B scores of S
and V are i.i.d. and the t-test holds its level (up to the t approximation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import ttest_ind
from threadpoolctl import threadpool_limits

try:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"{__name__} needs scikit-learn: pip install scikit-learn") from exc

__all__ = ["DatasetInferenceResult", "dataset_inference", "dataset_inference_on_split", "welch_t_greater"]


@dataclass(frozen=True)
class DatasetInferenceResult:
    """``p_value`` of "the suspect set was trained on", Welch's ``t`` and ``df`` on split B, the
    ``weights`` (per feature, on standardised features) and ``intercept`` fitted on split A, and the
    texts used: ``n_suspect`` / ``n_validation`` in all (rows with a missing feature are left out),
    ``n_test_suspect`` / ``n_test_validation`` of them in split B."""

    p_value: float
    t: float
    df: float
    weights: tuple[float, ...]
    intercept: float
    n_suspect: int
    n_validation: int
    n_test_suspect: int
    n_test_validation: int

    def rejects(self, alpha: float = 0.05) -> bool:
        """Whether H0 (not trained on) is rejected at level ``alpha``: p < alpha."""
        return self.p_value < alpha


def welch_t_greater(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(t, df, p) of the one-sided Welch t-test H1: mean(a) > mean(b) (formulas in the module docstring).

    >>> t, df, p = welch_t_greater([1, 2, 3, 4], [0, 1, 2])  # t = 1.5 / sqrt(5/12 + 1/3) = sqrt(3)
    >>> round(t ** 2, 12), round(df, 4), round(p, 4)
    (3.0, 4.9592, 0.0721)
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"Welch's t-test needs >= 2 values per group, got {a.size} and {b.size}")
    r = ttest_ind(a, b, equal_var=False, alternative="greater")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if va + vb > 0 else float("nan")
    return float(r.statistic), float(df), float(r.pvalue)


def _matrix(x, what: str) -> np.ndarray:
    m = np.asarray(x, dtype=np.float64)
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix (texts x features), got shape {m.shape}")
    return m


def dataset_inference_on_split(suspect_a, validation_a, suspect_b, validation_b,
                               c: float = 1.0) -> DatasetInferenceResult:
    """Fit on split A (suspect = 1, validation = 0), Welch-test the decision values of split B.

    Rows holding a non-finite feature are left out. ``c``: the logistic regression's inverse L2 strength.
    """
    parts = [_matrix(x, name) for x, name in ((suspect_a, "suspect_a"), (validation_a, "validation_a"),
                                              (suspect_b, "suspect_b"), (validation_b, "validation_b"))]
    if len({p.shape[1] for p in parts}) != 1:
        raise ValueError(f"every split needs the same features, got {[p.shape for p in parts]}")
    sa, va, sb, vb = (p[np.isfinite(p).all(axis=1)] for p in parts)
    if min(len(sa), len(va)) < 1 or min(len(sb), len(vb)) < 2:
        raise ValueError(f"need >= 1 suspect and validation row to fit and >= 2 of each to test, got "
                         f"{len(sa)}, {len(va)} (fit) and {len(sb)}, {len(vb)} (test)")
    x = np.vstack([sa, va])
    y = np.r_[np.ones(len(sa), int), np.zeros(len(va), int)]
    with threadpool_limits(limits=1, user_api="blas"):  # a small fit: one BLAS thread is the fastest
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(x, y)
    t, df, p = welch_t_greater(model.decision_function(sb), model.decision_function(vb))
    lr = model[-1]
    return DatasetInferenceResult(p_value=p, t=t, df=df, weights=tuple(lr.coef_[0].tolist()),
                                  intercept=float(lr.intercept_[0]), n_suspect=len(sa) + len(sb),
                                  n_validation=len(va) + len(vb), n_test_suspect=len(sb),
                                  n_test_validation=len(vb))


def dataset_inference(suspect, validation, seed: int = 0, c: float = 1.0) -> DatasetInferenceResult:
    """Maini et al. 2024 dataset inference of the ``suspect`` feature matrix against the ``validation``
    (known non-member) one: each set permuted with ``seed`` and cut in halves, the first halves fit the
    linear model, the second halves are t-tested (:func:`dataset_inference_on_split`). Rows holding a
    non-finite feature are dropped first, so the halves are balanced over the usable rows.
    """
    s, v = _matrix(suspect, "suspect"), _matrix(validation, "validation")
    s, v = s[np.isfinite(s).all(axis=1)], v[np.isfinite(v).all(axis=1)]
    if min(len(s), len(v)) < 4:
        raise ValueError(f"dataset inference needs >= 4 usable suspect and validation rows (2 to fit, 2 to "
                         f"test), got {len(s)} and {len(v)}")
    rng = np.random.default_rng(seed)
    ps, pv = rng.permutation(len(s)), rng.permutation(len(v))
    hs, hv = len(s) // 2, len(v) // 2
    return dataset_inference_on_split(s[ps[:hs]], v[pv[:hv]], s[ps[hs:]], v[pv[hv:]], c=c)
