"""ROC evaluation of a membership score (higher = member; label 1 = member, 0 = non-member).

    AUC       = P(s_member > s_nonmember) + P(tie) / 2           (sklearn.metrics.roc_auc_score)
    95% CI    percentile bootstrap (Efron & Tibshirani 1993): B times, resample the members and the
              non-members separately with replacement, recompute the AUC; CI = [q_2.5%, q_97.5%]
              of the B AUCs (see :func:`bootstrap_aucs`)
    TPR@f     max{TPR_i : FPR_i <= f} over the points of sklearn.metrics.roc_curve

Carlini et al. 2022, "Membership Inference Attacks From First Principles" (IEEE S&P), argue that an
attack must be judged by its TPR at low FPR (0.1%, 1%) on a log-log ROC curve, not by its AUC alone.
With fewer than 1/f non-members the only ROC point with FPR <= f is FPR = 0, so TPR@f is the TPR at
zero false positives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
from scipy.stats import mannwhitneyu

try:
    from sklearn.metrics import roc_auc_score, roc_curve
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"{__name__} needs scikit-learn: pip install scikit-learn") from exc


@dataclass(frozen=True)
class RocReport:
    """AUC with its bootstrap CI, TPR at fixed FPRs, and the ROC points (FPR, TPR) for plotting."""

    auc: float
    auc_ci_low: float
    auc_ci_high: float
    tpr_at_fpr: Mapping[float, float] = field(hash=False)
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]
    n_members: int
    n_nonmembers: int


def bootstrap_aucs(members: np.ndarray, nonmembers: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """AUCs of ``n_bootstrap`` stratified resamples (members and non-members resampled separately).

    Each is U / (n_1 n_0), U the Mann-Whitney statistic of the members (pairs won, ties one half):
    the AUC identity of Bamber 1975, equal to ``roc_auc_score`` on the resample. scipy computes it for a
    block of resamples in one call; ``roc_auc_score`` costs ~3 ms of input checks per call.

    Every member above every non-member: each resample has AUC 1.

    >>> bootstrap_aucs(np.array([2.0, 3.0]), np.array([0.0, 1.0]), 3, seed=0).tolist()
    [1.0, 1.0, 1.0]
    """
    rng = np.random.default_rng(seed)
    block = max(1, 4_000_000 // (members.size + nonmembers.size))  # ~64 MB of float64 per block
    aucs = []
    for start in range(0, n_bootstrap, block):
        b = min(block, n_bootstrap - start)
        x, y = rng.choice(members, (b, members.size)), rng.choice(nonmembers, (b, nonmembers.size))
        u = mannwhitneyu(x, y, axis=1, method="asymptotic").statistic
        aucs.append(u / (members.size * nonmembers.size))
    return np.concatenate(aucs)


def roc_report(
    scores: Sequence[float],
    labels: Sequence[int],
    n_bootstrap: int = 1000,
    seed: int = 0,
    fpr_targets: Sequence[float] = (0.001, 0.01),
) -> RocReport:
    """ROC AUC with a 95% percentile-bootstrap CI (``n_bootstrap`` resamples, ``seed``) and TPR@FPR.

    Members 0.9 and 0.4 against non-members 0.6 and 0.1: 3 of the 4 pairs are won, AUC = 0.75;
    at FPR 0 only the member at 0.9 is above every non-member, TPR = 1/2:

    >>> r = roc_report([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0], n_bootstrap=20)
    >>> r.auc, r.tpr_at_fpr[0.01], r.n_members, r.n_nonmembers
    (0.75, 0.5, 2, 2)
    >>> r.auc_ci_low <= r.auc <= r.auc_ci_high
    True
    >>> roc_report([0.5, 0.5], [1, 0], n_bootstrap=5).auc  # a tie counts one half
    0.5
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or s.shape != y.shape or not np.isfinite(s).all():
        raise ValueError("scores and labels must be 1-D of one length, with finite scores")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 1 (member) or 0 (non-member)")
    y = y.astype(np.int8)
    pos, neg = s[y == 1], s[y == 0]
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"need members and non-members, got {pos.size} and {neg.size}")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    tpr_at = {float(f): float(tpr[fpr <= f].max()) for f in fpr_targets}  # (0, 0) is always a point

    low, high = np.percentile(bootstrap_aucs(pos, neg, n_bootstrap, seed), [2.5, 97.5])
    return RocReport(
        auc=float(roc_auc_score(y, s)),
        auc_ci_low=float(low),
        auc_ci_high=float(high),
        tpr_at_fpr=MappingProxyType(tpr_at),
        fpr=tuple(fpr.tolist()),
        tpr=tuple(tpr.tolist()),
        n_members=int(pos.size),
        n_nonmembers=int(neg.size),
    )


def plot_roc(reports: Mapping[str, RocReport], path: str | Path) -> Path:
    """Log-log ROC curves (Carlini et al. 2022, Fig. 1 style), one per report, AUC and CI in the legend,
    with the chance diagonal; drawn with the Agg canvas (no display, no global backend change).

    Points with FPR = 0 or TPR = 0 cannot sit on log axes and are left out. Returns ``Path(path)``.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plot_roc needs matplotlib: pip install matplotlib") from exc
    if not reports:
        raise ValueError("plot_roc needs at least one report")
    positive = [f for r in reports.values() for f in r.fpr if f > 0]
    lo = 10.0 ** math.floor(math.log10(min(positive))) if positive else 1e-3

    fig = Figure(figsize=(5.5, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([lo, 1], [lo, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    for name, r in reports.items():
        label = f"{name} (AUC {r.auc:.3f}, 95% CI {r.auc_ci_low:.3f}-{r.auc_ci_high:.3f})"
        ax.plot(r.fpr, r.tpr, linewidth=1.5, label=label)
    ax.set(xscale="log", yscale="log", xlim=(lo, 1), ylim=(lo, 1))
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="Membership inference ROC")
    ax.legend(loc="lower right", fontsize="small")
    out = Path(path)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    return out


def tpr_at_fpr_cis(scores: np.ndarray, labels: np.ndarray, fprs: tuple[float, ...], n_bootstrap: int,
                   seed: int) -> dict[float, tuple[float, float]]:
    """95% percentile-bootstrap CI of TPR@f for each f in ``fprs``: ``n_bootstrap`` stratified resamples
    (members and non-members resampled separately with replacement, as
    :func:`~parrotwatch.detectors.audits.roc.bootstrap_aucs`), TPR@f = max{TPR_i : FPR_i <= f} over the
    points of :func:`sklearn.metrics.roc_curve` of each resample (as ``roc_report``)."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(pos.size, dtype=np.int8), np.zeros(neg.size, dtype=np.int8)]
    values = np.empty((n_bootstrap, len(fprs)))
    for b in range(n_bootstrap):
        s = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        values[b] = [tpr[fpr <= f].max() for f in fprs]
    low, high = np.percentile(values, [2.5, 97.5], axis=0)
    return {f: (float(lo), float(hi)) for f, lo, hi in zip(fprs, low, high, strict=True)}
