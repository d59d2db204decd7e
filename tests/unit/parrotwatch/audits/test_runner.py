"""The audit jobs end to end on the tiny testbed (no database): the issue's acceptance figures, the
per-sample scores, the HTML report, and spec-driven runs over data files."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from parrotwatch.audits.report import summary_table, write_report
from parrotwatch.audits.results import Sample
from parrotwatch.audits.store import bound_samples


def test_canaries_inserted_16_times_or_more_are_exposed_and_fresh_ones_are_not(testbed_run):
    r = testbed_run.result("canary_exposure")
    by_reps = {int(m.labels["repetitions"]): m for m in r.metrics if m.metric == "exposure_mean"}
    assert sorted(by_reps) == [0, 1, 4, 16, 64]
    often = [m.value for m in r.metrics if m.metric == "exposure" and int(m.labels["repetitions"]) >= 16]
    assert len(often) == 2 and np.mean(often) >= 10
    assert by_reps[0].value <= 3 and int(by_reps[0].labels["n"]) == 100  # never-inserted candidates
    assert by_reps[0].ci_low < by_reps[0].value < by_reps[0].ci_high
    # exposure grows with repetitions: strictly, and a Spearman correlation of 1 over the canaries
    means = [by_reps[k].value for k in (0, 1, 4, 16, 64)]
    assert all(a < b for a, b in zip(means, means[1:], strict=False)), means
    assert r.metric("exposure_repetitions_spearman").value == pytest.approx(1.0)
    assert r.metric("max_exposure").value == pytest.approx(np.log2(10**6))
    assert all(m.labels["method"] == "extrapolate" for m in r.metrics)  # |R| = 10^6 > exact_max


def test_loss_attack_auc_is_reported_with_its_ci_and_beats_chance(testbed_run):
    r = testbed_run.result("membership")
    loss = r.metric("auc", method="loss")
    assert loss.value > 0.5 and loss.ci_low <= loss.value <= loss.ci_high and loss.ci_low > 0.5
    for method in ("loss", "zlib", "lowercase", "min_k", "min_k_plus_plus"):
        auc = r.metric("auc", method=method)
        assert 0.5 < auc.value <= 1 and auc.ci_low is not None
        assert 0 <= r.metric("tpr_at_fpr_0.001", method=method).value <= r.metric(
            "tpr_at_fpr_0.01", method=method).value <= 1
        assert r.metric("n_members", method=method).value == 64
        assert r.metric("n_dropped", method=method).value == 0
    labels = [s.label for s in r.samples]
    assert labels.count("member") == 64 and labels.count("non-member") == 64
    s = r.samples[0]
    assert s.score == s.extra["scores"]["loss"] and set(s.extra["scores"]) == {
        "loss", "zlib", "lowercase", "min_k", "min_k_plus_plus"}


def _rate(samples, beams: str, keep) -> float:
    hits = [s.extra["extracted"][beams] for s in samples if keep(s)]
    assert hits
    return float(np.mean(hits))


def test_repeated_sequences_are_more_extractable_than_sequences_seen_once(testbed_run):
    r = testbed_run.result("extraction")
    seq = [s for s in r.samples if s.label != "generation"]
    for beams in ("1", "4"):
        repeated = _rate(seq, beams, lambda s: s.extra["repetitions"] >= 16)
        once = _rate(seq, beams, lambda s: s.extra["repetitions"] == 1)
        never = _rate(seq, beams, lambda s: s.extra["repetitions"] == 0)
        assert repeated > once >= never, (beams, repeated, once, never)
    top = r.metric("extractable_rate", num_beams="1", kind="canary", repetitions="64")
    assert top.value == 1.0 and top.ci_low > 0.2  # Wilson interval of 1 of 1
    assert r.metric("n_sequences").value == len(seq)
    canary = next(s for s in seq if s.label == "canary")
    # the canary's prompt is BOS + its template "my secret number is ", its target the secret digits
    assert canary.extra["prefix_tokens"] == 10 and canary.extra["suffix_tokens"] == 6
    assert all(s.extra["suffix_tokens"] >= 10 and s.extra["prefix_tokens"] == 32 for s in seq
               if s.label != "canary")


def test_sampling_attack_ranks_generations_and_checks_them_against_the_corpus(testbed_run):
    r = testbed_run.result("extraction")
    gens = [s for s in r.samples if s.label == "generation"]
    assert 0 < len(gens) <= 48
    assert r.metric("samples", attack="sampling").value == len(gens)
    rate = r.metric("memorised_rate", attack="sampling").value
    assert rate == pytest.approx(np.mean([g.extra["memorised"] for g in gens]))
    for metric in ("perplexity", "zlib", "lowercase"):
        assert 0 <= r.metric("precision_at_top_n", metric=metric).value <= 1
    assert all(g.extra["memorised"] == (g.extra["overlap_tokens"] >= 12) for g in gens)


def test_html_report_is_self_contained_with_three_plots(testbed_run, tmp_path):
    page = write_report(testbed_run, tmp_path / "sub" / "audit.html", run_id=7).read_text()
    assert "<h1>Memorization audit: testbed-acceptance</h1>" in page and "run 7" in page
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [alt for alt, _ in images] == ["Canary exposure by repetition count",
                                          "Membership inference: log-log ROC per method",
                                          "k-extractable rate by repetition count"]
    assert all(base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n" for _, b64 in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    table = summary_table(testbed_run)
    assert "membership" in table and "method=loss" in table and "repetitions=64" in table


def test_bounded_samples_keep_a_seeded_share_of_each_label():
    samples = [Sample("a", f"m{i}", "member", float(i)) for i in range(50)] + \
              [Sample("a", f"c{i}", "canary", 1.0) for i in range(4)] + \
              [Sample("a", f"n{i}", "non-member", 0.0) for i in range(30)]
    kept = bound_samples(samples, 24, seed=1)
    labels = [s.label for s in kept]
    assert len(kept) == 24 and labels.count("canary") == 4  # the small label keeps all of its rows
    assert labels.count("member") == 10 and labels.count("non-member") == 10
    assert kept == bound_samples(samples, 24, seed=1) and kept == sorted(kept, key=samples.index)
    assert bound_samples(samples, 1000) == samples and bound_samples(samples, 0) == []


def test_file_data_regurgitation_and_a_reference_model(audit_home, tmp_path):
    """Members / non-members from files, the testbed directory as a plain model path (and as the reference
    model), and the regurgitation scan of logged outputs."""
    from parrotwatch.audits.inputs import testbed_dir
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import TestbedRef, load_spec
    from parrotwatch.testbed import load_testbed

    info = load_testbed(testbed_dir(audit_home, TestbedRef()))
    members = [d for d in info.members[:20]]
    (tmp_path / "members.jsonl").write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n"
                                                    for d in members))
    (tmp_path / "non_members").mkdir()  # a directory of text files, each one document (newlines and all)
    for i, d in enumerate(info.non_members[:20]):
        (tmp_path / "non_members" / f"{i:02d}.txt").write_text(d.text)
    leak = " ".join(members[3].text.split()[:60])
    outputs = [{"request_id": "leaky", "response": f"Sure: {leak} ..."},
               {"request_id": "clean", "response": "Nothing here comes from the training set at all."}]
    (tmp_path / "out.jsonl").write_text("".join(json.dumps(o) + "\n" for o in outputs))
    (tmp_path / "spec.yaml").write_text(
        f"name: files\nmodel: {info.path}\nreference_model: {info.path}\n"
        "data: {members: members.jsonl, non_members: non_members}\n"
        "audits:\n  membership: {methods: [loss, reference], n_bootstrap: 50}\n"
        "  regurgitation: {outputs: out.jsonl, min_tokens: 20}\n")
    run = run_audits(load_spec(tmp_path / "spec.yaml"), audit_home, progress=False)
    m = run.result("membership")
    assert m.metric("auc", method="loss").value > 0.5 and m.metric("n_members", method="loss").value == 20
    assert m.metric("n_non_members", method="loss").value == 20
    # the reference model is the target itself: the ratio is 0 for every text, so the AUC is exactly 1/2
    assert m.metric("auc", method="reference").value == 0.5
    g = run.result("regurgitation")
    assert g.metric("n_outputs").value == 2 and g.metric("n_flagged").value == 1
    assert g.metric("rate").value == 0.5
    (flagged,) = g.samples
    assert flagged.sample_id == "leaky" and flagged.label == "output" and flagged.score >= 20
    assert flagged.extra["doc_id"] == members[3].id
    assert g.metric("document_outputs", doc_id=members[3].id).value == 1
