"""Pause Python's cyclic garbage collector around code that builds many small acyclic objects.

Parsing a micro-batch builds ~10^6 dicts, lists and floats (token logprobs) that are all alive
at once; every 700 allocations CPython's collector walks the young ones, and as they survive,
the older generations too. Those objects hold no cycles, so reference counting frees them
anyway; the collector's walks are pure cost: 90 of 265 us per event in a stream worker
(measured in docs/benchmarks.md). It is re-enabled on exit, as it was.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Context manager and decorator: no cyclic collection inside (reference counting goes on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
