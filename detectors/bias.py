"""Unintended identity-term bias of a classifier's scores: Borkan et al.'s per-subgroup AUCs.

Borkan, Dixon, Sorensen, Thain & Vasserman 2019, "Nuanced Metrics for Measuring Unintended Bias
with Real Data for Text Classification" (WWW companion). For a subgroup g (the texts that mention
one identity, say "Muslim") and its background b (all the other texts):

    subgroup AUC = AUC(g⁺ ∪ g⁻)        toxic vs benign texts that both mention g
    BPSN AUC     = AUC(b⁺ ∪ g⁻)        background positives vs subgroup negatives: low when benign
                                       texts mentioning g score above toxic texts that do not
    BNSP AUC     = AUC(g⁺ ∪ b⁻)        subgroup positives vs background negatives: low when toxic
                                       texts mentioning g score below benign texts that do not

with AUC the probability that a random positive outscores a random negative (ties count half;
Hanley & McNeil 1982). False-positive rate: the share of g⁻ scored above the threshold (the
"false positive equality difference" of Dixon et al. 2018 compares it across subgroups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counted half; NaN when a
    class is empty.

    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    from scipy.stats import rankdata

    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class SubgroupBias:
    """Borkan et al.'s three AUCs and the benign false-positive rate of one subgroup."""

    subgroup: str
    size: int
    subgroup_auc: float
    bpsn_auc: float
    bnsp_auc: float
    false_positive_rate: float


def subgroup_bias(scores: Sequence[float], labels: Sequence[int], subgroups: Sequence[str],
                  threshold: float = 0.5) -> list[SubgroupBias]:
    """Per subgroup (each text's one identity in ``subgroups``), sorted by BPSN AUC, worst first.

    >>> s = [0.8, 0.2, 0.9, 0.85]  # the benign "b" text (0.85) outscores the toxic "a" one (0.8)
    >>> [(r.subgroup, r.bpsn_auc, r.false_positive_rate) for r in
    ...  subgroup_bias(s, [1, 0, 1, 0], ["a", "a", "b", "b"])]
    [('b', 0.0, 1.0), ('a', 1.0, 0.0)]
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray(subgroups)
    out = []
    for g in sorted(set(groups.tolist())):
        inside = groups == g
        pos, neg = labels == 1, labels == 0
        bpsn = (~inside & pos) | (inside & neg)
        bnsp = (inside & pos) | (~inside & neg)
        benign = inside & neg
        fpr = float(np.mean(scores[benign] > threshold)) if benign.any() else float("nan")
        out.append(SubgroupBias(g, int(inside.sum()), auc(scores[inside], labels[inside]),
                                auc(scores[bpsn], labels[bpsn]), auc(scores[bnsp], labels[bnsp]), fpr))
    return sorted(out, key=lambda r: (np.nan_to_num(r.bpsn_auc, nan=2.0), r.subgroup))
