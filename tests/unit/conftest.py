"""Shared fixtures of the unit tests that need a trained model: the tiny testbed, built once per
session (by the trainer itself, and by the audit runner's ``ensure_testbed`` under a temporary
PARROTWATCH_HOME), its scorer, and one full audit run over it.

torch is imported inside the fixtures, so tests that do not use them run without it.
"""

from __future__ import annotations

import pytest

#: the audits of the testbed acceptance run (tests/unit/parrotwatch/audits/test_runner.py)
ACCEPTANCE_AUDITS = {
    "canary_exposure": {"n_sample": 2000, "n_fresh": 100},
    "membership": {"methods": ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus"], "n_bootstrap": 500},
    "extraction": {"prefix_tokens": 32, "suffix_tokens": 50, "min_suffix_tokens": 10, "num_beams": [1, 4],
                   "sampling": {"n_samples": 48, "tokens": 48, "top_n": 8, "min_overlap_tokens": 12}},
}


@pytest.fixture(scope="session")
def one_torch_thread():
    """One intra-op thread: on a shared CPU, OpenMP threads waiting on each other make torch much slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def audit_home(tmp_path_factory, one_torch_thread):
    """A PARROTWATCH_HOME holding the tiny testbed (preset tiny, seed 0, its default 150 steps)."""
    from parrotwatch.audits.inputs import ensure_testbed
    from parrotwatch.audits.spec import TestbedRef

    home = tmp_path_factory.mktemp("audit-home")
    ensure_testbed(home, TestbedRef(preset="tiny", seed=0), progress=False)
    return home


@pytest.fixture(scope="session")
def testbed_run(audit_home):
    """Every audit of :data:`ACCEPTANCE_AUDITS` run once on the tiny testbed."""
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import parse_spec

    spec = parse_spec({"name": "testbed-acceptance", "data": "testbed", "audits": ACCEPTANCE_AUDITS,
                       "model": {"testbed": {"preset": "tiny", "seed": 0}, "batch_size": 64}})
    return run_audits(spec, audit_home, progress=False)


@pytest.fixture(scope="session")
def tiny_testbed(tmp_path_factory, one_torch_thread):
    """The tiny testbed with its default steps and seed 0, built once per session (~20-40 s on a CPU)."""
    from parrotwatch.testbed import build_testbed

    return build_testbed(tmp_path_factory.mktemp("testbed"), preset="tiny", seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_lm(tiny_testbed):
    """The process-wide scorer of the tiny testbed (full 128-token window, batches of 4)."""
    from parrotwatch.detectors.models.causal_lm import get_causal_lm

    return get_causal_lm(tiny_testbed.spec(batch_size=4))
