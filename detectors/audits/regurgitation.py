"""Regurgitation: longest verbatim overlap of a text with the training corpus, in tokens.

Let t_1..t_L be the text's tokens (the index's tokenizer), g_i = (t_i, ..., t_{i+n-1}) for
i = 1..L-n+1 its n-grams and I the corpus n-gram index. A run is a maximal interval [a, b] of
window positions with every g_i in I; it covers the b - a + n tokens t_a..t_{b+n-1}. The score is

    regurgitation = max over runs (b - a + n),   0 when no g_i is in I,

so an overlap shorter than n tokens is invisible and the score is 0 or >= n. That is the verbatim
overlap ``scan`` reports. The live per-request score, ``longest_overlap``, also bridges small
gaps: consecutive runs [a, b], [a', b'] join one chain when the tokens between their covers
number a' - (b + n) <= ``max_gap`` (``LIVE_MAX_GAP`` = 8), and

    regurgitation = max over chains (end of its last cover - start of its first cover),

so a copy whose edits are more than n tokens apart keeps its whole length (Ippolito et al. 2022,
"Preventing Verbatim Memorization in Language Models Gives a False Sense of Privacy"); with the
default ``norm-v1`` tokens (``ngram_index``) case, spacing and punctuation changes are no edits.
Verified near-verbatim matches (edit similarity against the corpus text) are
``near_verbatim.near_verbatim_scan``'s. Two caveats, both
making it an upper bound: the n-grams of a run need not come from one corpus document (n-grams
shared by documents chain across them), and with a ``BloomIndex`` a false-positive n-gram can
start or extend a run (each absent n-gram is a hit with the stated ``false_positive_rate`` p).
``top_documents`` checks flagged spans against the exact corpus, one document at a time. This is
the n-gram membership test of verbatim-memorization audits (Carlini et al. 2021, "Extracting
Training Data from Large Language Models"; Lee et al. 2022, "Deduplicating Training Data Makes
Language Models Better", whose exact-substring counts use n = 50 tokens).
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from parrotwatch.detectors.audits.ngram_index import ExactIndex, NgramIndex

LIVE_MAX_GAP = 8  # tokens between hit runs the live score bridges (one or a few edited tokens)


@dataclass(frozen=True)
class Overlap:
    """Longest overlap: ``tokens`` long, over the text's tokens ``[start, end)``; 0, 0, 0 if none."""

    tokens: int
    start: int
    end: int
    doc_id: Hashable | None = None


@dataclass(frozen=True)
class ScanReport:
    """Scan of logged outputs: those with an overlap of >= ``min_tokens`` tokens are flagged.

    ``expected_false_flags`` bounds the flags a Bloom filter's false positives alone would give:
    an output with W windows needs r = min_tokens - n + 1 consecutive hits, so by the union
    bound it is falsely flagged with probability <= min(1, (W - r + 1) p^r).
    """

    n_outputs: int
    n_flagged: int
    rate: float
    min_tokens: int
    flagged: tuple[tuple[Hashable, Overlap], ...]
    n_ngrams: int
    seconds: float
    ngram_fpr: float
    expected_false_flags: float


@dataclass(frozen=True)
class DocumentLeak:
    """A corpus document and the flagged outputs attributed to it (longest verified overlap)."""

    doc_id: Hashable
    n_outputs: int
    max_tokens: int
    output_ids: tuple[Hashable, ...]


@dataclass(frozen=True)
class Attribution:
    """``outputs``: each flagged output's overlap verified inside one document (doc_id set), or
    ``Overlap(0, 0, 0)`` for ``unverified`` ones (Bloom false positives); ``documents``: the top
    leaking documents by outputs attributed, then by longest overlap."""

    outputs: tuple[tuple[Hashable, Overlap], ...]
    documents: tuple[DocumentLeak, ...]
    unverified: tuple[Hashable, ...]


def _items(texts: Mapping[Hashable, str] | Sequence[str]) -> tuple[list[Hashable], list[str]]:
    if isinstance(texts, Mapping):
        return list(texts.keys()), list(texts.values())
    return list(range(len(texts))), list(texts)


def _longest_runs(hit: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment ``hit[offsets[j]:offsets[j+1]]``: the longest run of True and its first start."""
    seg = len(offsets) - 1
    length, start = np.zeros(seg, dtype=np.int64), np.zeros(seg, dtype=np.int64)
    if not hit.any():
        return length, start
    first, last = np.zeros(len(hit), dtype=bool), np.zeros(len(hit), dtype=bool)
    first[offsets[:-1][offsets[:-1] < len(hit)]] = True  # a segment's first window starts a run
    last[offsets[1:][offsets[1:] > 0] - 1] = True
    begins = np.flatnonzero(hit & (first | ~np.concatenate([[False], hit[:-1]])))
    ends = np.flatnonzero(hit & (last | ~np.concatenate([hit[1:], [False]])))
    runs, owner = ends - begins + 1, np.searchsorted(offsets, begins, side="right") - 1
    order = np.lexsort((begins, -runs, owner))  # per owner: longest, then earliest
    keep = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    length[owner[keep]], start[owner[keep]] = runs[keep], begins[keep] - offsets[owner[keep]]
    return length, start


def hit_chains(hit: np.ndarray, offsets: np.ndarray, n: int, max_gap: int | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every chain of hit runs, per segment ``hit[offsets[j]:offsets[j+1]]`` (one text's windows).

    Runs ``[a, b]`` of hit windows cover tokens ``[a, b + n)``; two consecutive runs of a segment
    join one chain when the tokens between their covers number ``a' - (b + n) <= max_gap`` (a
    substituted token leaves 1, an inserted one 1, a deleted one 0). ``max_gap=None``: every run
    is its own chain (verbatim). Returns ``(start, end, owner)``: each chain's tokens ``[start,
    end)`` in its text, and the segment it lies in, in text order.
    """
    empty = np.zeros(0, dtype=np.int64)
    if not hit.any():
        return empty, empty, empty
    first, last = np.zeros(len(hit), dtype=bool), np.zeros(len(hit), dtype=bool)
    first[offsets[:-1][offsets[:-1] < len(hit)]] = True
    last[offsets[1:][offsets[1:] > 0] - 1] = True
    begins = np.flatnonzero(hit & (first | ~np.concatenate([[False], hit[:-1]])))
    ends = np.flatnonzero(hit & (last | ~np.concatenate([hit[1:], [False]])))
    owner = np.searchsorted(offsets, begins, side="right") - 1
    begins, ends = begins - offsets[owner], ends - offsets[owner]  # window index = token index
    if max_gap is None:
        return begins, ends + n, owner
    link = (owner[1:] == owner[:-1]) & (begins[1:] - (ends[:-1] + n) <= max_gap)
    heads = np.flatnonzero(np.r_[True, ~link])
    tails = np.r_[heads[1:] - 1, len(begins) - 1]
    return begins[heads], ends[tails] + n, owner[heads]


def longest_chains(hit: np.ndarray, offsets: np.ndarray, n: int, max_gap: int | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: the longest ``hit_chains`` chain's length in tokens (0 if none) and its start
    (the earliest on ties)."""
    seg = len(offsets) - 1
    length, start = np.zeros(seg, dtype=np.int64), np.zeros(seg, dtype=np.int64)
    a, b, owner = hit_chains(hit, offsets, n, max_gap)
    if len(a):
        order = np.lexsort((a, a - b, owner))  # per owner: longest, then earliest
        keep = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
        length[owner[keep]], start[owner[keep]] = b[keep] - a[keep], a[keep]
    return length, start


def _overlaps(texts: Sequence[str], index: NgramIndex, max_gap: int | None = None
              ) -> tuple[list[Overlap], list[int]]:
    hashes, offsets = index.hashes(texts)
    lengths, starts = longest_chains(index.contains_many(hashes), offsets, index.n, max_gap)
    return ([Overlap(int(r), int(s), int(s + r)) if r else Overlap(0, 0, 0)
             for r, s in zip(lengths, starts, strict=True)], np.diff(offsets).tolist())


def longest_overlap(text: str, index: NgramIndex, max_gap: int | None = LIVE_MAX_GAP) -> Overlap:
    """The live ``regurgitation`` score of one text (``.tokens``) with where it lies in the text:
    the longest chain of hit runs whose gaps leave at most ``max_gap`` uncovered tokens (see
    ``hit_chains``), so a lightly edited copy still counts its whole length; ``max_gap=None`` is
    the verbatim overlap (the longest run alone), as ``scan`` reports it."""
    return _overlaps([text], index, max_gap)[0][0]


def scan(outputs: Mapping[Hashable, str] | Sequence[str], index: NgramIndex,
         min_tokens: int | None = None, batch: int = 2048) -> ScanReport:
    """Flag the outputs (a sequence, ids = positions, or a mapping id -> text) whose
    ``longest_overlap`` is >= ``min_tokens`` (default the index's n)."""
    n = index.n
    min_tokens = n if min_tokens is None else min_tokens
    if min_tokens < n:
        raise ValueError(f"min_tokens={min_tokens} < the index's n={n}: build an index with n <= min_tokens")
    t0, (ids, texts) = time.perf_counter(), _items(outputs)
    p, r = index.false_positive_rate, min_tokens - n + 1
    flagged, n_ngrams, expected = [], 0, 0.0
    for s in range(0, len(texts), batch):
        overlaps, windows = _overlaps(texts[s: s + batch], index)
        n_ngrams += sum(windows)
        expected += sum(min(1.0, max(0, w - r + 1) * p**r) for w in windows)
        pairs = zip(ids[s: s + batch], overlaps, strict=True)
        flagged += [(i, o) for i, o in pairs if o.tokens >= min_tokens]
    return ScanReport(len(texts), len(flagged), len(flagged) / max(len(texts), 1), min_tokens, tuple(flagged),
                      n_ngrams, time.perf_counter() - t0, p, expected)


def top_documents(report: ScanReport, outputs: Mapping[Hashable, str] | Sequence[str],
                  corpus: Mapping[Hashable, str] | Sequence[str], index: NgramIndex,
                  k: int = 10, batch: int = 2048) -> Attribution:
    """Attribute each flagged span to the corpus document holding the longest run of its n-grams.

    The flagged spans' n-gram hashes form a small exact index; one pass over ``corpus`` (the
    documents the index was built from; ids = positions for a sequence) maps each of them to
    the documents holding it. Uses the index's tokenizer and n, never its membership test, so a
    span verified here is verbatim in that document (up to 64-bit hash collisions).
    """
    n, text_of = index.n, dict(zip(*_items(outputs), strict=True))
    spans = {oid: index.hashes([text_of[oid]])[0][ov.start: ov.start + max(ov.tokens - n + 1, 0)]
             for oid, ov in report.flagged}
    wanted = ExactIndex(n)
    wanted.add_hashes(np.concatenate([np.zeros(0, dtype=np.uint64), *spans.values()]))
    doc_ids, docs = _items(corpus)
    holders: dict[int, list[int]] = {}  # span n-gram hash -> positions of the documents holding it
    for s in range(0, len(docs), batch):
        h, off = index.hashes(docs[s: s + batch])
        hit = wanted.contains_many(h)
        counts = np.concatenate([[0], np.cumsum(hit)])
        for j in np.flatnonzero(counts[off[1:]] - counts[off[:-1]]):
            for g in set(h[off[j]: off[j + 1]][hit[off[j]: off[j + 1]]].tolist()):
                holders.setdefault(g, []).append(s + int(j))
    verified: list[tuple[Hashable, Overlap]] = []
    for oid, ov in report.flagged:
        span, best = spans[oid], Overlap(0, 0, 0)
        for d in sorted({d for g in span.tolist() for d in holders.get(g, ())}):
            held = np.fromiter((d in holders.get(g, ()) for g in span.tolist()), dtype=bool, count=len(span))
            run, start = _longest_runs(held, np.array([0, len(span)]))
            if run[0] and run[0] + n - 1 > best.tokens:
                a = ov.start + int(start[0])
                best = Overlap(int(run[0] + n - 1), a, a + int(run[0] + n - 1), doc_ids[d])
        verified.append((oid, best))
    by_doc: dict[Hashable, list[tuple[Hashable, int]]] = {}
    for oid, ov in verified:
        if ov.doc_id is not None:
            by_doc.setdefault(ov.doc_id, []).append((oid, ov.tokens))
    rank = {d: i for i, d in enumerate(doc_ids)}
    leaks = sorted((DocumentLeak(d, len(v), max(t for _, t in v), tuple(o for o, _ in v))
                    for d, v in by_doc.items()), key=lambda x: (-x.n_outputs, -x.max_tokens, rank[x.doc_id]))
    unverified = tuple(oid for oid, ov in verified if ov.doc_id is None)
    return Attribution(tuple(verified), tuple(leaks[:k]), unverified)
