"""Input checks shared by the drift detectors: a 2-D float matrix of embeddings, never modified."""

from __future__ import annotations

import numpy as np


def as_matrix(x, name: str, *, dtype=np.float64, min_rows: int = 1) -> np.ndarray:
    """``x`` as a C-contiguous ``(n, dim)`` array of ``dtype``, always a new array (inputs stay untouched)."""
    arr = np.array(x, dtype=dtype, copy=True, order="C")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, dim) embedding matrix, got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def same_dim(a: np.ndarray, b: np.ndarray, names: str = "reference and current") -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names} differ in dimension: {a.shape[1]} != {b.shape[1]}")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero); a new array."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
