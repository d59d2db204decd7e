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
    assert spec.audits.membership.blind_baseline.folds == 5
    assert spec.audits.membership.dataset_inference.alpha == 0.05


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


def test_membership_verdict_keys_are_strict_and_name_the_valid_ones():
    msg = _problems(_spec(audits={"membership": {"blind_baselin": True, "dataset_inference": {"alfa": 0.01},
                                                 "n_bootstrap": 10}}))
    assert "2 problem(s)" in msg
    assert "audits.membership: unknown key 'blind_baselin' (did you mean 'blind_baseline'?); valid keys: " \
           "methods, k, n_bootstrap, seed, blind_baseline, dataset_inference" in msg
    assert "audits.membership.dataset_inference: unknown key 'alfa' (did you mean 'alpha'?); " \
           "valid keys: alpha, seed" in msg
    assert "audits.membership.blind_baseline: unknown key 'fold' (did you mean 'folds'?); valid keys: " \
           "folds, seed" in _problems(_spec(audits={"membership": {"blind_baseline": {"fold": 3}}}))
    assert "dataset_inference.alpha: Input should be less than 1" in _problems(
        _spec(audits={"membership": {"dataset_inference": {"alpha": 1.5}}}))
    assert "blind_baseline.folds: Input should be greater than or equal to 2" in _problems(
        _spec(audits={"membership": {"blind_baseline": {"folds": 1}}}))


def test_membership_verdict_is_on_by_default_and_true_or_false_switch_it():
    m = parse_spec(_spec()).audits.membership
    assert (m.blind_baseline.folds, m.blind_baseline.seed) == (5, 0)
    assert (m.dataset_inference.alpha, m.dataset_inference.seed) == (0.05, 0)
    on = parse_spec(_spec(audits={"membership": {"blind_baseline": True, "dataset_inference": True}}))
    assert on.audits.membership == m and on.spec_hash() == parse_spec(_spec()).spec_hash()
    off = parse_spec(_spec(audits={"membership": {"blind_baseline": False, "dataset_inference": False}}))
    assert off.audits.membership.blind_baseline is None and off.audits.membership.dataset_inference is None
    assert off.spec_hash() != on.spec_hash()
    custom = parse_spec(_spec(audits={"membership": {"dataset_inference": {"alpha": 0.01, "seed": 7}}}))
    assert custom.audits.membership.dataset_inference.alpha == 0.01
    assert "Input should be a valid dictionary" in _problems(
        _spec(audits={"membership": {"dataset_inference": "yes"}}))


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


def test_dp_audit_and_near_verbatim_keys_are_strict_and_checked(tmp_path):
    msg = _problems(_spec(audits={"canary_exposure": {"dp_delt": 1e-6},
                                  "regurgitation": {"outputs": "o.jsonl", "near_verbatim_gap": 3}}))
    assert "unknown key 'dp_delt' (did you mean 'dp_delta'?)" in msg
    assert "unknown key 'near_verbatim_gap' (did you mean 'near_verbatim_max_gap'?)" in msg
    fractions = {"canary_exposure": {"dp_guess_fractions": [0.7]}}
    assert "dp_guess_fractions.0" in _problems(_spec(audits=fractions))
    assert "dp_beta" in _problems(_spec(audits={"canary_exposure": {"dp_beta": 1.5}}))
    spec = parse_spec(_spec(audits={"canary_exposure": {}, "regurgitation": {"outputs": "o.jsonl"}}))
    assert (spec.audits.canary_exposure.dp_delta, spec.audits.canary_exposure.dp_beta) == (1e-5, 0.05)
    assert spec.audits.regurgitation.near_verbatim_n == 8


def test_audit_canaries_alone_satisfy_canary_exposure_and_resolve_relative(tmp_path):
    assert "canary_exposure needs canaries" in _problems(
        _spec(data={"members": "m", "non_members": "n"}, audits={"canary_exposure": {}}))
    path = tmp_path / "s.yaml"
    path.write_text("name: dp\nmodel: /m\ndata: {members: m, non_members: n, audit_canaries: c.jsonl}\n"
                    "audits: {canary_exposure: {dp_delta: 1.0e-6}}\n")
    spec = load_spec(path)
    assert spec.data.audit_canaries == tmp_path / "c.jsonl"
    assert spec.audits.canary_exposure.dp_delta == 1e-6


def test_audit_canary_files_are_read_and_bad_lines_named(tmp_path):
    from parrotwatch.audits.inputs import read_audit_canaries

    good = tmp_path / "c.jsonl"
    good.write_text('{"text": "my secret is 1", "included": true}\n\n'
                    '{"text": "my secret is 2", "included": false}\n')
    assert [(c.text, c.included) for c in read_audit_canaries(good)] == [
        ("my secret is 1", True), ("my secret is 2", False)]
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"text": "x", "included": "yes"}\n')
    with pytest.raises(ValueError, match="b.jsonl:1"):
        read_audit_canaries(bad)


def test_rmia_needs_reference_models_and_a_population_and_its_keys_are_strict(tmp_path):
    rmia = {"membership": {"methods": ["loss", "rmia"]}}
    assert "membership method 'rmia' needs 'reference_models': a list of 1 to 4 models" in _problems(
        _spec(audits=rmia))
    spec = parse_spec(_spec(audits=rmia, reference_models={"testbed_references": 2}))
    assert spec.reference_models.testbed_references == 2 and spec.reference_models.models == []
    o = spec.audits.membership.rmia
    assert (o.offline_a, o.gamma, o.population) == (1.0, 1.0, 1000)
    # a list (or one path) is the shorthand of {models: [...]}; 1 to 4 of them
    files = {"members": "m.txt", "non_members": "n.txt", "population": "p.jsonl"}
    listed = parse_spec(_spec(model="/m", data=files, audits=rmia, reference_models=["/r1", {"path": "/r2"}]))
    assert [m.path for m in listed.reference_models.models] == ["/r1", "/r2"]
    assert parse_spec(_spec(model="/m", data=files, audits=rmia, reference_models="/r1")).reference_models \
        .models[0].path == "/r1"
    assert "List should have at most 4 items" in _problems(
        _spec(audits=rmia, reference_models=["/a", "/b", "/c", "/d", "/e"]))
    assert "testbed_references: Input should be less than or equal to 4" in _problems(
        _spec(audits=rmia, reference_models={"testbed_references": 5}))
    assert "give either 'models'" in _problems(_spec(audits=rmia, reference_models=[]))
    # the audited model, or a testbed (trained on the audited texts' corpus), is no reference
    assert "the audited model itself is no reference" in _problems(
        _spec(model="/m", data=files, audits=rmia, reference_models=["/r1", "/m"]))
    assert "use 'testbed_references: N'" in _problems(
        _spec(audits=rmia, reference_models=[{"testbed": {"preset": "tiny", "seed": 1}}]))
    assert "give either 'models'" in _problems(
        _spec(audits=rmia, reference_models={"models": ["/a"], "testbed_references": 1}))
    # typos name the valid keys
    msg = _problems(_spec(audits={"membership": {"methods": ["rmia"], "rmia": {"ofline_a": 0.5, "gamma": 0}}},
                          reference_models={"testbed_referencs": 1}))
    assert "3 problem(s)" in msg
    assert "reference_models: unknown key 'testbed_referencs' (did you mean 'testbed_references'?); " \
           "valid keys: models, testbed_references" in msg
    assert "audits.membership.rmia: unknown key 'ofline_a' (did you mean 'offline_a'?); valid keys: " \
           "offline_a, gamma, population" in msg
    assert "audits.membership.rmia.gamma: Input should be greater than 0" in msg
    assert "reference_models.models.0: unknown key 'sed' (did you mean 'testbed'?)" in _problems(
        _spec(audits=rmia, reference_models=[{"path": "/r", "sed": 1}]))
    assert "valid keys: methods, k, n_bootstrap, seed, blind_baseline, dataset_inference, rmia" in _problems(
        _spec(audits={"membership": {"rmai": {}}}))
    # file data needs a population no model trained on; testbed references need a testbed target
    no_population = {"members": "m.txt", "non_members": "n.txt"}
    assert "'rmia' needs population texts" in _problems(
        _spec(model="/m", data=no_population, audits=rmia, reference_models=["/r"]))
    assert "'testbed_references' needs the model 'testbed" in _problems(
        _spec(model="/m", data=files, audits=rmia, reference_models={"testbed_references": 1}))
    assert "data: 'testbed' takes no files" in _problems(_spec(data={"testbed": True, "population": "p"}))
    # relative paths of the population and of the reference models resolve against the spec's folder
    (tmp_path / "spec.yaml").write_text(
        "name: r\nmodel: /m\nreference_models: [refs/one, {path: /abs/two}]\n"
        "data: {members: m.jsonl, non_members: n.jsonl, population: pop.jsonl}\n"
        "audits: {membership: {methods: [rmia]}}\n")
    spec = load_spec(tmp_path / "spec.yaml")
    assert [m.path for m in spec.reference_models.models] == [str(tmp_path / "refs" / "one"), "/abs/two"]
    assert spec.data.population == tmp_path / "pop.jsonl"
