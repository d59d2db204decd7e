"""Evaluate the grounding detector (``hallucination``) on the constructed RAG set.

Protocol: the similarity threshold is calibrated on the ``calibration`` split only (the ``fpr``
quantile of the best source similarity of its faithful sentences, ``calibrate_threshold``); the
table is measured on the separate ``report`` split (other topics, other passages). A sentence is
"flagged" when the detector finds it unsupported; precision and recall are those of the flag
against the gold ``unsupported`` label (categories ``swapped`` and ``added``).

Acceptance (issue 5): swapped numbers, dates and names caught >= 95% of the time; faithful
(supported + paraphrased) sentences pass >= 90% of the time.

Usage: .venv/bin/python bench/hallucination_eval.py [--fpr 0.05] [--threshold T] [--nli-path DIR]
           [--no-facts] [--split report|calibration] [--batch 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rag_set import CATEGORIES, FAITHFUL, RagItem, build  # noqa: E402
from parrotwatch.detectors.grounding import (  # noqa: E402
    DEFAULT_THRESHOLD,
    GroundingInput,
    GroundingScorer,
    SentenceSupport,
    calibrate_threshold,
)


@dataclass(frozen=True)
class Judged:
    """One gold sentence with the detector's evidence (the overlapping detected sentences)."""

    category: str
    swap: str | None
    similarity: float
    facts: tuple[str, ...]
    evidence: tuple[SentenceSupport, ...]


def judge(items: list[RagItem], scorer: GroundingScorer, batch: int = 32) -> list[Judged]:
    """Score ``items`` in micro-batches (as the stream does) and align with the gold sentences."""
    out = []
    for lo in range(0, len(items), batch):
        chunk = items[lo: lo + batch]
        supports, _ = scorer.evidence_batch([GroundingInput(it.answer, it.sources) for it in chunk])
        for item, per_item in zip(chunk, supports, strict=True):
            for gold in item.sentences:
                hits = tuple(s for s in per_item if s.start < gold.end and gold.start < s.end)
                out.append(Judged(gold.category, gold.swap, min(s.similarity for s in hits),
                                  tuple(f for s in hits for f in s.unsupported_facts), hits))
    return out


def flagged(j: Judged, scorer: GroundingScorer) -> bool:
    return any(not scorer.is_supported(s) for s in j.evidence)


def table(judged: list[Judged], scorer: GroundingScorer) -> dict[str, dict[str, float]]:
    """Rows per category and swap kind: n, share flagged, share flagged by facts / by similarity;
    plus ``overall`` precision, recall and F1 of the flag and the faithful pass rate."""
    groups: dict[str, list[Judged]] = defaultdict(list)
    for j in judged:
        groups[j.category].append(j)
        if j.swap:
            groups[f"swapped:{j.swap}"].append(j)
    rows = {}
    for name in [*CATEGORIES, *sorted(k for k in groups if ":" in k)]:
        js = groups.get(name, [])
        if js:
            rows[name] = {"n": len(js), "flagged": sum(flagged(j, scorer) for j in js) / len(js),
                          "by_facts": sum(bool(j.facts) for j in js) / len(js),
                          "by_similarity": sum(j.similarity < scorer.threshold for j in js) / len(js)}
    tp = sum(flagged(j, scorer) and j.category not in FAITHFUL for j in judged)
    fp = sum(flagged(j, scorer) and j.category in FAITHFUL for j in judged)
    pos = sum(j.category not in FAITHFUL for j in judged)
    faithful = [j for j in judged if j.category in FAITHFUL]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / pos if pos else 0.0
    rows["overall"] = {"n": len(judged), "precision": precision, "recall": recall,
                       "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
                       "faithful_pass": 1 - sum(flagged(j, scorer) for j in faithful) / len(faithful)}
    return rows


def calibrated_threshold(scorer: GroundingScorer, fpr: float, batch: int = 32) -> float:
    items = [it for it in build() if it.split == "calibration"]
    sims = [j.similarity for j in judge(items, scorer, batch) if j.category in FAITHFUL]
    return calibrate_threshold(sims, fpr)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--fpr", type=float, default=0.05,
                    help="share of faithful calibration sentences the threshold may flag")
    ap.add_argument("--threshold", type=float, help="skip calibration and use this threshold")
    ap.add_argument("--nli-path", help="local NLI cross-encoder directory (optional)")
    ap.add_argument("--no-facts", action="store_true", help="ablation: similarity (and NLI) only")
    ap.add_argument("--split", default="report", choices=("report", "calibration"))
    ap.add_argument("--batch", type=int, default=32, help="answers per scorer call")
    args = ap.parse_args(argv)

    scorer = GroundingScorer(nli_path=args.nli_path, check_facts=not args.no_facts)
    t0 = time.perf_counter()
    if args.threshold is None:
        scorer.threshold = calibrated_threshold(scorer, args.fpr, args.batch)
        print(f"threshold {scorer.threshold:.4f} calibrated on the calibration split at fpr={args.fpr} "
              f"(DEFAULT_THRESHOLD in code: {DEFAULT_THRESHOLD})")
    else:
        scorer.threshold = args.threshold
    items = [it for it in build() if it.split == args.split]
    judged = judge(items, scorer, args.batch)
    rows = table(judged, scorer)
    elapsed = time.perf_counter() - t0
    print(f"split={args.split}: {len(items)} answers, {len(judged)} sentences, "
          f"threshold={scorer.threshold:.4f}, nli={'yes' if args.nli_path else 'no'}, "
          f"facts={'no' if args.no_facts else 'yes'}, {elapsed:.1f} s\n")
    print(f"{'category':<18}{'n':>5}{'flagged':>10}{'by facts':>10}{'by sim':>9}")
    for name, row in rows.items():
        if name != "overall":
            print(f"{name:<18}{row['n']:>5}{row['flagged']:>10.3f}{row['by_facts']:>10.3f}"
                  f"{row['by_similarity']:>9.3f}")
    o = rows["overall"]
    print(f"\nunsupported flag: precision {o['precision']:.3f}  recall {o['recall']:.3f}  f1 {o['f1']:.3f}"
          f"  | faithful pass {o['faithful_pass']:.3f}  swapped caught {rows['swapped']['flagged']:.3f}")


if __name__ == "__main__":
    main()
