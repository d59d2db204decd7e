"""Evaluate ``hallucination`` on errors that carry no wrong number (data/grounding_relations_eval.jsonl).

Each case is one answer sentence scored against its topic's sources, as the stream scores a
RAG answer. A case is "flagged" when the detector finds the sentence unsupported. The table gives,
per kind, the share flagged (errors: should be high; faithful: should be low) under four
configurations, so that each part's contribution is visible:

    baseline     similarity + facts anywhere in the sources (the detector before issue 15)
    default      + the default relational checks (antonyms, units, roles: DEFAULT_CHECKS)
    all rules    + negation and facts outside the matched passage (misplaced)
    + model      + the learned pair model (detectors/data/pair_model.json)

and the reason each flagged error was caught, the confusion per kind, and the cost per sentence.
The set's ``dev`` split was used while writing the checks; ``report`` (other topics) was not.

Usage: .venv/bin/python bench/grounding_relations_eval.py [--split report|dev|all] [--show-misses]
           [--show CONFIG]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.grounding import GroundingInput, GroundingScorer  # noqa: E402
from parrotwatch.detectors.grounding.scorer import ALL_CHECKS  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "grounding_relations_eval.jsonl"
CONFIGS = {
    "baseline": {"check_relations": False},
    "default": {},
    "all rules": {"checks": ALL_CHECKS[:-1]},
    "+ model": {"checks": ALL_CHECKS[:-1], "use_pair_model": True},
}


def load(split: str) -> list[dict]:
    topics = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return [t for t in topics if split == "all" or t["split"] == split]


def judge(topics: list[dict], scorer: GroundingScorer):
    """(topic, case, flagged, reasons) per case, one scorer call per topic."""
    out = []
    for topic in topics:
        items = [GroundingInput(c["sentence"], topic["sources"]) for c in topic["cases"]]
        for case, result in zip(topic["cases"], scorer.score_batch(items), strict=True):
            reasons = [f.kind for u in result.unsupported for f in u.findings]
            if any(u.unsupported_facts for u in result.unsupported):
                reasons.append("facts")
            if any(u.similarity < scorer.threshold for u in result.unsupported):
                reasons.append("similarity")
            out.append((topic, case, bool(result.hallucination), reasons))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--split", default="report", choices=("report", "dev", "all"))
    ap.add_argument("--show-misses", action="store_true", help="print missed errors and false flags")
    ap.add_argument("--show", default="all rules", choices=list(CONFIGS),
                    help="configuration whose reasons (and misses) are printed")
    args = ap.parse_args(argv)
    topics = load(args.split)
    results, timing = {}, {}
    for name, options in CONFIGS.items():
        scorer = GroundingScorer(**options)
        scorer.score("Warm-up.", ["Warm-up sentence."])
        t0 = time.perf_counter()
        results[name] = judge(topics, scorer)
        timing[name] = (time.perf_counter() - t0) / len(results[name]) * 1e3
    n_cases = len(results["baseline"])
    print(f"split={args.split}: {len(topics)} topics, {n_cases} cases\n")
    kinds = sorted({c["kind"] for _, c, *_ in results["baseline"]},
                   key=lambda k: (k in {"paraphrase", "copy", "summary"}, k))
    print(f"{'kind':<13}{'label':>9}{'n':>5}" + "".join(f"{n:>11}" for n in CONFIGS))
    for kind in kinds:
        rows = {n: [r for r in res if r[1]["kind"] == kind] for n, res in results.items()}
        label = rows["baseline"][0][1]["label"]
        print(f"{kind:<13}{label:>9}{len(rows['baseline']):>5}" + "".join(
            f"{sum(r[2] for r in rows[n]) / len(rows[n]):>11.3f}" for n in CONFIGS))
    for name, res in results.items():
        errors = [r for r in res if r[1]["label"] == "error"]
        faithful = [r for r in res if r[1]["label"] == "faithful"]
        print(f"{name:<10} errors flagged {sum(r[2] for r in errors) / len(errors):.3f}  "
              f"faithful passed {1 - sum(r[2] for r in faithful) / len(faithful):.3f}  "
              f"{timing[name]:.1f} ms per sentence")
    final = results[args.show]
    caught = defaultdict(Counter)
    for _, case, flagged, reasons in final:
        if case["label"] == "error" and flagged:
            caught[case["kind"]].update(set(reasons))
    print(f"\nreasons for the caught errors ({args.show}; a sentence can have several):")
    for kind, counter in sorted(caught.items()):
        print(f"  {kind:<12} " + ", ".join(f"{r} {c}" for r, c in counter.most_common()))
    if args.show_misses:
        print(f"\nmissed errors and flagged faithful sentences ({args.show}):")
        for _, case, flagged, reasons in final:
            if flagged != (case["label"] == "error"):
                print(f"  [{case['kind']}] {case['sentence']}  ({case.get('note', '')}; "
                      f"reasons: {reasons})")


if __name__ == "__main__":
    main()
