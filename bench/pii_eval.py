"""Benchmark: precision, recall and F1 of the PII detector (``parrotwatch.detectors.pii``) on the
labelled set bench/data/pii_eval.jsonl (built by bench/build_pii_eval.py), per entity type and
overall, plus its throughput.

Matching of predicted spans to gold spans, one to one, per text:

- exact: same start, end and type;
- overlap: same type and at least one character in common (a URL found with a trailing "." or a
  phone number without its "+" still counts).

precision = matched predictions / predictions, recall = matched gold spans / gold spans,
F1 = 2PR / (P + R). The 95% intervals of P and R are Wilson score intervals (Wilson 1927,
"Probable inference, the law of succession, and statistical inference", JASA 22:209-212;
``statsmodels.stats.proportion.proportion_confint(method="wilson")``) over the spans, which treats
them as independent (spans of one text are not quite). Also: hard negatives per category with any
finding, and texts/s of :func:`~parrotwatch.detectors.pii.find_pii` (one process, one thread, after
the analyzer is built; build time printed apart).

Detector choices were made on the dev split; report the test split (the default).

Usage: .venv/bin/python bench/pii_eval.py [--split test|dev|all] [--data PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.pii import ENTITY_TYPES, analyzer, find_pii  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "pii_eval.jsonl"


def load(path: Path, split: str) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split == "all" or r["split"] == split]


def match(gold: list[tuple[int, int, str]], pred: list[tuple[int, int, str]], overlap: bool) -> int:
    """How many (gold, prediction) pairs match one to one (greedy in order of position)."""
    used, n = set(), 0
    for g in sorted(gold):
        for j, p in enumerate(pred):
            if j in used or p[2] != g[2]:
                continue
            if (p[0] < g[1] and g[0] < p[1]) if overlap else (p[0], p[1]) == (g[0], g[1]):
                used.add(j)
                n += 1
                break
    return n


def wilson(k: int, n: int) -> tuple[float, float, float]:
    """(k / n, low, high) with the 95% Wilson interval; NaNs for n = 0."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return k / n, float(low), float(high)


def evaluate(rows: list[dict], predictions: list[list[tuple[int, int, str]]]) -> dict:
    """Per type and overall (key "ALL"), for "exact" and "overlap": counts, P, R, F1 with CIs."""
    counts: dict[str, dict[str, Counter]] = {m: defaultdict(Counter) for m in ("exact", "overlap")}
    for row, pred in zip(rows, predictions, strict=True):
        gold = [(s["start"], s["end"], s["type"]) for s in row["spans"]]
        for mode in counts:
            for t in set(ENTITY_TYPES) | {g[2] for g in gold} | {p[2] for p in pred}:
                g_t, p_t = [g for g in gold if g[2] == t], [p for p in pred if p[2] == t]
                m = match(g_t, p_t, overlap=mode == "overlap")
                for key in (t, "ALL"):
                    counts[mode][key].update(gold=len(g_t), pred=len(p_t), tp=m)
    out: dict = {}
    for mode, by_type in counts.items():
        out[mode] = {}
        for t, c in sorted(by_type.items()):
            p, p_lo, p_hi = wilson(c["tp"], c["pred"])
            r, r_lo, r_hi = wilson(c["tp"], c["gold"])
            f1 = 2 * p * r / (p + r) if c["pred"] and c["gold"] and p + r > 0 else float("nan")
            out[mode][t] = {"gold": c["gold"], "pred": c["pred"], "tp": c["tp"], "precision": p,
                            "precision_ci": [p_lo, p_hi], "recall": r, "recall_ci": [r_lo, r_hi], "f1": f1}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="Matching rules and intervals: this file's docstring.")
    parser.add_argument("--split", choices=["test", "dev", "all"], default="test",
                        help="which split to score (default %(default)s; tune on dev, report test)")
    parser.add_argument("--data", type=Path, default=DATA, help="labelled JSONL (default %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--errors", action="store_true", help="print every missed or spurious span")
    args = parser.parse_args(argv)

    rows = load(args.data, args.split)
    t0 = time.perf_counter()
    analyzer()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictions = [[(s.start, s.end, s.entity_type) for s in find_pii(r["text"])] for r in rows]
    elapsed = time.perf_counter() - t0
    report = evaluate(rows, predictions)
    chars = sum(len(r["text"]) for r in rows)

    print(f"split={args.split}: {len(rows)} texts, {sum(len(r['spans']) for r in rows)} gold spans")
    for mode in ("exact", "overlap"):
        print(f"\n{mode} span match        gold  pred    tp   precision [95% CI]     recall [95% CI]"
              "        F1")
        for t, m in report[mode].items():
            if t == "ALL":
                continue
            print(_line(t, m))
        print(_line("ALL", report[mode]["ALL"]))
    hard = [(r, p) for r, p in zip(rows, predictions, strict=True) if r["kind"] in ("hard_negative", "plain")]
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r, p in hard:
        by_cat[r["category"]][0] += 1
        by_cat[r["category"]][1] += bool(p)
    print("\nno-PII texts with any finding (false alarms), by category:")
    for cat, (n, bad) in sorted(by_cat.items()):
        print(f"  {cat:20s} {bad:3d} / {n}")
    texts_per_s = len(rows) / elapsed
    print(f"\nthroughput: {texts_per_s:.0f} texts/s ({1000 * elapsed / len(rows):.2f} ms/text, "
          f"mean {chars / len(rows):.0f} chars), one thread; analyzer build {build_s:.1f} s "
          "(once per process)")
    if args.errors:
        for r, p in zip(rows, predictions, strict=True):
            gold = {(s["start"], s["end"], s["type"]) for s in r["spans"]}
            for s in sorted(gold - set(p)):
                print(f"  MISSED   {s[2]:14s} {r['text'][s[0]:s[1]]!r:45s} in {r['text']!r}")
            for s in sorted(set(p) - gold):
                print(f"  SPURIOUS {s[2]:14s} {r['text'][s[0]:s[1]]!r:45s} in {r['text']!r}")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "texts": len(rows), "texts_per_s": texts_per_s,
                                         "build_s": build_s, **report}, indent=1), encoding="utf-8")
    return 0


def _line(name: str, m: dict) -> str:
    return (f"  {name:18s} {m['gold']:5d} {m['pred']:5d} {m['tp']:5d}   {m['precision']:.3f} "
            f"[{m['precision_ci'][0]:.3f}, {m['precision_ci'][1]:.3f}]  {m['recall']:.3f} "
            f"[{m['recall_ci'][0]:.3f}, {m['recall_ci'][1]:.3f}]  {m['f1']:.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
