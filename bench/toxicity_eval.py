"""Benchmark: ROC AUC of the ``toxicity`` score on the held-out evaluation set.

Scores ``bench/data/toxicity_eval.jsonl`` (labelled texts written apart from the seed set the
default is fitted on; docs/toxicity.md) with the offline default (``parrotwatch.detectors.toxicity``) and
with alt-profanity-check alone, plus the ablations (embedding model alone, n-gram model alone,
noisy-or and max of the embedding and profanity models). Prints:

  1. ROC AUC with 95% percentile-bootstrap CIs (``parrotwatch.detectors.audits.roc.roc_report``: toxic and
     benign texts resampled separately), overall and on the texts without profanity;
  2. the paired-bootstrap CI of AUC(default) - AUC(alt-profanity-check) on the no-profanity subset;
  3. per category: mean score and share above 0.5;
  4. leave-seed-out sanity check: nested k-fold AUC on the English seed files themselves (each
     outer fold refits the whole default, stacker included, on the other folds);
  5. the acceptance checks (default AUC > 0.95 overall; beats alt-profanity-check by >= 0.05
     without profanity).

Usage: .venv/bin/python bench/toxicity_eval.py [--eval PATH] [--bootstrap 1000] [--folds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.audits.roc import roc_report  # noqa: E402
from parrotwatch.detectors.models.encoder import get_encoder  # noqa: E402
from parrotwatch.detectors.toxicity import (  # noqa: E402
    SEEDS,
    ToxicityScorer,
    _sigmoid,
    fit_weights,
    load_labelled,
    ngram_oof,
    ngram_pipeline,
    profanity_prob,
)

EVAL_PATH = Path(__file__).resolve().parent / "data" / "toxicity_eval.jsonl"
MIN_AUC, MIN_GAIN = 0.95, 0.05


def load_eval(path: Path) -> dict[str, np.ndarray]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {k: np.array([r[k] for r in rows]) for k in ("text", "toxic", "profanity", "category")}


def paired_auc_diff(a: np.ndarray, b: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """AUC(a) - AUC(b) on ``n`` stratified resamples that share their indices (paired bootstrap)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    out = np.empty(n)
    for i in range(n):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        out[i] = roc_auc_score(y[idx], a[idx]) - roc_auc_score(y[idx], b[idx])
    return out


def seed_cv(folds: int, seed: int) -> dict[str, float]:
    """Nested k-fold AUC on the English seed files: the default (the three stacked models, the
    stacker on inner out-of-fold logits) refitted per outer fold, scored on the rest."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    texts, y, _ = load_labelled(*SEEDS["en"])
    emb, pp = get_encoder().encode(texts), profanity_prob(texts)
    stacked, emb_only, ngram_only = np.zeros(y.size), np.zeros(y.size), np.zeros(y.size)
    arr = np.array(texts, dtype=object)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed + 1).split(emb, y):
        w = fit_weights(emb[tr], pp[tr], y[tr], seed=seed, ngram_oof=ngram_oof(arr[tr], y[tr], seed))
        z_ngram = ngram_pipeline().fit(list(arr[tr]), y[tr]).decision_function(list(arr[te]))
        stacked[te] = w.combine(emb[te], pp[te], z_ngram)
        emb_only[te], ngram_only[te] = _sigmoid(w.embedding_logit(emb[te])), _sigmoid(z_ngram)
    return {"default (stacked)": roc_auc_score(y, stacked), "embedding LR alone": roc_auc_score(y, emb_only),
            "n-gram LR alone": roc_auc_score(y, ngram_only),
            "alt-profanity-check alone": roc_auc_score(y, pp), "n": y.size, "toxic": int(y.sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--eval", type=Path, default=EVAL_PATH, help="labelled JSON lines {text, toxic, "
                    "profanity, category}")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples per CI")
    ap.add_argument("--folds", type=int, default=5, help="folds of the seed-set sanity check")
    ap.add_argument("--seed", type=int, default=0, help="seed of the scorer, folds and bootstrap")
    args = ap.parse_args()

    data = load_eval(args.eval)
    texts, y, no_prof = list(data["text"]), data["toxic"], data["profanity"] == 0
    t0 = time.perf_counter()
    get_encoder()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer = ToxicityScorer(seed=args.seed)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = get_encoder(scorer.encoder_spec).encode(texts)
    default = scorer.score(texts, embeddings=emb)
    t_score = time.perf_counter() - t0
    pp = profanity_prob(texts)
    weights = scorer._weights["en"]
    pe = _sigmoid(weights.embedding_logit(emb))
    pn = scorer._ngrams["en"].predict(texts)
    scores = {"default (stacked)": default, "alt-profanity-check alone": pp, "embedding LR alone": pe,
              "n-gram LR alone": pn,
              "noisy-or 1-(1-p_e)(1-p_p)": 1 - (1 - pe) * (1 - pp), "max(p_e, p_p)": np.maximum(pe, pp)}

    print(f"eval set {args.eval}: {y.size} texts, {int(y.sum())} toxic; without profanity "
          f"{int(no_prof.sum())} ({int(y[no_prof].sum())} toxic)")
    print(f"encoder load {t_load:.1f} s; fit at construction {t_fit:.1f} s (seed set encoded); "
          f"scoring {y.size} texts {t_score:.1f} s; load average {os.getloadavg()[0]:.1f}")
    a, c, g = weights.stack_coef
    print(f"stacker: toxicity = sigmoid({a:.3f} z_emb + {c:.4f} logit(p_prof) + {g:.3f} z_ngram "
          f"+ {weights.stack_intercept:.3f})\n")
    print(f"{'scorer':28s} | {'AUC overall [95% CI]':24s} | {'AUC no profanity [95% CI]':24s}")
    print("-" * 82)
    aucs = {}
    for name, s in scores.items():
        r_all = roc_report(s, y, args.bootstrap, args.seed)
        r_np = roc_report(s[no_prof], y[no_prof], args.bootstrap, args.seed)
        aucs[name] = (r_all.auc, r_np.auc)
        print(f"{name:28s} | {r_all.auc:.3f} [{r_all.auc_ci_low:.3f}, {r_all.auc_ci_high:.3f}]"
              f"{'':4s} | {r_np.auc:.3f} [{r_np.auc_ci_low:.3f}, {r_np.auc_ci_high:.3f}]")
    diff = paired_auc_diff(default[no_prof], pp[no_prof], y[no_prof], args.bootstrap, args.seed)
    lo, hi = np.percentile(diff, [2.5, 97.5])
    gain = aucs["default (stacked)"][1] - aucs["alt-profanity-check alone"][1]
    print(f"\nno profanity, AUC(default) - AUC(alt-profanity-check) = {gain:.3f} "
          f"[{lo:.3f}, {hi:.3f}] (paired bootstrap)\n")

    print(f"{'category':22s} | {'n':>3s} | toxic | {'default mean':>12s} | {'>0.5':>5s} | "
          f"{'profanity-check mean':>20s} | {'>0.5':>5s}")
    for cat in dict.fromkeys(data["category"]):
        k = data["category"] == cat
        print(f"{cat:22s} | {int(k.sum()):3d} | {int(y[k][0]):5d} | {default[k].mean():12.3f} | "
              f"{np.mean(default[k] > 0.5):5.2f} | {pp[k].mean():20.3f} | {np.mean(pp[k] > 0.5):5.2f}")

    cv = seed_cv(args.folds, args.seed)
    print(f"\nEnglish seed files ({cv['n']} texts, {cv['toxic']} toxic), nested {args.folds}-fold AUC: "
          + ", ".join(f"{k} {v:.3f}" for k, v in cv.items() if k not in ("n", "toxic")))

    ok_auc, ok_gain = aucs["default (stacked)"][0] > MIN_AUC, gain >= MIN_GAIN
    print(f"\nacceptance: default AUC {aucs['default (stacked)'][0]:.3f} > {MIN_AUC}: "
          f"{'PASS' if ok_auc else 'FAIL'}; gain without profanity {gain:.3f} >= {MIN_GAIN}: "
          f"{'PASS' if ok_gain else 'FAIL'}")
    return 0 if ok_auc and ok_gain else 1


if __name__ == "__main__":
    sys.exit(main())
