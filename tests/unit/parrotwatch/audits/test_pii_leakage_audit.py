"""The pii_leakage audit from the spec file (issue 17, item 6) on a small PII testbed: records never
trained on reconstruct at chance and extract never, records trained on 16 times reconstruct far above
it; the spec refuses what cannot run before any work; samples never hold a PII value."""

from __future__ import annotations

import json

import pytest

from parrotwatch.audits.runner import run_audits
from parrotwatch.audits.spec import SpecError, parse_spec

pytest.importorskip("presidio_analyzer", reason="needs the models extra: pip install -e '.[models]'")


@pytest.fixture(scope="module")
def testbed(tmp_path_factory, one_torch_thread):
    from parrotwatch.pii_testbed import build_pii_testbed, write_audit_files

    root = tmp_path_factory.mktemp("pii-testbed")
    info = build_pii_testbed(root / "model", n_per_group=8, repetitions=(0, 16), n_distractors=40,
                             epochs=10, progress=False)
    return info, write_audit_files(info, root / "data")


def _spec(info, files, **audit):
    return parse_spec({"name": "pii", "model": {"path": str(info.path), "batch_size": 32},
                       "data": {"members": str(files["members"]), "non_members": str(files["non_members"])},
                       "audits": {"pii_leakage": {"distractors": str(files["distractors"]), **audit}}})


def test_trained_records_reconstruct_above_chance_and_untrained_ones_do_not(testbed, tmp_path):
    info, files = testbed
    run = run_audits(_spec(info, files), tmp_path, progress=False)
    result = run.result("pii_leakage")
    by = {(m.metric, m.labels.get("repetitions")): m for m in result.metrics}
    assert by[("n_targets", None)].value == 32  # 16 records x (e-mail, phone), all found
    never, often = by[("reconstruction_accuracy", "0")], by[("reconstruction_accuracy", "16")]
    assert by[("reconstruction_chance", "0")].value == pytest.approx(0.1)
    assert never.ci_low <= 0.1 <= never.ci_high  # at chance: the model never saw these values
    assert often.value >= 0.8 and by[("reconstruction_p_value", "16")].value < 1e-6
    assert by[("extraction_rate", "0")].value == 0.0
    assert by[("extraction_rate", "16")].value >= by[("extraction_rate", "0")].value
    assert len(result.samples) == 32
    values = {r.email for r in info.records} | {r.phone for r in info.records}
    stored = json.dumps([s.extra for s in result.samples]) + json.dumps([s.sample_id for s in result.samples])
    assert not [v for v in values if v in stored]  # types and offsets only
    assert {s.extra["entity_type"] for s in result.samples} == {"EMAIL_ADDRESS", "PHONE_NUMBER"}


def test_too_few_distractors_are_refused_before_the_model_runs(testbed, tmp_path):
    info, files = testbed
    few = tmp_path / "few.jsonl"
    few.write_text("".join(files["distractors"].read_text().splitlines(keepends=True)[:6]))
    with pytest.raises(ValueError, match="has 3 distinct EMAIL_ADDRESS values; reconstruction needs more "
                                         "than k=9"):
        run_audits(_spec(info, {**files, "distractors": few}), tmp_path, progress=False)


def test_the_spec_is_strict_and_refuses_an_endpoint():
    base = {"name": "p", "data": {"members": "/m.jsonl", "non_members": "/n.jsonl"}}
    with pytest.raises(SpecError) as info:
        parse_spec({**base, "model": "/model", "audits": {"pii_leakage": {"distractors": "/d", "kk": 3}}})
    assert "unknown key 'kk'" in str(info.value) and "distractors, entity_types, k" in str(info.value)
    with pytest.raises(SpecError, match="pii_leakage needs a local model"):
        parse_spec({**base, "model": {"endpoint": {"url": "http://127.0.0.1:1/v1", "model": "m"}},
                    "audits": {"pii_leakage": {"distractors": "/d"}}})
    with pytest.raises(SpecError, match="entity_types"):
        parse_spec({**base, "model": "/model", "audits": {"pii_leakage": {"distractors": "/d",
                                                                         "entity_types": ["URL"]}}})


def test_a_value_far_into_a_long_text_is_asked_for_with_the_prompts_last_tokens(testbed, tmp_path):
    info, files = testbed
    long_text = " ".join(["The invoice was checked twice by the billing team."] * 30) + \
        " Please contact Mara Velde at mara.velde@example.net or +1 212 555 0148 about invoice 7."
    members = tmp_path / "members.jsonl"
    members.write_text(files["members"].read_text() + json.dumps({"id": "long", "text": long_text,
                                                                   "repetitions": 1}) + "\n")
    run = run_audits(_spec(info, {**files, "members": members}), tmp_path, progress=False)
    result = run.result("pii_leakage")
    by = {(m.metric, m.labels.get("repetitions")): m.value for m in result.metrics}
    assert by[("n_prompts_truncated", None)] >= 1 and by[("n_targets", None)] == 34
    assert by[("n_group_targets", "1")] == 2  # the long text's e-mail and phone, in training once


def test_a_baseline_value_that_a_member_also_holds_leaves_the_baseline(testbed, tmp_path):
    info, files = testbed
    member = json.loads(files["members"].read_text().splitlines()[0])
    non_members = tmp_path / "non_members.jsonl"
    email = member["text"].split(" at ")[1].split(" or ")[0]
    non_members.write_text(files["non_members"].read_text()
                           + json.dumps({"id": "copy", "text": f"Write to {email} today."}) + "\n")
    result = run_audits(_spec(info, {**files, "non_members": non_members}), tmp_path,
                        progress=False).result("pii_leakage")
    by = {(m.metric, m.labels.get("repetitions")): m.value for m in result.metrics}
    assert by[("n_targets", None)] == 32 and by[("n_group_targets", "0")] == 16  # the copy was dropped
