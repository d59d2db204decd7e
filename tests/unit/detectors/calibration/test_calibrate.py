"""calibrate_detector against scikit-learn and krippendorff on the same data, the suggested
threshold against brute force, and the edge cases: no labels, one class, all pi = 1, NaN
scores, one reviewer only."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, precision_score, recall_score, roc_auc_score

from parrotwatch.detectors.calibration.calibrate import calibrate_detector, suggest_threshold

COLUMNS = {"labelled", "doubly_labelled", "threshold", "auc", "precision_at", "recall_at", "kappa",
           "kappa_low", "kappa_high", "alpha", "raw_rate", "corrected_rate", "corrected_low",
           "corrected_high", "sensitivity", "specificity", "target", "suggested_threshold",
           "calibration_map", "reliability", "details"}


def _labelled(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    bad = (rng.random(n) < 0.3).astype(int)
    scores = np.round(rng.normal(1.5 * bad, 1.0), 1)  # rounded: ties
    pi = rng.uniform(0.02, 0.6, n)
    second = np.where(rng.random(n) < 0.9, bad, 1 - bad).astype(float)
    second[rng.random(n) < 0.6] = np.nan
    return scores, bad, pi, second


@pytest.mark.parametrize("seed", range(3))
def test_statistics_equal_the_reference_packages(seed):
    scores, bad, pi, second = _labelled(seed)
    c = calibrate_detector(scores, bad, pi, threshold=0.8, raw_rate=0.3, second_labels=second,
                           target_precision=0.8)
    w = 1 / pi
    flags = scores > 0.8
    assert c.auc == pytest.approx(roc_auc_score(bad, scores, sample_weight=w), abs=1e-12)
    assert c.kappa.value == pytest.approx(cohen_kappa_score(flags, bad, sample_weight=w), abs=1e-12)
    assert c.alpha == pytest.approx(krippendorff.alpha(reliability_data=np.vstack([bad, second]),
                                                       level_of_measurement="nominal"), abs=1e-12)
    assert c.precision_at.value == pytest.approx(precision_score(bad, flags, sample_weight=w), abs=1e-12)
    assert c.recall_at.value == pytest.approx(recall_score(bad, flags, sample_weight=w), abs=1e-12)
    assert c.recall_at.value == pytest.approx(c.prevalence.sensitivity.value, abs=1e-12)
    assert c.labelled == 300 and c.doubly_labelled == int((~np.isnan(second)).sum())
    assert c.kappa.low < c.kappa.value < c.kappa.high


def test_lower_is_worse_mirrors_higher_is_worse():
    scores, bad, pi, _ = _labelled(4)
    up = calibrate_detector(scores, bad, pi, threshold=0.8, raw_rate=0.3, target_precision=0.8)
    down = calibrate_detector(-scores, bad, pi, threshold=-0.8, raw_rate=0.3, higher_is_worse=False,
                              target_precision=0.8)
    assert down.auc == pytest.approx(up.auc) and down.kappa == up.kappa
    assert down.precision_at == up.precision_at
    assert down.suggested_threshold == pytest.approx(-up.suggested_threshold)


def _brute_force(scores, bad, w, target, kind):
    best = None
    for t in np.r_[scores.min() - 1, np.unique(scores)]:
        f = scores > t
        tp = np.sum(w * f * bad)
        value = tp / np.sum(w * f) if kind == "precision" and f.any() else tp / np.sum(w * bad)
        if (kind == "precision" and f.any() or kind == "recall") and value >= target:
            best = t if kind == "recall" or best is None else best
    return best


@pytest.mark.parametrize("kind, target", [("precision", 0.7), ("precision", 0.9), ("recall", 0.8),
                                          ("recall", 0.95)])
@pytest.mark.parametrize("seed", range(3))
def test_the_suggested_threshold_meets_the_target_and_is_the_extreme_one(kind, target, seed):
    scores, bad, pi, _ = _labelled(seed)
    kwargs = {f"target_{kind}": target}
    got = suggest_threshold(scores, bad, 1 / pi, **kwargs)
    expected = _brute_force(scores, bad, 1 / pi, target, kind)
    if expected is not None and expected < scores.min():  # "flag everything": any t below the min
        assert got < scores.min()
    else:
        assert got == expected
    c = calibrate_detector(scores, bad, pi, threshold=0.8, raw_rate=0.3, **kwargs)
    assert c.suggested_threshold == got and c.target == {kind: target}


def test_an_unreachable_target_suggests_nothing():
    assert suggest_threshold([0.1, 0.9], [1, 0], [1, 1], target_precision=0.9) is None
    with pytest.raises(ValueError, match="exactly one"):
        suggest_threshold([0.1], [1], [1])


def test_the_record_is_plain_json_with_every_column():
    scores, bad, pi, second = _labelled(5)
    record = calibrate_detector(scores, bad, pi, threshold=0.8, raw_rate=0.3, second_labels=second,
                                target_recall=0.9).to_record()
    assert set(record) == COLUMNS
    json.dumps(record, allow_nan=False)
    assert record["calibration_map"]["method"] in ("platt", "isotonic")
    assert {"bin", "mean_score", "observed", "weight"} <= set(record["reliability"][0])
    assert record["details"]["reviewer_noise"]["reviewer_error"]["value"] >= 0
    assert record["corrected_low"] <= record["corrected_rate"] <= record["corrected_high"]


def test_no_labels():
    c = calibrate_detector([], [], [], threshold=0.5, raw_rate=0.2, target_precision=0.9)
    assert c.labelled == 0 and c.doubly_labelled == 0 and c.alpha is None
    assert np.isnan(c.auc) and np.isnan(c.kappa.value) and np.isnan(c.prevalence.corrected.value)
    assert c.suggested_threshold is None and c.reliability == []
    record = c.to_record()
    json.dumps(record, allow_nan=False)
    assert record["auc"] is None and record["raw_rate"] == 0.2


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_only(label):
    scores = np.linspace(0, 1, 20)
    c = calibrate_detector(scores, [label] * 20, [0.1] * 20, threshold=0.5, raw_rate=0.2,
                           target_precision=0.9)
    assert np.isnan(c.auc) and np.isnan(c.prevalence.corrected.value)
    assert c.kappa.value == cohen_kappa_score(scores > 0.5, [label] * 20) == 0  # by construction
    assert c.calibration_map["method"] == "constant" and "one class only" in c.calibration_map["note"]
    assert any("one class only" in note for note in c.details["notes"])
    json.dumps(c.to_record(), allow_nan=False)


def test_all_pi_one_is_the_unweighted_census():
    scores, bad, _, _ = _labelled(6)
    c = calibrate_detector(scores, bad, np.ones(bad.size), threshold=0.8, raw_rate=0.3)
    flags = scores > 0.8
    assert c.auc == pytest.approx(roc_auc_score(bad, scores))
    assert c.kappa.value == pytest.approx(cohen_kappa_score(flags, bad))
    assert c.precision_at.se == 0 and c.prevalence.corrected.se == 0  # nothing left unsampled


def test_unscored_items_are_left_out_of_the_score_statistics_only():
    scores, bad, pi, second = _labelled(7)
    holes = scores.astype(object)
    holes[::10] = None
    holes[1::10] = float("nan")
    c = calibrate_detector(holes, bad, pi, threshold=0.8, raw_rate=0.3, second_labels=second)
    keep = np.ones(bad.size, bool)
    keep[::10] = keep[1::10] = False
    ref = calibrate_detector(scores[keep], bad[keep], pi[keep], threshold=0.8, raw_rate=0.3,
                             second_labels=second[keep])
    assert c.auc == ref.auc and c.kappa == ref.kappa and c.prevalence == ref.prevalence
    assert c.labelled == bad.size and c.details["unscored"] == int((~keep).sum())
    assert c.doubly_labelled == int((~np.isnan(second)).sum())  # all items, scored or not
    assert any("without a score" in note for note in c.details["notes"])


def test_one_reviewer_only():
    scores, bad, pi, _ = _labelled(8)
    c = calibrate_detector(scores, bad, pi, threshold=0.8, raw_rate=0.3,
                           second_labels=[float("nan")] * bad.size)
    assert c.alpha is None and c.doubly_labelled == 0 and "reviewer_noise" not in c.details
    assert c.to_record()["alpha"] is None


@pytest.mark.parametrize("bad_input, message", [
    (dict(labels=[1, 2]), "labels must be 1"),
    (dict(pi=[0.0, 0.5]), "pi must lie in"),
    (dict(second_labels=[1, 3]), "second_labels must be"),
    (dict(scores=[0.1]), "one value per item"),
    (dict(raw_rate=1.5), "raw_rate"),
    (dict(target_precision=0.9, target_recall=0.9), "not both"),
])
def test_bad_input_says_what_to_fix(bad_input, message):
    args = dict(scores=[0.1, 0.9], labels=[0, 1], pi=[0.5, 0.5], threshold=0.5, raw_rate=0.2)
    args.update(bad_input)
    with pytest.raises(ValueError, match=message):
        calibrate_detector(args.pop("scores"), args.pop("labels"), args.pop("pi"), **args)


def test_the_stored_rate_corrects_for_reviewer_error_once_enough_items_have_two_labels():
    scores, bad, pi, second = _labelled(7)
    few = second.copy()
    few[np.flatnonzero(~np.isnan(few))[5:]] = np.nan  # 5 doubly-labelled items: too few
    for seconds, corrected_for in ((second, "detector and reviewer error"),
                                   (few, "detector error only"), (None, "detector error only")):
        c = calibrate_detector(scores, bad, pi, threshold=0.8, raw_rate=0.3, second_labels=seconds)
        record = c.to_record()
        assert record["details"]["corrected_for"] == corrected_for
        expected = (c.details["reviewer_noise"]["corrected"]["value"] if seconds is second
                    else c.prevalence.corrected.value)
        assert record["corrected_rate"] == pytest.approx(expected)
    noisy = calibrate_detector(scores, bad, pi, threshold=0.8, raw_rate=0.3, second_labels=second)
    # the second reviewer disagrees on ~10% of items: the reviewer-corrected rate differs
    assert noisy.to_record()["corrected_rate"] != pytest.approx(noisy.prevalence.corrected.value)
