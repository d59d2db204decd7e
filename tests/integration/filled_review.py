"""Review and calibration rows for the filled test database (tests/integration/filled_db.py), over
the requests the real pipeline scored there, so that every panel of dashboards/calibration.py has
data.

A simulated review with known noise, then calibration records computed from it with the project's
estimators (parrotwatch.detectors.calibration), as ``parrotwatch calibrate`` would store them:

* two-phase sampling (detectors/calibration/sampling.py): each scored request enters the pool with
  ``pool_probability`` (a high base rate here: few requests), then a simple random sample of the
  pool per segment within a budget; pi = p1 x p2 per item, a share of items for two reviewers;
* a true bad answer per detector: likely when the detector flags the request (Se > 0), rarer
  otherwise and rising with the score's rank; each reviewer flips the truth with probability
  ``NOISE``;
* calibration runs at four times over the labels so far: per detector (toxicity, hallucination,
  ood_score) and segment ('*' and each model/app), weighted AUC, precision and recall at the
  threshold, kappa with a CI (bootstrap SE), Krippendorff's alpha between reviewers, Rogan-Gladen
  corrected rate with its CI next to the raw flagged share, a suggested threshold, an isotonic
  calibration map and the reliability bins of its out-of-fold predictions; then one applied
  threshold, later replaced (revoked);
* ROUGE-L F1 and BLEU in [0, 1] (rouge-score, sacreBLEU) of the responses against the users'
  corrections.

The review jobs themselves (``parrotwatch review sample``, ``parrotwatch calibrate``) are tested
on their own; this module only needs rows shaped like theirs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import krippendorff
import numpy as np
import psycopg
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.isotonic import IsotonicRegression

from parrotwatch.detectors.calibration.estimators import (
    hajek_ratio,
    interval,
    rogan_gladen,
    weighted_auc,
    weighted_kappa,
)
from parrotwatch.detectors.calibration.sampling import pool_probability, second_phase
from parrotwatch.detectors.metrics import metric

DETECTORS = {"toxicity": "toxic", "hallucination": "hallucinated", "ood_score": "off_topic"}
THRESHOLDS = {d: float(metric(d).threshold) for d in DETECTORS}
REVIEWERS = ("alice", "bob", "carol")
NOISE = 0.1  # a reviewer's chance of answering the opposite of the truth
DOUBLE_SHARE = 0.4
RUNS = 4
TARGET_PRECISION = 0.9
BINS = 5


@dataclass
class Item:
    item_id: int
    request_id: str
    model: str
    app: str
    pi: float
    scores: dict[str, float | None]
    labels: list[tuple[datetime, dict[str, bool]]]  # (labelled_at, labels) per reviewer


def fill_review(url: str, feedback: list[dict], events: list[dict], seed: int = 14) -> None:
    """Review, calibration and correction rows for the scored requests at ``url``."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(url, autocommit=True) as conn:
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        scored = conn.execute(f"""
SELECT request_id, event_time, model, app, {", ".join(DETECTORS)} FROM inference_scores
ORDER BY event_time, request_id""").fetchall()
        items = _sample_and_label(conn, scored, rng, now)
        _calibrate(conn, scored, items, rng)
        _apply(conn)
        _correction_scores(conn, feedback, events)


def _sample_and_label(conn, scored, rng, now: datetime) -> list[Item]:
    items: list[Item] = []
    truth_rank = {d: _ranks([r[4 + i] for r in scored]) for i, d in enumerate(DETECTORS)}
    for model, app in sorted({(r[2], r[3]) for r in scored}):
        rows = [(i, r) for i, r in enumerate(scored) if (r[2], r[3]) == (model, app)]
        p1 = [pool_probability(dict(zip(DETECTORS, r[4:], strict=True)), THRESHOLDS, base=0.6,
                               near_rate=0.9, flagged_rate=1.0, near=0.1) for _i, r in rows]
        pool = [k for k, p in enumerate(p1) if rng.random() < p]
        budget = max(5, round(0.7 * len(pool)))
        drawn, p2 = second_phase(len(pool), budget, rng)
        start, end = rows[0][1][1].replace(second=0), rows[-1][1][1] + timedelta(minutes=1)
        (sample_id,) = conn.execute("""
INSERT INTO review_samples (model, app, period_start, period_end, population, pool, drawn,
                            budget, design, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""", (
            model, app, start, end, len(rows), len(pool), len(drawn), budget,
            json.dumps({"detectors": THRESHOLDS, "pool_base": 0.6, "seed": 14}),
            min(end, now))).fetchone()
        for k in sorted(pool[j] for j in drawn):
            index, (request_id, event_time, *_segment) = rows[k][0], rows[k][1][:4]
            scores = dict(zip(DETECTORS, scored[index][4:], strict=True))
            truth = {label: _truly_bad(scores[d], truth_rank[d][index], d, rng)
                     for d, label in DETECTORS.items()}
            reviewers = 2 if rng.random() < DOUBLE_SHARE else 1
            created = min(event_time + timedelta(seconds=15), now)
            labels = []
            for who in range(reviewers):
                at = min(created + timedelta(seconds=float(rng.uniform(5, 90)) * (who + 1)), now)
                labels.append((at, {key: bool(bad) ^ bool(rng.random() < NOISE)
                                    for key, bad in truth.items()}))
            (item_id,) = conn.execute("""
INSERT INTO review_items (sample_id, request_id, event_time, model, app, inclusion_probability,
                          reviewers_needed, scores, expires_at, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING item_id""", (
                sample_id, request_id, event_time, model, app, p1[k] * p2, reviewers,
                json.dumps(scores), now + timedelta(days=14), created)).fetchone()
            for who, (at, answer) in enumerate(labels):
                conn.execute("INSERT INTO review_labels (item_id, reviewer, labels, labelled_at) "
                             "VALUES (%s, %s, %s, %s)", (item_id, REVIEWERS[who], json.dumps(
                                 {**answer, "helpful": int(rng.integers(1, 6))}), at))
            items.append(Item(item_id, request_id, model, app, p1[k] * p2, scores, labels))
    return items


def _ranks(values) -> list[float]:
    """Each value's rank among the non-null ones, in [0, 1] (NaN for a null)."""
    present = sorted(v for v in values if v is not None)
    n = max(len(present) - 1, 1)
    return [float("nan") if v is None else present.index(v) / n for v in values]


def _truly_bad(score: float | None, rank: float, detector: str, rng) -> bool:
    if score is None:
        return bool(rng.random() < 0.1)
    p = 0.75 if score > THRESHOLDS[detector] else 0.04 + 0.4 * rank**3
    return bool(rng.random() < p)


def _calibrate(conn, scored, items: list[Item], rng) -> None:
    first = min(at for it in items for at, _l in it.labels)
    last = max(at for it in items for at, _l in it.labels)
    segments = [("*", "*"), *sorted({(it.model, it.app) for it in items})]
    for run in range(1, RUNS + 1):
        at = first + (last - first) * run / RUNS
        for detector, label in DETECTORS.items():
            for model, app in segments:
                record = _record(scored, items, detector, label, model, app, at, rng)
                if record is not None:
                    columns = ", ".join(record)
                    conn.execute(f"INSERT INTO calibration_records ({columns}) VALUES "
                                 f"({', '.join(['%s'] * len(record))})", list(record.values()))


def _in(model: str, app: str, row_model: str, row_app: str) -> bool:
    return model in ("*", row_model) and app in ("*", row_app)


def _record(scored, items, detector, label, model, app, at: datetime, rng) -> dict | None:
    """One calibration record from the labels given by ``at``, or None with too few."""
    threshold = THRESHOLDS[detector]
    rows = []  # (score, pi, consensus label, labels of two reviewers or None)
    for it in items:
        given = [answer[label] for when, answer in it.labels if when <= at]
        if _in(model, app, it.model, it.app) and given and it.scores[detector] is not None:
            rows.append((it.scores[detector], it.pi, int(np.mean(given) >= 0.5),
                         given if len(given) == 2 else None))
    if len(rows) < 8 or len({r[2] for r in rows}) < 2:
        return None
    s, pi, y = (np.array([r[k] for r in rows], dtype=np.float64) for k in range(3))
    w, f = 1 / pi, (s > threshold).astype(np.float64)
    population = [r[4 + list(DETECTORS).index(detector)] for r in scored
                  if r[1] <= at and _in(model, app, r[2], r[3])]
    population = [v for v in population if v is not None]
    if not population:
        return None
    raw = float(np.mean(np.array(population) > threshold))
    prevalence = rogan_gladen(raw, f, y, pi)
    kappa = weighted_kappa(f, y, w)  # its CI: normal, with the bootstrap SE (Efron 1987)
    boot = [weighted_kappa(f[k], y[k], w[k])
            for k in (rng.integers(0, len(rows), len(rows)) for _ in range(200))]
    kappa_ci = interval(kappa, float(np.nanstd(boot)), 0.95, lo=-1.0, hi=1.0)
    pairs = [r[3] for r in rows if r[3] is not None]
    corrected = _num(prevalence.corrected.value)  # no interval without a point estimate
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(s, y, sample_weight=w)
    return {
        "detector": detector, "label": label, "model": model, "app": app,
        "period_start": min(r[1] for r in scored), "period_end": at, "computed_at": at,
        "labelled": len(rows), "doubly_labelled": len(pairs), "threshold": threshold,
        "auc": _num(weighted_auc(s, y, w)),
        "precision_at": _num(hajek_ratio(f * y, f, pi).value),
        "recall_at": _num(hajek_ratio(f * y, y, pi).value),
        "kappa": _num(kappa), "kappa_low": _num(kappa_ci.low), "kappa_high": _num(kappa_ci.high),
        "alpha": _alpha(pairs),
        "raw_rate": raw, "corrected_rate": corrected,
        "corrected_low": None if corrected is None else prevalence.corrected.low,
        "corrected_high": None if corrected is None else prevalence.corrected.high,
        "sensitivity": _num(prevalence.sensitivity.value),
        "specificity": _num(prevalence.specificity.value),
        "target": json.dumps({"precision": TARGET_PRECISION}),
        "suggested_threshold": _suggested(s, y, pi),
        "calibration_map": json.dumps({"method": "isotonic", "x": iso.X_thresholds_.tolist(),
                                       "y": iso.y_thresholds_.tolist()}),
        "reliability": json.dumps(_reliability(s, y, w)),
    }


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _alpha(pairs: list[list[bool]]) -> float | None:
    """Krippendorff's nominal alpha of two reviewers over the doubly labelled items."""
    if len(pairs) < 3 or len({v for p in pairs for v in p}) < 2:
        return None
    return _num(krippendorff.alpha(reliability_data=np.array(pairs, dtype=float).T,
                                   level_of_measurement="nominal"))


def _suggested(s, y, pi) -> float | None:
    """The lowest labelled score that, as a threshold, meets the target precision."""
    for t in np.unique(s)[:-1]:
        f = (s > t).astype(np.float64)
        if hajek_ratio(f * y, f, pi).value >= TARGET_PRECISION:
            return float(t)
    return None


def _reliability(s, y, w) -> list[dict]:
    """Equal-width bins of P(bad) predicted out of fold (two folds of an isotonic map, as the
    calibration job's cross-validated map): mean prediction, observed weighted share of bad
    answers, weight and count per non-empty bin (DeGroot & Fienberg 1983)."""
    predicted = np.empty_like(s)
    fold = np.arange(s.size) % 2
    for k in (0, 1):
        train = fold != k
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")
        predicted[~train] = iso.fit(s[train], y[train], sample_weight=w[train]).predict(s[~train])
    which = np.clip((predicted * BINS).astype(int), 0, BINS - 1)
    out = []
    for b in np.unique(which):
        m = which == b
        out.append({"bin": int(b), "low": b / BINS, "high": (b + 1) / BINS,
                    "mean_score": float(np.average(predicted[m], weights=w[m])),
                    "observed": float(np.average(y[m], weights=w[m])),
                    "weight": float(w[m].sum()), "count": int(m.sum())})
    return out


def _apply(conn) -> None:
    """The second-newest overall toxicity record's threshold applied, then replaced by the
    newest one (the first revoked), as ``parrotwatch calibrate apply`` records it."""
    records = conn.execute("""
SELECT version, detector, coalesce(suggested_threshold, threshold), computed_at
FROM calibration_records WHERE model = '*' AND app = '*'
ORDER BY (detector = 'toxicity') DESC, detector, computed_at DESC LIMIT 2""").fetchall()
    newest, older = records[0], records[-1]
    replaced_at = newest[3] + timedelta(seconds=5)
    conn.execute("INSERT INTO calibration_applied (version, detector, threshold, applied_by, "
                 "applied_at, revoked_at) VALUES (%s, %s, %s, %s, %s, %s)",
                 (older[0], older[1], older[2], "ops@example.org", older[3] + timedelta(seconds=5),
                  replaced_at))
    conn.execute("INSERT INTO calibration_applied (version, detector, threshold, applied_by, "
                 "applied_at) VALUES (%s, %s, %s, %s, %s)",
                 (newest[0], newest[1], newest[2], "lead@example.org", replaced_at))


def _correction_scores(conn, feedback: list[dict], events: list[dict]) -> None:
    by_id = {e["request_id"]: e for e in events}
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for fb in feedback:
        event = by_id.get(fb["request_id"])
        if not fb.get("correction") or event is None:
            continue
        response, correction = event["response"], fb["correction"]
        conn.execute("""
INSERT INTO correction_scores (feedback_id, request_id, event_time, model, app, rouge_l_f, bleu)
VALUES (%s, %s, %s, %s, %s, %s, %s)""", (
            fb["feedback_id"], fb["request_id"], fb["timestamp"], event["model"], event["app"],
            scorer.score(correction, response)["rougeL"].fmeasure,
            sacrebleu.sentence_bleu(response, [correction]).score / 100))  # [0, 1], as the job
