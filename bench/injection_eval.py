"""Benchmark: the ``injection_score`` detector on the held-out set bench/data/injection_eval.jsonl.

Scores every prompt with :class:`parrotwatch.detectors.injection.InjectionScorer` and prints, for each
component alone and for the combination (docs/injection.md):

  sim        s_att, the max cosine similarity of any chunk to the attack corpus
  ngram      the n-gram logistic regression's probability
  p_sim      the stacked similarity score (sim, benign similarity, n-gram): the default
  ppl        p_ppl, NeMo's perplexity heuristics under the reference LM (with --lm)
  combined   max(p_sim, p_ppl) (with --lm)

ROC AUC with a 95% percentile-bootstrap CI (``parrotwatch.detectors.audits.roc.roc_report``), TPR at 1% and
5% FPR, the TPR of each attack family and FPR of each benign category at the threshold giving 5% FPR
overall, and prompts/s of the default (similarity + n-gram, encoder warm, corpus fitted).

Reference LM (--lm): the project's memorisation testbed (``parrotwatch.testbed``, a small GPT-2 trained
on Python's documentation), built into --lm-dir when absent (``--lm-steps``, tiny preset). The NeMo
thresholds (89.79, 1845.65) belong to GPT-2 large; here they are re-derived on the benign seed set
(``detectors/data/injection_benign_seed.jsonl``, never the eval set): t_lp = the q quantile of len/PPL
and t_ps = the q quantile of PPL over the benign seed prompts (most are under 20 words, so their whole
PPL stands in for a 19-word prefix's), q = --ppl-quantile (default 0.99).

Usage: .venv/bin/python bench/injection_eval.py [--eval PATH] [--bootstrap 1000] [--lm]
       [--lm-dir ~/.cache/parrotwatch/injection-testbed] [--lm-steps 150] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.audits.roc import roc_report  # noqa: E402
from parrotwatch.detectors.injection import (  # noqa: E402
    BENIGN_SEED_PATH,
    InjectionScorer,
    PromptInput,
    clean,
    load_jsonl,
    nemo_prefix_suffix,
)

EVAL_PATH = Path(__file__).resolve().parent / "data" / "injection_eval.jsonl"


def lm_logprobs(lm_dir: Path, steps: int, texts: list[str]) -> list[np.ndarray]:
    """Per-token log-probabilities of ``texts`` under the testbed LM (built when absent)."""
    from parrotwatch.detectors.models.causal_lm import CausalLMSpec, get_causal_lm
    from parrotwatch.testbed import build_testbed

    if not (lm_dir / "testbed.json").is_file():
        build_testbed(lm_dir, steps=steps, preset="tiny", progress=False)
    scorer = get_causal_lm(CausalLMSpec(str(lm_dir), device="cpu"))
    return [s.logprobs for s in scorer.score_texts(texts)]


def with_logprobs(prompts: list[str], lm_dir: Path, steps: int) -> list[PromptInput]:
    read = [clean(p) or "" for p in prompts]
    windows = [nemo_prefix_suffix(r) for r in read]
    flat = read + [w for pair in windows if pair for w in pair]
    lps = lm_logprobs(lm_dir, steps, flat)
    it = iter(lps[len(read):])
    out = []
    for p, lp, pair in zip(prompts, lps[: len(read)], windows, strict=True):
        pre, suf = (next(it), next(it)) if pair else (None, None)
        out.append(PromptInput(p, lp, pre, suf))
    return out


def report(name: str, s: np.ndarray, y: np.ndarray, fam: np.ndarray, n_boot: int) -> dict:
    r = roc_report(s, y, n_bootstrap=n_boot, fpr_targets=(0.01, 0.05))
    thr = np.quantile(s[y == 0], 0.95, method="higher")
    per = {f: float((s[fam == f] > thr).mean()) for f in sorted(set(fam))}
    print(f"{name:9s} AUC {r.auc:.3f} [{r.auc_ci_low:.3f}, {r.auc_ci_high:.3f}]  "
          f"TPR@1%FPR {r.tpr_at_fpr[0.01]:.3f}  TPR@5%FPR {r.tpr_at_fpr[0.05]:.3f}")
    return {"auc": r.auc, "ci": [r.auc_ci_low, r.auc_ci_high], "tpr1": r.tpr_at_fpr[0.01],
            "tpr5": r.tpr_at_fpr[0.05], "flagged_at_5pct_fpr": per}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--eval", type=Path, default=EVAL_PATH, help="JSON lines {text, label, family}")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUC CI")
    parser.add_argument("--lm", action="store_true", help="add the perplexity heuristics (testbed LM)")
    parser.add_argument("--lm-dir", type=Path, default=Path.home() / ".cache/parrotwatch/injection-testbed")
    parser.add_argument("--lm-steps", type=int, default=150, help="training steps when building the LM")
    parser.add_argument("--ppl-quantile", type=float, default=0.99, help="benign-seed quantile for "
                                                                         "thresholds")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N rows (0: all)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    rows = load_jsonl(args.eval)
    if args.limit:
        rows = rows[: args.limit]
    texts = [r["text"] for r in rows]
    y = np.array([r["label"] for r in rows])
    fam = np.array([r["family"] for r in rows])
    print(f"{args.eval.name}: {int(y.sum())} attacks, {int((1 - y).sum())} benign")

    scorer = InjectionScorer()
    t0 = time.perf_counter()
    scorer.assess(["warm-up: fit the corpus models"])
    print(f"fit (first use, encoder load + corpus embeddings + out-of-fold stacker): "
          f"{time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    found = scorer.assess(texts)
    dt = time.perf_counter() - t0
    print(f"default (similarity + n-gram, CPU): {len(texts) / dt:.1f} prompts/s ({dt:.1f} s)")
    comp = {"sim": np.array([a.similarity for a in found]), "ngram": np.array([a.ngram_prob for a in found]),
            "p_sim": np.array([a.p_similarity for a in found])}

    if args.lm:
        seed_texts = [r["text"] for r in load_jsonl(BENIGN_SEED_PATH)]
        seed_lp = lm_logprobs(args.lm_dir, args.lm_steps, seed_texts)
        ppl = np.array([np.exp(-np.mean(lp)) for lp in seed_lp])
        ratios = [len(t) / p for t, p in zip(seed_texts, ppl, strict=True)]
        t_lp = float(np.quantile(ratios, args.ppl_quantile))
        t_ps = float(np.quantile(ppl, args.ppl_quantile))
        print(f"re-derived thresholds for the testbed LM: t_lp = {t_lp:.3f} (NeMo/GPT-2 large: 89.79), "
              f"t_ps = {t_ps:.1f} (NeMo: 1845.65)")
        t0 = time.perf_counter()
        inputs = with_logprobs(texts, args.lm_dir, args.lm_steps)
        print(f"reference-LM log-probabilities: {len(texts) / (time.perf_counter() - t0):.1f} prompts/s")
        lm_scorer = InjectionScorer(lp_threshold=t_lp, ps_threshold=t_ps)
        withlp = lm_scorer.assess(inputs)
        comp["ppl"] = np.array([a.p_perplexity for a in withlp])
        comp["combined"] = np.array([a.injection_score for a in withlp])

    results = {name: report(name, s, y, fam, args.bootstrap) for name, s in comp.items()}
    print("\nshare flagged at the threshold giving 5% FPR overall (attack families: TPR; benign: FPR)")
    print(f"{'family':22s} " + " ".join(f"{n:>8s}" for n in results))
    for f in sorted(set(fam), key=lambda f: (y[fam == f][0] == 0, f)):
        print(f"{f:22s} " + " ".join(f"{results[n]['flagged_at_5pct_fpr'][f]:8.3f}" for n in results)
              + f"   (n={int((fam == f).sum())})")
    worst = sorted(((comp["p_sim"][i], texts[i][:90]) for i in np.flatnonzero(y == 0)), reverse=True)[:5]
    print("\nhighest-scored benign prompts (p_sim):")
    for s, t in worst:
        print(f"  {s:.3f}  {t!r}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
