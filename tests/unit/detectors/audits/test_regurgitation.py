"""Regurgitation audit: n-gram indexes (Bloom, exact), normalised tokens, longest overlap (verbatim and
gap-tolerant), scan, attribution. Near-verbatim verification: test_near_verbatim.py."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from pydoc_data.topics import topics

import numpy as np
import pytest

from parrotwatch.detectors.audits import ngram_index as ni
from parrotwatch.detectors.audits.ngram_index import (
    BloomIndex,
    ExactIndex,
    load_index,
    ngram_hashes,
    normalise,
    token_ids,
    tokenize,
    tokenize_regex_v1,
)
from parrotwatch.detectors.audits.regurgitation import Overlap, longest_overlap, scan, top_documents

CORPUS = ["the quick brown fox jumps over the lazy dog .", "alpha beta gamma delta epsilon zeta eta theta"]


def three_sigma_upper(mean: float) -> float:
    """Binomial (at most Poisson) count bound: mean + 3 sd."""
    return mean + 3 * math.sqrt(mean)


# ---------------------------------------------------------------- tokens and hashes


def test_legacy_tokenizer_is_lower_cased_words_and_punctuation():
    assert tokenize_regex_v1("Don't STOP-me, x2!") == ["don", "'", "t", "stop", "-", "me", ",", "x2", "!"]


@pytest.mark.parametrize("text, expected", [
    ("Don't STOP-me, x2! __init__ a__b", ["don", "t", "stop", "me", "x2", "init", "a__b"]),  # no punctuation
    ("t h e  c a t  i s  h e r e", ["the", "cat", "is", "here"]),       # re-spaced, words split at "  "
    ("T-H-E C-A-T s-a-t.", ["the", "cat", "sat"]),                      # hyphen-spaced, words split at " "
    ("t.h.e c.a.t", ["the", "cat"]),
    ("\U0001d413\U0001d407\U0001d404 \uff23\uff21\uff34 \ufb01ne STRA\u00dfE",
     ["the", "cat", "fine", "strasse"]),                                # NFKC, casefold
    ("e.g. a b, i.e. x", ["e", "g", "a", "b", "i", "e", "x"]),           # no piece of >= 3 letters: kept
    ("=====  ___  ...  |/\\|", []),                                      # rules and ASCII art: no tokens
])
def test_normalised_tokenizer_golden(text, expected):
    assert tokenize(text) == expected


def test_normal_form_is_idempotent_and_style_free():
    passage = topics["assert"][:600]
    assert tokenize(normalise(passage)) == tokenize(passage)
    assert tokenize(passage.upper()) == tokenize(passage) == tokenize(passage.replace(" ", "   "))


def test_rolling_hash_equals_karp_rabin_reference_and_skips_document_boundaries():
    rng = np.random.default_rng(1)
    ids = [rng.integers(0, 2**63, size=s, dtype=np.uint64) for s in (3, 10, 0, 7, 12)]
    got, offsets = ngram_hashes(ids, 4)
    ref = []
    for a in ids:  # independent reference: Horner's rule on Python ints, mod 2^64
        for i in range(len(a) - 3):
            v = 0
            for j in range(4):
                v = (v * ni._B + int(a[i + j])) % 2**64
            ref.append(v)
    expected = ni._mix(np.array(ref, dtype=np.uint64) ^ np.uint64(4))
    np.testing.assert_array_equal(got, expected)
    assert offsets.tolist() == [0, 0, 7, 7, 11, 20]


def test_hash_is_pinned_so_saved_indexes_stay_valid():
    (h,), _ = ngram_hashes(token_ids([["the", "quick", "brown"]]), 3)
    assert int(h) == PINNED_HASH
    assert ExactIndex(3).hashes(["The  Quick\nbrown"])[0].tolist() == [PINNED_HASH]


PINNED_HASH = 0x508D971E0B146497


# ---------------------------------------------------------------- golden overlaps


@pytest.mark.parametrize("text, expected", [
    ("zz yy the quick brown fox ww", Overlap(4, 2, 6)),                 # exactly n
    ("zz the quick brown fox jumps over the vv", Overlap(7, 1, 8)),     # n + 3
    ("the quick brown fox jumps zz", Overlap(5, 0, 5)),                 # at the beginning
    ("zz yy eta theta . over the lazy dog .", Overlap(4, 4, 8)),        # at the end; "." is no token
    ("quick brown fox zz", Overlap(0, 0, 0)),                           # n - 1 tokens: invisible
    ("fox quick the brown jumps lazy", Overlap(0, 0, 0)),               # none
    ("", Overlap(0, 0, 0)),
    ("The QUICK brown\tfox", Overlap(4, 0, 4)),                         # case and spaces ignored
    ("quick brown fox jumps qq alpha beta gamma delta epsilon", Overlap(5, 5, 10)),  # longest wins
    ("brown fox jumps over qq gamma delta epsilon zeta", Overlap(4, 0, 4)),  # tie: earliest
    ("lazy dog . alpha beta gamma", Overlap(0, 0, 0)),                  # no n-gram across documents
])
@pytest.mark.parametrize("kind", ["exact", "bloom"])
def test_verbatim_overlap_golden(text, expected, kind):
    index = ExactIndex.from_documents(CORPUS, n=4) if kind == "exact" else \
        BloomIndex.from_documents(CORPUS, n=4, target_fpr=1e-9)
    assert longest_overlap(text, index, max_gap=None) == expected
    assert scan([text], index).flagged == (((0, expected),) if expected.tokens else ())


@pytest.mark.parametrize("text, max_gap, expected", [
    ("the quick brown fox XX over the lazy dog", None, Overlap(4, 0, 4)),       # verbatim: 4 | 4
    ("the quick brown fox XX over the lazy dog", 1, Overlap(9, 0, 9)),          # 1 substituted token
    ("the quick brown fox XX over the lazy dog", 0, Overlap(4, 0, 4)),          # ... needs max_gap >= 1
    ("the quick brown fox jumps AA BB over the lazy dog", 2, Overlap(11, 0, 11)),  # 2 inserted
    ("the quick brown fox over the lazy dog", 0, Overlap(8, 0, 8)),             # 1 deleted: gap 0
    ("zz THE QUICK brown fox XX, over the lazy dog .", 8, Overlap(9, 1, 10)),   # the default live gap
    ("the quick brown fox jumps XX YY ZZ WW VV UU TT SS over the lazy dog", 8, Overlap(17, 0, 17)),  # gap 8
    ("the quick brown fox jumps XX YY ZZ WW VV UU TT SS RR over the lazy dog", 8, Overlap(5, 0, 5)),  # 9
    ("quick brown fox jumps qq alpha beta gamma delta epsilon", 8, Overlap(10, 0, 10)),  # across docs: bound
])
def test_gap_tolerant_overlap_golden(text, max_gap, expected):
    index = ExactIndex.from_documents(CORPUS, n=4)
    assert longest_overlap(text, index, max_gap=max_gap) == expected


def test_live_score_bridges_small_gaps_by_default():
    index = ExactIndex.from_documents(CORPUS, n=4)
    assert longest_overlap("the quick brown fox XX over the lazy dog", index) == Overlap(9, 0, 9)


def test_min_tokens_above_n_needs_that_many_tokens():
    index = ExactIndex.from_documents(CORPUS, n=4)
    outputs = {"n": "zz the quick brown fox", "n+2": "the quick brown fox jumps over zz",
               "n+3": "zz the quick brown fox jumps over the", "none": ""}
    report = scan(outputs, index, min_tokens=7)
    assert report.flagged == (("n+3", Overlap(7, 1, 8)),)
    assert (report.n_outputs, report.n_flagged, report.rate, report.n_ngrams) == (4, 1, 0.25, 2 + 4 + 5)


def test_empty_inputs():
    index = BloomIndex.from_documents(CORPUS, n=4, target_fpr=1e-3)
    assert token_ids([]) == []
    report = scan([], index)
    assert (report.n_outputs, report.n_flagged, report.rate, report.n_ngrams) == (0, 0, 0.0, 0)
    assert top_documents(report, [], CORPUS, index).outputs == ()


def test_attribution_with_documents_shorter_than_n_and_a_false_positive():
    corpus = {"short": "a b", "fox": CORPUS[0], "tiny": "c", "greek": CORPUS[1], "end": "d",
              "copy": CORPUS[0]}
    index = ExactIndex.from_documents(corpus.values(), n=4)
    outputs = ["x the quick brown fox jumps", "beta gamma delta epsilon", "no match at all here"]
    report = scan(outputs, index)
    forged = dataclasses.replace(report, flagged=report.flagged + ((2, Overlap(4, 0, 4)),))
    att = top_documents(forged, outputs, corpus, index, batch=2)  # batches end on short documents
    # ties (the "copy" document holds the same span) go to the first document in corpus order
    assert att.outputs == ((0, Overlap(5, 1, 6, "fox")), (1, Overlap(4, 0, 4, "greek")),
                           (2, Overlap(0, 0, 0)))
    assert att.unverified == (2,)
    assert [(d.doc_id, d.n_outputs, d.max_tokens) for d in att.documents] == [("fox", 1, 5), ("greek", 1, 4)]


def test_min_tokens_below_n_is_refused():
    with pytest.raises(ValueError, match="n <= min_tokens"):
        scan(["x"], ExactIndex(8), min_tokens=5)


# ---------------------------------------------------------------- Bloom filter


def test_bloom_sizing_follows_the_standard_formulas():
    b = BloomIndex(n=8, expected_ngrams=100_000, target_fpr=0.01)
    assert b.m == math.ceil(-100_000 * math.log(0.01) / math.log(2) ** 2) == 958_506
    assert b.k == 7


@pytest.mark.parametrize("target", [0.05, 0.01, 0.001])
def test_bloom_measured_fpr_matches_stated_within_3_sigma(target):
    rng = np.random.default_rng(7)
    b = BloomIndex(n=8, expected_ngrams=100_000, target_fpr=target)
    members = rng.integers(0, 2**64 - 1, size=100_000, dtype=np.uint64, endpoint=True)
    b.add_hashes(members)
    assert b.contains_many(members).all()  # no false negatives
    queries = rng.integers(0, 2**64 - 1, size=1_000_000, dtype=np.uint64, endpoint=True)
    p = b.false_positive_rate
    assert 0.8 * target < p < 1.2 * target  # filled to its design load: stated ~ target
    measured = b.contains_many(queries).mean()
    assert abs(measured - p) <= 3 * math.sqrt(p * (1 - p) / len(queries))


def test_merge_of_partition_filters_equals_one_filter_over_all():
    docs = list(topics.values())
    whole = BloomIndex(n=8, expected_ngrams=200_000, target_fpr=1e-3)
    whole.add_documents(docs)
    parts = [BloomIndex(n=8, expected_ngrams=200_000, target_fpr=1e-3) for _ in range(2)]
    parts[0].add_documents(docs[::2])
    parts[1].add_documents(docs[1::2])
    parts[0].merge(parts[1])
    np.testing.assert_array_equal(parts[0]._bits, whole._bits)
    with pytest.raises(ValueError, match="m, k"):
        whole.merge(BloomIndex(n=8, expected_ngrams=10, target_fpr=1e-3))


# ---------------------------------------------------------------- acceptance: 10,000 logged outputs


@pytest.fixture(scope="module")
def logged():
    """10,000 outputs of 40-120 random corpus-vocabulary words; exactly 100 carry a 50-80 token
    passage copied character for character from a corpus document (10 of them from one topic)."""
    rng = np.random.default_rng(2024)
    corpus = dict(topics)
    vocab = sorted({t for d in corpus.values() for t in tokenize(d) if t.isalpha()})
    names = sorted(n for n, d in corpus.items() if len(tokenize(d)) >= 200)
    outputs, passages = [], {}
    leaky = set(rng.choice(10_000, size=100, replace=False).tolist())
    sources = [names[0]] * 10 + list(rng.choice(names, size=90))
    for i in range(10_000):
        words = list(rng.choice(vocab, size=int(rng.integers(40, 121))))
        if i in leaky:
            src = str(sources[len(passages)])
            spans = [m.span() for m in ni.WORD_PATTERN.finditer(corpus[src])]  # raw text: the words
            length = int(rng.integers(50, 81))
            a = int(rng.integers(0, len(spans) - length))
            passage = corpus[src][spans[a][0]: spans[a + length - 1][1]]
            assert tokenize(passage) == tokenize(corpus[src])[a: a + length]
            words.insert(int(rng.integers(0, len(words) + 1)), passage)
            passages[i] = (src, length)
        outputs.append(" ".join(words))
    exact = ExactIndex.from_documents(corpus.values(), n=50)
    bloom = BloomIndex.from_documents(corpus.values(), n=50, target_fpr=1e-5)
    return corpus, outputs, passages, exact, bloom


def test_exact_scan_finds_exactly_the_leaks(logged):
    corpus, outputs, passages, exact, _ = logged
    report = scan(outputs, exact, min_tokens=50)
    assert report.n_outputs == 10_000 and report.n_flagged == 100 and report.rate == 0.01
    assert {i for i, _ in report.flagged} == set(passages)  # recall 1.0, zero false positives
    assert all(ov.tokens >= passages[i][1] for i, ov in report.flagged)
    assert report.n_ngrams == sum(max(len(tokenize(o)) - 49, 0) for o in outputs)


def test_bloom_scan_has_full_recall_and_false_positives_within_stated_rate(logged):
    corpus, outputs, passages, exact, bloom = logged
    report = scan(outputs, bloom, min_tokens=50)
    flagged = dict(report.flagged)
    assert set(passages) <= set(flagged)  # recall 1.0
    assert all(flagged[i].tokens >= passages[i][1] for i in passages)
    exact_overlaps = dict(scan(outputs, exact, min_tokens=50).flagged)
    assert all(flagged[i].tokens >= ov.tokens for i, ov in exact_overlaps.items())  # Bloom: upper bound
    false_flags = len(set(flagged) - set(passages))
    assert 0 < report.expected_false_flags < 50  # the stated rate predicts a handful here
    assert false_flags <= three_sigma_upper(report.expected_false_flags)


def test_top_documents_attributes_each_leak_and_ranks_the_top_leaker(logged):
    corpus, outputs, passages, exact, bloom = logged
    report = scan(outputs, bloom, min_tokens=50)
    att = top_documents(report, outputs, corpus, bloom, k=5)
    verified = dict(att.outputs)
    for i, (_src, length) in passages.items():
        assert verified[i].tokens >= length
        span = " ".join(tokenize(outputs[i])[verified[i].start: verified[i].end])
        assert f" {span} " in f" {' '.join(tokenize(corpus[verified[i].doc_id]))} "  # verbatim in that doc
    assert set(att.unverified) == set(verified) - set(passages)  # Bloom false positives
    top = att.documents[0]
    assert top.doc_id == sorted(n for n, d in corpus.items() if len(tokenize(d)) >= 200)[0]
    assert top.n_outputs >= 10 and len(att.documents) == 5
    assert [d.n_outputs for d in att.documents] == sorted((d.n_outputs for d in att.documents), reverse=True)


# ---------------------------------------------------------------- contracts


@pytest.mark.parametrize("kind", ["exact", "bloom"])
def test_save_load_round_trip(tmp_path, kind):
    docs = list(topics.values())[:20]
    index = ExactIndex.from_documents(docs, n=8) if kind == "exact" else \
        BloomIndex.from_documents(docs, n=8, target_fpr=1e-3)
    path = tmp_path / "index.npz"
    index.save(path)
    back = load_index(path)
    assert type(back) is type(index) and back.n == 8 and back.size_bytes == index.size_bytes
    assert back.false_positive_rate == index.false_positive_rate
    probe = np.concatenate([index.hashes(docs)[0], np.arange(10_000, dtype=np.uint64)])
    np.testing.assert_array_equal(back.contains_many(probe), index.contains_many(probe))
    text = "zz " + docs[3][:400]
    assert longest_overlap(text, back) == longest_overlap(text, index)


@pytest.mark.parametrize("kind", ["exact", "bloom"])
def test_pickles_for_spark_broadcast(kind):
    index = ExactIndex.from_documents(CORPUS, n=4) if kind == "exact" else \
        BloomIndex.from_documents(CORPUS, n=4, target_fpr=1e-6)
    back = pickle.loads(pickle.dumps(index))
    assert longest_overlap("zz the quick brown fox", back) == Overlap(4, 1, 5)


def test_legacy_index_is_refused_with_a_rebuild_message(tmp_path):
    legacy = ExactIndex.from_documents(CORPUS, n=4, tokenizer_name="regex-v1")  # the verbatim baseline
    assert longest_overlap("zz yy eta theta . the lazy dog .", legacy, max_gap=None) == Overlap(4, 5, 9)
    legacy.save(tmp_path / "old.npz")
    with pytest.raises(ValueError, match="'regex-v1'.*rebuild it"):
        load_index(tmp_path / "old.npz")
    with pytest.raises(ValueError, match="not built in"):
        ExactIndex(4, tokenizer_name="bpe")


def test_injected_tokenizer_is_named_and_required_on_load(tmp_path):
    words = str.split  # e.g. a model tokenizer; ints work too
    with pytest.raises(ValueError, match="tokenizer_name"):
        ExactIndex(4, tokenize=words)
    index = ExactIndex.from_documents(["A b c d e"], n=4, tokenize=words, tokenizer_name="split")
    assert longest_overlap("x A b c d", index) == Overlap(4, 1, 5)
    assert longest_overlap("x a b c d", index) == Overlap(0, 0, 0)  # case kept by this tokenizer
    ids = ExactIndex.from_documents(["1 2 3 4 5"], n=4, tokenize=lambda s: [int(w) for w in s.split()],
                                    tokenizer_name="ints")
    assert longest_overlap("9 2 3 4 5", ids).tokens == 4
    index.save(tmp_path / "i.npz")
    with pytest.raises(ValueError, match="'split'"):
        load_index(tmp_path / "i.npz")
    assert load_index(tmp_path / "i.npz", tokenize=words).contains_many(index.hashes(["A b c d"])[0]).all()


def test_deterministic_and_inputs_not_mutated():
    docs = list(topics.values())[:30]
    docs_before = copy.deepcopy(docs)
    a = BloomIndex.from_documents(docs, n=8, target_fpr=1e-4)
    b = BloomIndex.from_documents(docs, n=8, target_fpr=1e-4)
    np.testing.assert_array_equal(a._bits, b._bits)
    outputs = {f"r{i}": ("noise words " * i) + d[: 300] for i, d in enumerate(docs)}
    outputs_before = copy.deepcopy(outputs)
    hashes = a.hashes(list(outputs.values()))[0]
    hashes_before = hashes.copy()
    a.contains_many(hashes)
    r1, r2 = scan(outputs, a, min_tokens=20), scan(outputs, b, min_tokens=20)
    assert (r1.flagged, r1.n_ngrams) == (r2.flagged, r2.n_ngrams) and r1.n_flagged >= 25
    t1 = top_documents(r1, outputs, docs, a)
    assert t1 == top_documents(r2, outputs, docs, b)
    assert docs == docs_before and outputs == outputs_before
    np.testing.assert_array_equal(hashes, hashes_before)
