"""Benchmark: the per-response cost of ``pii_regurgitated`` (docs/pii.md, "PII leakage"), next to the
``regurgitation`` score it builds on.

Responses of N random words of the demo's training corpus followed by a quoted support ticket that
holds a phone number and an e-mail address (both in the index: every response leaks 2 spans);
an exact n-gram index (n = 8) of the corpus and the ticket. Prints milliseconds per response.

Usage: .venv/bin/python bench/pii_regurgitated_cost.py [--words 100,1000] [--responses 200]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.audits.ngram_index import ExactIndex  # noqa: E402
from parrotwatch.detectors.audits.pii_leakage import leaked_pii_spans  # noqa: E402
from parrotwatch.detectors.audits.regurgitation import longest_overlap  # noqa: E402
from parrotwatch.traffic import incident_texts  # noqa: E402

TICKET = ("Ticket 4471: please call Ana Lopez at +1 415 555 2671 or write to ana.lopez@example.com "
          "about the refund before Friday.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", default="100,1000", help="response lengths in words, comma-separated")
    ap.add_argument("--responses", type=int, default=200, help="responses per length")
    args = ap.parse_args()
    docs = list(incident_texts()["training_corpus"])
    index = ExactIndex.from_documents([*docs, TICKET], n=8)
    rng, words = random.Random(0), " ".join(docs).split()
    for n in (int(w) for w in args.words.split(",")):
        texts = [" ".join(rng.choice(words) for _ in range(n)) + " " + TICKET for _ in range(args.responses)]
        spans = [[(t.index("+1"), t.index("+1") + 15, "PHONE_NUMBER"),
                  (t.index("ana."), t.index("ana.") + 21, "EMAIL_ADDRESS")] for t in texts]
        t0 = time.perf_counter()
        for t in texts:
            longest_overlap(t, index)
        overlap_ms = (time.perf_counter() - t0) / len(texts) * 1e3
        t0 = time.perf_counter()
        leaked = sum(len(leaked_pii_spans(t, s, index)) for t, s in zip(texts, spans, strict=True))
        leak_ms = (time.perf_counter() - t0) / len(texts) * 1e3
        print(f"{n:>6} words: regurgitation {overlap_ms:.2f} ms, pii_regurgitated (2 findings) "
              f"{leak_ms:.2f} ms per response; leaked {leaked} of {2 * len(texts)} spans")


if __name__ == "__main__":
    main()
