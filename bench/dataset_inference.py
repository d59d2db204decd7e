"""Benchmark: false-positive rate and power of dataset inference (Maini et al. 2024) on the testbed's real
membership features, and the blind baseline (Das et al. 2024) of the same split.

Features: the membership audit itself (``parrotwatch.audits.runner.run_audits``, membership only) scores
the testbed's members and non-members with --methods; each text's scores are one feature row
(:func:`parrotwatch.detectors.audits.dataset_inference.dataset_inference`).

  false positives  the non-members alone: each trial (seed s) permutes them, calls the first half the
                   suspect set and the second half the validation set, and runs dataset inference with
                   seed s; the rejection rate at --alpha over --seeds trials, with its Clopper-Pearson 95%
                   CI (statsmodels ``proportion_confint(method="beta")``). The trials share the same texts,
                   so they are not independent: the CI is a guide, not an exact interval.
  power            members (suspect) vs non-members (validation): n of each drawn per trial (n = all: only
                   the seeded split changes), the rejection rate and p-value quantiles over the trials.
  shifted splits   the whole membership audit (attacks, blind baseline, guard, dataset inference) on two
                   splits that differ in distribution: "two sources, no training" = the testbed's
                   non-members (never trained on) as "members" against standard-library docstrings, and
                   "dated" = the members against the non-members each given a recent date.

Usage: .venv/bin/python bench/dataset_inference.py [--preset tiny] [--seeds 1000] [--alpha 0.05]
       [--home DIR] [--threads 1] [--sizes 4,8,16,32] [--no-shift]
The testbed is trained on first use under HOME/testbeds (about 40 s for tiny on one CPU core).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = "loss,zlib,lowercase,min_k,min_k_plus_plus"


def testbed_features(home: Path, preset: str, methods: list[str]):
    """(member rows, non-member rows, the membership AuditResult) of the testbed, one column per method."""
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import parse_spec

    spec = parse_spec({"name": f"bench-dataset-inference-{preset}", "data": "testbed",
                       "model": {"testbed": {"preset": preset, "seed": 0}, "batch_size": 64},
                       "audits": {"membership": {"methods": methods, "n_bootstrap": 1000}}})
    result = run_audits(spec, home, progress=False).result("membership")
    rows = {"member": [], "non-member": []}
    for s in result.samples:
        scores = s.extra["scores"]
        rows[s.label].append([np.nan if scores[m] is None else scores[m] for m in methods])
    return np.array(rows["member"]), np.array(rows["non-member"]), result


def stdlib_docstrings(n: int) -> list[str]:
    """Docstrings (100..320 characters) of public functions of a few standard-library modules: English
    text about Python from another source than the testbed's (the language reference)."""
    import importlib
    import inspect

    out: list[str] = []
    for name in ("textwrap", "string", "json", "csv", "statistics", "fractions", "shutil", "posixpath",
                 "random", "heapq", "bisect", "calendar", "difflib", "fnmatch", "glob", "base64", "tempfile",
                 "zipfile", "ipaddress"):
        for attr, obj in sorted(vars(importlib.import_module(name)).items()):
            doc = inspect.getdoc(obj) if callable(obj) and not attr.startswith("_") else None
            if doc and 100 <= len(doc) <= 320 and doc not in out:
                out.append(doc)
    return out[:n]


def shifted_runs(home: Path, preset: str, methods: list[str]) -> None:
    """The membership audit of the testbed model on the two shifted splits (see the module docstring)."""
    import json
    import tempfile

    from parrotwatch.audits.inputs import testbed_dir
    from parrotwatch.audits.runner import run_audits
    from parrotwatch.audits.spec import TestbedRef, load_spec
    from parrotwatch.testbed import load_testbed

    info = load_testbed(testbed_dir(home, TestbedRef(preset=preset)))
    months = ["January", "March", "June", "October"]
    splits = {
        "two sources, no training": ([d.text for d in info.non_members],
                                     stdlib_docstrings(len(info.non_members))),
        "dated non-members": ([d.text for d in info.members],
                              [f"{d.text}\n\n(Revised {months[i % 4]} {2023 + i % 2}.)"
                               for i, d in enumerate(info.non_members)]),
    }
    for name, (members, non_members) in splits.items():
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for file, texts in (("m.jsonl", members), ("n.jsonl", non_members)):
                (folder / file).write_text("".join(json.dumps({"id": f"{file}-{i}", "text": t}) + "\n"
                                                   for i, t in enumerate(texts)))
            cfg = json.dumps({"methods": methods, "n_bootstrap": 1000})
            (folder / "spec.yaml").write_text(f"name: shift\nmodel: {info.path}\n"
                                              f"data: {{members: m.jsonl, non_members: n.jsonl}}\n"
                                              f"audits:\n  membership: {cfg}\n")
            r = run_audits(load_spec(folder / "spec.yaml"), home, progress=False).result("membership")
        print(f"{name} ({len(members)} vs {len(non_members)}):")
        summarise(r, methods)


def summarise(result, methods: list[str]) -> None:
    for m in methods:
        auc = result.metric("auc", method=m)
        print(f"  attack {m:16} AUC {auc.value:.4f} (95% CI {auc.ci_low:.3f}-{auc.ci_high:.3f})")
    blind, guard = result.metric("blind_auc", method="blind"), result.metric("blind_guard")
    print(f"  blind baseline        AUC {blind.value:.4f} (95% CI {blind.ci_low:.3f}-{blind.ci_high:.3f}); "
          f"guard {'FIRES' if guard.value else 'holds'} (best attack {guard.labels['best_method']})")
    print(f"  dataset inference p = {result.metric('dataset_inference_p_value').value:.3g}\n")


def rate_line(name: str, rejected: int, trials: int) -> str:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(rejected, trials, alpha=0.05, method="beta")
    return f"{name:44} {rejected:4d}/{trials:<4d} = {rejected / trials:.3f}  (95% CI {low:.3f}-{high:.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--seeds", type=int, default=1000, help="trials per figure (>= 200)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--sizes", default="4,8,16,32", help="suspect and validation sizes of the power rows")
    parser.add_argument("--home", type=Path, default=None, help="PARROTWATCH_HOME (default: the settings')")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-shift", action="store_true", help="skip the shifted splits")
    args = parser.parse_args(argv)

    import torch

    from parrotwatch.detectors.audits.dataset_inference import dataset_inference

    torch.set_num_threads(args.threads)
    if args.home is None:
        from parrotwatch.settings import load_settings

        args.home = load_settings().home
    methods = args.methods.split(",")
    t0 = time.perf_counter()
    members, non_members, result = testbed_features(args.home, args.preset, methods)
    print(f"testbed {args.preset}: {len(members)} members, {len(non_members)} non-members, "
          f"methods {methods}; scored in {time.perf_counter() - t0:.1f} s")
    summarise(result, methods)
    if not args.no_shift:
        shifted_runs(args.home, args.preset, methods)

    t0 = time.perf_counter()
    half = len(non_members) // 2
    print(f"false positives at alpha {args.alpha} (non-members {half} vs {len(non_members) - half}, "
          f"{args.seeds} trials):")
    null_p = []
    for s in range(args.seeds):
        perm = np.random.default_rng(s).permutation(len(non_members))
        null_p.append(dataset_inference(non_members[perm[:half]], non_members[perm[half:]], seed=s).p_value)
    null_p = np.array(null_p)
    print("  " + rate_line("non-members vs non-members", int((null_p < args.alpha).sum()), args.seeds))
    quantiles = np.round(np.quantile(null_p, [0.05, 0.25, 0.5, 0.75, 0.95]), 3)
    print(f"  p-value quantiles 5/25/50/75/95%: {quantiles}\n")

    print(f"power at alpha {args.alpha} (members = suspect vs non-members = validation, "
          f"{args.seeds} trials):")
    sizes = [int(n) for n in args.sizes.split(",") if int(n) < min(len(members), len(non_members))]
    for n in [*sizes, None]:
        p = []
        for s in range(args.seeds):
            rng = np.random.default_rng(s)
            sus = members if n is None else members[rng.choice(len(members), n, replace=False)]
            val = non_members if n is None else non_members[rng.choice(len(non_members), n, replace=False)]
            p.append(dataset_inference(sus, val, seed=s).p_value)
        p = np.array(p)
        label = f"all {len(members)} vs {len(non_members)}" if n is None else f"{n} vs {n}"
        print("  " + rate_line(label, int((p < args.alpha).sum()), args.seeds)
              + f"  median p {np.median(p):.2e}, max p {p.max():.2e}")
    print(f"\n{time.perf_counter() - t0:.1f} s for the trials")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
