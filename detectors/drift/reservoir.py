"""Uniform reservoir sample of embedding vectors: Vitter 1985, "Random Sampling with a Reservoir",
ACM TOMS 11(1):37-57, Algorithm R.

The first ``capacity`` vectors fill the reservoir; the t-th vector after that (1-based stream index t)
draws j uniformly from {1..t} and replaces slot j when j <= capacity. Every vector seen so far is then
in the sample with probability capacity / t, and every subset of that size is equally likely.
"""

from __future__ import annotations

import numpy as np

from parrotwatch.detectors.drift._arrays import as_matrix


class Reservoir:
    """Algorithm R over rows of ``(n, dim)`` matrices, keeping at most ``capacity`` vectors (float32).

    State is the buffer, the count ``seen`` and a NumPy ``Generator`` seeded by ``seed``: the same
    seed and the same stream give the same sample, however the stream is cut into ``add`` calls.
    Pickles as that state (``capacity * dim * 4`` bytes plus a few hundred).
    """

    def __init__(self, capacity: int, dim: int, seed: int | None = 0):
        if capacity < 1 or dim < 1:
            raise ValueError(f"capacity and dim must be positive, got capacity={capacity}, dim={dim}")
        self.capacity = int(capacity)
        self.dim = int(dim)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Empty the reservoir and restart the random stream from ``seed``."""
        self._buffer = np.zeros((self.capacity, self.dim), dtype=np.float32)
        self._seen = 0
        self._rng = np.random.default_rng(self.seed)

    @property
    def seen(self) -> int:
        """How many vectors have been offered to the reservoir so far."""
        return self._seen

    def __len__(self) -> int:
        return min(self._seen, self.capacity)

    def add(self, matrix) -> Reservoir:
        """Offer the rows of ``matrix`` (shape ``(n, dim)``, or one vector of shape ``(dim,)``) in order."""
        rows = np.asarray(matrix)
        if rows.ndim == 1:
            rows = rows[None, :]
        rows = as_matrix(rows, "matrix", dtype=np.float32, min_rows=0)
        if rows.shape[1] != self.dim:
            raise ValueError(f"matrix has dimension {rows.shape[1]}, the reservoir holds {self.dim}")
        fill = min(max(self.capacity - self._seen, 0), len(rows))
        self._buffer[self._seen:self._seen + fill] = rows[:fill]
        self._seen += fill
        rest = rows[fill:]
        if len(rest):
            # 0-based stream positions t = seen .. seen+len-1; j ~ U{0..t}; keep when j < capacity
            positions = np.arange(self._seen, self._seen + len(rest))
            slots = self._rng.integers(0, positions + 1)
            keep = np.flatnonzero(slots < self.capacity)
            # Later rows overwrite earlier ones in the same slot, as the sequential algorithm does.
            last = len(keep) - 1 - np.unique(slots[keep][::-1], return_index=True)[1]
            self._buffer[slots[keep[last]]] = rest[keep[last]]
            self._seen += len(rest)
        return self

    def sample(self) -> np.ndarray:
        """A copy of the current sample, shape ``(min(seen, capacity), dim)``, float32."""
        return self._buffer[:len(self)].copy()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_buffer"] = self._buffer[:len(self)].copy()  # do not pickle the unused tail
        return state

    def __setstate__(self, state):
        buffer = np.zeros((state["capacity"], state["dim"]), dtype=np.float32)
        buffer[:len(state["_buffer"])] = state["_buffer"]
        state["_buffer"] = buffer
        self.__dict__.update(state)
