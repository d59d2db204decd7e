"""Shared fixtures of the model tests: one tiny testbed trained per session, and its scorer."""

from __future__ import annotations

import pytest
import torch  # the model tests need the models extra: pip install -e '.[models]'


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared CPU, OpenMP threads waiting on each other make torch ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_testbed(tmp_path_factory):
    """The tiny testbed with its default steps and seed 0, built once per session (~20-40 s on a CPU)."""
    from parrotwatch.testbed import build_testbed

    return build_testbed(tmp_path_factory.mktemp("testbed"), preset="tiny", seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_lm(tiny_testbed):
    """The process-wide scorer of the tiny testbed (full 128-token window, batches of 4)."""
    from parrotwatch.detectors.models.causal_lm import get_causal_lm

    return get_causal_lm(tiny_testbed.spec(batch_size=4))
