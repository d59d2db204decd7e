"""Canary spaces R for the exposure audit (Carlini et al. 2019, "The Secret Sharer", Section 3).

A canary is a template with randomness slots, e.g. ``"my secret number is {}{}{}{}{}"`` over the
alphabet ``"0123456789"``: each ``{}`` takes one symbol, so the space R of all candidates has
|R| = |alphabet| ** n_slots members. Candidate number i (0 <= i < |R|) writes i in base |alphabet|,
most significant slot first, so enumeration is in lexicographic order of the alphabet.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_MAX_INDEXABLE = 2**63 - 1  # numpy int64 indices


@dataclass(frozen=True)
class CanarySpace:
    """The candidate space R: ``template`` with ``n_slots`` ``{}`` fields, each one ``alphabet`` symbol."""

    template: str
    alphabet: tuple[str, ...]

    def __post_init__(self) -> None:
        fields = [
            (f, spec, conv) for _, f, spec, conv in string.Formatter().parse(self.template) if f is not None
        ]
        if not fields or any(field != ("", "", None) for field in fields):
            raise ValueError(
                f"template needs one or more bare '{{}}' slots and no other field: {self.template!r}"
            )
        symbols = tuple(self.alphabet)
        if len(symbols) < 2 or len(set(symbols)) != len(symbols) or not all(symbols):
            raise ValueError(f"alphabet needs two or more distinct non-empty symbols, got {symbols!r}")
        object.__setattr__(self, "alphabet", symbols)
        if self.size > _MAX_INDEXABLE:
            raise ValueError(f"|R| = {self.size} exceeds 2**63 - 1: use fewer slots or a smaller alphabet")

    @property
    def n_slots(self) -> int:
        return sum(1 for _, f, _, _ in string.Formatter().parse(self.template) if f is not None)

    @property
    def size(self) -> int:
        """|R| = |alphabet| ** n_slots."""
        return len(self.alphabet) ** self.n_slots

    def canary(self, index: int) -> str:
        """Candidate number ``index`` of R (0-based, lexicographic)."""
        if not 0 <= index < self.size:
            raise IndexError(f"canary index {index} outside [0, {self.size})")
        base, digits = len(self.alphabet), []
        for _ in range(self.n_slots):
            index, d = divmod(int(index), base)
            digits.append(self.alphabet[d])
        return self.template.format(*reversed(digits))

    def all_canaries(self, max_size: int = 1_000_000) -> list[str]:
        """Every candidate of R in index order, for exact exposure; refuses spaces above ``max_size``."""
        if self.size > max_size:
            raise ValueError(
                f"|R| = {self.size} > max_size = {max_size}: score a random sample and use "
                "parrotwatch.detectors.audits.exposure.skew_normal_exposure, or raise max_size"
            )
        return [self.canary(i) for i in range(self.size)]

    def random_canaries(self, n: int, rng: np.random.Generator | int) -> list[str]:
        """``n`` distinct candidates drawn uniformly without replacement (``rng``: a Generator or a seed)."""
        if not 0 <= n <= self.size:
            raise ValueError(f"n must be in [0, |R| = {self.size}], got {n}")
        indices = np.random.default_rng(rng).choice(self.size, size=n, replace=False)
        return [self.canary(int(i)) for i in indices]


def canary_space(template: str, alphabet: Sequence[str] = "0123456789") -> CanarySpace:
    """The space R of ``template`` (``{}`` slots) over ``alphabet`` (a string of symbols or a sequence of
    words), e.g. ``canary_space("my secret number is {}{}{}{}{}")`` with |R| = 10**5."""
    return CanarySpace(template, tuple(alphabet))
