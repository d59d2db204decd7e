"""The audit spec YAML: strict validation with messages that name the valid keys, shorthands, paths, hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from parrotwatch.audits.spec import AuditSpec, SpecError, load_spec, parse_spec

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "audit-testbed.yaml"


def _spec(**over) -> dict:
    base = {"name": "t", "model": {"testbed": {"preset": "tiny", "seed": 0}}, "data": "testbed",
            "audits": {"membership": {}}}
    base.update(over)
    return base


def _problems(data) -> str:
    with pytest.raises(SpecError) as err:
        parse_spec(data)
    return str(err.value)


def test_the_shipped_example_is_valid():
    spec = load_spec(EXAMPLE)
    assert spec.name == "testbed-nightly" and spec.schedule == "0 3 * * *"
    assert spec.model.testbed.preset == "tiny" and spec.data.testbed
    assert spec.audits.extraction.num_beams == [1, 4] and spec.audits.extraction.sampling.top_k == 40
    assert spec.audits.membership.methods == ["loss", "zlib", "lowercase", "min_k", "min_k_plus_plus"]
    assert spec.audits.regurgitation is None


def test_unknown_keys_name_the_valid_keys_at_every_level():
    msg = _problems(_spec(model={"testbed": {"preset": "tiny", "sed": 1}},
                          audits={"membershp": {}, "extraction": {"prefix_token": 8}}, schedul="* * * * *"))
    assert "4 problem(s)" in msg
    assert "model.testbed: unknown key 'sed' (did you mean 'seed'?); valid keys: preset, seed, steps" in msg
    assert "audits: unknown key 'membershp' (did you mean 'membership'?); valid keys: canary_exposure, " \
           "membership, extraction, regurgitation" in msg
    assert "audits.extraction: unknown key 'prefix_token' (did you mean 'prefix_tokens'?)" in msg
    assert "the top level: unknown key 'schedul' (did you mean 'schedule'?); valid keys: name, model" in msg


def test_missing_keys_and_bad_values_are_explained():
    msg = _problems({"name": "t", "model": "/m", "data": "testbed"})
    assert "missing required key 'audits'; valid keys: name, model, reference_model, data, audits" in msg
    assert "membership.methods.0" in _problems(_spec(audits={"membership": {"methods": ["los"]}}))
    assert "k: Input should be less than or equal to 1" in _problems(_spec(audits={"membership": {"k": 2}}))
    assert "methods repeat" in _problems(_spec(audits={"membership": {"methods": ["loss", "loss"]}}))
    assert "audits is empty" in _problems(_spec(audits={}))
    assert "expected a mapping" in _problems(["not", "a", "mapping"])


def test_model_and_data_shorthands_and_their_rules():
    spec = parse_spec(_spec(model="/models/gpt", data={"members": "m.txt", "non_members": "n.txt"}))
    assert spec.model.path == "/models/gpt" and spec.model.testbed is None and not spec.data.testbed
    assert "exactly one of 'path'" in _problems(_spec(model={"path": "/m", "testbed": {}}))
    assert "data 'testbed' needs the model 'testbed" in _problems(_spec(model="/models/gpt"))
    assert "data needs 'members' and 'non_members'" in _problems(_spec(model="/m", data={"members": "m.txt"}))
    assert "'reference' needs 'reference_model'" in _problems(
        _spec(audits={"membership": {"methods": ["loss", "reference"]}}))
    assert parse_spec(_spec(reference_model="/ref", audits={"membership": {"methods": ["reference"]}}))
    assert "canary_exposure needs canaries" in _problems(
        _spec(model="/m", data={"members": "m.txt", "non_members": "n.txt"}, audits={"canary_exposure": {}}))


def test_an_endpoint_model_refuses_the_audits_it_cannot_serve():
    files = {"members": "m.txt", "non_members": "n.txt"}
    endpoint = {"endpoint": {"url": "http://127.0.0.1:8000/v1", "model": "m"}}
    spec = parse_spec(_spec(model=endpoint, data=files,
                            audits={"membership": {"methods": ["loss", "min_k"]}}))
    assert spec.model.endpoint.model == "m" and spec.model.path is None
    assert "extraction needs a local model" in _problems(
        _spec(model=endpoint, data=files, audits={"extraction": {}}))
    assert "'min_k_plus_plus' needs the whole next-token distribution" in _problems(
        _spec(model=endpoint, data=files, audits={"membership": {}}))
    assert "exactly one of 'path'" in _problems(_spec(model={"path": "/m", **endpoint}, data=files))
    assert "url: String should match pattern" in _problems(
        _spec(model={"endpoint": {"url": "localhost:8000", "model": "m"}}, data=files))


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/5 * * * *", "*/20 * * * * *", "0 0 3 * * mon-fri"])
def test_cron_schedules_with_five_or_six_fields(cron):
    assert parse_spec(_spec(schedule=cron)).schedule == cron


@pytest.mark.parametrize("cron", ["every day", "61 * * * *", "* * * *", "* * * * * * * *", 5])
def test_bad_cron_schedules_are_refused(cron):
    assert "schedule must be a cron string" in _problems(_spec(schedule=cron))


def test_extraction_parameters_are_checked():
    assert "min_suffix_tokens must be <= suffix_tokens" in _problems(
        _spec(audits={"extraction": {"suffix_tokens": 10, "min_suffix_tokens": 20}}))
    assert "num_beams must be distinct widths" in _problems(
        _spec(audits={"extraction": {"num_beams": [1, 1]}}))
    assert "sampling: unknown key 'topk'" in _problems(
        _spec(audits={"extraction": {"sampling": {"topk": 40}}})).replace("audits.extraction.", "")


def test_spec_hash_is_canonical_and_follows_the_content():
    a = parse_spec(_spec())
    b = parse_spec(_spec(audits={"membership": {"k": 0.2}}))  # the default, written out
    assert a.spec_hash() == b.spec_hash() and len(a.spec_hash()) == 64
    assert parse_spec(_spec(audits={"membership": {"k": 0.1}})).spec_hash() != a.spec_hash()
    assert AuditSpec.model_validate_json(a.model_dump_json()).spec_hash() == a.spec_hash()


def test_relative_paths_are_resolved_against_the_spec_folder(tmp_path):
    (tmp_path / "specs").mkdir()
    path = tmp_path / "specs" / "s.yaml"
    path.write_text("name: files\nmodel: ../model\ndata: {members: m.jsonl, non_members: /abs/n.txt}\n"
                    "audits: {regurgitation: {outputs: out.jsonl}}\n")
    spec = load_spec(path)
    assert spec.model.path == str(tmp_path / "model")
    assert spec.data.members == tmp_path / "specs" / "m.jsonl" and spec.data.non_members == Path("/abs/n.txt")
    assert spec.audits.regurgitation.outputs == tmp_path / "specs" / "out.jsonl"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(bad)
