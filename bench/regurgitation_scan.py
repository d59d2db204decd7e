"""Benchmark: corpus n-gram indexes (Bloom vs exact) for the regurgitation audit.

Corpus: Python's own documentation (``pydoc_data.topics``), plus "editions" of it whose
paragraphs are shuffled and regrouped into documents, until it holds >= --tokens tokens. The
repeats keep the text real but make many n-grams recur, so index bytes are given both per corpus
token and per distinct n-gram. Prints build time, bytes, scan throughput (n-grams/s, tokenising
included, and the membership probe alone), and the false-positive rate measured on outputs that
contain no corpus passage (random words of the corpus vocabulary) against the stated rate.

Usage: .venv/bin/python bench/regurgitation_scan.py [--tokens 2000000] [--outputs 20000]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.audits.ngram_index import BloomIndex, ExactIndex, tokenize  # noqa: E402
from parrotwatch.detectors.audits.regurgitation import longest_overlap, scan  # noqa: E402


def build_corpus(min_tokens: int, seed: int = 0) -> tuple[list[str], int]:
    rng = np.random.default_rng(seed)
    docs = list(topics.values())
    paragraphs = [p for d in docs for p in d.split("\n\n") if p.strip()]
    total = sum(len(tokenize(d)) for d in docs)
    per_para = total / len(paragraphs)
    while total < min_tokens:
        order = rng.permutation(len(paragraphs))
        for s in range(0, len(order), 20):
            docs.append("\n\n".join(paragraphs[i] for i in order[s: s + 20]))
        total += int(per_para * len(paragraphs))
    return docs, sum(len(tokenize(d)) for d in docs)


def clean_outputs(docs: list[str], count: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = sorted({t for d in docs[:200] for t in tokenize(d) if t.isalpha()})
    return [" ".join(rng.choice(vocab, size=int(rng.integers(60, 141)))) for _ in range(count)]


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2_000_000, help="minimum corpus tokens")
    ap.add_argument("--outputs", type=int, default=20_000, help="clean outputs to scan")
    ap.add_argument("--fprs", type=float, nargs="+", default=[1e-2, 1e-3, 1e-6], help="Bloom target rates")
    args = ap.parse_args()

    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, numpy {np.__version__} (single-threaded)")
    (docs, n_tokens), secs = timed(build_corpus, args.tokens)
    print(f"corpus: {len(docs)} documents, {n_tokens:,} tokens ({secs:.1f} s to make)")
    outputs = clean_outputs(docs, args.outputs)

    for n in (50, 8):
        exact, t_exact = timed(ExactIndex.from_documents, docs, n)
        distinct = len(exact)
        print(f"\nn = {n}: {distinct:,} distinct n-grams ({distinct / n_tokens:.2f} per corpus token)")
        print(f"  {'index':<14}{'build s':>8}{'MiB':>8}{'B/token':>9}{'B/ngram':>9}{'k':>4}"
              f"{'stated fpr':>12}{'measured fpr (3 sd)':>22}{'scan ngram/s':>14}{'probe ngram/s':>15}")
        hashes, t_hash = timed(lambda ix=exact: ix.hashes(outputs)[0])
        indexes = [("exact", exact, t_exact)]
        for p in args.fprs:
            bloom, t_bloom = timed(BloomIndex.from_documents, docs, n, p)
            indexes.append((f"bloom p={p:g}", bloom, t_bloom))
        for name, index, t_build in indexes:
            hits, t_probe = timed(index.contains_many, hashes)
            report = scan(outputs, index, min_tokens=n)
            q = len(hashes)
            fp, stated = int(hits.sum()), index.false_positive_rate
            within = abs(fp - q * stated) <= 3 * math.sqrt(q * stated * (1 - stated)) + 1e-9
            k = getattr(index, "k", "-")
            print(f"  {name:<14}{t_build:>8.2f}{index.size_bytes / 2**20:>8.2f}"
                  f"{index.size_bytes / n_tokens:>9.3f}{index.size_bytes / distinct:>9.3f}{k!s:>4}"
                  f"{stated:>12.2e}{fp / q:>10.2e} ({fp:>6} hits{'' if within else ' OUT'})"
                  f"{report.n_ngrams / report.seconds:>14,.0f}{q / t_probe:>15,.0f}{report.n_flagged:>9}")
        print(f"  measured on {len(hashes):,} clean n-grams of {len(outputs):,} outputs ('OUT': beyond 3 sd"
              f" of the stated rate); 'flagged': clean outputs the scan flags; tokenise + hash alone: "
              f"{len(hashes) / t_hash:,.0f} n-grams/s")
        if n == 8:
            bloom, sample = indexes[-1][1], outputs[:2000]
            _, t_req = timed(lambda ix=bloom, texts=sample: [longest_overlap(o, ix) for o in texts])
            print(f"  per-request longest_overlap (stream path, Bloom n=8): "
                  f"{t_req / len(sample) * 1e6:,.0f} us/request")


if __name__ == "__main__":
    main()
