"""From a detector's score to the probability that a request is bad, learnt from weighted labels.

Two maps, each fitted with weights w_i = 1/pi_i so that the map describes the traffic, not the
oversampled review set:

* **Platt** (1999) scaling, P(bad | s) = 1 / (1 + exp(-(a s + b))), a logistic regression on the
  score. It uses Platt's smoothed targets t+ = (N+ + 1)/(N+ + 2) for bad items and
  t- = 1/(N- + 2) for good ones (N = their weighted counts), fitted as two weighted rows per item
  (label 1 with weight w t, label 0 with weight w (1 - t)); the targets keep a and b finite when
  the classes separate, which few labels often do.
* **Isotonic** regression (Zadrozny & Elkan 2002): the monotone step function of least weighted
  squared error (pool-adjacent-violators), by scikit-learn's ``IsotonicRegression``.

Niculescu-Mizil & Caruana (2005) found isotonic better with many labels and Platt with few, so
the map is chosen by k-fold cross-validation (stratified, k = min(5, the rarer class's count)) on
the weighted Brier score, the proper score bounded on [0, 1] (an isotonic fold that predicts 0 for
a bad item has infinite log-loss; the log-loss, clipped at 1e-6, is reported alongside). Ties go
to Platt, the simpler map. With one class among the labels no map can be learnt: the map is the
constant share of bad labels, and says so.

The reliability diagram (DeGroot & Fienberg 1983) bins the predicted probabilities and sets each
bin's mean prediction against its weighted observed frequency of bad; for a well-calibrated map
they agree. Its predictions are the chosen method's out-of-fold ones, so isotonic cannot look
perfect by fitting the very labels it is checked on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

EPS = 1e-6
METHODS = ("platt", "isotonic")


@dataclass(frozen=True)
class CalibrationMap:
    """A fitted map; ``params`` is its JSON form less the method (see :meth:`to_json`)."""

    method: str                         # "platt", "isotonic" or "constant"
    params: dict
    cv: dict = field(default_factory=dict)  # {"platt": {"brier", "log_loss"}, ...} when run
    note: str = ""

    def predict(self, scores) -> np.ndarray:
        """P(bad) for each score (NaN stays NaN)."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "constant":
            return np.where(np.isnan(s), np.nan, self.params["probability"])
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.params["a"] * s + self.params["b"])))
        if self.method == "isotonic":  # IsotonicRegression(out_of_bounds="clip").predict
            return np.interp(s, self.params["x"], self.params["y"])
        raise ValueError(f"unknown calibration method {self.method!r}: expected one of "
                         f"{METHODS + ('constant',)}")

    def to_json(self) -> dict:
        """{"method": ..., then a, b (Platt), x, y breakpoints (isotonic) or probability}."""
        out = {"method": self.method, **self.params}
        if self.cv:
            out["cv"] = self.cv
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_json(cls, data: dict) -> CalibrationMap:
        """The map back from :meth:`to_json`; it predicts the same values.

        >>> m = CalibrationMap("platt", {"a": 2.0, "b": -1.0})
        >>> CalibrationMap.from_json(m.to_json()).predict([0.5]).tolist()
        [0.5]
        """
        data = dict(data)
        method = data.pop("method")
        cv, note = data.pop("cv", {}), data.pop("note", "")
        return cls(method, data, cv, note)


def fit_platt(scores, labels, weights) -> CalibrationMap:
    """Platt scaling with smoothed targets (see the module). The targets' counts are of labelled
    items, not weighted ones: weights of 1/pi are population-sized, and would remove the
    smoothing and make the fit depend on the scale of the weights."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    w = np.asarray(weights, dtype=np.float64)
    n_bad, n_good = float(y.sum()), float((~y).sum())
    target = np.where(y, (n_bad + 1) / (n_bad + 2), 1 / (n_good + 2))
    x = np.concatenate([s, s])[:, None]
    model = LogisticRegression(C=np.inf, max_iter=1000)  # C = inf: no penalty, as Platt
    model.fit(x, np.r_[np.ones(s.size), np.zeros(s.size)],
              sample_weight=np.r_[w * target, w * (1 - target)])
    return CalibrationMap("platt", {"a": float(model.coef_[0, 0]),
                                    "b": float(model.intercept_[0])})


def fit_isotonic(scores, labels, weights, increasing: bool = True) -> CalibrationMap:
    """Weighted isotonic regression of the label on the score, as breakpoints x, y."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=increasing, out_of_bounds="clip")
    model.fit(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64),
              sample_weight=np.asarray(weights, dtype=np.float64))
    return CalibrationMap("isotonic", {"x": model.X_thresholds_.tolist(),
                                       "y": model.y_thresholds_.tolist()})


def _fit(method: str, s, y, w, increasing: bool) -> CalibrationMap:
    return fit_platt(s, y, w) if method == "platt" else fit_isotonic(s, y, w, increasing)


def _scores(p, y, w) -> dict[str, float]:
    pc = np.clip(p, EPS, 1 - EPS)
    return {"brier": float(np.average((p - y) ** 2, weights=w)),
            "log_loss": float(-np.average(y * np.log(pc) + (1 - y) * np.log(1 - pc), weights=w))}


def out_of_fold(method: str, scores, labels, weights, folds: int, *, seed: int = 0,
                increasing: bool = True) -> np.ndarray:
    """Each item's prediction by the map fitted on the other folds (stratified k-fold)."""
    s, y, w = (np.asarray(a, dtype=np.float64) for a in (scores, labels, weights))
    p = np.empty(s.size)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(s, y):
        p[test] = _fit(method, s[train], y[train], w[train], increasing).predict(s[test])
    return p


@dataclass(frozen=True)
class FittedCalibration:
    """The chosen map and the predictions its reliability diagram bins."""

    map: CalibrationMap
    predictions: np.ndarray  # out-of-fold where cross-validation ran, in-sample otherwise


def fit_calibration(scores, labels, weights=None, *, higher_is_worse: bool = True,
                    seed: int = 0) -> FittedCalibration:
    """Fit Platt and isotonic maps, keep the one with the lower cross-validated weighted Brier
    score (see the module). Scores must not be NaN; labels are 1 = bad, 0 = good.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(400) < 0.3
    >>> fitted = fit_calibration(rng.normal(2.0 * y, 1.0), y)
    >>> fitted.map.method in ("platt", "isotonic"), sorted(fitted.map.cv)
    (True, ['isotonic', 'platt'])
    >>> fit_calibration([0.1, 0.5], [0, 0]).map.to_json()["method"]
    'constant'
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    w = np.ones(s.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if s.size == 0:
        empty = CalibrationMap("constant", {"probability": None}, note="no labelled scores")
        return FittedCalibration(empty, np.zeros(0))
    if np.isnan(s).any():
        raise ValueError("scores contain NaN: leave the unscored items out before calibrating")
    if np.unique(y).size < 2:
        share = float(np.average(y, weights=w))
        note = f"one class only among {s.size} labels: every label is {'bad' if share else 'good'}"
        constant = CalibrationMap("constant", {"probability": share}, note=note)
        return FittedCalibration(constant, constant.predict(s))
    rarer = int(min(y.sum(), (1 - y).sum()))
    folds = min(5, rarer)
    if folds < 2:
        platt = fit_platt(s, y, w)
        note = "Platt without cross-validation: one label of one class is too few to split"
        chosen = CalibrationMap("platt", platt.params, note=note)
        return FittedCalibration(chosen, chosen.predict(s))
    cv, oof = {}, {}
    for method in METHODS:
        oof[method] = out_of_fold(method, s, y, w, folds, seed=seed, increasing=higher_is_worse)
        cv[method] = _scores(oof[method], y, w) | {"folds": folds}
    best = min(METHODS, key=lambda m: cv[m]["brier"])  # METHODS order: a tie goes to Platt
    fitted = _fit(best, s, y, w, higher_is_worse)
    return FittedCalibration(CalibrationMap(best, fitted.params, cv), oof[best])


def reliability_diagram(predicted, labels, weights=None, bins: int = 10) -> list[dict]:
    """Equal-width bins of predicted P(bad) on [0, 1], the non-empty ones: each bin's mean
    prediction ("mean_score"), weighted share of bad labels ("observed"), total weight and item
    count (DeGroot & Fienberg 1983).

    >>> rows = reliability_diagram([0.1, 0.15, 0.9, 0.95], [0, 1, 1, 1], [1, 3, 1, 1], bins=2)
    >>> [(r["bin"], round(r["mean_score"], 4), r["observed"], r["weight"]) for r in rows]
    [(0, 0.1375, 0.75, 4.0), (1, 0.925, 1.0, 2.0)]
    """
    p = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    w = np.ones(p.size) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = ~np.isnan(p)
    p, y, w = p[keep], y[keep], w[keep]
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        rows.append({"bin": b, "low": b / bins, "high": (b + 1) / bins,
                     "mean_score": float(np.average(p[m], weights=w[m])),
                     "observed": float(np.average(y[m], weights=w[m])),
                     "weight": float(w[m].sum()), "count": int(m.sum())})
    return rows
