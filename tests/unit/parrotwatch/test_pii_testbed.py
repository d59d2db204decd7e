"""The PII testbed (parrotwatch/pii_testbed.py): seeded synthetic records whose e-mails and phones the
Presidio finder reports, inserted 0, 1, 4 and 16 times, a tiny build (a few steps), its JSON and its cache."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from parrotwatch.detectors.audits.pii_extraction import pii_targets  # noqa: E402
from parrotwatch.pii_testbed import (  # noqa: E402
    RECORD_TEMPLATE,
    REPETITIONS,
    build_pii_testbed,
    load_pii_testbed,
    make_person_records,
    pii_testbed,
    training_sequences,
)
from parrotwatch.testbed import PRESETS, prepare_corpus  # noqa: E402

N = 3  # records per repetition count
PARAMS = {"n_per_group": N, "n_distractors": 12, "steps": 3, "seed": 0, "progress": False}


def test_records_are_seeded_distinct_and_in_blocks_of_repetitions():
    records, distractors = make_person_records(8, seed=0, n_distractors=40)
    assert (records, distractors) == make_person_records(8, seed=0, n_distractors=40)
    assert make_person_records(8, seed=1, n_distractors=40)[0] != records
    assert [r.repetitions for r in records] == [rep for rep in REPETITIONS for _ in range(8)]
    assert len(distractors) == 40 and all(d.repetitions == 0 for d in distractors)
    everyone = records + distractors
    for field in ("name", "email", "phone"):
        assert len({getattr(r, field) for r in everyone}) == len(everyone)
    r = records[0]
    assert r.text == RECORD_TEMPLATE.format(name=r.name, email=r.email, phone=r.phone, invoice=r.invoice)
    # the e-mail is not made from the record's own name (so the name does not predict it) in most records
    assert sum(r.name.split()[1].lower() in r.email for r in everyone) < len(everyone) // 4


def test_every_record_has_exactly_its_email_and_phone_as_pii_targets():
    records, distractors = make_person_records(8, seed=3, n_distractors=16)
    texts = [r.text for r in records + distractors]
    targets = pii_targets(texts)
    assert len(targets) == 2 * len(texts)
    for i, r in enumerate(records + distractors):
        assert [(t.entity_type, t.value) for t in targets[2 * i:2 * i + 2]] == [
            ("EMAIL_ADDRESS", r.email), ("PHONE_NUMBER", r.phone)]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        make_person_records(0, seed=0)
    with pytest.raises(ValueError):
        make_person_records(2, seed=0, repetitions=(0, -1))
    with pytest.raises(ValueError, match="name space"):
        make_person_records(400, seed=0)


@pytest.fixture(scope="module")
def corpus(one_torch_thread):
    return prepare_corpus("tiny", 0)


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory, corpus):
    return build_pii_testbed(tmp_path_factory.mktemp("pii"), corpus=corpus, **PARAMS)


def test_training_set_holds_each_record_as_often_as_its_repetitions(tiny_build, corpus):
    info = tiny_build
    n_members = PRESETS["tiny"].n_members
    assert info.n_train_sequences == n_members + N * sum(REPETITIONS)  # 64 + 3 * 21 = 127
    sequences = training_sequences(corpus, info.records)
    for r in info.records:
        assert sequences.count(corpus.sequence(r.text)) == r.repetitions
    for d in info.distractors:
        assert corpus.sequence(d.text) not in sequences
    assert info.steps == 3 and info.members == corpus.members


def test_build_is_saved_loaded_and_cached(tiny_build, corpus):
    info = tiny_build
    assert load_pii_testbed(info.path) == info
    assert (info.path / "config.json").is_file()
    again = pii_testbed(info.path, n_per_group=N, n_distractors=12, steps=3, seed=0, corpus=corpus,
                        progress=False)
    assert again == info  # loaded, not retrained (same train_seconds)
    with pytest.raises(TypeError, match="valid"):
        pii_testbed(info.path, n_per_groups=N)


def test_cache_rebuilds_when_the_parameters_change(tmp_path, corpus):
    first = pii_testbed(tmp_path, corpus=corpus, **PARAMS)
    changed = pii_testbed(tmp_path, corpus=corpus, **{**PARAMS, "steps": 2})
    assert (first.steps, changed.steps) == (3, 2) and changed.params["steps"] == 2
    assert load_pii_testbed(tmp_path) == changed
    assert pii_testbed(tmp_path, corpus=corpus, **{**PARAMS, "steps": 2}) == changed


def test_same_seed_same_weights(tiny_build, corpus, tmp_path):
    import torch
    from safetensors.torch import load_file

    other = build_pii_testbed(tmp_path, corpus=corpus, **PARAMS)
    a = load_file(str(tiny_build.path / "model.safetensors"))
    b = load_file(str(other.path / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert other.records == tiny_build.records and other.final_loss == tiny_build.final_loss
