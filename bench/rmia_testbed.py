"""Benchmark: RMIA, offline (Zarifzadeh et al. 2024), with 1, 2 and 4 reference models on the testbed,
next to LOSS, zlib, Min-K%, Min-K%++ and the single-reference ratio attack.

For each --steps value, the testbed target (preset --preset, seed --seed, that many optimiser steps) and
its reference models 0..max(--references)-1 (``parrotwatch.testbed_reference``: the target's recipe on
corpus documents that are neither members nor non-members) are trained on first use under HOME/testbeds
and reused after that. Then the membership audit itself (``parrotwatch.audits.runner.run_audits``,
data ``testbed``: 64 members vs 64 non-members for tiny) runs:

- once with loss, zlib, min_k, min_k_plus_plus, reference (``reference_model`` = reference model 0) and
  rmia with the first of --references reference models and the first --offline-a;
- once more with rmia alone for each other pair (reference models, offline a).

150 steps is the tiny preset's default (16 epochs; the target memorises its members, every attack is
near AUC 1); 40 steps (4 epochs) gives a weaker target on which the attacks differ.

With --wide (the default), every audit runs a second time on a split with more non-members, so that a
TPR at 1% FPR is not a TPR at zero false positives: the 64 members against the 64 non-members plus the
first half of the population (64 + 337 = 401 for tiny), RMIA's z being the other half (338), given to the
audit as data files (members, non_members, population). Those population documents were trained on by
no model, so they are non-members like the others.

Each row: AUC with its 95% bootstrap CI and TPR at 0.1% and 1% FPR with their 95% bootstrap CIs
(--n-bootstrap stratified resamples). With 64 non-members both FPRs allow no false positive: both TPRs
are the TPR at zero false positives. RMIA's population z: the testbed documents no model trained on
(675 for tiny, seed 0), at most --population of them.

Usage: .venv/bin/python bench/rmia_testbed.py [--home DIR] [--preset tiny] [--seed 0] [--steps 150,40]
       [--references 1,2,4] [--offline-a 0.3,1] [--gamma 1.0] [--population 1000] [--n-bootstrap 1000]
       [--no-wide] [--threads 1] [--json PATH] [--no-progress]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BASELINES = ["loss", "zlib", "min_k", "min_k_plus_plus", "reference"]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def wide_split(target, folder: Path) -> dict:
    """Data files of the wide split (see the module docstring) under ``folder``: the spec's ``data``."""
    from parrotwatch.testbed_reference import testbed_population

    population = testbed_population(target)
    half = len(population) // 2
    sets = {"members": target.members, "non_members": target.non_members + population[:half],
            "population": population[half:]}
    for name, docs in sets.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n"
                                                        for d in docs), encoding="utf-8")
    return {name: str(folder / f"{name}.jsonl") for name in sets}


def audit_rows(home: Path, args, steps: int, refs: int, offline_a: float, methods: list[str],
               reference_path: Path, data, split: str) -> list[dict]:
    """The membership audit of the testbed of ``steps`` steps with ``refs`` reference models on ``data``
    ("testbed" or data files): one row per method with AUC and TPR@FPR, each with its CI."""
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import parse_spec

    membership = {"methods": methods, "n_bootstrap": args.n_bootstrap, "seed": 0, "blind_baseline": False,
                  "dataset_inference": False,
                  "rmia": {"offline_a": offline_a, "gamma": args.gamma, "population": args.population}}
    spec = parse_spec({"name": "bench-rmia", "data": data,
                       "model": {"testbed": {"preset": args.preset, "seed": args.seed, "steps": steps},
                                 "batch_size": 64},
                       "reference_model": {"path": str(reference_path), "batch_size": 64},
                       "reference_models": {"testbed_references": refs},
                       "audits": {"membership": membership}})
    result = run_audits(spec, home, progress=False).result("membership")
    rows = []
    for m in methods:
        auc = result.metric("auc", method=m)
        t1, t01 = result.metric("tpr_at_fpr_0.01", method=m), result.metric("tpr_at_fpr_0.001", method=m)
        n_refs = refs if m == "rmia" else int(m == "reference")
        row = {"split": split, "steps": steps, "method": m, "references": n_refs,
               "offline_a": offline_a if m == "rmia" else None,
               "auc": [auc.value, auc.ci_low, auc.ci_high],
               "tpr_at_fpr_0.001": [t01.value, t01.ci_low, t01.ci_high],
               "tpr_at_fpr_0.01": [t1.value, t1.ci_low, t1.ci_high],
               "n_members": result.metric("n_members", method=m).value,
               "n_non_members": result.metric("n_non_members", method=m).value}
        if m == "rmia":
            row["population"] = result.metric("rmia_population").value
        rows.append(row)
    return rows


def _cell(v: list[float]) -> str:
    return f"{v[0]:.3f} ({v[1]:.3f}-{v[2]:.3f})"


def _name(row: dict) -> str:
    if row["method"] == "rmia":
        a = f", a = {row['offline_a']:g}"
        return f"RMIA, {row['references']} ref{'s' if row['references'] > 1 else ''}{a}"
    return {"loss": "LOSS", "zlib": "zlib", "min_k": "Min-K%", "min_k_plus_plus": "Min-K%++",
            "reference": "reference ratio (ref 0)"}[row["method"]]


def table(rows: list[dict]) -> str:
    lines = ["| split | target steps | method | AUC (95% CI) | TPR@0.1% FPR (95% CI) | TPR@1% FPR (95% CI) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        split = f"{r['split']} ({r['n_members']:g} vs {r['n_non_members']:g}, z = {r['population']:g})"
        lines.append(f"| {split} | {r['steps']} | {_name(r)} | {_cell(r['auc'])} | "
                     f"{_cell(r['tpr_at_fpr_0.001'])} | {_cell(r['tpr_at_fpr_0.01'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--home", type=Path, default=None, help="PARROTWATCH_HOME (default: the settings')")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--seed", type=int, default=0, help="testbed seed (split, canaries, init)")
    parser.add_argument("--steps", default="150,40",
                        help="target training steps, comma-separated (150 = the tiny preset's default)")
    parser.add_argument("--references", default="1,2,4", help="reference model counts, each 1..4")
    parser.add_argument("--offline-a", default="0.3,1", help="RMIA offline a, comma-separated values "
                        "(0.3: ML Privacy Meter's default; 1: Pr(x) = the references' mean)")
    parser.add_argument("--gamma", type=float, default=1.0)
    parser.add_argument("--population", type=int, default=1000, help="at most this many population texts")
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--wide", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the split with half of the population added to the non-members")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="no training progress bars")
    args = parser.parse_args(argv)

    import torch

    from parrotwatch.audits.inputs import ensure_testbed
    from parrotwatch.audits.spec import TestbedRef
    from parrotwatch.testbed_reference import ensure_reference_models

    torch.set_num_threads(args.threads)
    if args.home is None:
        from parrotwatch.settings import load_settings

        args.home = load_settings().home
    counts, a_values = _ints(args.references), _floats(args.offline_a)
    if not counts or not all(1 <= k <= 4 for k in counts):
        parser.error("--references: counts in 1..4")
    started = time.perf_counter()
    rows, train_seconds = [], 0.0
    tmp = tempfile.TemporaryDirectory(prefix="rmia-bench-")
    for steps in _ints(args.steps):
        t0 = time.perf_counter()
        target = ensure_testbed(args.home, TestbedRef(preset=args.preset, seed=args.seed, steps=steps),
                                progress=not args.no_progress)
        refs = ensure_reference_models(target, max(counts), progress=not args.no_progress)
        train_seconds += time.perf_counter() - t0
        print(f"target {target.path.name}: final loss {target.final_loss:.3f}; references "
              f"{', '.join(f'{r.final_loss:.3f}' for r in refs)} (nats/token)", flush=True)
        splits = {"testbed": "testbed"}
        if args.wide:
            splits["wide"] = wide_split(target, Path(tmp.name))
        for split, data in splits.items():
            for i, k in enumerate(counts):
                for j, a in enumerate(a_values):
                    methods = BASELINES + ["rmia"] if i == 0 and j == 0 else ["rmia"]
                    rows += audit_rows(args.home, args, steps, k, a, methods, refs[0].path, data, split)
    for r in rows:  # the population of the run that holds the row's method rmia
        r.setdefault("population", next(x["population"] for x in rows
                                        if x["method"] == "rmia" and x["split"] == r["split"]))
    print(f"\npreset {args.preset}, seed {args.seed}, gamma {args.gamma:g}, n_bootstrap {args.n_bootstrap}\n")
    print(table(rows))
    total = time.perf_counter() - started
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); {total:.0f} s in all, of which {train_seconds:.0f} s "
          f"building or loading the models")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
