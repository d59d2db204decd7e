"""Benchmark: what keeping review texts costs the stream's workers (issue 14).

Times ``inference_rows`` (parse, model-free scores, row building: what a Spark task runs per
record) over the same events three ways: no review pool, the default pool design (5% base, 25%
near a threshold, 50% flagged), and a pool that keeps every text (the worst case). Prints events
per second (median of --runs), the share kept, and the mean bytes of a kept text.

Usage: .venv/bin/python bench/review_pool_overhead.py [--events 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from parrotwatch.detectors.calibration.sampling import PoolDesign
from parrotwatch.settings import Settings
from parrotwatch.streaming.job import review_pool
from parrotwatch.streaming.records import inference_rows
from parrotwatch.traffic import encode, generate_inference_events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    raws = [encode(e) for e in generate_inference_events(args.events, seed=1)]
    designs = {"no pool": None, "default pool": review_pool(Settings()),
               "keep every text": PoolDesign(1.0, 1.0, 1.0, 0.0)}
    print(f"{args.events:,} events, model-free scores, median of {args.runs} runs\n")
    print("| pool | events/s | vs no pool | texts kept | mean kept bytes |")
    print("|---|---:|---:|---:|---:|")
    base = None
    for name, design in designs.items():
        times, rows = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            rows = inference_rows(raws, 1 << 20, pool=design)
            times.append(time.perf_counter() - started)
        rate = args.events / statistics.median(times)
        base = base or rate
        kept = [r["review_text"] for r in rows if r.get("review_text")]
        mean = sum(map(len, kept)) / len(kept) if kept else 0
        print(f"| {name} | {rate:,.0f} | {rate / base - 1:+.1%} | {len(kept) / len(rows):.1%} | "
              f"{mean:,.0f} |")


if __name__ == "__main__":
    main()
