"""Membership method ``rmia`` end to end on the tiny testbed (no database): one reference model trained by
the project (parrotwatch/testbed_reference.py), the population of documents no model trained on, and the
ROC rows next to LOSS and the single-reference ratio; plus the refusals that keep RMIA's models OUT."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parrotwatch.audits.report import summary_table, write_report


def _population_size() -> int:
    from parrotwatch.testbed import prepare_corpus
    from parrotwatch.testbed_reference import reference_split

    return len(reference_split(prepare_corpus("tiny", 0), 0).population)


@pytest.fixture(scope="module")
def target(audit_home):
    from parrotwatch.audits.inputs import testbed_dir
    from parrotwatch.audits.spec import TestbedRef
    from parrotwatch.testbed import load_testbed

    return load_testbed(testbed_dir(audit_home, TestbedRef()))


@pytest.fixture(scope="module")
def reference(target):
    """Reference model 0 of the testbed (~10 s to train once; the audit would train it the same way)."""
    from parrotwatch.testbed_reference import ensure_reference_models

    return ensure_reference_models(target, 1, progress=False)[0]


@pytest.fixture(scope="module")
def run(audit_home, reference):
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import parse_spec

    spec = parse_spec({"name": "rmia", "data": "testbed",
                       "model": {"testbed": {"preset": "tiny", "seed": 0}, "batch_size": 64},
                       "reference_model": str(reference.path), "reference_models": {"testbed_references": 1},
                       "audits": {"membership": {"methods": ["loss", "reference", "rmia"], "n_bootstrap": 200,
                                                 "blind_baseline": False, "dataset_inference": False,
                                                 "rmia": {"offline_a": 1.0}}}})
    return run_audits(spec, audit_home, progress=False)


def test_rmia_is_reported_next_to_the_other_methods(run, tmp_path):
    r = run.result("membership")
    pop = r.metric("rmia_population")
    # tiny, seed 0: the corpus documents that neither the target nor its references trained on (675 on
    # CPython 3.11.7: the corpus is its pydoc topics)
    n_population = _population_size()
    assert n_population > 500 and pop.value == n_population
    assert pop.labels == {"offline_a": "1", "gamma": "1", "reference_models": "1"}
    for m in ("loss", "reference", "rmia"):
        auc = r.metric("auc", method=m)
        assert auc.ci_low <= auc.value <= auc.ci_high and auc.value > 0.95  # the testbed memorises (~0.99)
        assert (r.metric("n_members", method=m).value, r.metric("n_non_members", method=m).value) == (64, 64)
        for f in ("0.001", "0.01"):
            tpr = r.metric(f"tpr_at_fpr_{f}", method=m)
            assert 0 <= tpr.ci_low <= tpr.value <= tpr.ci_high <= 1
    assert "method=rmia" in summary_table(run) and "rmia_population" in summary_table(run)
    page = write_report(run, tmp_path / "rmia.html").read_text()
    assert "method=rmia" in page and "rmia_population" in page and "data:image/png;base64," in page
    scores = [s.extra["scores"]["rmia"] for s in r.samples]
    # each score is a share of the population texts
    assert all(0 <= s <= 1 and round(s * n_population, 6).is_integer() for s in scores)


def test_with_one_reference_and_a_1_rmia_ranks_like_the_reference_ratio(run):
    # a = 1, k = 1: ratio(x) = exp(mean l_target) / exp(mean l_ref) = exp(reference score), and the score is
    # the share of population ratios below it: a non-decreasing function of the reference score
    r = run.result("membership")
    ref = np.array([s.extra["scores"]["reference"] for s in r.samples])
    rmia = np.array([s.extra["scores"]["rmia"] for s in r.samples])
    order = np.argsort(ref, kind="stable")
    assert (np.diff(rmia[order]) >= 0).all() and len(set(rmia.tolist())) > 20
    assert abs(r.metric("auc", method="rmia").value - r.metric("auc", method="reference").value) < 0.01


def test_rmia_without_reference_models_is_refused_before_any_work(tmp_path):
    from parrotwatch.audits.spec import SpecError, load_spec

    (tmp_path / "spec.yaml").write_text("name: r\nmodel: {testbed: {preset: tiny}}\ndata: testbed\n"
                                        "audits: {membership: {methods: [loss, rmia]}}\n")
    with pytest.raises(SpecError, match="'rmia' needs 'reference_models'"):
        load_spec(tmp_path / "spec.yaml")


def _files(folder, members, non_members, population):
    for name, texts in (("members", members), ("non_members", non_members), ("population", population)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps({"id": f"{name}-{i}", "text": t}) + "\n"
                                                        for i, t in enumerate(texts)))


def test_file_data_refuses_members_the_references_trained_on_or_in_the_population(audit_home, target,
                                                                                    reference, tmp_path):
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import parse_spec, resolve_paths
    from parrotwatch.testbed_reference import testbed_population, training_texts

    members = [d.text for d in target.members[:8]]
    non_members = [d.text for d in target.non_members[:8]]
    population = [d.text for d in testbed_population(target)[:30]]
    leaked = sorted(training_texts((reference,)))[0]  # a text reference 0 trained on

    def audit(m, p):
        _files(tmp_path, m, non_members, p)
        spec = parse_spec({"name": "f", "model": {"testbed": {"preset": "tiny"}},
                           "reference_models": {"testbed_references": 1},
                           "data": {"members": "members.jsonl", "non_members": "non_members.jsonl",
                                    "population": "population.jsonl"},
                           "audits": {"membership": {"methods": ["rmia"], "n_bootstrap": 20,
                                                     "blind_baseline": False, "dataset_inference": False}}})
        return run_audits(resolve_paths(spec, tmp_path), audit_home, progress=False)

    with pytest.raises(ValueError, match="1 member.*training data of the testbed reference models"):
        audit([*members, leaked], population)
    with pytest.raises(ValueError, match="1 population text.*also members"):
        audit(members, [*population, members[2]])
    ok = audit(members, [*population, non_members[0]]).result("membership")  # a non-member twin is dropped
    assert ok.metric("rmia_population").value == 30 and ok.metric("n_members", method="rmia").value == 8
