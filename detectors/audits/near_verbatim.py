"""Near-verbatim regurgitation: corpus passages copied with light edits, verified by edit distance.

Ippolito et al. 2022 ("Preventing Verbatim Memorization in Language Models Gives a False Sense of
Privacy") show that exact-substring filters (Lee et al. 2022, "Deduplicating Training Data Makes
Language Models Better": a shared run of >= 50 tokens) are bypassed by style changes: ALL CAPS,
re-spacing, a word changed here and there. Two defences, both on the index's tokens:

1. the normal form of ``ngram_index.tokenize`` (``norm-v1``: NFKC, casefold, re-spacing undone,
   punctuation dropped) makes case, spacing and punctuation changes no edits at all;
2. candidate spans that tolerate edits, verified against the corpus text, here.

**Candidates.** With ``hit_i`` = "the output's n-gram at window i is in the index", the runs of
hits ``[a, b]`` cover tokens ``[a, b + n)``; consecutive runs join one chain while the tokens
between their covers number ``a' - (b + n) <= max_gap`` (``regurgitation.hit_chains``). One
edited token removes the n windows that hold it but leaves a gap of 1 token, so a copy with an
edit every k > n tokens stays one chain. A chain ``[s, e)`` with ``e - s >= min_tokens`` is a
candidate.

**Verification.** One pass over the corpus maps the candidates' n-grams to the documents, and
positions, holding them. In a document D, the shared windows ``(i in the output, j in D)`` are
chained along their diagonal: a pair extends a chain whose last pair ``(i0, j0)`` it follows in
both texts with at most ``max_gap`` uncovered tokens on each side and a shift ``|(j - j0) - (i -
i0)| <= max_gap`` (net insertions or deletions). A chain from ``(i_f, j_f)`` to ``(i_l, j_l)``
aligns the output's tokens ``q = [i_f, i_l + n)`` with D's ``d = [j_f, j_l + n)``; both ends are
exact matches, so the alignment is global between them:

    similarity(q, d) = 1 - Lev(q, d) / max(|q|, |d|)

(rapidfuzz ``Levenshtein.normalized_similarity`` on token sequences; unit-cost insertions,
deletions, substitutions). A match is a sub-chain with ``e - s >= min_tokens`` and similarity
``>= min_similarity``. Per output, the **longest** match (then the most similar, then the
earliest document) is reported, with its **corpus count**: the documents holding a match of the
same candidate span. An output is a **near-verbatim hit** when it has a match; the **hit rate**
is hits / outputs. A one-token substitution every 12 tokens gives similarity about 11/12.

Caveats: an index false positive (Bloom) can create or join a candidate but never a match (the
corpus is re-read); only the first ``max_positions`` positions of an n-gram in a document are
chained (boilerplate repeated more often may be missed there, never falsely matched); and an
edit closer than n tokens to the next one leaves a gap of more than 1 token, so the index's n
should be well below the edit spacing to catch (n = 8 for one edit in 12 tokens).
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from parrotwatch.detectors.audits.ngram_index import ExactIndex, NgramIndex, ngram_hashes, token_ids
from parrotwatch.detectors.audits.regurgitation import hit_chains

DEFAULT_MAX_GAP = 16  # tokens between hit runs a candidate may bridge (verified afterwards)
DEFAULT_MIN_SIMILARITY = 0.8


@dataclass(frozen=True)
class NearVerbatimMatch:
    """A verified match: the output's tokens ``[start, end)`` (``tokens`` long) against document
    ``doc_id``'s tokens ``[doc_start, doc_end)`` at normalised edit ``similarity``;
    ``corpus_count`` documents hold a match of that candidate span. All zero when none."""

    tokens: int
    start: int
    end: int
    similarity: float
    corpus_count: int
    doc_id: Hashable | None = None
    doc_start: int = 0
    doc_end: int = 0


NO_MATCH = NearVerbatimMatch(0, 0, 0, 0.0, 0)


@dataclass(frozen=True)
class NearVerbatimReport:
    """``matches``: the hits' longest matches, in output order; ``n_candidates``: candidate spans
    (chains of >= ``min_tokens``), ``n_unverified``: outputs with a candidate but no match."""

    n_outputs: int
    n_hits: int
    hit_rate: float
    min_tokens: int
    min_similarity: float
    max_gap: int
    matches: tuple[tuple[Hashable, NearVerbatimMatch], ...]
    n_candidates: int
    n_unverified: int
    seconds: float


def _items(texts: Mapping[Hashable, str] | Sequence[str]) -> tuple[list[Hashable], list[str]]:
    if isinstance(texts, Mapping):
        return list(texts.keys()), list(texts.values())
    return list(range(len(texts))), list(texts)


@dataclass
class _Candidate:
    output: int  # position in the outputs
    start: int
    end: int
    ids: np.ndarray  # the output's token ids
    hashes: np.ndarray  # the output's window hashes


def _candidates(texts: Sequence[str], first: int, index: NgramIndex, min_tokens: int,
                max_gap: int) -> list[_Candidate]:
    ids = token_ids([index.tokens(t) for t in texts])
    hashes, offsets = ngram_hashes(ids, index.n)
    starts, ends, owner = hit_chains(index.contains_many(hashes), offsets, index.n, max_gap)
    keep = np.flatnonzero(ends - starts >= min_tokens)
    return [_Candidate(first + int(owner[c]), int(starts[c]), int(ends[c]), ids[owner[c]],
                       hashes[offsets[owner[c]]: offsets[owner[c] + 1]]) for c in keep]


def _holders(wanted: ExactIndex, docs: Sequence[str], index: NgramIndex, batch: int
             ) -> tuple[dict[int, dict[int, list[int]]], dict[int, np.ndarray]]:
    """``{hash: {doc: [positions]}}`` of the wanted n-grams, and the token ids of the documents
    holding any."""
    holders: dict[int, dict[int, list[int]]] = {}
    doc_ids: dict[int, np.ndarray] = {}
    for s in range(0, len(docs), batch):
        ids = token_ids([index.tokens(d) for d in docs[s: s + batch]])
        h, off = ngram_hashes(ids, index.n)
        hit = wanted.contains_many(h)
        for g in np.flatnonzero(hit):
            j = int(np.searchsorted(off, g, side="right") - 1)
            holders.setdefault(int(h[g]), {}).setdefault(s + j, []).append(int(g - off[j]))
            doc_ids.setdefault(s + j, ids[j])
    return holders, doc_ids


def _diagonal_chains(pairs: list[tuple[int, int]], n: int, max_gap: int) -> list[list[int]]:
    """Chains ``[i_first, j_first, i_last, j_last]`` of shared windows ``(i in the output, j in the
    document)``, ``pairs`` sorted: a pair extends the chain whose last pair ``(i0, j0)`` it follows in
    both texts (``i > i0``, ``j > j0``) with at most ``max_gap`` uncovered tokens on each side and a
    shift ``|(j - j0) - (i - i0)|`` (insertions minus deletions) of at most ``max_gap``, the least
    shifted one first; else it starts a chain."""
    done: list[list[int]] = []
    live: list[list[int]] = []  # chains a later pair may still extend
    for i, j in pairs:
        if live and live[0][2] < i - n - max_gap:
            done += [c for c in live if c[2] < i - n - max_gap]
            live = [c for c in live if c[2] >= i - n - max_gap]
        best, shift = None, max_gap + 1
        for c in live:
            di, dj = i - c[2], j - c[3]
            if 1 <= di <= n + max_gap and 1 <= dj <= n + max_gap and abs(dj - di) < shift:
                best, shift = c, abs(dj - di)
        if best is None:
            live.append([i, j, i, j])
        else:
            best[2], best[3] = i, j
        live.sort(key=lambda c: c[2])
    return done + live


def _verify(c: _Candidate, n: int, holders: dict[int, dict[int, list[int]]], doc_ids: dict[int, np.ndarray],
            min_tokens: int, min_similarity: float, max_gap: int, max_positions: int
            ) -> list[tuple[int, int, int, float, int, int]]:
    """Matches of one candidate: ``(doc, start, end, similarity, doc_start, doc_end)``."""
    windows = c.hashes[c.start: c.end - n + 1].tolist()
    pairs: dict[int, list[tuple[int, int]]] = {}
    for i, g in enumerate(windows):
        for d, positions in holders.get(g, {}).items():
            pairs.setdefault(d, []).extend((c.start + i, j) for j in positions[:max_positions])
    out = []
    for d in sorted(pairs):
        for i_f, j_f, i_l, j_l in _diagonal_chains(pairs[d], n, max_gap):
            if i_l + n - i_f < min_tokens:
                continue
            q, t = c.ids[i_f: i_l + n].tolist(), doc_ids[d][j_f: j_l + n].tolist()
            sim = float(Levenshtein.normalized_similarity(q, t))
            if sim >= min_similarity:
                out.append((d, i_f, i_l + n, sim, j_f, j_l + n))
    return out


def near_verbatim_scan(outputs: Mapping[Hashable, str] | Sequence[str],
                       corpus: Mapping[Hashable, str] | Sequence[str], index: NgramIndex,
                       min_tokens: int = 50, min_similarity: float = DEFAULT_MIN_SIMILARITY,
                       max_gap: int = DEFAULT_MAX_GAP, batch: int = 2048,
                       max_positions: int = 64) -> NearVerbatimReport:
    """Near-verbatim hits of ``outputs`` (a sequence, ids = positions, or a mapping id -> text)
    in ``corpus`` (the documents ``index`` was built from; ids likewise), as the module says.

    ``index`` gives the tokenizer, n and the candidate test: an exact or Bloom index of the corpus
    with n well below ``min_tokens`` (n = 8 catches one edit in 12 tokens)."""
    if min_tokens < index.n:
        raise ValueError(f"min_tokens={min_tokens} < the index's n={index.n}")
    if not 0 < min_similarity <= 1:
        raise ValueError(f"min_similarity must be in (0, 1], got {min_similarity}")
    t0, (ids, texts) = time.perf_counter(), _items(outputs)
    n = index.n
    cands = [c for s in range(0, len(texts), batch)
             for c in _candidates(texts[s: s + batch], s, index, min_tokens, max_gap)]
    wanted = ExactIndex(n)
    wanted.add_hashes(np.concatenate([np.zeros(0, dtype=np.uint64),
                                      *(c.hashes[c.start: c.end - n + 1] for c in cands)]))
    doc_keys, docs = _items(corpus)
    holders, doc_ids = _holders(wanted, docs, index, batch) if cands else ({}, {})
    best: dict[int, NearVerbatimMatch] = {}
    for c in cands:
        found = _verify(c, n, holders, doc_ids, min_tokens, min_similarity, max_gap, max_positions)
        if not found:
            continue
        d, s, e, sim, ds, de = min(found, key=lambda m: (m[1] - m[2], -m[3], m[0]))
        count = len({m[0] for m in found})
        match = NearVerbatimMatch(e - s, s, e, sim, count, doc_keys[d], ds, de)
        old = best.get(c.output)
        if old is None or (match.tokens, match.similarity) > (old.tokens, old.similarity):
            best[c.output] = match
    matches = tuple((ids[i], best[i]) for i in sorted(best))
    with_candidate = {c.output for c in cands}
    return NearVerbatimReport(len(texts), len(matches), len(matches) / max(len(texts), 1), min_tokens,
                              min_similarity, max_gap, matches, len(cands), len(with_candidate - set(best)),
                              time.perf_counter() - t0)
