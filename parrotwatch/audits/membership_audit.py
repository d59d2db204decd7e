"""The membership-inference audit job: score members and non-members with each method of
:mod:`parrotwatch.detectors.audits.membership` (higher = member) and report the ROC of each
(:func:`parrotwatch.detectors.audits.roc.roc_report`: AUC with its bootstrap 95% CI, TPR at 0.1% and 1% FPR).

Scoring passes: the target model on the texts (with the next-token distribution moments when Min-K%++ is
asked), the target on the lower-cased texts (``lowercase``), the reference model on the texts
(``reference``). A text with no scored token, or a ratio that is undefined, leaves that method out
(reported in ``n_dropped``).
"""

from __future__ import annotations

import time
from contextlib import suppress
from dataclasses import dataclass

import numpy as np

from parrotwatch.audits.inputs import AuditInputs, score_texts
from parrotwatch.audits.results import AuditResult, Metric, Sample
from parrotwatch.audits.spec import MembershipAudit
from parrotwatch.detectors.audits import membership as mia
from parrotwatch.detectors.audits.roc import RocReport, roc_report

AUDIT = "membership"


@dataclass(frozen=True)
class MembershipPlot:
    """The ROC report of each method, for the log-log ROC plot."""

    reports: dict[str, RocReport]


def _score(method: str, k: float, text: str, s, lower, ref) -> float:
    if method == "loss":
        return mia.loss_score(s.logprobs)
    if method == "zlib":
        return mia.zlib_score(s.logprobs, text)
    if method == "lowercase":
        return mia.lowercase_score(s.logprobs, lower.logprobs)
    if method == "reference":
        return mia.reference_score(s.logprobs, ref.logprobs)
    if method == "min_k":
        return mia.min_k_prob(s.logprobs, k)
    return mia.min_k_plus_plus(s.logprobs, s.mu, s.sigma2, k)


def run_membership(inputs: AuditInputs, cfg: MembershipAudit, bar) -> AuditResult:
    t0 = time.perf_counter()
    items = list(inputs.members) + list(inputs.non_members)
    labels = np.array([1] * len(inputs.members) + [0] * len(inputs.non_members))
    texts = [t.text for t in items]
    passes = 1 + ("lowercase" in cfg.methods) + ("reference" in cfg.methods)
    with bar(passes * len(texts), "membership: scoring") as b:
        target = score_texts(inputs.lm, texts, with_distribution="min_k_plus_plus" in cfg.methods,
                             advance=b.update)
        lower = (score_texts(inputs.lm, [t.lower() for t in texts], advance=b.update)
                 if "lowercase" in cfg.methods else [None] * len(texts))
        ref = (score_texts(inputs.reference_lm, texts, advance=b.update)
               if "reference" in cfg.methods else [None] * len(texts))
    scores = {m: np.full(len(texts), np.nan) for m in cfg.methods}
    for i, text in enumerate(texts):
        for m in cfg.methods:
            with suppress(ValueError):  # no scored token, or an undefined ratio: left out of this method
                scores[m][i] = _score(m, cfg.k, text, target[i], lower[i], ref[i])

    metrics, reports = [], {}
    for m in cfg.methods:
        ok = np.isfinite(scores[m])
        r = roc_report(scores[m][ok], labels[ok], n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
        reports[m] = r
        lab = {"method": m}
        metrics += [Metric(AUDIT, "auc", r.auc, r.auc_ci_low, r.auc_ci_high, lab),
                    *(Metric(AUDIT, f"tpr_at_fpr_{f:g}", v, labels=lab) for f, v in r.tpr_at_fpr.items()),
                    Metric(AUDIT, "n_members", r.n_members, labels=lab),
                    Metric(AUDIT, "n_non_members", r.n_nonmembers, labels=lab),
                    Metric(AUDIT, "n_dropped", int((~ok).sum()), labels=lab)]
    first = cfg.methods[0]

    def value(m: str, i: int) -> float | None:
        return None if np.isnan(scores[m][i]) else float(scores[m][i])

    samples = tuple(
        Sample(AUDIT, t.id, "member" if y else "non-member",
               value(first, i), {"method": first, "tokens": len(target[i].logprobs),
                                 "scores": {m: value(m, i) for m in cfg.methods}})
        for i, (t, y) in enumerate(zip(items, labels, strict=True)))
    return AuditResult(AUDIT, tuple(metrics), samples, time.perf_counter() - t0, MembershipPlot(reports))
