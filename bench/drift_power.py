"""Benchmark: power and false-alarm rate of the embedding drift tests on real text, next to Evidently.

Text: Debian's fortune files (bash scripts/install_fortunes.sh), entries of 20..400 characters,
embedded once per corpus with the default encoder (all-MiniLM-L6-v2) and kept in memory.
Corpus pairs (--pairs base:other,...), each with these scenarios over seeded trials of --n reference
vs --n current texts:
  null         reference and current are disjoint samples of base (no drift)
  drift f      current = base sample (disjoint from the reference) with round(f * n) texts
               replaced by other texts; f = 1.0 is a full topic change
Methods: ours (parrotwatch.detectors.drift: MMD, MMDAgg, the domain classifier) decide by p < --alpha;
Evidently's embedding drift methods decide their own way (see docs/drift.md): "model" is its default
(bootstrap, as the reference has < 1000 rows). One table per pair, then the acceptance of ours.

Usage: .venv/bin/python bench/drift_power.py [--pairs computers:politics,...] [--n 400] [--trials 20]
       [--n-reference 400] [--null-trials 20] [--fractions 0.1,0.2,1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.drift import KnnOod, domain_classifier_test, mmd_test, mmdagg_test  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")
#: base:other pairs, fixed before any power was measured on them (people, love and miscellaneous
#: were the development corpora of the tests' options, so they are left out)
PAIRS = "computers:politics,definitions:science,cookie:men-women"
Method = Callable[[np.ndarray, np.ndarray, int], tuple[bool, float]]


def load_fortunes(name: str, min_chars: int = 20, max_chars: int = 400, root: Path = FORTUNES) -> list[str]:
    """Distinct entries of one fortune file (entries end with a line holding only '%')."""
    path = root / name
    if not path.is_file():
        sys.exit(f"{path} is missing: run `bash scripts/install_fortunes.sh` (as root) first")
    text = path.read_text(encoding="utf-8", errors="replace")
    entries = (" ".join(e.split()) for e in text.split("\n%\n"))
    return list(dict.fromkeys(e for e in entries if min_chars <= len(e) <= max_chars))


def our_methods(alpha: float, permutations: int, agg_permutations: int, classifier: bool = True
                ) -> dict[str, Method]:
    def mmd(ref, cur, seed):
        r = mmd_test(ref, cur, n_permutations=permutations, seed=seed)
        return r.p_value < alpha, r.p_value

    def mmdagg(ref, cur, seed):
        r = mmdagg_test(ref, cur, seed, alpha=alpha, n_permutations=agg_permutations,
                        n_calibration=agg_permutations)
        return r.p_value < alpha, r.p_value

    def domain_classifier(ref, cur, seed):
        r = domain_classifier_test(ref, cur, seed=seed)
        return r.p_value < alpha, r.p_value

    methods = {"MMD perm": mmd, "MMDAgg": mmdagg}
    if classifier:
        methods["LR domain clf"] = domain_classifier
    return methods


def evidently_methods(n_reference: int) -> tuple[str, dict[str, Method]]:
    """Evidently's embedding drift methods, called as its EmbeddingsDriftMetric calls them."""
    import pandas as pd
    import pandas.core.dtypes.common as pd_common

    if not hasattr(pd_common, "infer_dtype_from_object"):
        # evidently 0.7.x imports this pandas<3 private helper at import time (used only by a data
        # integrity test that is not run here); without it `import evidently` fails under pandas 3.
        pd_common.infer_dtype_from_object = lambda dtype: dtype
    import evidently
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import distance, mmd, model, ratio

    def wrap(method) -> Method:
        def run(ref, cur, seed):
            score, drifted, _ = method(pd.DataFrame(cur), pd.DataFrame(ref))
            return bool(drifted), float(score)
        return run

    return evidently.__version__, {
        # EmbeddingsDriftMetric's default: model(bootstrap=reference rows < 1000)
        "Ev model (default)": wrap(model(bootstrap=n_reference < 1000)),
        "Ev mmd (bootstrap)": wrap(mmd(bootstrap=True)),
        "Ev distance (bootstrap)": wrap(distance(bootstrap=True)),
        "Ev ratio": wrap(ratio()),
    }


def trial_sets(base: np.ndarray, other: np.ndarray, n: int, fraction: float, seed: int,
               n_reference: int | None = None):
    """Reference (``n_reference`` rows, default ``n``) and current (``n`` rows) embedding matrices for
    one trial (disjoint rows of ``base``)."""
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(base))
    m = n_reference or n
    ref, cur = base[rows[:m]], base[rows[m:m + n]]
    k = int(round(fraction * n))
    if k:
        cur = cur.copy()
        cur[rng.choice(n, k, replace=False)] = other[rng.choice(len(other), k, replace=False)]
    return ref, cur


def run_pair(base: np.ndarray, other: np.ndarray, methods: dict[str, Method], scenarios, args, label: str):
    """Detection rates, per-trial statistics, OOD shares and seconds per method for one corpus pair."""
    rates, p_median, all_stats, ood_share = {}, {}, {}, {}
    seconds = dict.fromkeys(methods, 0.0)
    bar = tqdm(total=sum(t for _, t in scenarios), desc=f"trials {label}", unit="trial")
    for fraction, trials in scenarios:
        hits = {name: [] for name in methods}
        stats = {name: [] for name in methods}
        shares = []
        for t in range(trials):
            seed = args.seed_base + t
            ref, cur = trial_sets(base, other, args.n, fraction, seed, args.n_reference)
            for name, method in methods.items():
                start = time.perf_counter()
                drifted, stat = method(ref, cur, seed)
                seconds[name] += time.perf_counter() - start
                hits[name].append(drifted)
                stats[name].append(stat)
            shares.append(float(np.mean(KnnOod(ref, k=5).score(cur) > 1.0)))
            bar.update()
        rates[fraction] = {name: float(np.mean(h)) for name, h in hits.items()}
        p_median[fraction] = {name: float(np.median(s)) for name, s in stats.items()}
        all_stats[fraction] = stats
        ood_share[fraction] = float(np.mean(shares))
    bar.close()
    return rates, p_median, all_stats, ood_share, {n: s / bar.total for n, s in seconds.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pairs", default=PAIRS,
                    help=f"base:other fortune files, comma-separated (default {PAIRS})")
    ap.add_argument("--n", type=int, default=400, help="texts per sample (reference and current)")
    ap.add_argument("--n-reference", type=int, default=None,
                    help="texts in the reference (default: --n); the current sample keeps --n")
    ap.add_argument("--fractions", default="0.1,0.2,1.0", help="drifted shares of the current set")
    ap.add_argument("--trials", type=int, default=20, help="seeded trials per drift fraction")
    ap.add_argument("--null-trials", type=int, default=20, help="seeded trials without drift")
    ap.add_argument("--alpha", type=float, default=0.05, help="level of our p-value tests")
    ap.add_argument("--permutations", type=int, default=1000, help="MMD permutations")
    ap.add_argument("--agg-permutations", type=int, default=2000,
                    help="MMDAgg relabellings B1 (quantiles) and as many B2 (level correction)")
    ap.add_argument("--seed-base", type=int, default=0, help="trial t uses seed seed-base + t")
    ap.add_argument("--no-evidently", action="store_true", help="skip the Evidently columns")
    ap.add_argument("--no-classifier", action="store_true", help="skip our domain classifier (~4 s a test)")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads for the tests (1 is fastest on a busy shared machine)")
    args = ap.parse_args()

    from parrotwatch.detectors.models.encoder import get_encoder

    pairs = [tuple(p.split(":")) for p in args.pairs.split(",") if p.strip()]
    if not pairs or any(len(p) != 2 for p in pairs):
        sys.exit(f"--pairs must be base:other[,base:other...], got {args.pairs!r}")
    fractions = [float(f) for f in args.fractions.split(",") if f.strip()]
    need_other = max([round(f * args.n) for f in fractions] + [0])
    texts = {name: load_fortunes(name) for pair in pairs for name in pair}
    n_reference = args.n_reference or args.n
    for base, other in pairs:
        if len(texts[base]) < n_reference + args.n or len(texts[other]) < need_other:
            sys.exit(f"need >= {n_reference + args.n} texts in {base} and >= {need_other} in {other}; "
                     f"have {len(texts[base])} and {len(texts[other])}")
    t0 = time.perf_counter()
    encoder = get_encoder()
    emb = {}
    for name, items in texts.items():
        chunks = range(0, len(items), 128)
        emb[name] = np.concatenate([encoder.encode(items[i:i + 128])
                                    for i in tqdm(chunks, desc=f"embed {name}", unit="x128 texts")])
    print(f"embedded {sum(map(len, texts.values()))} texts "
          f"({', '.join(f'{k}: {len(v)}' for k, v in texts.items())}) in {time.perf_counter() - t0:.1f} s")

    ours = our_methods(args.alpha, args.permutations, args.agg_permutations, not args.no_classifier)
    methods = dict(ours)
    version = None
    if not args.no_evidently:
        version, ev = evidently_methods(n_reference)
        methods.update(ev)

    scenarios = [(0.0, args.null_trials)] + [(f, args.trials) for f in fractions if f > 0]
    names = list(methods)
    width = {n: max(9, len(n)) for n in names}
    limits = threadpool_limits(args.threads)
    acceptance = []
    t_all = time.perf_counter()
    for base, other in pairs:
        t_pair = time.perf_counter()
        rates, p_median, all_stats, ood_share, seconds = run_pair(
            emb[base], emb[other], methods, scenarios, args, f"{base}->{other}")
        print(f"\nDetection rate ({base} -> {other}, n={n_reference} vs {args.n}; ours at p < {args.alpha};"
              f" evidently {version or 'not run'}; {time.perf_counter() - t_pair:.0f} s)")
        header = " ".join(f"{n:>{width[n]}}" for n in names)
        print(f"{'drift share':>11} {'trials':>6} {header} {'OOD>1 share':>11}")
        for fraction, trials in scenarios:
            row = " ".join(f"{rates[fraction][n]:>{width[n]}.2f}" for n in names)
            print(f"{fraction:>11.2f} {trials:>6} {row} {ood_share[fraction]:>11.3f}")
        print("Median statistic (ours: p-value; Evidently: its drift score)")
        for fraction, _ in scenarios:
            row = " ".join(f"{p_median[fraction][n]:>{width[n]}.3g}" for n in names)
            print(f"{fraction:>11.2f} {'':>6} {row}")
        print("Seconds per test: " + ", ".join(f"{n} {seconds[n]:.2f}" for n in names))
        for name in ours:
            counts = [sum(p < below for p in all_stats[f][name]) if f in all_stats else None
                      for f, below in ((0.0, args.alpha), (0.1, args.alpha), (0.2, args.alpha), (1.0, 0.01))]
            acceptance.append((f"{base}->{other}", name, *counts))
    limits.restore_original_limits()
    print(f"\nAll pairs: {time.perf_counter() - t_all:.0f} s")

    print(f"\nAcceptance (ours, p < {args.alpha}; targets: false alarms <= 1/20, 20% drift >= 0.9, "
          f"10% drift >= 0.5; full change at p < 0.01):")
    for pair, name, null, ten, twenty, full in acceptance:
        def share(k, trials):
            return "-" if k is None else f"{k}/{trials} ({k / trials:.2f})"
        met = (null is not None and null <= args.null_trials / 20 and ten is not None
               and ten >= 0.5 * args.trials and twenty is not None and twenty >= 0.9 * args.trials)
        print(f"  {pair:<24} {name:<14} false alarms {share(null, args.null_trials)}; "
              f"10% {share(ten, args.trials)}; 20% {share(twenty, args.trials)}; "
              f"full p<0.01 {share(full, args.trials)} -> {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
