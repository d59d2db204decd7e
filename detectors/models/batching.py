"""Batches that shrink on a CUDA out-of-memory error: the one copy of "halve the batch and retry".

:func:`run_halving_on_oom` runs a batch function over consecutive batches of at most ``batch_size``
items; a batch that raises ``torch.cuda.OutOfMemoryError`` is split in two halves (the CUDA cache
emptied first), each run the same way, recursively, down to one item, which re-raises. The results
come back one per item, in item order, whatever the splits. The causal LM scorer and generator, the
sentence encoder and the toxicity classifier batch through it.

Importable without torch: torch is looked up only when a batch fails, and without torch no error is
an out-of-memory error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _oom_error() -> type[BaseException] | tuple[()]:
    """The class a CUDA out-of-memory error raises (``torch.cuda.OutOfMemoryError``); ``()`` (catches
    nothing) without torch."""
    try:
        import torch
    except ImportError:
        return ()
    return torch.cuda.OutOfMemoryError


def _empty_cache() -> None:
    import torch

    torch.cuda.empty_cache()  # a no-op when CUDA was never initialised


def split_on_oom(fn: Callable[[list[T]], Sequence[R]], items: Sequence[T]) -> list[R]:
    """``fn(items)`` as a list; on a CUDA out-of-memory error the same on each half, recursively,
    concatenated in order. One item that still does not fit re-raises. ``fn`` returns one result per
    item (a list, tuple or array), checked."""
    items = list(items)
    try:
        out = list(fn(items))
    except _oom_error():
        if len(items) <= 1:
            raise
        _empty_cache()
        half = len(items) // 2
        return split_on_oom(fn, items[:half]) + split_on_oom(fn, items[half:])
    if len(out) != len(items):
        raise ValueError(f"the batch function returned {len(out)} results for {len(items)} items")
    return out


def run_halving_on_oom(fn: Callable[[list[T]], Sequence[R]], items: Sequence[T], batch_size: int) -> list[R]:
    """``fn`` over consecutive batches of at most ``batch_size`` of ``items``, each batch through
    :func:`split_on_oom`: one result per item, in item order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    items = list(items)
    out: list[R] = []
    for start in range(0, len(items), batch_size):
        out += split_on_oom(fn, items[start:start + batch_size])
    return out
