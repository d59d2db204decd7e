"""The WordNet copy with ``lexnames`` is prepared once, atomically, however many processes ask at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from parrotwatch.detectors.grounding import lexicon


def _wordnet_without_lexnames(root: Path) -> Path:
    source = root / "wordnet"
    source.mkdir()
    for name in lexicon._FILES:
        (source / name).write_text(f"{name}\n" * 20_000)  # big enough for copies to overlap
    return source


def _prepare(args) -> tuple[str, list[int]]:
    source, cache = args
    import os

    os.environ["XDG_CACHE_HOME"] = cache
    target = lexicon._prepared(Path(source))
    return str(target), sorted((target / name).stat().st_size for name in lexicon._FILES)


def test_concurrent_preparations_give_one_complete_copy(tmp_path):
    source = _wordnet_without_lexnames(tmp_path)
    cache = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_prepare, [(str(source), str(cache))] * 8)
    expected = sorted((source / name).stat().st_size for name in lexicon._FILES)
    assert {r[0] for r in results} == {str(cache / "parrotwatch" / "wordnet")}
    assert all(sizes == expected for _, sizes in results)
    target = cache / "parrotwatch" / "wordnet"
    assert (target / "lexnames").read_text().count("\n") == len(lexicon._LEXNAMES)
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".wordnet-")]  # no staging left


def test_an_incomplete_copy_of_an_older_version_is_replaced(tmp_path, monkeypatch):
    source = _wordnet_without_lexnames(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    stale = tmp_path / "cache" / "parrotwatch" / "wordnet"
    stale.mkdir(parents=True)
    (stale / "data.noun").write_text("trunc")  # a copy that died before lexnames
    target = lexicon._prepared(source)
    assert target == stale and (target / "lexnames").is_file()
    assert (target / "data.noun").read_text() == (source / "data.noun").read_text()


def test_a_source_with_lexnames_is_used_as_is(tmp_path):
    source = _wordnet_without_lexnames(tmp_path)
    (source / "lexnames").write_text("")
    assert lexicon._prepared(source) == source
    assert lexicon._prepared(tmp_path / "missing") is None  # no WordNet there
