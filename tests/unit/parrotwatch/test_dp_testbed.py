"""The one-run DP audit testbed (parrotwatch/dp_testbed.py): DP-SGD at the asked eps, inclusion bits recorded,
the non-private recipe with repeated canaries, and the canary_exposure job's epsilon_lower_bound."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("opacus")

from parrotwatch.detectors.audits.dp_lower_bound import one_run_audit  # noqa: E402
from parrotwatch.detectors.audits.exposure import log_perplexity  # noqa: E402
from parrotwatch.dp_testbed import (  # noqa: E402
    build_dp_testbed,
    load_dp_testbed,
    make_audit_canaries,
    noise_multiplier_for,
)
from parrotwatch.testbed import PRESETS, prepare_corpus  # noqa: E402

M = 40


@pytest.fixture(scope="module")
def corpus(one_torch_thread):
    return prepare_corpus("tiny", 0)


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory, corpus):
    """DP-SGD at eps = 4, delta = 1e-5, only 4 steps (seconds on a CPU)."""
    return build_dp_testbed(tmp_path_factory.mktemp("dp"), epsilon=4.0, delta=1e-5, m=M, steps=4, seed=0,
                            corpus=corpus, progress=False)


def test_the_accountant_gives_the_epsilon_asked_for(dp_run):
    q = PRESETS["tiny"].batch_size / (PRESETS["tiny"].n_members + M / 2)
    assert dp_run.sample_rate == pytest.approx(q) and dp_run.steps == 4
    assert dp_run.private and dp_run.accountant == "rdp" and dp_run.max_grad_norm == 1.0
    # Opacus searches sigma until eps is within 0.01 below the target
    assert 4.0 - 0.011 <= dp_run.epsilon <= 4.0
    assert dp_run.noise_multiplier == pytest.approx(noise_multiplier_for(4.0, 1e-5, q, 4))
    # more noise for a smaller eps
    sigma = dp_run.noise_multiplier
    assert noise_multiplier_for(1.0, 1e-5, q, 4) > sigma > noise_multiplier_for(8.0, 1e-5, q, 4)


def test_inclusion_bits_are_recorded_and_drive_the_training_set(dp_run):
    bits = dp_run.included
    assert len(dp_run.audit_canaries) == M and 0 < sum(bits) < M
    assert len({c.index for c in dp_run.audit_canaries}) == M
    assert dp_run.n_train_sequences == PRESETS["tiny"].n_members + sum(bits)
    space = dp_run.canary_space()
    assert all(space.canary(c.index) == c.text and c.text.endswith(c.secret) for c in dp_run.audit_canaries)
    assert load_dp_testbed(dp_run.path) == dp_run
    assert make_audit_canaries(M, 0) == dp_run.audit_canaries  # seeded
    assert tuple(c.included for c in make_audit_canaries(M, 1)) != bits


def test_non_private_recipe_repeats_the_included_canaries(tmp_path, corpus):
    info = build_dp_testbed(tmp_path, epsilon=None, m=M, repetitions=4, steps=2, seed=0, corpus=corpus,
                            progress=False)
    assert not info.private and info.epsilon is None and info.noise_multiplier == 0.0
    assert info.n_train_sequences == PRESETS["tiny"].n_members + 4 * sum(info.included)
    assert info.sample_rate == pytest.approx(16 / (64 + 4 * M / 2))
    assert info.audit_canaries == make_audit_canaries(M, 0)
    with pytest.raises(ValueError, match="repetitions=1"):
        build_dp_testbed(tmp_path, epsilon=1.0, m=M, repetitions=4, corpus=corpus, progress=False)


def test_canary_exposure_job_reports_the_lower_bound(dp_run):
    from parrotwatch.audits.canary_exposure_audit import run_canary_exposure
    from parrotwatch.audits.spec import CanaryExposureAudit
    from parrotwatch.detectors.models.causal_lm import CausalLMScorer

    @contextmanager
    def bar(total, desc):
        yield SimpleNamespace(update=lambda n: None)

    lm = CausalLMScorer(dp_run.spec())
    inputs = SimpleNamespace(lm=lm, canaries=None, audit_canaries=dp_run.audit_canaries)
    result = run_canary_exposure(inputs, CanaryExposureAudit(), bar)
    eps = result.metric("epsilon_lower_bound", delta="1e-05", beta="0.05")
    px = [log_perplexity(s.logprobs) for s in lm.score_texts([c.text for c in dp_run.audit_canaries])]
    expected = one_run_audit(-np.array(px), dp_run.included, delta=1e-5, beta=0.05)
    assert eps.value == pytest.approx(expected.epsilon_lower)
    assert eps.value <= dp_run.epsilon  # 4 noisy steps leak nothing measurable
    assert result.metric("dp_audit_guesses").value == expected.r
    assert result.metric("dp_audit_correct").value == expected.v
    assert result.metric("dp_audit_candidates").value == M
    assert result.plot is None and result.samples == ()
    with pytest.raises(ValueError, match="needs canaries"):
        run_canary_exposure(SimpleNamespace(lm=lm, canaries=None, audit_canaries=()),
                            CanaryExposureAudit(), bar)
