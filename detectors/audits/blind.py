"""Blind baseline of a membership audit: a classifier that never sees the model, only the texts.

Das, Zhang & Tramèr 2024, "Blind Baselines Beat Membership Inference Attacks for Foundation Models":
when members and non-members are drawn from different distributions (other sources, other dates), a
classifier of the texts alone separates them as well as, or better than, published attacks. A membership
AUC is then evidence of the distribution shift, not of memorization.

Features of a text x (one sparse row, the three blocks side by side, sklearn ``FeatureUnion``):

    words   TF-IDF of word 1- and 2-grams (lower-cased)     tf-idf(t, x) = (1 + ln tf) * idf(t), then
    chars   TF-IDF of character 2..4-grams within words     each block's row is L2-normalised;
                                                             idf(t) = ln((1 + n) / (1 + df(t))) + 1
    dates   binary indicators of date-like tokens (:func:`date_tokens`): years 1500-2099 (``year:1999``)
            and their decades (``decade:1990s``), month names (``month:march``), ISO dates (``date:iso``),
            d/m/y or m/d/y dates (``date:numeric``); ``date:none`` for a text with none of them

Classifier: L2-regularised logistic regression (liblinear), P(member | x) = sigmoid(w . phi(x) + b), fitted by
stratified k-fold cross-validation; each text's score is the decision value w . phi(x) + b of the model
fitted without its fold (out-of-fold), and the blind AUC is the ROC AUC of those scores with its percentile
bootstrap CI (:func:`parrotwatch.detectors.audits.roc.roc_report`). The vectorisers are fitted inside each
fold, so no vocabulary or idf leaks from the held-out fold.

Guard (:func:`blind_guard`): the attacks are no evidence of memorization when
blind_auc >= ci_low(best attack), the best attack being the one of highest AUC: the blind classifier
lies within (or above) the attack's 95% CI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from parrotwatch.detectors.audits.roc import RocReport, roc_report

try:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import FeatureUnion, make_pipeline
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"{__name__} needs scikit-learn: pip install scikit-learn") from exc

__all__ = ["BlindResult", "GuardVerdict", "blind_features", "blind_guard", "blind_membership", "date_tokens"]

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
_ABBREVIATIONS = {m[:3]: m for m in _MONTHS} | {"sept": "september"}
# Month names count when capitalised (English writes them so): "March 2020", "Sept.", not "we march".
_MONTH = re.compile(r"\b(" + "|".join(m.capitalize() for m in _MONTHS) + "|"
                    + "|".join(a.capitalize() for a in _ABBREVIATIONS if a != "may") + r")\b\.?")
_ISO_DATE = re.compile(r"\b(1[5-9]\d\d|20\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\b")
_NUMERIC_DATE = re.compile(r"\b\d{1,2}[/.]\d{1,2}[/.](\d{4}|\d{2})\b")
_YEAR = re.compile(r"(?<![\d.\-/])(1[5-9]\d\d|20\d\d)(?![\d\-/]|\.\d)")


def date_tokens(text: str) -> list[str]:
    """The date-like tokens of ``text``, in order of kind (years, months, ISO dates, numeric dates).

    A year is a number 1500..2099 standing alone (not part of a longer number, a decimal or a date);
    an ISO date also gives its year.

    >>> date_tokens("Released in March 1999, updated 2024-03-05 and on 5/3/2024; we march on.")
    ['year:1999', 'decade:1990s', 'year:2024', 'decade:2020s', 'month:march', 'date:iso', 'date:numeric']
    >>> date_tokens("pi is 3.1415 and 12000 is not a year")
    []
    """
    years = [m.group(1) for m in _YEAR.finditer(text)] + [m.group(1) for m in _ISO_DATE.finditer(text)]
    out = []
    for y in sorted(set(years), key=years.index):
        out += [f"year:{y}", f"decade:{y[:3]}0s"]
    for m in _MONTH.finditer(text):
        name = m.group(1).lower()
        out.append(f"month:{_ABBREVIATIONS.get(name, name)}")
    out += ["date:iso"] * len(_ISO_DATE.findall(text))
    out += ["date:numeric"] * len(_NUMERIC_DATE.findall(text))
    return out


def _date_features(text: str) -> list[str]:
    """:func:`date_tokens`, or ``date:none`` for a text without one (absence is a feature too)."""
    return date_tokens(text) or ["date:none"]


def blind_features() -> FeatureUnion:
    """The unfitted feature map phi: word 1-2-gram TF-IDF, character 2-4-gram TF-IDF, date indicators."""
    return FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)),
        ("dates", CountVectorizer(analyzer=_date_features, binary=True)),
    ])


@dataclass(frozen=True)
class BlindResult:
    """``roc``: the ROC of the out-of-fold ``scores`` (one per text, input order; higher = member)."""

    roc: RocReport
    scores: tuple[float, ...]
    folds: int

    @property
    def auc(self) -> float:
        return self.roc.auc


def blind_membership(texts: Sequence[str], labels: Sequence[int], folds: int = 5, n_bootstrap: int = 1000,
                     seed: int = 0, c: float = 1.0) -> BlindResult:
    """Blind AUC of telling members (label 1) from non-members (0) by the texts alone (Das et al. 2024).

    ``folds``-fold stratified cross-validation (shuffled with ``seed``; at most the smaller class size),
    logistic regression of inverse regularisation strength ``c`` on :func:`blind_features`; the AUC of the
    out-of-fold decision values with its bootstrap CI (``n_bootstrap`` resamples, ``seed``).
    """
    y = np.asarray(labels)
    if len(texts) != y.size or not np.isin(y, (0, 1)).all():
        raise ValueError("texts and labels need one length, labels 1 (member) or 0 (non-member)")
    smaller = int(min((y == 1).sum(), (y == 0).sum()))
    if smaller < 2 or folds < 2:
        raise ValueError(f"need folds >= 2 and at least 2 members and 2 non-members, got folds={folds}, "
                         f"{int((y == 1).sum())} members, {int((y == 0).sum())} non-members")
    k = min(folds, smaller)
    model = make_pipeline(blind_features(), LogisticRegression(C=c, solver="liblinear", random_state=seed))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"):  # small fits: one BLAS thread is the fastest
        scores = cross_val_predict(model, list(texts), y, cv=cv, method="decision_function")
    return BlindResult(roc_report(scores, y, n_bootstrap=n_bootstrap, seed=seed), tuple(scores.tolist()), k)


@dataclass(frozen=True)
class GuardVerdict:
    """``fires``: blind_auc >= ``best_ci_low``, the 95% CI low of the attack ``best_method`` of highest AUC.

    ``shift``: the blind classifier itself beats chance (its CI low > 1/2), i.e. the sets differ in
    distribution; a guard that fires without it means the attacks are no better than a chance-level blind
    classifier.
    """

    fires: bool
    shift: bool
    blind_auc: float
    best_method: str
    best_auc: float
    best_ci_low: float


def blind_guard(blind: RocReport, attacks: Mapping[str, RocReport]) -> GuardVerdict:
    """Whether the blind baseline explains the attacks: blind AUC >= CI low of the best attack.

    >>> from types import SimpleNamespace as R
    >>> v = blind_guard(R(auc=0.91, auc_ci_low=0.85), {"loss": R(auc=0.93, auc_ci_low=0.88),
    ...                                               "zlib": R(auc=0.80, auc_ci_low=0.70)})
    >>> v.fires, v.shift, v.best_method
    (True, True, 'loss')
    """
    if not attacks:
        raise ValueError("the blind guard needs at least one attack's ROC")
    best = max(attacks, key=lambda m: attacks[m].auc)
    low = attacks[best].auc_ci_low
    return GuardVerdict(fires=bool(blind.auc >= low), shift=bool(blind.auc_ci_low > 0.5),
                        blind_auc=float(blind.auc), best_method=best, best_auc=float(attacks[best].auc),
                        best_ci_low=float(low))
