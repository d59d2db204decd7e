"""The blind baseline (Das et al. 2024): date tokens and features on hand-checked inputs, the text-only
classifier on shifted and same-distribution splits of real text, and the guard's rule."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from parrotwatch.detectors.audits.blind import blind_features, blind_guard, blind_membership, date_tokens

FORTUNES = Path("/usr/share/games/fortunes")


@pytest.fixture(scope="module")
def pydoc_docs() -> list[str]:
    """Python's documentation cut into documents as the testbed cuts it (pydoc_data ships with CPython)."""
    from parrotwatch.testbed import corpus_documents

    return [d.text for d in corpus_documents(320)]


def _roc(auc: float, low: float, high: float | None = None):
    return SimpleNamespace(auc=auc, auc_ci_low=low, auc_ci_high=high if high is not None else auc)


@pytest.mark.parametrize(("text", "tokens"), [
    ("Updated 2024-03-05.", ["year:2024", "decade:2020s", "date:iso"]),
    ("In May 1999 it may rain; in Sept. and Dec 2001 too.",
     ["year:1999", "decade:1990s", "year:2001", "decade:2000s", "month:may", "month:september",
      "month:december"]),
    ("the 1500s began in 1500; 2099 is a year, 2100 and 1499 are not", [
        "year:1500", "decade:1500s", "year:2099", "decade:2090s"]),
    ("on 31/12/1999 or 1.2.99", ["date:numeric", "date:numeric"]),  # a year inside a date is no year token
    ("version 3.2000 and port 20000, x = 1999.5", []),
    ("we march on in june", []),  # month names count only capitalised
    ("1999 1999 1999", ["year:1999", "decade:1990s"]),  # a year once, however often
])
def test_date_tokens(text, tokens):
    assert date_tokens(text) == tokens


def test_blind_features_on_two_tiny_texts_by_hand():
    texts = ["red fish", "blue fish in March 1999"]
    phi = blind_features().fit(texts)
    names = list(phi.get_feature_names_out())
    x = phi.transform(texts).toarray()
    row = dict(zip(names, x[0], strict=True))
    # words of text 0: "red", "fish", "red fish", each tf 1 -> 1 + ln 1 = 1. idf = ln((1 + 2) / (1 + df)) + 1:
    # "fish" is in both texts (idf 1), "red" and "red fish" in one (idf ln 1.5 + 1); then L2 over the block
    rare = math.log(1.5) + 1
    norm = math.sqrt(1 + 2 * rare**2)
    assert row["words__fish"] == pytest.approx(1 / norm) and row["words__red"] == pytest.approx(rare / norm)
    assert row["words__red fish"] == pytest.approx(rare / norm) and row["words__blue"] == 0
    assert sum(v**2 for k, v in row.items() if k.startswith("words__")) == pytest.approx(1.0)
    assert sum(v**2 for k, v in row.items() if k.startswith("chars__")) == pytest.approx(1.0)
    dates = {k.removeprefix("dates__"): (a, b) for k, a, b in zip(names, x[0], x[1], strict=True)
             if k.startswith("dates__")}
    assert dates == {"date:none": (1, 0), "decade:1990s": (0, 1), "month:march": (0, 1), "year:1999": (0, 1)}


def test_dated_non_members_are_told_apart_by_the_texts_alone_and_the_guard_fires(pydoc_docs):
    """Das et al.'s temporal shift: the same kind of text, but every non-member carries a recent date."""
    rng = np.random.default_rng(0)
    docs = [pydoc_docs[i] for i in rng.permutation(len(pydoc_docs))[:120]]
    months = ["January", "March", "June", "October"]
    members = docs[:60]
    non_members = [f"{d}\n\n(Revised {months[i % 4]} {2023 + i % 2}.)" for i, d in enumerate(docs[60:])]
    r = blind_membership(members + non_members, [1] * 60 + [0] * 60, n_bootstrap=200)
    # members are the undated ones: the classifier learns "no date" = member, perfectly, out of fold
    assert r.auc == 1.0 and r.roc.auc_ci_low == 1.0 and r.folds == 5 and len(r.scores) == 120
    verdict = blind_guard(r.roc, {"loss": _roc(0.97, 0.93), "zlib": _roc(0.80, 0.72)})
    assert verdict.fires and verdict.shift and verdict.best_method == "loss" and verdict.blind_auc == 1.0


@pytest.mark.skipif(not (FORTUNES / "computers").is_file(), reason="fortune files not installed "
                    "(bash scripts/install_fortunes.sh)")
def test_two_text_sources_are_told_apart():
    """Members from one fortune file, non-members from another (bench/drift_power.py's pair)."""
    import re

    def entries(name):
        text = (FORTUNES / name).read_text(encoding="utf-8", errors="replace")
        out = [" ".join(e.split()) for e in re.split(r"\n%\n", text)]
        return [e for e in dict.fromkeys(out) if 20 <= len(e) <= 400][:80]

    a, b = entries("computers"), entries("politics")
    r = blind_membership(a + b, [1] * len(a) + [0] * len(b), n_bootstrap=200)
    assert r.roc.auc_ci_low > 0.7, r.roc  # 0.875 (CI 0.820-0.923)
    assert blind_guard(r.roc, {"loss": _roc(0.8, 0.72)}).fires


def test_a_same_distribution_split_is_at_chance_and_the_guard_holds(pydoc_docs):
    """A seeded random split of one corpus, as the testbed's members and non-members are drawn."""
    perm = np.random.default_rng(0).permutation(len(pydoc_docs))
    texts = [pydoc_docs[i] for i in perm[:300]]
    r = blind_membership(texts, [1] * 150 + [0] * 150, n_bootstrap=500, seed=0)
    assert r.roc.auc_ci_low < 0.5 < r.roc.auc_ci_high and abs(r.auc - 0.5) < 0.1, r.roc  # 0.510 (0.448-0.579)
    verdict = blind_guard(r.roc, {"loss": _roc(0.99, 0.97), "min_k": _roc(0.95, 0.90)})
    assert not verdict.fires and not verdict.shift and verdict.best_ci_low == 0.97


def test_guard_rule():
    # blind_auc >= ci_low of the attack of highest AUC (not of highest CI low)
    attacks = {"a": _roc(0.80, 0.60), "b": _roc(0.78, 0.75)}
    assert blind_guard(_roc(0.60, 0.55), attacks).fires  # equal to the CI low: within the CI
    assert not blind_guard(_roc(0.5999, 0.55), attacks).fires
    assert blind_guard(_roc(0.99, 0.95), attacks).fires  # above the CI: fires as well
    v = blind_guard(_roc(0.62, 0.45), attacks)
    assert v.fires and not v.shift and v.best_method == "a" and (v.best_auc, v.best_ci_low) == (0.80, 0.60)
    with pytest.raises(ValueError):
        blind_guard(_roc(0.5, 0.4), {})


def test_folds_shrink_to_the_smaller_class_and_tiny_sets_are_refused():
    texts = ["alpha beta", "beta gamma", "gamma delta", "delta alpha", "in 1999", "in 2004", "in 2011"]
    r = blind_membership(texts, [1, 1, 1, 1, 0, 0, 0], folds=5, n_bootstrap=50)
    assert r.folds == 3 and r.auc == 1.0  # dated vs undated, even with three folds
    assert r == blind_membership(texts, [1, 1, 1, 1, 0, 0, 0], folds=5, n_bootstrap=50)  # seeded
    with pytest.raises(ValueError, match="at least 2 members and 2 non-members"):
        blind_membership(texts[:3], [1, 1, 0], n_bootstrap=10)
    with pytest.raises(ValueError, match="one length"):
        blind_membership(texts, [1, 0], n_bootstrap=10)
