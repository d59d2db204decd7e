"""Calibration maps: the JSON form predicts what the fitted map does, isotonic matches
scikit-learn, cross-validation picks the map that fits, weights count, and few or one-class
labels do not crash."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from parrotwatch.detectors.calibration.mapping import (
    CalibrationMap,
    fit_calibration,
    fit_isotonic,
    fit_platt,
    reliability_diagram,
)


def _logistic(seed: int, n: int, a: float = 2.0, b: float = -1.0):
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 1.5, n)
    return s, (rng.random(n) < 1 / (1 + np.exp(-(a * s + b)))).astype(float)


@pytest.mark.parametrize("fit", [fit_platt, fit_isotonic])
def test_the_json_form_predicts_the_same_values(fit):
    s, y = _logistic(0, 300)
    fitted = fit(s, y, np.ones(s.size))
    back = CalibrationMap.from_json(json.loads(json.dumps(fitted.to_json())))
    grid = np.linspace(-6, 6, 101)
    np.testing.assert_allclose(back.predict(grid), fitted.predict(grid), rtol=0, atol=1e-15)


def test_isotonic_predicts_as_scikit_learn_with_weights():
    s, y = _logistic(1, 300)
    w = np.random.default_rng(1).uniform(1, 10, 300)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, y, sample_weight=w)
    grid = np.linspace(-8, 8, 333)
    np.testing.assert_allclose(fit_isotonic(s, y, w).predict(grid), reference.predict(grid), atol=1e-12)


def test_platt_recovers_a_logistic_truth():
    s, y = _logistic(2, 5000)
    m = fit_platt(s, y, np.ones(s.size))
    assert m.params["a"] == pytest.approx(2.0, rel=0.1) and m.params["b"] == pytest.approx(-1.0, abs=0.15)


def test_cross_validation_picks_isotonic_for_a_step_truth():
    """P(bad) jumps from 0.05 to 0.95 at a score of 0 and stays flat: no logistic curve fits."""
    rng = np.random.default_rng(3)
    s = rng.uniform(-3, 3, 3000)
    y = (rng.random(3000) < np.where(s > 0, 0.95, 0.05)).astype(float)
    fitted = fit_calibration(s, y)
    assert fitted.map.method == "isotonic", fitted.map.cv
    assert fitted.map.cv["isotonic"]["brier"] < fitted.map.cv["platt"]["brier"]


def test_lower_is_worse_gives_a_decreasing_map():
    s, y = _logistic(4, 500, a=-2.0, b=0.0)
    fitted = fit_calibration(s, y, higher_is_worse=False)
    p = fitted.map.predict(np.array([-3.0, 0.0, 3.0]))
    assert p[0] > p[1] > p[2]


def test_weights_make_the_map_describe_the_traffic():
    """Bad items oversampled 4x: weighted by 1/pi, the map's mean equals the traffic's rate."""
    rng = np.random.default_rng(5)
    s = rng.normal(0, 1, 20000)
    bad = rng.random(20000) < 1 / (1 + np.exp(-(2 * s - 2)))
    pi = np.where(bad, 0.2, 0.05)
    kept = rng.random(20000) < pi
    fitted = fit_calibration(s[kept], bad[kept], 1 / pi[kept])
    assert np.mean(fitted.map.predict(s)) == pytest.approx(bad.mean(), abs=0.025)
    unweighted = fit_calibration(s[kept], bad[kept])
    assert np.mean(unweighted.map.predict(s)) > bad.mean() + 0.1


def test_ten_labels_are_enough_for_a_map():
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    y = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    fitted = fit_calibration(s, y, np.full(10, 4.0))
    assert fitted.map.method in ("platt", "isotonic")
    assert fitted.predictions.shape == (10,) and np.all((fitted.predictions >= 0) & (fitted.predictions <= 1))
    json.dumps(fitted.map.to_json(), allow_nan=False)


def test_a_single_label_of_one_class_gives_platt_without_cross_validation():
    fitted = fit_calibration([0.1, 0.2, 0.9], [0, 0, 1])
    assert fitted.map.method == "platt" and "without cross-validation" in fitted.map.note
    assert fitted.map.predict([0.95])[0] > fitted.map.predict([0.05])[0]


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_only_gives_a_constant_map_that_says_so(label):
    fitted = fit_calibration([0.1, 0.5, 0.9], [label] * 3)
    data = fitted.map.to_json()
    assert data["method"] == "constant" and data["probability"] == label
    assert "one class only" in data["note"]
    assert CalibrationMap.from_json(data).predict([0.3]).tolist() == [label]


def test_no_labels_and_nan_scores():
    assert fit_calibration([], []).map.to_json()["method"] == "constant"
    with pytest.raises(ValueError, match="leave the unscored items out"):
        fit_calibration([0.1, float("nan")], [0, 1])


def test_reliability_diagram_reweights_and_bins():
    p = np.array([0.05, 0.05, 0.15, 0.95, 0.95])
    y = np.array([0, 1, 0, 1, 1])
    w = np.array([9.0, 1.0, 2.0, 1.0, 1.0])
    rows = reliability_diagram(p, y, w, bins=10)
    assert [r["bin"] for r in rows] == [0, 1, 9]
    assert rows[0]["observed"] == pytest.approx(0.1) and rows[0]["weight"] == 10.0
    assert rows[0]["mean_score"] == pytest.approx(0.05) and rows[2]["observed"] == 1.0
    assert sum(r["count"] for r in rows) == 5


def test_a_calibrated_map_is_reliable():
    """DeGroot & Fienberg: for a calibrated forecaster, observed frequency = forecast per bin."""
    s, y = _logistic(6, 20000)
    fitted = fit_calibration(s, y)
    for row in reliability_diagram(fitted.predictions, y):
        if row["count"] > 500:
            assert row["observed"] == pytest.approx(row["mean_score"], abs=0.04), row


def test_platt_does_not_depend_on_the_scale_of_the_weights():
    """Weights of 1/pi are population-sized; multiplying them all by a constant is the same
    sample, so the same map."""
    from parrotwatch.detectors.calibration.mapping import fit_platt

    s = np.array([0.1, 0.2, 0.4, 0.6, 0.8, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1])
    maps = [fit_platt(s, y, np.full(6, scale)).to_json() for scale in (1.0, 100.0, 10_000.0)]
    for m in maps[1:]:
        assert m["a"] == pytest.approx(maps[0]["a"], rel=1e-4)
        assert m["b"] == pytest.approx(maps[0]["b"], rel=1e-4, abs=1e-6)
