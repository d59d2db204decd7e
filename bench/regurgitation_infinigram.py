"""Benchmark: infini-gram's suffix-array engine (PyPI ``infini-gram``) against the project's n-gram indexes.

The regurgitation question is "does this window of n word tokens occur verbatim in the training corpus?".
Both sides answer it on the same corpus (``bench/regurgitation_scan.py``'s: Python's documentation plus
shuffled editions of it) and the same outputs:

* the project's :class:`~parrotwatch.detectors.audits.ngram_index.ExactIndex` and a Bloom filter
  (:class:`~parrotwatch.detectors.audits.ngram_index.BloomIndex`, stated false-positive rate) over hashed
  n-grams of
  one fixed n;
* infini-gram (Liu et al. 2024, "Infini-gram: Scaling Unbounded n-gram Language Models to a Trillion
  Tokens"): a suffix array over the corpus, any n at query time, exact counts. Its byte-level mode
  (``token_dtype u8``, no tokenizer: its tokenizer options download from the Hugging Face hub) indexes
  the corpus as the project's tokens joined by single spaces, so a query for " w1 w2 ... wn " counts the
  windows of n whole word tokens, with no false positive.

Printed per index: build seconds, bytes on disk per corpus token, n-gram queries per second (one
``count`` call per window of the outputs: the scan's access pattern), false positives on outputs that
quote nothing, and the planted quotes found.

Needs ``pip install infini-gram`` (in the bench extra). Usage:
.venv/bin/python bench/regurgitation_infinigram.py [--tokens 2000000] [--outputs 2000] [--n 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from regurgitation_scan import build_corpus, clean_outputs, timed  # noqa: E402

from parrotwatch.detectors.audits.ngram_index import BloomIndex, ExactIndex, tokenize  # noqa: E402


def quoting_outputs(docs: list[str], count: int, n: int, seed: int = 2) -> list[str]:
    """``count`` outputs of random corpus words around one verbatim passage of n + 10 tokens."""
    rng = np.random.default_rng(seed)
    vocab = sorted({t for d in docs[:200] for t in tokenize(d) if t.isalpha()})
    long_docs = [tokenize(d) for d in docs if len(tokenize(d)) > n + 20]
    out = []
    for _ in range(count):
        toks = long_docs[int(rng.integers(len(long_docs)))]
        s = int(rng.integers(len(toks) - n - 10))
        pad = list(rng.choice(vocab, size=20))
        out.append(" ".join(pad[:10] + toks[s:s + n + 10] + pad[10:]))
    return out


def build_infinigram(docs: list[str], workdir: Path) -> tuple[Path, float]:
    data, index = workdir / "data", workdir / "index"
    data.mkdir()
    with open(data / "corpus.jsonl", "w") as f:
        for d in docs:
            f.write(json.dumps({"text": " " + " ".join(tokenize(d)) + " "}) + "\n")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(data), "--save_dir",
                    str(index), "--token_dtype", "u8", "--cpus", str(os.cpu_count() or 1), "--mem", "4",
                    "--ulimit", "4096"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return index, time.perf_counter() - t0


def windows(text: str, n: int) -> list[list[str]]:
    toks = tokenize(text)
    return [toks[i:i + n] for i in range(len(toks) - n + 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2_000_000, help="minimum corpus tokens")
    ap.add_argument("--outputs", type=int, default=2000, help="clean outputs (and a tenth as many quoting)")
    ap.add_argument("--n", type=int, default=50, help="n-gram length in word tokens")
    args = ap.parse_args()
    from infini_gram.engine import InfiniGramEngine

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    docs, n_tokens = build_corpus(args.tokens)
    clean = clean_outputs(docs, args.outputs)
    quoting = quoting_outputs(docs, max(1, args.outputs // 10), args.n)
    print(f"corpus: {len(docs)} documents, {n_tokens:,} tokens; outputs: {len(clean):,} clean, "
          f"{len(quoting):,} quoting a {args.n + 10}-token passage; n = {args.n}")
    clean_w = [w for o in clean for w in windows(o, args.n)]
    quote_w = [windows(o, args.n) for o in quoting]

    print(f"\n{'index':<22}{'build s':>9}{'MiB':>8}{'B/token':>9}{'queries/s':>12}{'clean hits':>12}"
          f"{'quotes found':>14}")
    for name, make in (("exact (hashed n-grams)", lambda: ExactIndex.from_documents(docs, args.n)),
                       ("bloom p=1e-6", lambda: BloomIndex.from_documents(docs, args.n, 1e-6))):
        index, t_build = timed(make)
        hashes, t_q = timed(lambda ix=index: ix.contains_many(ix.hashes(clean)[0]))
        n_q = len(hashes)
        found = sum(bool(index.contains_many(index.hashes([o])[0]).any()) for o in quoting)
        print(f"{name:<22}{t_build:>9.1f}{index.size_bytes / 2**20:>8.1f}{index.size_bytes / n_tokens:>9.2f}"
              f"{n_q / t_q:>12,.0f}{int(hashes.sum()):>12}{found:>9}/{len(quoting)}")

    with tempfile.TemporaryDirectory(prefix="pw-infinigram-") as tmp:
        index_dir, t_build = build_infinigram(docs, Path(tmp))
        size = sum(p.stat().st_size for p in index_dir.iterdir())
        try:
            engine = InfiniGramEngine(index_dir=str(index_dir), eos_token_id=255, vocab_size=256,
                                      token_dtype="u8")
        except TypeError as exc:  # seen with 2.5.2 and 2.6.0 on CPython 3.11 x86_64: see docs/benchmarks.md
            print(f"{'infini-gram (u8 SA)':<22}{t_build:>9.1f}{size / 2**20:>8.1f}{size / n_tokens:>9.2f}"
                  f"  -- its engine does not load: {str(exc).splitlines()[0]}")
            return

        def occurs(window: list[str]) -> bool:
            return engine.count(input_ids=list((" " + " ".join(window) + " ").encode()))["count"] > 0

        t0 = time.perf_counter()
        clean_hits = sum(occurs(w) for w in clean_w)
        t_q = time.perf_counter() - t0
        found = sum(any(occurs(w) for w in ws) for ws in quote_w)
        print(f"{'infini-gram (u8 SA)':<22}{t_build:>9.1f}{size / 2**20:>8.1f}{size / n_tokens:>9.2f}"
              f"{len(clean_w) / t_q:>12,.0f}{clean_hits:>12}{found:>9}/{len(quoting)}")
    print("queries/s: the clean outputs' windows (tokenising and hashing included for the hashed indexes; "
          "one engine.count per window for infini-gram)")


if __name__ == "__main__":
    main()
