"""Domain-classifier drift test ("classifier two-sample test"): Lopez-Paz & Oquab 2017, "Revisiting
Classifier Two-Sample Tests", ICLR; Rabanser, Günnemann & Lipton 2019, "Failing Loudly", NeurIPS.

Label reference rows 0 and current rows 1, split the pooled rows into K shuffled folds (chosen without
looking at the labels), fit an L2-regularised logistic regression (sklearn ``LogisticRegression`` on
features standardised with the training folds' statistics) on K-1 folds and score the held-out fold:
s_i = logit P̂(current | z_i) from the model that did not see row i. The statistic is

    AUC = U / (m n),   U = #{(i, j) : s_i > s_j} + ½ #{s_i = s_j},  i in current, j in reference

(the Mann-Whitney form of the ROC AUC; Hanley & McNeil 1982). Its p-value is a permutation test:
the same cross-validation is rerun on B random relabellings of the pooled rows, and
p = (1 + #{b : AUC_b >= AUC}) / (1 + B) (Phipson & Smyth 2010), exact at every sample size because
the folds do not depend on the labels. A Mann-Whitney p-value of the pooled out-of-fold scores would
be cheaper but is not valid: each model saw the labels of the other folds' rows, so cross-fold pairs
are not exchangeable; on real text (docs/drift.md) it rejected 14 of 100 no-drift splits at 0.05.

How Evidently decides (0.7.x, ``ModelDriftMethod``, the default of ``EmbeddingsDriftMetric``): one
50/50 train/test split, ``SGDClassifier(loss="log_loss")``, test ROC AUC; with fewer than 1000
reference rows drift is "AUC > 95th percentile of the AUCs of 100 random-score classifiers on the same
test labels" (a Monte-Carlo Mann-Whitney test of the held-out half), otherwise "AUC > 0.55". Here drift
is ``p_value < alpha`` (:meth:`ClassifierResult.is_drift`), and every row is scored once out of fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from parrotwatch.detectors.drift._arrays import as_matrix, same_dim


@dataclass(frozen=True)
class ClassifierResult:
    """``auc``: out-of-fold ROC AUC of telling current from reference (0.5: no signal, 1: separable);
    ``p_value``: permutation p-value of that AUC, small means drift (None when no permutations ran)."""

    auc: float
    p_value: float | None
    n_splits: int
    n_permutations: int

    @property
    def statistic(self) -> float:
        """``auc``: the statistic of the two-sample test (``protocols.TwoSampleResult``)."""
        return self.auc

    def is_drift(self, alpha: float = 0.05) -> bool:
        """Reject "same distribution" at level ``alpha``."""
        if self.p_value is None:
            raise ValueError("no p-value: rerun domain_classifier_test with n_permutations >= 1")
        return self.p_value < alpha


def _out_of_fold_auc(folds: list[tuple[np.ndarray, ...]], labels: np.ndarray, C: float) -> float:
    scores = np.zeros(len(labels))
    for train_x, test_x, train, test in folds:
        y = labels[train]
        if y.min() == y.max():  # a one-class training fold says nothing: an uninformative constant
            continue
        model = LogisticRegression(C=C, max_iter=2000).fit(train_x, y)
        scores[test] = model.decision_function(test_x)
    return float(roc_auc_score(labels, scores))


def domain_classifier_test(reference, current, seed: int | None = 0, *, n_permutations: int = 200,
                           n_splits: int = 5, C: float = 1e-3) -> ClassifierResult:
    """Cross-validated logistic-regression two-sample test of ``reference`` (m, dim) vs ``current`` (n, dim).

    Costs ``n_splits * (1 + n_permutations)`` fits (3-6 ms each for 640 x 384, one BLAS thread);
    ``n_permutations=0`` gives the AUC alone. ``C`` is the inverse L2 strength; the default 1e-3 (a
    strongly regularised, nearly mean-difference direction) had the best power on a development
    pair of corpora (fortunes ``people`` vs ``love``) among C in {1e-3, 1e-2, 1} with standardised
    features and C in {1, 10} without. Deterministic under ``seed`` (folds and relabellings);
    the inputs are not modified.
    """
    x = as_matrix(reference, "reference", min_rows=2)
    y = as_matrix(current, "current", min_rows=2)
    same_dim(x, y)
    if n_permutations < 0:
        raise ValueError(f"n_permutations must be >= 0, got {n_permutations}")
    features = np.vstack([x, y])
    if len(features) < 2 * n_splits:
        raise ValueError(f"{len(features)} rows are too few for {n_splits} folds")
    labels = np.r_[np.zeros(len(x), dtype=int), np.ones(len(y), dtype=int)]
    rng = np.random.default_rng(seed)
    splitter = KFold(n_splits=n_splits, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
    folds = []
    for train, test in splitter.split(features):
        scaler = StandardScaler().fit(features[train])  # label-free, so shared by all relabellings
        folds.append((scaler.transform(features[train]), scaler.transform(features[test]), train, test))

    # Many small fits: one BLAS thread is faster than several (as sklearn's own KMeans does).
    with threadpool_limits(limits=1, user_api="blas"):
        auc = _out_of_fold_auc(folds, labels, C)
        null = np.array([_out_of_fold_auc(folds, rng.permutation(labels), C) for _ in range(n_permutations)])
    if n_permutations == 0:
        return ClassifierResult(auc=auc, p_value=None, n_splits=n_splits, n_permutations=0)
    p_value = (1.0 + np.count_nonzero(null >= auc - 1e-12)) / (1.0 + n_permutations)
    return ClassifierResult(auc=auc, p_value=float(p_value), n_splits=n_splits, n_permutations=n_permutations)


@dataclass(frozen=True)
class DomainClassifierTest:
    """:func:`domain_classifier_test` with its options fixed: a ``protocols.TwoSampleTest``.

    ``DomainClassifierTest(seed, n_permutations, n_splits, C).test(x, y)`` is
    ``domain_classifier_test(x, y, seed, n_permutations=..., n_splits=..., C=...)`` (Lopez-Paz &
    Oquab 2017, see the module docstring).
    """

    seed: int | None = 0
    n_permutations: int = 200
    n_splits: int = 5
    C: float = 1e-3

    def test(self, reference, current) -> ClassifierResult:
        """The cross-validated classifier two-sample test of ``reference`` against ``current``."""
        return domain_classifier_test(reference, current, self.seed, n_permutations=self.n_permutations,
                                      n_splits=self.n_splits, C=self.C)

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"seed": 3, "n_permutations": 19}
