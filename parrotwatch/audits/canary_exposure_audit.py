"""The canary-exposure audit job (Carlini et al. 2019, "The Secret Sharer"): score the inserted canaries and
candidates of their space R with the target model and report exposure = log2|R| - log2 rank in bits.

Exact when R is scored whole (``method: exact``, or ``auto`` with |R| <= ``exact_max``); otherwise the
skew-normal extrapolation of Section 4.3 fitted to ``n_sample`` random candidates. ``n_fresh`` other random
candidates, never inserted, give the baseline: their exposure is uniform-rank noise, 1/ln 2 ~ 1.44 bits on
average for an exact rank.

One-run DP audit (Steinke, Nasr, Jagielski 2023, "Privacy Auditing with One (1) Training Run"), when the
data provide audit canaries with their inclusion bits (``inputs.audit_canaries``: objects with ``text``
and ``included``, e.g. :class:`parrotwatch.dp_testbed.AuditCanary`): each candidate is scored by minus its
log-perplexity, the highest are guessed "in", the lowest "out"
(:func:`parrotwatch.detectors.audits.dp_lower_bound.one_run_audit`, Bonferroni over the guess counts
tried), and the audit reports ``epsilon_lower_bound`` (labels ``delta``, ``beta``): with probability
>= 1 - beta over the bits, a run that is (eps, delta)-DP has eps >= this bound. ``dp_audit_guesses`` (r),
``dp_audit_correct`` (v) and ``dp_audit_candidates`` (m) carry the same labels.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from parrotwatch.audits.inputs import AuditInputs, score_texts
from parrotwatch.audits.results import AuditResult, Metric, Sample
from parrotwatch.audits.spec import CanaryExposureAudit
from parrotwatch.detectors.audits.dp_lower_bound import one_run_audit
from parrotwatch.detectors.audits.exposure import exposure, fit_skew_normal, log_perplexity

AUDIT = "canary_exposure"


@dataclass(frozen=True)
class ExposurePlot:
    """Per inserted canary its repetitions and exposure (bits); the never-inserted candidates' exposures."""

    repetitions: tuple[int, ...]
    exposures: tuple[float, ...]
    fresh: tuple[float, ...]
    max_bits: float
    method: str


def _mean_ci(values: list[float]) -> tuple[float, float | None, float | None]:
    """Mean and its normal-approximation 95% CI (mean +- 1.96 s / sqrt(n)); no CI for one value."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), None, None
    half = 1.959964 * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def run_canary_exposure(inputs: AuditInputs, cfg: CanaryExposureAudit, bar) -> AuditResult:
    """``bar(total, desc)`` makes a progress bar with ``update(n)``."""
    t0 = time.perf_counter()
    audit_canaries = inputs.audit_canaries
    if inputs.canaries is None and not audit_canaries:
        raise ValueError("canary_exposure needs canaries (data 'testbed', data.canaries or "
                         "data.audit_canaries)")
    metrics: list[Metric] = []
    samples: list[Sample] = []
    plot = None
    if inputs.canaries is not None:
        plot = _exposure(inputs, cfg, bar, metrics, samples)
    if audit_canaries:
        metrics += _one_run_dp_audit(inputs.lm, audit_canaries, cfg, bar)
    return AuditResult(AUDIT, tuple(metrics), tuple(samples), time.perf_counter() - t0, plot)


def _one_run_dp_audit(lm, audit_canaries, cfg: CanaryExposureAudit, bar) -> list[Metric]:
    """epsilon_lower_bound and its counts from the audit canaries' log-perplexities and inclusion bits."""
    delta, beta, fractions = cfg.dp_delta, cfg.dp_beta, tuple(cfg.dp_guess_fractions)
    texts = [c.text for c in audit_canaries]
    with bar(len(texts), "canary exposure: one-run DP audit") as b:
        px = [log_perplexity(s.logprobs) for s in score_texts(lm, texts, advance=b.update)]
    m = len(texts)
    ks = sorted({max(1, min(m // 2, round(f * m))) for f in fractions})
    audit = one_run_audit([-p for p in px], [bool(c.included) for c in audit_canaries], delta=delta,
                          beta=beta, guess_counts=[(k, k) for k in ks])
    labels = {"delta": f"{delta:g}", "beta": f"{beta:g}"}
    return [Metric(AUDIT, "epsilon_lower_bound", audit.epsilon_lower, labels=labels),
            Metric(AUDIT, "dp_audit_guesses", float(audit.r), labels=labels),
            Metric(AUDIT, "dp_audit_correct", float(audit.v), labels=labels),
            Metric(AUDIT, "dp_audit_candidates", float(audit.m), labels=labels)]


def _exposure(inputs: AuditInputs, cfg: CanaryExposureAudit, bar, metrics: list[Metric],
              samples: list[Sample]) -> ExposurePlot:
    """Exposure of the inserted canaries: appends to ``metrics`` and ``samples``, returns the plot data."""
    space, inserted = inputs.canaries.space, inputs.canaries.items
    exact = cfg.method == "exact" or (cfg.method == "auto" and space.size <= cfg.exact_max)
    taken = {c.text for c in inserted}
    rng = np.random.default_rng(cfg.seed)
    if exact:
        candidates = space.all_canaries(max_size=max(space.size, cfg.exact_max))
        fresh_idx = [int(i) for i in rng.permutation(space.size) if candidates[i] not in taken][:cfg.n_fresh]
    else:
        want = min(space.size, cfg.n_sample + cfg.n_fresh + len(inserted))
        drawn = [int(i) for i in rng.choice(space.size, size=want, replace=False)]
        drawn = [i for i in drawn if space.canary(i) not in taken]
        sample_idx, fresh_idx = drawn[:cfg.n_sample], drawn[cfg.n_sample:cfg.n_sample + cfg.n_fresh]
        candidates = [space.canary(i) for i in sample_idx]
    fresh = [space.canary(i) for i in fresh_idx]
    texts = [c.text for c in inserted] + fresh + ([] if exact else candidates)
    with bar(len(texts) + (len(candidates) if exact else 0), "canary exposure: scoring") as b:
        scores = score_texts(inputs.lm, texts, advance=b.update)
        px = [log_perplexity(s.logprobs) for s in scores]
        if exact:
            space_px = [log_perplexity(s.logprobs)
                        for s in score_texts(inputs.lm, candidates, advance=b.update)]
    n_ins, n_fresh = len(inserted), len(fresh)
    if exact:
        def expo(p): return exposure(p, space_px)
    else:
        fit = fit_skew_normal(px[n_ins + n_fresh:])
        def expo(p): return fit.exposure(p, space.size)
    method = "exact" if exact else "extrapolate"
    ins_exp = [expo(p) for p in px[:n_ins]]
    fresh_exp = [expo(p) for p in px[n_ins:n_ins + n_fresh]]

    metrics.append(Metric(AUDIT, "max_exposure", math.log2(space.size), labels={"method": method}))
    for c, e, p in zip(inserted, ins_exp, px[:n_ins], strict=True):
        metrics.append(Metric(AUDIT, "exposure", e, labels={"canary": c.id, "repetitions": str(c.repetitions),
                                                            "method": method}))
        samples.append(Sample(AUDIT, c.id, "canary", e,
                              {"repetitions": c.repetitions, "log_perplexity_bits": p}))
    groups: dict[int, list[float]] = {}
    for c, e in zip(inserted, ins_exp, strict=True):
        groups.setdefault(c.repetitions, []).append(e)
    groups[0] = fresh_exp  # never inserted
    for reps in sorted(groups):
        mean, lo, hi = _mean_ci(groups[reps])
        metrics.append(Metric(AUDIT, "exposure_mean", mean, lo, hi,
                              {"repetitions": str(reps), "n": str(len(groups[reps])), "method": method}))
    if len({c.repetitions for c in inserted}) > 1:
        rho = spearmanr([c.repetitions for c in inserted], ins_exp).statistic
        metrics.append(Metric(AUDIT, "exposure_repetitions_spearman", float(rho), labels={"method": method}))
    for i, e, p in zip(fresh_idx, fresh_exp, px[n_ins:n_ins + n_fresh], strict=True):
        samples.append(Sample(AUDIT, f"fresh-{i}", "non-member", e,
                              {"repetitions": 0, "log_perplexity_bits": p, "kind": "never-inserted canary"}))
    return ExposurePlot(tuple(c.repetitions for c in inserted), tuple(ins_exp), tuple(fresh_exp),
                        math.log2(space.size), method)
