"""Reference models of the testbed (parrotwatch/testbed_reference.py): the split keeps every member,
non-member and population text out of their training data, they are deterministic under the seed,
cached, and a member in their training data is refused."""

from __future__ import annotations

import dataclasses

import pytest
from safetensors.torch import load_file

from parrotwatch import testbed_reference as tr
from parrotwatch.testbed import build_testbed, prepare_corpus

STEPS = 3  # a few optimiser steps: these tests check data and caching, not memorization


@pytest.fixture(scope="module")
def corpus():
    return prepare_corpus("tiny", 0)


@pytest.fixture(scope="module")
def target(tmp_path_factory, one_torch_thread):
    return build_testbed(tmp_path_factory.mktemp("refs") / "tiny-seed0-steps3", steps=STEPS, seed=0,
                         preset="tiny", progress=False)


def _ids_and_texts(docs) -> tuple[set[str], set[str]]:
    return {d.id for d in docs}, {d.text for d in docs}


def test_the_split_is_disjoint_from_the_target_and_within_itself(corpus):
    split = tr.reference_split(corpus, 0)
    # half of the distinct fitting documents outside the target's members and non-members each (the
    # count depends on the CPython's pydoc topics: 674 and 675 on 3.11.7)
    outside = {d.text for d in tr.corpus_documents(corpus.preset.doc_chars)
               if len(corpus.encoded[d.id]) + 2 <= corpus.preset.n_positions} - _ids_and_texts(
        corpus.members + corpus.non_members)[1]
    assert len(split.pool) == len(outside) // 2 and len(split.pool) + len(split.population) == len(outside)
    assert len(split.population) > 500  # enough for RMIA's population ratios
    pool_ids, pool_texts = _ids_and_texts(split.pool)
    pop_ids, pop_texts = _ids_and_texts(split.population)
    target_ids, target_texts = _ids_and_texts(corpus.members + corpus.non_members)
    assert not pool_ids & pop_ids and not pool_texts & pop_texts
    assert not (pool_ids | pop_ids) & target_ids and not (pool_texts | pop_texts) & target_texts
    assert len(pool_texts) == len(split.pool) and len(pop_texts) == len(split.population)  # each text once
    assert tr.reference_split(corpus, 0) == split
    assert tr.reference_split(corpus, 1).population != split.population


def test_each_reference_draws_its_own_members_from_the_pool(corpus):
    split = tr.reference_split(corpus, 0)
    draws = [tr.reference_documents(corpus, split, 0, i) for i in range(4)]
    assert all(len(d) == corpus.preset.n_members == len(set(d)) for d in draws)
    assert all(set(d) <= set(split.pool) for d in draws)
    assert len({frozenset(d) for d in draws}) == 4
    assert draws[1] == tr.reference_documents(corpus, split, 0, 1)
    seeds = [tr.reference_seed(0, i) for i in range(4)]
    assert len(set(seeds)) == 4 and seeds == [tr.reference_seed(0, i) for i in range(4)]


def test_a_member_non_member_or_population_text_in_the_training_data_is_refused(corpus):
    split = tr.reference_split(corpus, 0)
    clean = tr.reference_documents(corpus, split, 0, 0)
    tr.assert_out(clean, corpus, split)
    with pytest.raises(AssertionError, match="1 member text"):
        tr.assert_out(clean[:-1] + corpus.members[:1], corpus, split)
    # the same text under another id is caught too
    twin = dataclasses.replace(corpus.non_members[3], id="some-other-topic#0")
    with pytest.raises(AssertionError, match="1 non-member text"):
        tr.assert_out(clean[:-1] + (twin,), corpus, split)
    with pytest.raises(AssertionError, match="2 population text"):
        tr.assert_out(clean[:-2] + split.population[:2], corpus, split)


def test_build_refuses_to_train_on_a_member(corpus, target, tmp_path, monkeypatch):
    monkeypatch.setattr(tr, "reference_documents", lambda c, s, seed, i: c.members)
    with pytest.raises(AssertionError, match="64 member text"):
        tr.build_reference(tmp_path / "bad", target, 0, progress=False, corpus=corpus)
    assert not (tmp_path / "bad").exists()


def test_references_are_out_deterministic_and_cached(corpus, target, tmp_path):
    refs = tr.ensure_reference_models(target, 2, progress=False)
    assert [r.path for r in refs] == [target.path.parent / f"tiny-seed0-steps3-ref{i}" for i in range(2)]
    member_ids, member_texts = _ids_and_texts(target.members)
    for i, r in enumerate(refs):
        assert (r.index, r.seed, r.steps, r.preset, r.target) == (i, 0, STEPS, "tiny", str(target.path))
        assert len(r.train_ids) == 64 and not set(r.train_ids) & member_ids
        assert r.train_seed == tr.reference_seed(0, i)
    assert not tr.training_texts(refs) & member_texts
    assert tr.training_texts(refs) <= {d.text for d in tr.reference_split(corpus, 0).pool}
    # cached: asking again (or for fewer) loads the same models without training
    stamp = (refs[0].path / tr.REFERENCE_FILE).stat().st_mtime_ns
    again = tr.ensure_reference_models(target, 1, progress=False)
    assert again == refs[:1] and (refs[0].path / tr.REFERENCE_FILE).stat().st_mtime_ns == stamp
    # deterministic: reference 0 trained again elsewhere has the same weights; reference 1 differs
    rebuilt = tr.build_reference(tmp_path / "again", target, 0, progress=False, corpus=corpus)
    w0, w0b = (load_file(p / "model.safetensors") for p in (refs[0].path, rebuilt.path))
    w1 = load_file(refs[1].path / "model.safetensors")
    assert all((w0[k] == w0b[k]).all() for k in w0) and rebuilt.train_ids == refs[0].train_ids
    assert any(not (w0[k] == w1[k]).all() for k in w0)
    assert tr.load_reference(refs[1].path) == refs[1]


def test_population_and_bounds(corpus, target):
    assert tr.testbed_population(target, corpus) == tr.reference_split(corpus, 0).population
    for k in (0, 5):
        with pytest.raises(ValueError, match="k must be in 1..4"):
            tr.ensure_reference_models(target, k, progress=False)
    other = dataclasses.replace(target, members=target.non_members, non_members=target.members)
    with pytest.raises(ValueError, match="does not have the split"):
        tr.build_reference(target.path.parent / "never", other, 0, progress=False, corpus=corpus)
