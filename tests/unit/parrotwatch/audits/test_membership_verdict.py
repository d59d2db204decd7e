"""The membership audit's verdict end to end on the tiny testbed (no database): the blind-baseline guard
(Das et al. 2024) holds on the testbed's same-distribution split and fires on shifted splits, and the
report says so next to the dataset-inference p-value (Maini et al. 2024)."""

from __future__ import annotations

import importlib
import inspect
import json

import pytest

from parrotwatch.audits.report import SHIFT_VERDICT, summary_table, write_report

METHODS = ["loss", "zlib", "min_k"]
MONTHS = ["January", "March", "June", "October"]


@pytest.fixture(scope="module")
def testbed(audit_home):
    from parrotwatch.audits.inputs import testbed_dir
    from parrotwatch.audits.spec import TestbedRef
    from parrotwatch.testbed import load_testbed

    return load_testbed(testbed_dir(audit_home, TestbedRef()))


def _texts(docs) -> list[str]:
    return [d.text for d in docs]


def _run(home, folder, model, members: list[str], non_members: list[str], **membership):
    """The membership audit of ``model`` (a directory) on these texts, given as data files of a spec."""
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import load_spec

    for name, texts in (("members", members), ("non_members", non_members)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps({"id": f"{name}-{i}", "text": t}) + "\n"
                                                        for i, t in enumerate(texts)))
    cfg = {"methods": METHODS, "n_bootstrap": 200, **membership}
    (folder / "spec.yaml").write_text(
        f"name: verdict\nmodel: {model}\ndata: {{members: members.jsonl, non_members: non_members.jsonl}}\n"
        f"audits:\n  membership: {json.dumps(cfg)}\n")
    return run_audits(load_spec(folder / "spec.yaml"), home, progress=False)


def _stdlib_docstrings(n: int) -> list[str]:
    """Docstrings of public functions of a few standard-library modules: a second source of English text
    about Python, never in the testbed's training data (which is the language reference, pydoc_data)."""
    out: list[str] = []
    for name in ("textwrap", "string", "json", "csv", "statistics", "fractions", "shutil", "posixpath",
                 "random", "heapq", "bisect", "calendar", "difflib", "fnmatch", "glob", "base64", "tempfile",
                 "zipfile", "ipaddress"):
        for attr, obj in sorted(vars(importlib.import_module(name)).items()):
            doc = inspect.getdoc(obj) if callable(obj) and not attr.startswith("_") else None
            if doc and 100 <= len(doc) <= 320 and doc not in out:
                out.append(doc)
    assert len(out) >= n
    return out[:n]


def test_same_distribution_testbed_split_keeps_the_guard_down(audit_home, testbed, tmp_path):
    run = _run(audit_home, tmp_path, testbed.path, _texts(testbed.members), _texts(testbed.non_members))
    r = run.result("membership")
    blind, guard = r.metric("blind_auc", method="blind"), r.metric("blind_guard")
    # a seeded random split of one corpus: the texts alone are at chance (0.565, CI 0.466-0.666 here)
    assert blind.ci_low < 0.5 < blind.ci_high and blind.labels["folds"] == "5"
    assert guard.value == 0 and guard.labels == {"best_method": "min_k", "shift": "false"}
    assert r.metric("auc", method="min_k").ci_low == 1.0  # Min-K% separates the testbed's split perfectly
    assert r.metric("auc", method="loss").ci_low > blind.ci_high  # 0.9995 (CI 0.998-1)
    # the 64 members really were trained on, and dataset inference says so
    p = r.metric("dataset_inference_p_value")
    assert p.value < 1e-10 and p.labels == {"n_members": "64", "n_non_members": "64", "alpha": "0.05"}
    assert r.metric("dataset_inference_rejects").value == 1 and r.metric("dataset_inference_t").value > 10
    assert {m.labels["method"] for m in r.metrics if m.metric == "dataset_inference_weight"} == set(METHODS)
    assert all(isinstance(s.extra["blind_score"], float) for s in r.samples)
    page = write_report(run, tmp_path / "same.html").read_text()
    assert "Blind baseline guard: not fired." in page and SHIFT_VERDICT not in page
    assert "Dataset inference p-value: " in page
    assert "evidence at level 0.05 that they were trained on" in page
    assert "blind_guard" in summary_table(run) and "dataset_inference_p_value" in summary_table(run)


def test_two_sources_and_no_training_at_all_fire_the_guard(audit_home, testbed, tmp_path):
    """Das et al.'s point: members that were never trained on (held-out pydoc documents) against
    non-members from another source (stdlib docstrings). The attacks 'succeed' on the shift alone."""
    members = _texts(testbed.non_members)
    run = _run(audit_home, tmp_path, testbed.path, members, _stdlib_docstrings(64))
    r = run.result("membership")
    assert r.metric("auc", method="loss").ci_low > 0.6  # 0.775 (CI 0.70-0.85) with no member at all
    blind = r.metric("blind_auc", method="blind")
    assert blind.ci_low > 0.85  # 0.965 (CI 0.94-0.99)
    assert r.metric("blind_guard").value == 1 and r.metric("blind_guard").labels["shift"] == "true"
    assert r.metric("dataset_inference_p_value").value < 0.05  # fooled by the shift as well
    page = write_report(run, tmp_path / "shift.html").read_text()
    assert f"Blind baseline guard fired: {SHIFT_VERDICT}." in page
    assert "these sets differ in distribution; membership AUC is not evidence of memorization" in page
    assert "Dataset inference p-value: " in page and "<strong>Not valid here:</strong>" in page


def test_dated_non_members_fire_the_guard(audit_home, testbed, tmp_path):
    """The temporal shift: the testbed's non-members each carry a recent date the members never have."""
    dated = [f"{t}\n\n(Revised {MONTHS[i % 4]} {2023 + i % 2}.)"
             for i, t in enumerate(_texts(testbed.non_members))]
    r = _run(audit_home, tmp_path, testbed.path, _texts(testbed.members), dated).result("membership")
    assert r.metric("blind_auc", method="blind").value == 1.0
    assert r.metric("blind_guard").value == 1


def test_the_verdict_can_be_turned_off(audit_home, testbed, tmp_path):
    members, non_members = _texts(testbed.members[:12]), _texts(testbed.non_members[:12])
    run = _run(audit_home, tmp_path, testbed.path, members, non_members,
               blind_baseline=False, dataset_inference={"alpha": 0.01, "seed": 3})
    r = run.result("membership")
    assert not [m for m in r.metrics if m.metric.startswith("blind")]
    p = r.metric("dataset_inference_p_value")
    assert p.labels["alpha"] == "0.01" and p.labels["n_members"] == "12"
    page = write_report(run, tmp_path / "off.html").read_text()
    assert "Blind baseline guard" not in page and "at level 0.01" in page
    run = _run(audit_home, tmp_path, testbed.path, ["a b c d"] * 3, ["e f g h"] * 3, dataset_inference=False)
    r = run.result("membership")
    assert not [m for m in r.metrics if m.metric.startswith("dataset_inference")]
    assert r.metric("blind_auc").value == 1.0 and r.metric("blind_auc").labels["folds"] == "3"
