"""The membership-inference audit job: score members and non-members with each method of
:mod:`parrotwatch.detectors.audits.membership` (higher = member) and report the ROC of each
(:func:`parrotwatch.detectors.audits.roc.roc_report`: AUC with its bootstrap 95% CI, TPR at 0.1% and 1% FPR).

Scoring passes: the target model on the texts (with the next-token distribution moments when Min-K%++ is
asked), the target on the lower-cased texts (``lowercase``), the reference model on the texts
(``reference``); for ``rmia``, each of its reference models on the texts and the target and each reference
on the population texts z. A text with no scored token, or a ratio that is undefined, leaves that method
out (reported in ``n_dropped``).

RMIA, offline (Zarifzadeh et al. 2024, :mod:`parrotwatch.detectors.audits.rmia`): Pr(x | model) =
exp(mean token log-probability); Pr(x) = 1/2 ((1 + a) mean_ref Pr(x | ref) + 1 - a); score(x) = the share
of population texts z with (Pr(x | target) / Pr(x)) / (Pr(z | target) / Pr(z)) > gamma. Metric
``rmia_population`` {offline_a, gamma, reference_models}: how many population texts were compared.

Every ``tpr_at_fpr_<f>`` carries a 95% percentile-bootstrap CI: ``n_bootstrap`` stratified resamples
(members and non-members resampled separately, as for the AUC), TPR@f of each by
:func:`sklearn.metrics.roc_curve` exactly as :func:`~parrotwatch.detectors.audits.roc.roc_report` computes
it. With fewer than 1/f non-members that is the TPR at zero false positives.

Verdict (both on by default, see the spec's ``blind_baseline`` and ``dataset_inference``):

- ``blind_auc`` {method: blind}: the AUC, with its bootstrap CI, of a classifier that sees only the texts
  (:func:`parrotwatch.detectors.audits.blind.blind_membership`, Das et al. 2024), and ``blind_guard``
  (1 / 0): whether it reaches the 95% CI low of the best attack
  (:func:`parrotwatch.detectors.audits.blind.blind_guard`). When it fires, the sets differ in distribution
  and the membership AUCs are no evidence of memorization.
- ``dataset_inference_p_value``: Maini et al. 2024 (:mod:`parrotwatch.detectors.audits.dataset_inference`)
  on the method scores as features (members = suspect set, non-members = validation set), with its Welch
  ``dataset_inference_t``, the fitted ``dataset_inference_weight`` per method and
  ``dataset_inference_rejects`` (p < alpha).
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
from parrotwatch.detectors.audits import rmia
from parrotwatch.detectors.audits.blind import BlindResult, GuardVerdict, blind_guard, blind_membership
from parrotwatch.detectors.audits.dataset_inference import DatasetInferenceResult, dataset_inference
from parrotwatch.detectors.audits.roc import RocReport, roc_report, tpr_at_fpr_cis

AUDIT = "membership"


@dataclass(frozen=True)
class MembershipPlot:
    """The ROC report of each method, for the log-log ROC plot, and what the report's verdict needs: the
    blind baseline and its guard, the dataset-inference result and its level (None when not run)."""

    reports: dict[str, RocReport]
    blind: BlindResult | None = None
    guard: GuardVerdict | None = None
    dataset_inference: DatasetInferenceResult | None = None
    alpha: float | None = None
    dataset_inference_error: str | None = None


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
    with_rmia = "rmia" in cfg.methods
    if with_rmia and not inputs.rmia_reference_lms:
        raise ValueError("membership method 'rmia' needs reference models (spec 'reference_models')")
    per_text = [m for m in cfg.methods if m != "rmia"]
    passes = 1 + ("lowercase" in cfg.methods) + ("reference" in cfg.methods)
    total = passes * len(texts)
    if with_rmia:
        k = len(inputs.rmia_reference_lms)
        total += k * len(texts) + (1 + k) * len(inputs.population)
    with bar(total, "membership: scoring") as b:
        target = score_texts(inputs.lm, texts, with_distribution="min_k_plus_plus" in cfg.methods,
                             advance=b.update)
        lower = (score_texts(inputs.lm, [t.lower() for t in texts], advance=b.update)
                 if "lowercase" in cfg.methods else [None] * len(texts))
        ref = (score_texts(inputs.reference_lm, texts, advance=b.update)
               if "reference" in cfg.methods else [None] * len(texts))
        rmia_scores, n_population = _rmia(inputs, cfg, texts, target, b.update) if with_rmia else (None, 0)
    scores = {m: np.full(len(texts), np.nan) for m in cfg.methods}
    for i, text in enumerate(texts):
        for m in per_text:
            with suppress(ValueError):  # no scored token, or an undefined ratio: left out of this method
                scores[m][i] = _score(m, cfg.k, text, target[i], lower[i], ref[i])
    if with_rmia:
        scores["rmia"] = rmia_scores

    metrics, reports = [], {}
    for m in cfg.methods:
        ok = np.isfinite(scores[m])
        r = roc_report(scores[m][ok], labels[ok], n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
        reports[m] = r
        lab = {"method": m}
        tpr_ci = tpr_at_fpr_cis(scores[m][ok], labels[ok], tuple(r.tpr_at_fpr), cfg.n_bootstrap, cfg.seed)
        metrics += [Metric(AUDIT, "auc", r.auc, r.auc_ci_low, r.auc_ci_high, lab),
                    *(Metric(AUDIT, f"tpr_at_fpr_{f:g}", v, *tpr_ci[f], labels=lab)
                      for f, v in r.tpr_at_fpr.items()),
                    Metric(AUDIT, "n_members", r.n_members, labels=lab),
                    Metric(AUDIT, "n_non_members", r.n_nonmembers, labels=lab),
                    Metric(AUDIT, "n_dropped", int((~ok).sum()), labels=lab)]
    if with_rmia:
        metrics.append(Metric(AUDIT, "rmia_population", n_population, labels={
            "offline_a": f"{cfg.rmia.offline_a:g}", "gamma": f"{cfg.rmia.gamma:g}",
            "reference_models": str(len(inputs.rmia_reference_lms))}))
    blind, guard, blind_metrics = _blind_baseline(cfg, texts, labels, reports)
    di, di_error, di_metrics = _dataset_inference(cfg, scores, labels)
    metrics += blind_metrics + di_metrics
    first = cfg.methods[0]

    def value(m: str, i: int) -> float | None:
        return None if np.isnan(scores[m][i]) else float(scores[m][i])

    def extra(i: int) -> dict:
        out = {"method": first, "tokens": len(target[i].logprobs),
               "scores": {m: value(m, i) for m in cfg.methods}}
        return out if blind is None else out | {"blind_score": blind.scores[i]}

    samples = tuple(Sample(AUDIT, t.id, "member" if y else "non-member", value(first, i), extra(i))
                    for i, (t, y) in enumerate(zip(items, labels, strict=True)))
    alpha = cfg.dataset_inference.alpha if cfg.dataset_inference else None
    plot = MembershipPlot(reports, blind, guard, di, alpha, di_error)
    return AuditResult(AUDIT, tuple(metrics), samples, time.perf_counter() - t0, plot)


def _probability(s) -> float:
    """Pr(x | model) of a text's token scores; NaN when it has no scored token (or an invalid one)."""
    try:
        return rmia.sequence_probability(s.logprobs)
    except ValueError:
        return np.nan


def _rmia(inputs: AuditInputs, cfg: MembershipAudit, texts: list[str], target, advance
          ) -> tuple[np.ndarray, int]:
    """RMIA's score of each text (NaN where a model scored no token) and the population size used."""
    population = [t.text for t in inputs.population]
    refs_x = [score_texts(lm, texts, advance=advance) for lm in inputs.rmia_reference_lms]
    target_z = score_texts(inputs.lm, population, advance=advance)
    refs_z = [score_texts(lm, population, advance=advance) for lm in inputs.rmia_reference_lms]
    px = np.array([_probability(s) for s in target])
    rx = np.column_stack([[_probability(s) for s in r] for r in refs_x])
    pz = np.array([_probability(s) for s in target_z])
    rz = np.column_stack([[_probability(s) for s in r] for r in refs_z])
    ok_x = np.isfinite(px) & np.isfinite(rx).all(axis=1)
    ok_z = np.isfinite(pz) & np.isfinite(rz).all(axis=1)
    if not ok_z.any():
        raise ValueError("RMIA: no population text has a scored token")
    out = np.full(len(texts), np.nan)
    out[ok_x] = rmia.rmia_scores(px[ok_x], rx[ok_x], pz[ok_z], rz[ok_z], offline_a=cfg.rmia.offline_a,
                                 gamma=cfg.rmia.gamma)
    return out, int(ok_z.sum())


def _blind_baseline(cfg: MembershipAudit, texts: list[str], labels: np.ndarray, reports: dict[str, RocReport]
                    ) -> tuple[BlindResult | None, GuardVerdict | None, list[Metric]]:
    """Das et al. 2024: the text-only classifier's AUC and the guard; too few texts give a None AUC."""
    if cfg.blind_baseline is None:
        return None, None, []
    try:
        blind = blind_membership(texts, labels, folds=cfg.blind_baseline.folds, n_bootstrap=cfg.n_bootstrap,
                                 seed=cfg.blind_baseline.seed)
    except ValueError as exc:
        return None, None, [Metric(AUDIT, "blind_auc", None, labels={"method": "blind", "error": str(exc)})]
    guard = blind_guard(blind.roc, reports)
    return blind, guard, [
        Metric(AUDIT, "blind_auc", blind.auc, blind.roc.auc_ci_low, blind.roc.auc_ci_high,
               {"method": "blind", "folds": str(blind.folds)}),
        Metric(AUDIT, "blind_guard", int(guard.fires),
               labels={"best_method": guard.best_method, "shift": str(guard.shift).lower()})]


def _dataset_inference(cfg: MembershipAudit, scores: dict[str, np.ndarray], labels: np.ndarray
                       ) -> tuple[DatasetInferenceResult | None, str | None, list[Metric]]:
    """Maini et al. 2024 on the method scores (members = suspect, non-members = validation); a set too
    small to split gives a p-value of None and the reason."""
    if cfg.dataset_inference is None:
        return None, None, []
    features = np.column_stack([scores[m] for m in cfg.methods])
    alpha = cfg.dataset_inference.alpha
    try:
        r = dataset_inference(features[labels == 1], features[labels == 0], seed=cfg.dataset_inference.seed)
    except ValueError as exc:
        return None, str(exc), [Metric(AUDIT, "dataset_inference_p_value", None,
                                       labels={"alpha": f"{alpha:g}", "error": str(exc)})]
    n = {"n_members": str(r.n_suspect), "n_non_members": str(r.n_validation), "alpha": f"{alpha:g}"}
    metrics = [Metric(AUDIT, "dataset_inference_p_value", r.p_value, labels=n),
               Metric(AUDIT, "dataset_inference_t", r.t, labels={"df": f"{r.df:.4g}"}),
               Metric(AUDIT, "dataset_inference_rejects", int(r.rejects(alpha)),
                      labels={"alpha": f"{alpha:g}"}),
               *(Metric(AUDIT, "dataset_inference_weight", w, labels={"method": m})
                 for m, w in zip(cfg.methods, r.weights, strict=True))]
    return r, None, metrics
