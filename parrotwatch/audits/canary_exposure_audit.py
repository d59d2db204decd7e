"""The canary-exposure audit job (Carlini et al. 2019, "The Secret Sharer"): score the inserted canaries and
candidates of their space R with the target model and report exposure = log2|R| - log2 rank in bits.

Exact when R is scored whole (``method: exact``, or ``auto`` with |R| <= ``exact_max``); otherwise the
skew-normal extrapolation of Section 4.3 fitted to ``n_sample`` random candidates. ``n_fresh`` other random
candidates, never inserted, give the baseline: their exposure is uniform-rank noise, 1/ln 2 ~ 1.44 bits on
average for an exact rank.
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
    if inputs.canaries is None:
        raise ValueError("canary_exposure needs canaries (data 'testbed' or data.canaries)")
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

    metrics = [Metric(AUDIT, "max_exposure", math.log2(space.size), labels={"method": method})]
    samples = []
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
    plot = ExposurePlot(tuple(c.repetitions for c in inserted), tuple(ins_exp), tuple(fresh_exp),
                        math.log2(space.size), method)
    return AuditResult(AUDIT, tuple(metrics), tuple(samples), time.perf_counter() - t0, plot)
