"""Benchmark: one-run differential-privacy audit (Steinke, Nasr, Jagielski 2023, "Privacy Auditing with One
(1) Training Run") of the tiny GPT-2 testbed, private and not.

Each run trains parrotwatch/dp_testbed.py's testbed (preset tiny: its 64 members plus m audit canaries
"my secret number is dddddd", each included with probability 1/2), scores all m candidates with the
trained model (minus the log-perplexity, parrotwatch.detectors.models.causal_lm), guesses "in" for the
k highest and "out" for the k lowest, k in round(m * (0.05, 0.1, 0.25, 0.5)) each tested at beta / 4
(Bonferroni), and reports the best lower bound on eps at confidence 1 - beta
(parrotwatch/detectors/audits/dp_lower_bound.py, approximate-DP bound with the run's delta).

  (a) DP-SGD at each --eps (accountant eps at --delta), over --seeds seeds: the bound must stay below eps.
      Summary: how often bound <= eps, with its Clopper-Pearson 95% interval (a valid audit has
      P[bound > eps] <= beta).
  (b) Non-private, the same recipe (same epochs, sampling and optimiser, no clipping or noise) with each
      included canary repeated R times for R in --repetitions: the bound should grow with R.

Usage: .venv/bin/python bench/dp_audit.py [--eps 1,4,8] [--seeds 3] [--m 500] [--m-repeat 200]
       [--repetitions 1,4,16,64] [--epochs 5] [--plot dp_audit.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.audits.dp_lower_bound import clopper_pearson, one_run_audit  # noqa: E402
from parrotwatch.detectors.audits.exposure import log_perplexity  # noqa: E402


@dataclass(frozen=True)
class Row:
    kind: str  # "dp" or "non-private"
    target_eps: float | None
    repetitions: int
    seed: int
    m: int
    steps: int
    sigma: float
    accountant_eps: float | None
    auc: float
    r: int
    v: int
    bound: float
    seconds: float


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def audit_run(out: Path, corpus, *, eps: float | None, repetitions: int, seed: int, m: int, epochs: float,
              delta: float, beta: float, accountant: str) -> Row:
    """Train one testbed, score its m audit canaries, and bound eps."""
    from sklearn.metrics import roc_auc_score

    from parrotwatch.detectors.models.causal_lm import CausalLMScorer
    from parrotwatch.dp_testbed import build_dp_testbed

    t0 = time.perf_counter()
    info = build_dp_testbed(out, epsilon=eps, delta=delta, m=m, repetitions=repetitions, epochs=epochs,
                            seed=seed, corpus=corpus, accountant=accountant, progress=False)
    scorer = CausalLMScorer(info.spec(batch_size=64))  # not the process-wide cache: one model per run
    scores = np.array([-log_perplexity(s.logprobs)
                       for s in scorer.score_texts([c.text for c in info.audit_canaries])])
    included = np.array(info.included)
    audit = one_run_audit(scores, included, delta=delta, beta=beta)
    return Row("dp" if eps is not None else "non-private", eps, repetitions, seed, m, info.steps,
               info.noise_multiplier, info.epsilon, float(roc_auc_score(included, scores)), audit.r, audit.v,
               audit.epsilon_lower, time.perf_counter() - t0)


def _print_table(rows: list[Row]) -> None:
    print(f"{'kind':12} {'eps':>5} {'R':>3} {'seed':>4} {'m':>4} {'steps':>5} {'sigma':>6} {'acct eps':>8} "
          f"{'AUC':>5} {'r':>4} {'v':>4} {'bound':>6} {'s':>5}")
    for r in rows:
        target = "-" if r.target_eps is None else f"{r.target_eps:g}"
        acct = "-" if r.accountant_eps is None else f"{r.accountant_eps:.3f}"
        print(f"{r.kind:12} {target:>5} {r.repetitions:>3} {r.seed:>4} {r.m:>4} {r.steps:>5} {r.sigma:>6.3f} "
              f"{acct:>8} {r.auc:>5.3f} {r.r:>4} {r.v:>4} {r.bound:>6.3f} {r.seconds:>5.0f}")


def _summary(dp_rows: list[Row], np_rows: list[Row]) -> None:
    if dp_rows:
        print("\n(a) DP-SGD: bound <= eps, Clopper-Pearson 95% interval of the proportion")
        groups = sorted({r.target_eps for r in dp_rows})
        for eps in [*groups, None]:
            sel = [r for r in dp_rows if eps is None or r.target_eps == eps]
            ok = sum(r.bound <= r.target_eps for r in sel)
            lo, hi = clopper_pearson(ok, len(sel))
            name = "all" if eps is None else f"eps={eps:g}"
            bounds = ", ".join(f"{r.bound:.3f}" for r in sel)
            print(f"  {name:9} {ok}/{len(sel)} ({lo:.2f}-{hi:.2f})   bounds: {bounds}")
    if np_rows:
        from scipy.stats import spearmanr

        print("\n(b) non-private: bound by repetitions")
        reps = sorted({r.repetitions for r in np_rows})
        for rep in reps:
            sel = [r.bound for r in np_rows if r.repetitions == rep]
            print(f"  R={rep:<3} mean bound {np.mean(sel):.3f} over {len(sel)} run(s)")
        if len(reps) > 1:
            rho = spearmanr([r.repetitions for r in np_rows], [r.bound for r in np_rows]).statistic
            means = [np.mean([r.bound for r in np_rows if r.repetitions == rep]) for rep in reps]
            print(f"  Spearman(R, bound) = {rho:.3f}; means non-decreasing: "
                  f"{all(a <= b for a, b in zip(means, means[1:], strict=False))}")


def _plot(dp_rows: list[Row], np_rows: list[Row], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    if dp_rows:
        eps = np.array([r.target_eps for r in dp_rows])
        ax1.scatter(eps, [r.bound for r in dp_rows], label="one-run lower bound (each seed)")
        grid = np.linspace(0, eps.max() * 1.05, 50)
        ax1.plot(grid, grid, "k--", lw=1, label="bound = eps (accountant)")
        ax1.set_xlabel("DP-SGD eps (accountant, delta fixed)")
        ax1.set_ylabel("eps lower bound (95%)")
        ax1.set_title("(a) DP-SGD: bound <= eps")
        ax1.legend(fontsize=8)
    if np_rows:
        reps = np.array([r.repetitions for r in np_rows])
        ax2.scatter(reps, [r.bound for r in np_rows])
        ax2.set_xscale("log", base=2)
        ax2.set_xlabel("repetitions R of each included canary (non-private)")
        ax2.set_ylabel("eps lower bound (95%)")
        ax2.set_title("(b) non-private: bound grows with R")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eps", type=_floats, default=[1.0, 4.0, 8.0],
                    help="DP-SGD target epsilons, comma-separated (empty string: skip part a)")
    ap.add_argument("--delta", type=float, default=1e-5, help="DP delta of training and of the bound")
    ap.add_argument("--beta", type=float, default=0.05, help="1 - confidence of the bound")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per DP epsilon")
    ap.add_argument("--m", type=int, default=500, help="audit canaries of the DP runs")
    ap.add_argument("--repetitions", type=_ints, default=[1, 4, 16, 64],
                    help="non-private repetitions, comma-separated (empty string: skip part b)")
    ap.add_argument("--m-repeat", type=int, default=200, help="audit canaries of the non-private runs")
    ap.add_argument("--repeat-seeds", type=int, default=1, help="seeds per repetition count")
    ap.add_argument("--epochs", type=float, default=5.0, help="expected passes over the training set")
    ap.add_argument("--accountant", choices=["rdp", "prv"], default="rdp", help="DP-SGD accountant")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--plot", type=Path, default=None, help="write a PNG of both parts here")
    ap.add_argument("--keep", type=Path, default=None, help="keep the trained testbeds under this folder")
    args = ap.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    from parrotwatch.testbed import prepare_corpus

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # the per-run save / load bars; ours shows the runs
    plan = [("dp", eps, 1, seed, args.m) for eps in args.eps for seed in range(args.seeds)]
    plan += [("non-private", None, rep, seed, args.m_repeat)
             for rep in args.repetitions for seed in range(args.repeat_seeds)]
    corpora: dict[int, object] = {}
    rows: list[Row] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for kind, eps, rep, seed, m in tqdm(plan, desc="dp audit runs", unit="run"):
            if seed not in corpora:
                corpora[seed] = prepare_corpus("tiny", seed)
            name = f"{kind}-eps{eps}-R{rep}-seed{seed}"
            rows.append(audit_run(root / name, corpora[seed], eps=eps, repetitions=rep, seed=seed, m=m,
                                  epochs=args.epochs, delta=args.delta, beta=args.beta,
                                  accountant=args.accountant))
            last = rows[-1]
            tqdm.write(f"{name}: bound {last.bound:.3f} (AUC {last.auc:.3f}, {last.seconds:.0f} s)")
    print(f"\none-run audit, preset tiny, delta={args.delta:g}, beta={args.beta:g}, epochs={args.epochs:g}, "
          f"accountant {args.accountant}, torch threads {args.threads}; {time.perf_counter() - t0:.0f} s\n")
    _print_table(rows)
    dp_rows = [r for r in rows if r.kind == "dp"]
    np_rows = [r for r in rows if r.kind == "non-private"]
    _summary(dp_rows, np_rows)
    if args.plot is not None:
        _plot(dp_rows, np_rows, args.plot)
        print(f"\nplot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
