"""A detector measured against people: everything the calibration job stores for one detector,
label and segment, from the labelled review items and their inclusion probabilities pi_i.

Every statistic over requests weights item i by w_i = 1/pi_i (Horvitz & Thompson 1952), so it
describes the traffic, not the oversampled review set:

* ROC AUC (weighted Mann-Whitney, :func:`.estimators.weighted_auc`);
* precision P(bad | flag) and recall P(flag | bad) at the threshold in force, Hájek ratios with
  linearisation CIs (:func:`.estimators.hajek_ratio`);
* Cohen's (1960) kappa between flag and label with a bootstrap CI (:mod:`.agreement`);
* Krippendorff's alpha between the two reviewers of doubly-labelled items (:mod:`.agreement`);
* the Rogan-Gladen corrected prevalence next to the raw flagged share
  (:func:`.estimators.rogan_gladen`); it estimates the share reviewers would call bad. ``details``
  adds the share corrected for the reviewers' own error too
  (:func:`.agreement.reviewer_corrected_prevalence`, under its stated assumptions);
* the threshold that meets a target precision or recall, and a calibration map from score to
  P(bad) with its reliability diagram (:mod:`.mapping`).

Items without a score (None or NaN: the detector did not run on them) count in ``labelled``,
``doubly_labelled`` and alpha, and are left out of every score-based statistic; ``details``
says how many.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from parrotwatch.detectors.alerting.lifecycle import plain
from parrotwatch.detectors.calibration.agreement import (
    kappa_interval,
    krippendorff_alpha,
    reviewer_corrected_prevalence,
)
from parrotwatch.detectors.calibration.estimators import (
    Estimate,
    Prevalence,
    hajek_ratio,
    rogan_gladen,
    weighted_auc,
)
from parrotwatch.detectors.calibration.mapping import fit_calibration, reliability_diagram

#: doubly-labelled scored items needed before the stored corrected rate also corrects for the
#: reviewers' own error (see :meth:`DetectorCalibration.corrected`)
MIN_DOUBLY_LABELLED = 10


@dataclass(frozen=True)
class DetectorCalibration:
    """One detector's calibration against human labels (see the module)."""

    labelled: int                 # items with a human label
    doubly_labelled: int          # items with two reviewers
    threshold: float              # in force
    auc: float                    # weighted ROC AUC (nan when one class only)
    precision_at: Estimate        # weighted precision at the threshold (Hajek, with CI)
    recall_at: Estimate           # weighted recall (= sensitivity) at the threshold
    kappa: Estimate               # weighted Cohen's kappa flag-vs-label, with CI
    alpha: float | None           # Krippendorff's alpha between the two reviewers
    prevalence: Prevalence        # Rogan-Gladen corrected vs raw (estimators.rogan_gladen)
    target: dict[str, float]      # {"precision": 0.9} or {"recall": 0.9}
    suggested_threshold: float | None  # the threshold that meets the target, None if none does
    calibration_map: dict         # JSON form of the chosen map
    reliability: list[dict]       # [{"bin": i, "mean_score": .., "observed": .., "weight": ..}]
    details: dict = field(default_factory=dict)  # everything else, JSON-able

    def corrected(self) -> tuple[Estimate, str]:
        """The corrected rate to report, and what it corrects for: detector and reviewer error
        when at least :data:`MIN_DOUBLY_LABELLED` scored items have two labels (and the
        correction is defined), else the detector's error only (the rate reviewers call bad)."""
        noise = self.details.get("reviewer_noise") or {}
        both = noise.get("corrected") or {}
        if (noise.get("doubly_labelled_scored", 0) >= MIN_DOUBLY_LABELLED
                and both.get("value") is not None and math.isfinite(both["value"])):
            return Estimate(**both), "detector and reviewer error"
        return self.prevalence.corrected, "detector error only"

    def to_record(self) -> dict:
        """The columns of ``calibration_records`` this object fills: plain floats, None for NaN,
        JSON-able dicts and lists. ``corrected_*`` is :meth:`corrected`'s estimate; the other
        one stays in ``details``."""
        prevalence = self.prevalence
        corrected, corrected_for = self.corrected()
        record = {
            "labelled": self.labelled, "doubly_labelled": self.doubly_labelled,
            "threshold": self.threshold, "auc": self.auc,
            "precision_at": self.precision_at.value, "recall_at": self.recall_at.value,
            "kappa": self.kappa.value, "kappa_low": self.kappa.low, "kappa_high": self.kappa.high,
            "alpha": self.alpha, "raw_rate": prevalence.raw,
            "corrected_rate": corrected.value,
            "corrected_low": corrected.low,
            "corrected_high": corrected.high,
            "sensitivity": prevalence.sensitivity.value,
            "specificity": prevalence.specificity.value,
            "target": self.target, "suggested_threshold": self.suggested_threshold,
            "calibration_map": self.calibration_map, "reliability": self.reliability,
            "details": {**self.details, "corrected_for": corrected_for},
        }
        return {key: plain(value) for key, value in record.items()}


def suggest_threshold(scores, labels, weights, *, higher_is_worse: bool = True,
                      target_precision: float | None = None,
                      target_recall: float | None = None) -> float | None:
    """The threshold that meets a target, among the observed scores (a request is flagged when
    its score is above the threshold, or below it when lower is worse), plus one just beyond the
    lowest (highest) score that flags every item:

    * ``target_precision``: the threshold flagging the most requests (the smallest one, when
      higher is worse) whose weighted precision sum w y f / sum w f reaches the target;
    * ``target_recall``: the one flagging the fewest (the largest) whose weighted recall
      sum w y f / sum w y reaches the target.

    None when no threshold does. The precision is a point estimate on the labels: read it with
    the CI of ``precision_at`` once the threshold is in force.

    >>> s, y = [0.1, 0.2, 0.3, 0.6, 0.7, 0.8], [0, 0, 1, 0, 1, 1]
    >>> suggest_threshold(s, y, [1] * 6, target_precision=0.75)  # flags 0.3 and above: 3/4
    0.2
    >>> suggest_threshold(s, y, [1] * 6, target_precision=0.8)  # 0.3 flags 0.6 and above: 2/3
    0.6
    >>> suggest_threshold(s, y, [1] * 6, target_recall=1.0)  # flags 0.3 and above
    0.2
    """
    if (target_precision is None) == (target_recall is None):
        raise ValueError("give exactly one of target_precision and target_recall")
    sign = 1.0 if higher_is_worse else -1.0
    s = sign * np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if s.size == 0 or not np.any(y > 0):
        return None
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    candidates = np.r_[np.nextafter(s[0], -np.inf), np.unique(s)]
    first_flagged = np.searchsorted(s, candidates, side="right")  # flagged: s > candidate
    bad_above = np.r_[np.cumsum((w * y)[::-1])[::-1], 0.0][first_flagged]
    all_above = np.r_[np.cumsum(w[::-1])[::-1], 0.0][first_flagged]
    with np.errstate(divide="ignore", invalid="ignore"):
        if target_precision is not None:
            meets = np.flatnonzero((all_above > 0) & (bad_above / all_above >= target_precision))
            chosen = meets[0] if meets.size else None
        else:
            meets = np.flatnonzero(bad_above / bad_above[0] >= target_recall)
            chosen = meets[-1] if meets.size else None
    return None if chosen is None else float(sign * candidates[chosen])


def _as_float(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _validate(scores, labels, pi, second, raw_rate: float, level: float) -> None:
    if not (scores.size == labels.size == pi.size == second.size):
        raise ValueError(f"scores, labels, pi and second_labels must have one value per item, got "
                         f"{scores.size}, {labels.size}, {pi.size} and {second.size}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 1 (bad) or 0 (good) for every item")
    if not np.isin(second[~np.isnan(second)], (0, 1)).all():
        raise ValueError("second_labels must be 1 (bad), 0 (good) or NaN (no second reviewer)")
    if np.any(~(pi > 0) | (pi > 1)):
        raise ValueError("inclusion probabilities pi must lie in (0, 1]")
    if not 0 <= raw_rate <= 1:
        raise ValueError(f"raw_rate is a share of requests, in [0, 1], got {raw_rate}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def _estimate_json(e: Estimate) -> dict:
    return asdict(e)


def calibrate_detector(scores, labels, pi, *, threshold: float, raw_rate: float,
                       higher_is_worse: bool = True, second_labels=None,
                       target_precision: float | None = None,
                       target_recall: float | None = None,
                       seed: int = 0, level: float = 0.95) -> DetectorCalibration:
    """scores: the detector's score per labelled item; labels: the (first) reviewer's
    verdict 1 = bad / 0 = good; pi: inclusion probability per item; raw_rate: the flagged
    share over ALL scored requests of the period and segment; second_labels: the second
    reviewer's verdict per item, NaN where there is none (alpha).

    A request is flagged when its score is above ``threshold`` (below it when lower is worse),
    as the stream and :func:`.sampling.pool_probability` flag. ``seed`` fixes the kappa
    bootstrap and the cross-validation folds.

    >>> rng = np.random.default_rng(0)
    >>> bad = rng.random(300) < 0.2
    >>> c = calibrate_detector(rng.normal(2.0 * bad, 1.0), bad.astype(int), [0.1] * 300,
    ...                        threshold=1.0, raw_rate=0.3, target_precision=0.8)
    >>> c.labelled, 0.8 < c.auc < 1, c.kappa.low < c.kappa.value < c.kappa.high
    (300, True, True)
    >>> sorted(c.to_record())[:4]
    ['alpha', 'auc', 'calibration_map', 'corrected_high']
    """
    s = _as_float(scores)
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(pi, dtype=np.float64)
    y2 = np.full(y.size, np.nan) if second_labels is None else _as_float(second_labels)
    _validate(s, y, p, y2, raw_rate, level)
    if target_precision is not None and target_recall is not None:
        raise ValueError("give target_precision or target_recall, not both")
    target = ({"precision": float(target_precision)} if target_precision is not None else
              {"recall": float(target_recall)} if target_recall is not None else {})
    labelled, doubly = int(y.size), int((~np.isnan(y2)).sum())
    alpha = krippendorff_alpha(y, y2, "nominal")

    scored = ~np.isnan(s)
    s, y, p, y2 = s[scored], y[scored], p[scored], y2[scored]
    w = 1.0 / p
    flags = ((s > threshold) if higher_is_worse else (s < threshold)).astype(np.float64)
    notes = []
    if (~scored).any():
        notes.append(f"{int((~scored).sum())} labelled items without a score are left out of the "
                     "score-based statistics")
    one_class = np.unique(y).size < 2
    if one_class:
        notes.append("one class only among the scored labels: AUC, the corrected rate and one of "
                     "sensitivity and specificity are undefined, and kappa is 0 by construction")
    auc = weighted_auc(s if higher_is_worse else -s, y, w) if s.size else float("nan")
    precision = hajek_ratio(flags * y, flags, p, level)
    recall = hajek_ratio(flags * y, y, p, level)
    kappa = kappa_interval(flags, y, w, seed=seed, level=level)
    prevalence = rogan_gladen(raw_rate, flags, y, p, level)
    suggested = (suggest_threshold(s, y, w, higher_is_worse=higher_is_worse,
                                   target_precision=target_precision, target_recall=target_recall)
                 if target else None)
    fitted = fit_calibration(s, y, w, higher_is_worse=higher_is_worse, seed=seed)
    if fitted.map.note:
        notes.append(f"calibration map: {fitted.map.note}")

    details = {
        "scored": int(scored.sum()), "unscored": int((~scored).sum()), "level": level,
        "higher_is_worse": higher_is_worse,
        "precision": _estimate_json(precision), "recall": _estimate_json(recall),
        "kappa": _estimate_json(kappa),
        "corrected": _estimate_json(prevalence.corrected),
        "sensitivity": _estimate_json(prevalence.sensitivity),
        "specificity": _estimate_json(prevalence.specificity),
    }
    if (~np.isnan(y2)).any():
        noise = reviewer_corrected_prevalence(raw_rate, flags, y, y2, p, level=level)
        details["reviewer_noise"] = {
            "assumption": "reviewers err at one symmetric rate, independently given the truth",
            "doubly_labelled_scored": noise.doubly_labelled,
            "reviewer_error": _estimate_json(noise.reviewer_error),
            "corrected": _estimate_json(noise.corrected),
        }
    details["notes"] = notes
    return DetectorCalibration(
        labelled=labelled, doubly_labelled=doubly, threshold=float(threshold),
        auc=float(auc), precision_at=precision, recall_at=recall, kappa=kappa, alpha=alpha,
        prevalence=prevalence, target=target, suggested_threshold=suggested,
        calibration_map=fitted.map.to_json(),
        reliability=reliability_diagram(fitted.predictions, y, w), details=details)
