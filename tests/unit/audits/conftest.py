"""Fixtures of the audit-job tests: one tiny testbed per session, built by the audit runner's own
``ensure_testbed`` under a temporary PARROTWATCH_HOME, and one full audit run over it.

torch is imported inside the fixtures, so the pure-math tests of this folder run without it.
"""

from __future__ import annotations

import pytest

#: the audits of the testbed acceptance run (tests/unit/audits/test_audit_runner.py)
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
