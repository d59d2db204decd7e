"""The one "halve the batch on a CUDA out-of-memory error" helper (detectors/models/batching.py), with
the error simulated: a batch function that raises ``torch.cuda.OutOfMemoryError`` above k items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from parrotwatch.detectors.models.batching import run_halving_on_oom, split_on_oom


def _fits(k: int, calls: list[list[int]]):
    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(items) > k:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return [x * 10 for x in items]

    return run


@pytest.mark.parametrize(("n", "batch_size", "k"), [(7, 7, 2), (23, 8, 3), (100, 32, 1), (5, 2, 2),
                                                    (0, 4, 1)])
def test_results_are_complete_and_in_item_order(n, batch_size, k):
    calls: list[list[int]] = []
    assert run_halving_on_oom(_fits(k, calls), range(n), batch_size) == [x * 10 for x in range(n)]
    ran = [c for c in calls if len(c) <= k]
    assert [x for c in ran for x in c] == list(range(n))  # every item ran once, in order, in a batch that fit
    assert all(len(c) <= batch_size for c in calls)


def test_a_batch_is_halved_until_it_fits():
    calls: list[list[int]] = []
    assert split_on_oom(_fits(2, calls), list(range(7))) == [x * 10 for x in range(7)]
    assert [len(c) for c in calls] == [7, 3, 1, 2, 4, 2, 2]


def test_batches_that_fit_run_once_each():
    calls: list[list[int]] = []
    run_halving_on_oom(_fits(4, calls), range(10), 4)
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_one_item_that_does_not_fit_reraises():
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_halving_on_oom(_fits(0, []), [1, 2, 3], 2)


def test_other_errors_pass_through_unsplit():
    calls = []

    def broken(items):
        calls.append(items)
        raise RuntimeError("not a memory error")

    with pytest.raises(RuntimeError, match="not a memory error"):
        run_halving_on_oom(broken, [1, 2, 3, 4], 4)
    assert len(calls) == 1


def test_array_results_and_a_wrong_count():
    rows = run_halving_on_oom(lambda b: np.asarray(b, dtype=float)[:, None] * [1.0, -1.0], range(5), 2)
    assert np.array_equal(np.asarray(rows), np.arange(5.0)[:, None] * [1.0, -1.0])
    with pytest.raises(ValueError, match="2 results for 3 items"):
        run_halving_on_oom(lambda b: b[:2], [1, 2, 3], 3)
    with pytest.raises(ValueError, match="batch_size"):
        run_halving_on_oom(lambda b: b, [1], 0)
