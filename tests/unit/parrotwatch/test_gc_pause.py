"""gc_paused: no cyclic collection inside, the collector's previous state restored after."""

from __future__ import annotations

import gc

import pytest

from parrotwatch.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _restore_gc():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_enabled_again_after_even_on_error():
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_as_a_decorator_no_generation_0_collection_runs_inside():
    gc.enable()

    @gc_paused()
    def build() -> int:
        before = gc.get_stats()[0]["collections"]
        rows = [{"logprob": -0.1 * i, "alts": [i, i + 1]} for i in range(50_000)]  # ~10^5 allocations
        assert len(rows) == 50_000
        return gc.get_stats()[0]["collections"] - before

    assert build() == 0
    assert gc.isenabled()
