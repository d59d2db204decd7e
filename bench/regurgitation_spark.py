"""Benchmark: the regurgitation index build and scan as Spark jobs (streaming/regurgitation_jobs.py).

Corpus: Python's documentation topics plus shuffled "editions" of their paragraphs until it holds
>= --tokens tokens (bench/regurgitation_scan.py's ``build_corpus``), written as JSONL shards.
Outputs: --outputs inference events, 1% quoting 50-120 tokens of a corpus document, the rest words
of the corpus vocabulary (bench/regurgitation_scan.py's ``clean_outputs``).

Prints, for the exact index and a Bloom filter: the Spark build in corpus n-grams/s, the index bytes
per corpus token, and the Spark scan in output n-grams/s (tokenising, hashing, probing and the
driver's collection included), each next to the in-process builder / ``scan`` on the same data. Each
Spark job runs --repeat times after one warm-up job; the best time is reported (the first run of a
session also pays for starting the Python workers).

Usage: .venv/bin/python bench/regurgitation_spark.py [--tokens 1000000] [--outputs 20000] [--n 50]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from lm_scoring_throughput import cpu_model  # noqa: E402
from regurgitation_scan import build_corpus, clean_outputs  # noqa: E402

from parrotwatch.detectors.audits.ngram_index import TOKEN_PATTERN, BloomIndex, ExactIndex, tokenize  # noqa: E402
from parrotwatch.detectors.audits.regurgitation import scan  # noqa: E402


def best(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times)


def leaky_outputs(docs: list[str], count: int, seed: int = 2) -> list[str]:
    """``count`` outputs, one in 100 quoting 50-120 tokens of a document verbatim."""
    outputs = clean_outputs(docs, count)
    rng = np.random.default_rng(seed)
    long_docs = [d for d in docs if len(tokenize(d)) >= 200]
    for i in range(0, count, 100):
        doc = long_docs[int(rng.integers(len(long_docs)))]
        spans = [m.span() for m in TOKEN_PATTERN.finditer(doc)]
        length = int(rng.integers(50, 121))
        start = int(rng.integers(len(spans) - length))
        outputs[i] = f"{outputs[i][:200]} {doc[spans[start][0]:spans[start + length - 1][1]]}"
    return outputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000, help="minimum corpus tokens")
    ap.add_argument("--outputs", type=int, default=20_000, help="logged outputs to scan")
    ap.add_argument("--n", type=int, default=50, help="n-gram length (tokens)")
    ap.add_argument("--fpr", type=float, default=1e-6, help="Bloom false-positive rate per n-gram")
    ap.add_argument("--master", default="local[*]", help="Spark master")
    ap.add_argument("--shards", type=int, default=8, help="JSONL files of the corpus")
    ap.add_argument("--repeat", type=int, default=2, help="runs per Spark job (best reported)")
    args = ap.parse_args()

    import pyspark

    from parrotwatch.settings import Settings
    from parrotwatch.streaming import regurgitation_jobs as jobs

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load "
          f"{load:.1f}; Python {platform.python_version()}, pyspark {pyspark.__version__}, master "
          f"{args.master}")
    docs, n_tokens = build_corpus(args.tokens)
    n_ngrams = sum(max(0, len(tokenize(d)) - args.n + 1) for d in docs)
    outputs = leaky_outputs(docs, args.outputs)
    print(f"corpus: {len(docs):,} documents, {n_tokens:,} tokens, {n_ngrams:,} {args.n}-grams; "
          f"{len(outputs):,} outputs")

    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        tmp = Path(tmp)
        shards = [tmp / f"corpus-{s}.jsonl" for s in range(args.shards)]
        for s, path in enumerate(shards):
            path.write_bytes(b"".join(orjson.dumps({"id": f"doc{i}", "text": docs[i]}) + b"\n"
                                      for i in range(s, len(docs), args.shards)))
        events = tmp / "events.jsonl"
        events.write_bytes(b"".join(orjson.dumps({"request_id": f"r{i}", "response": o}) + b"\n"
                                    for i, o in enumerate(outputs)))
        t0 = time.perf_counter()
        spark = jobs.batch_session(Settings(home=tmp / "home", spark_master=args.master))
        corpus = jobs.read_documents(spark, shards)
        corpus.count()  # warm-up: starts the JVM's executors and the Python workers
        print(f"Spark session and warm-up: {time.perf_counter() - t0:.1f} s; "
              f"default parallelism {spark.sparkContext.defaultParallelism}")

        print(f"\n{'index':<16}{'build':>9}{'n-grams/s':>12}{'in-process':>12}{'MiB':>8}{'B/token':>9}"
              f"{'scan':>8}{'n-grams/s':>12}{'in-process':>12}{'flagged':>9}{'false exp.':>11}")
        for name, fpr in (("exact", 0.0), (f"bloom p={args.fpr:g}", args.fpr)):
            index, t_build = best(lambda f=fpr: jobs.build_index(corpus, n=args.n, fpr=f), args.repeat)
            _, t_local = best(lambda f=fpr: (ExactIndex.from_documents(docs, n=args.n) if f == 0 else
                                              BloomIndex.from_documents(docs, n=args.n, target_fpr=f)), 1)
            path = tmp / f"{name.split()[0]}.npz"
            index.save(path)
            result, t_scan = best(lambda p=path: jobs.scan_outputs(
                jobs.read_outputs(spark, [events]), p, min_tokens=args.n), args.repeat)
            report = result.report
            local = scan(outputs, index, min_tokens=args.n)
            print(f"{name:<16}{t_build:>8.1f}s{n_ngrams / t_build:>12,.0f}{n_ngrams / t_local:>12,.0f}"
                  f"{index.size_bytes / 2**20:>8.2f}{index.size_bytes / n_tokens:>9.3f}{t_scan:>7.1f}s"
                  f"{report.n_ngrams / t_scan:>12,.0f}{local.n_ngrams / local.seconds:>12,.0f}"
                  f"{report.n_flagged:>9}{report.expected_false_flags:>11.2g}")
        print(f"\nscan: {report.n_ngrams:,} output n-grams; 'flagged' includes the {len(outputs) // 100} "
              "planted leaks, 'false exp.' is the bound on false flags from the stated rate; build "
              "n-grams/s counts corpus n-grams (with repeats) per second")
        spark.stop()


if __name__ == "__main__":
    main()
