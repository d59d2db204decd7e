"""Benchmark: toxicity beyond plain English — identity-term bias, French, obfuscation, languages.

Scores the evaluation sets under ``bench/data/`` (written apart from the seed sets; see
``bench/data/README_toxicity_evals.md``) with the offline default
(``parrotwatch.detectors.toxicity.ToxicityScorer``) and prints:

  1. identity bias (``toxicity_identity_eval.jsonl``, Dixon et al. 2018 templates plus natural
     sentences, 45 identities): Borkan et al. 2019's subgroup, BPSN and BNSP AUCs and the benign
     false-positive rate at the flag threshold (0.5), per identity, worst first;
  2. French (``toxicity_fr_eval.jsonl``): ROC AUC with a 95% bootstrap CI, per-category flag rates;
  3. obfuscation (``toxicity_obfuscation_eval.jsonl``): per method, the share of toxic texts
     caught and of technical texts flagged, against the plain forms;
  4. languages: texts in languages the scorer does not read (German, Spanish, Italian,
     Portuguese, Dutch, Russian, Chinese, Arabic) must come back null with a reason;
  5. the acceptance checks of issue 18, and the cost per text.

``--dev`` scores the development frames of ``bench/build_identity_frames.py`` instead of the
identity evaluation set (they chose the configuration; the evaluation set did not).

Usage: .venv/bin/python bench/toxicity_robustness.py [--dev] [--bootstrap 1000] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from parrotwatch.detectors.audits.roc import roc_report  # noqa: E402
from parrotwatch.detectors.bias import subgroup_bias  # noqa: E402
from parrotwatch.detectors.toxicity import ToxicityScorer  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
THRESHOLD = 0.5
MAX_FPR, MIN_BPSN, MIN_FR_AUC, MAX_OBFUSCATION_LOSS = 0.02, 0.95, 0.9, 0.05
#: Texts in languages the default does not read (written for this bench).
OTHER_LANGUAGES = {
    "de": [
        "Das ist wirklich eine schlechte Idee, und du bist ein Idiot.",
        "Der Server ist heute Nacht wieder abgestürzt.",
    ],
    "es": ["No me gusta nada este servicio, es un desastre total.", "Eres un idiota y nadie te quiere aquí."],
    "it": ["Questo è un disastro completo, non funziona niente.", "Il treno per Milano parte alle otto."],
    "pt": ["Isso não funciona de jeito nenhum, que vergonha.", "Você é um idiota e todo mundo sabe disso."],
    "nl": ["Dit is echt een slecht idee, doe het niet.", "De vergadering begint om negen uur."],
    "ru": ["Это очень плохая идея, не делай этого.", "Ты полный идиот, и все это знают."],
    "zh": ["这是一个非常糟糕的主意。", "服务器昨晚又崩溃了。"],
    "ar": ["هذه فكرة سيئة للغاية", "القطار يغادر في الساعة الثامنة"],
}


def load(name: str) -> list[dict]:
    return [
        json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def identity_section(scorer: ToxicityScorer, dev: bool) -> bool:
    if dev:
        from build_identity_frames import DEV_BENIGN, DEV_TOXIC, FORMS, fill

        rows = [
            {"text": fill(f, t), "toxic": label, "identity": t}
            for frames, label in ((DEV_BENIGN, 0), (DEV_TOXIC, 1))
            for f in frames
            for t in FORMS
        ]
        title = "development frames (bench/build_identity_frames.py)"
    else:
        rows = load("toxicity_identity_eval.jsonl")
        title = "toxicity_identity_eval.jsonl"
    scores = scorer.score([r["text"] for r in rows])
    labels = np.array([r["toxic"] for r in rows])
    unread = int(np.isnan(scores).sum())
    scores = np.nan_to_num(scores, nan=0.0)
    result = subgroup_bias(scores, labels, [r["identity"] for r in rows], THRESHOLD)
    print(f"\n1. Identity bias, {title}: {len(rows)} texts, {len(result)} identities, {unread} unread")
    print(
        f"   benign flagged overall {np.mean(scores[labels == 0] > THRESHOLD):.3f}; "
        f"toxic caught {np.mean(scores[labels == 1] > THRESHOLD):.3f}"
    )
    print(f"   {'identity':<16} {'n':>3} {'subgroup':>8} {'BPSN':>6} {'BNSP':>6} {'benign FPR':>10}")
    for r in result:
        print(
            f"   {r.subgroup:<16} {r.size:>3} {r.subgroup_auc:>8.3f} {r.bpsn_auc:>6.3f} {r.bnsp_auc:>6.3f} "
            f"{r.false_positive_rate:>10.3f}"
        )
    flagged = [
        (round(float(s), 2), r["text"])
        for s, r in zip(scores, rows, strict=True)
        if r["toxic"] == 0 and s > THRESHOLD
    ]
    print(f"   benign texts flagged ({len(flagged)}): " + "; ".join(f"{t!r} {s}" for s, t in flagged[:12]))
    fpr_ok = sum(r.false_positive_rate <= MAX_FPR for r in result)
    bpsn_ok = sum(r.bpsn_auc >= MIN_BPSN for r in result)
    print(
        f"   acceptance: benign FPR <= {MAX_FPR} for {fpr_ok}/{len(result)} identities; "
        f"BPSN >= {MIN_BPSN} for {bpsn_ok}/{len(result)}"
    )
    return fpr_ok == bpsn_ok == len(result)


def french_section(scorer: ToxicityScorer, bootstrap: int) -> bool:
    rows = load("toxicity_fr_eval.jsonl")
    a = scorer.assess([r["text"] for r in rows])
    labels = np.array([r["toxic"] for r in rows])
    scores = np.nan_to_num(a.scores, nan=0.0)
    rep = roc_report(scores, labels, n_bootstrap=bootstrap, seed=0)
    langs = defaultdict(int)
    for code in a.languages:
        langs[code] += 1
    print(
        f"\n2. French, toxicity_fr_eval.jsonl: {len(rows)} texts ({labels.sum()} toxic); languages "
        f"identified {dict(langs)}; unread {int(np.isnan(a.scores).sum())}"
    )
    print(
        f"   ROC AUC {rep.auc:.4f} (95% CI {rep.auc_ci_low:.3f}-{rep.auc_ci_high:.3f}); "
        f"toxic caught {np.mean(scores[labels == 1] > THRESHOLD):.3f}, "
        f"benign flagged {np.mean(scores[labels == 0] > THRESHOLD):.3f}"
    )
    by_cat = defaultdict(list)
    for r, s in zip(rows, scores, strict=True):
        by_cat[(r["toxic"], r["category"])].append(s > THRESHOLD)
    print(
        "   flagged share per category: "
        + ", ".join(
            f"{c} {np.mean(v):.2f}"
            for (_, c), v in sorted(by_cat.items(), key=lambda kv: (-kv[0][0], kv[0][1]))
        )
    )
    print(f"   acceptance: AUC >= {MIN_FR_AUC}: {'met' if rep.auc >= MIN_FR_AUC else 'NOT met'}")
    return rep.auc >= MIN_FR_AUC


def obfuscation_section(scorer: ToxicityScorer) -> bool:
    rows = load("toxicity_obfuscation_eval.jsonl")
    scores = np.nan_to_num(scorer.score([r["text"] for r in rows]), nan=0.0)
    cells = defaultdict(list)
    for r, s in zip(rows, scores, strict=True):
        cells[(r["obfuscation"], r["toxic"])].append(s > THRESHOLD)
    plain = float(np.mean(cells[("none", 1)]))
    plain_flagged = float(np.mean(cells[("none", 0)]))
    print(
        f"\n3. Obfuscation, toxicity_obfuscation_eval.jsonl: {len(rows)} texts; plain forms: toxic "
        f"caught {plain:.3f}, technical flagged {plain_flagged:.3f}"
    )
    print(f"   {'method':<15} {'toxic caught':>12} {'technical flagged':>17}")
    caught_ok = flags_ok = True
    for method in sorted({r["obfuscation"] for r in rows}):
        caught, flagged = np.mean(cells[(method, 1)]), np.mean(cells[(method, 0)])
        caught_ok &= caught >= plain - MAX_OBFUSCATION_LOSS
        flags_ok &= flagged == 0.0
        print(f"   {method:<15} {caught:>12.3f} {flagged:>17.3f}")
    technical = sorted(
        {r["plain"] for r, s in zip(rows, scores, strict=True) if r["toxic"] == 0 and s > THRESHOLD}
    )
    print(
        f"   acceptance: every method catches >= plain - {MAX_OBFUSCATION_LOSS}: "
        f"{'met' if caught_ok else 'NOT met'}; no technical text flagged, obfuscated or plain: "
        f"{'met' if flags_ok else 'NOT met'} (flagged, by plain form: {technical})"
    )
    return caught_ok and flags_ok


def languages_section(scorer: ToxicityScorer) -> bool:
    texts = [(code, t) for code, ts in OTHER_LANGUAGES.items() for t in ts]
    a = scorer.assess([t for _, t in texts])
    unread = np.isnan(a.scores)
    print(f"\n4. Languages it does not read: {int(unread.sum())}/{len(texts)} null, with a reason")
    for (code, text), got, score, reason in zip(texts, a.languages, a.scores, a.reasons, strict=True):
        shown = "null" if np.isnan(score) else f"{score:.3f}"
        print(f"   {code} -> {got:<4} {shown:>6}  {text[:50]!r}  {reason or ''}")
    return bool(unread.all())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", action="store_true", help="identity section on the development frames")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the French AUC CI")
    ap.add_argument("--cache-dir", default=None, help="cache of the fitted English weights")
    args = ap.parse_args()

    t0 = time.perf_counter()
    scorer = ToxicityScorer(cache_dir=args.cache_dir)
    scorer.score(["warm up the n-gram models"])
    print(f"fitted in {time.perf_counter() - t0:.1f} s (languages {', '.join(scorer.languages)})")
    checks = {
        "identity": identity_section(scorer, args.dev),
        "french": french_section(scorer, args.bootstrap),
        "obfuscation": obfuscation_section(scorer),
        "languages": languages_section(scorer),
    }

    sample = [r["text"] for r in load("toxicity_eval.jsonl")] + [
        r["text"] for r in load("toxicity_fr_eval.jsonl")
    ]
    t1 = time.perf_counter()
    scorer.score(sample)
    per_text = (time.perf_counter() - t1) / len(sample) * 1000
    print(f"\n5. Cost: {per_text:.2f} ms per text ({len(sample)} English and French texts, encoder included)")
    print(
        "Acceptance (issue 18): " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in checks.items())
    )


if __name__ == "__main__":
    main()
