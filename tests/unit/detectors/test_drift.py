"""Embedding drift: golden values against independent references, null/alternative properties on
synthetic embeddings, the detector contract, and one real-text check (Python's docs vs fortunes)."""

from __future__ import annotations

import inspect
import itertools
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist
from scipy.stats import chisquare
from sklearn.metrics.pairwise import rbf_kernel

import parrotwatch.detectors.drift as drift
from parrotwatch.detectors.drift import KnnOod, Reservoir, domain_classifier_test, mmd_test

FORTUNES = Path("/usr/share/games/fortunes")


def sphere(rng: np.random.Generator, n: int, center: np.ndarray, spread: float = 1.0) -> np.ndarray:
    """Embedding-like points: unit vectors scattered around ``center``."""
    x = center + spread * rng.normal(size=(n, center.size)) / np.sqrt(center.size)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def centers() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    a = rng.normal(size=32)
    b = a + 0.6 * np.linalg.norm(a) / np.sqrt(32) * rng.normal(size=32)
    return a / np.linalg.norm(a), b / np.linalg.norm(b)


def frozen(x: np.ndarray) -> np.ndarray:
    """A read-only copy: any in-place write by the code under test raises."""
    y = np.array(x)
    y.flags.writeable = False
    return y


# ---------------------------------------------------------------- MMD


def naive_mmd2(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """Gretton et al. 2012 eq. 3 with explicit sums over i != j (sklearn's kernel, gamma = 1/(2σ²))."""
    gamma = 1.0 / (2 * sigma**2)
    kxx, kyy = rbf_kernel(x, x, gamma=gamma), rbf_kernel(y, y, gamma=gamma)
    kxy = rbf_kernel(x, y, gamma=gamma)
    m, n = len(x), len(y)
    sxx = sum(kxx[i, j] for i in range(m) for j in range(m) if i != j)
    syy = sum(kyy[i, j] for i in range(n) for j in range(n) if i != j)
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * kxy.sum() / (m * n)


def test_mmd_golden_statistic_and_bandwidth():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
    result = mmd_test(x, y, n_permutations=10, seed=0)
    sigma = float(np.median(pdist(np.vstack([x, y]))))
    assert result.bandwidth == pytest.approx(sigma, rel=1e-12)
    assert result.mmd2 == pytest.approx(naive_mmd2(x, y, sigma), rel=1e-10)
    fixed = mmd_test(x, y, n_permutations=10, bandwidth=0.7)
    assert fixed.bandwidth == 0.7 and fixed.mmd2 == pytest.approx(naive_mmd2(x, y, 0.7), rel=1e-10)


def test_mmd_permutation_p_value_matches_exact_enumeration():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 2)), rng.normal(size=(4, 2)) + 0.8
    pooled = np.vstack([x, y])
    sigma = float(np.median(pdist(pooled)))
    observed = naive_mmd2(x, y, sigma)
    splits = [naive_mmd2(pooled[list(s)], pooled[[i for i in range(8) if i not in s]], sigma)
              for s in itertools.combinations(range(8), 4)]
    exact = np.mean(np.array(splits) >= observed - 1e-12)  # 70 equally likely relabellings
    result = mmd_test(x, y, n_permutations=20000, seed=3)
    assert result.p_value == pytest.approx(exact, abs=0.01)
    assert exact < 0.2  # the case is not trivial: a shifted pair, yet few splits beat it


def test_mmd_same_distribution_is_calibrated(centers):
    a, _ = centers
    p_values = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x, y = sphere(rng, 60, a), sphere(rng, 60, a)
        p_values.append(mmd_test(x, y, n_permutations=200, seed=seed).p_value)
    p_values = np.array(p_values)
    assert np.sum(p_values < 0.05) <= 3  # Binomial(20, 0.05) exceeds 3 with probability 1.6%
    assert 0.3 < p_values.mean() < 0.7  # roughly uniform


def test_mmd_detects_shift_and_is_near_zero_without_one(centers):
    a, b = centers
    rng = np.random.default_rng(5)
    same = mmd_test(sphere(rng, 300, a), sphere(rng, 300, a), n_permutations=200, seed=0)
    shifted = mmd_test(sphere(rng, 300, a), sphere(rng, 300, b), n_permutations=200, seed=0)
    assert shifted.p_value < 0.01 and shifted.is_drift()
    assert shifted.p_value == pytest.approx(1 / 201)  # the smallest p-value with 200 permutations
    assert abs(same.mmd2) < 0.05 * shifted.mmd2


def test_mmd_deterministic_and_does_not_mutate(centers):
    a, b = centers
    rng = np.random.default_rng(6)
    x, y = frozen(sphere(rng, 40, a)), frozen(sphere(rng, 30, b))
    before = x.copy(), y.copy()
    assert mmd_test(x, y, n_permutations=300, seed=9) == mmd_test(x, y, n_permutations=300, seed=9)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])


def test_mmd_rejects_bad_input():
    with pytest.raises(ValueError, match="dimension"):
        mmd_test(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmd_test(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        mmd_test(np.full((3, 2), np.nan), np.zeros((3, 2)))


# ---------------------------------------------------------------- domain classifier


def test_classifier_null_and_shift(centers):
    a, b = centers
    p_values = []
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        x, y = sphere(rng, 30, a), sphere(rng, 30, a)
        p_values.append(domain_classifier_test(x, y, seed=seed, n_permutations=19).p_value)
    p_values = np.array(p_values)
    assert np.sum(p_values <= 0.1) <= 4  # P(p <= 0.1) = 0.1 exactly; Binomial(12, 0.1) > 4 w.p. 0.4%
    assert 0.25 < p_values.mean() < 0.75
    rng = np.random.default_rng(7)
    result = domain_classifier_test(sphere(rng, 150, a), sphere(rng, 150, b), seed=0, n_permutations=39)
    assert result.p_value == pytest.approx(1 / 40) and result.is_drift(0.05) and result.auc > 0.8


def test_classifier_auc_is_the_out_of_fold_auc_of_a_logistic_regression(centers):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = centers
    rng = np.random.default_rng(9)
    x, y = sphere(rng, 60, a), sphere(rng, 50, b)
    result = domain_classifier_test(x, y, seed=3, n_permutations=0, C=0.1)
    assert result.p_value is None
    with pytest.raises(ValueError, match="n_permutations"):
        result.is_drift()
    # independent reference: sklearn's own cross_val_predict over the same folds
    random_state = int(np.random.default_rng(3).integers(2**31 - 1))
    labels = np.r_[np.zeros(60), np.ones(50)]
    scores = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
                               np.vstack([x, y]).astype(np.float64), labels, method="decision_function",
                               cv=KFold(5, shuffle=True, random_state=random_state))
    assert result.auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)


def test_classifier_deterministic_and_does_not_mutate(centers):
    a, b = centers
    rng = np.random.default_rng(8)
    x, y = frozen(sphere(rng, 50, a)), frozen(sphere(rng, 50, b))
    before = x.copy()
    first = domain_classifier_test(x, y, seed=4, n_permutations=20)
    assert first == domain_classifier_test(x, y, seed=4, n_permutations=20)
    assert 0.0 <= first.auc <= 1.0 and 1 / 21 <= first.p_value <= 1.0
    np.testing.assert_array_equal(x, before)


# ---------------------------------------------------------------- k-NN OOD


def test_knn_calibration_is_leave_one_out_99th_percentile(centers):
    a, _ = centers
    rng = np.random.default_rng(11)
    ref = sphere(rng, 500, a)
    detector = KnnOod(ref, k=5)
    dist = cdist(ref, ref, "cosine")
    np.fill_diagonal(dist, np.inf)
    loo_kth = np.sort(dist, axis=1)[:, 4]
    assert detector.scale == pytest.approx(np.quantile(loo_kth, 0.99), rel=1e-4)
    fresh = detector.score(sphere(rng, 4000, a))
    assert 0.002 < np.mean(fresh > 1.0) < 0.03  # ~1% of in-distribution requests exceed 1.0
    assert np.median(fresh) < 1.0


def test_knn_scores_far_points_high_and_nearest_matches_brute_force(centers):
    a, b = centers
    rng = np.random.default_rng(12)
    ref = sphere(rng, 300, a, spread=0.5)
    detector = KnnOod(ref, k=3)
    far = sphere(rng, 50, -a, spread=0.5)
    assert np.all(detector.score(far) > 1.0) and detector.predict(far).all()
    query = sphere(rng, 4, b)
    idx, dist = detector.nearest(query, n=6)
    brute = cdist(query, ref, "cosine")
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1)[:, :6])
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :6], atol=1e-5)
    # scores use cosine distance: the length of a query vector does not matter
    np.testing.assert_allclose(detector.score(3.0 * query), detector.score(query), rtol=1e-5)
    assert detector.score(query[0]).shape == (1,)


def test_knn_pickles_and_does_not_mutate(centers):
    a, _ = centers
    rng = np.random.default_rng(13)
    ref, query = frozen(2.0 * sphere(rng, 100, a)), frozen(sphere(rng, 10, a))
    before = ref.copy()
    detector = KnnOod(ref, k=5)
    clone = pickle.loads(pickle.dumps(detector))
    np.testing.assert_array_equal(clone.score(query), detector.score(query))
    np.testing.assert_array_equal(ref, before)
    with pytest.raises(ValueError, match="at least 6 rows"):
        KnnOod(ref[:5], k=5)


# ---------------------------------------------------------------- reservoir


def test_reservoir_is_uniform():
    stream = np.arange(400, dtype=np.float32)[:, None]
    counts = np.zeros(400)
    for seed in range(1000):
        sample = Reservoir(capacity=40, dim=1, seed=seed).add(stream[:150]).add(stream[150:]).sample()
        counts[sample[:, 0].astype(int)] += 1
    assert counts.sum() == 40 * 1000 and len(np.unique(sample)) == 40
    # each item is kept with probability 40/400: 100 times in 1000 runs, in every part of the stream
    assert chisquare(counts).pvalue > 1e-3
    assert abs(counts[:40].mean() - 100) < 10 and abs(counts[-40:].mean() - 100) < 10


def test_reservoir_deterministic_whatever_the_batching():
    x = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
    whole = Reservoir(64, 8, seed=3).add(x)
    chunked = Reservoir(64, 8, seed=3)
    for start in range(0, 1000, 37):
        chunked.add(x[start:start + 37])
    one_by_one = Reservoir(64, 8, seed=3)
    for row in x[:500]:
        one_by_one.add(row)
    one_by_one.add(x[500:])
    np.testing.assert_array_equal(whole.sample(), chunked.sample())
    np.testing.assert_array_equal(whole.sample(), one_by_one.sample())
    assert whole.seen == 1000 and len(whole) == 64
    assert not np.array_equal(whole.sample(), Reservoir(64, 8, seed=4).add(x).sample())


def test_reservoir_before_full_keeps_everything_and_sample_is_a_copy():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    reservoir = Reservoir(10, 3, seed=0).add(frozen(x))
    sample = reservoir.sample()
    np.testing.assert_array_equal(sample, x)
    sample[:] = -1
    np.testing.assert_array_equal(reservoir.sample(), x)
    with pytest.raises(ValueError, match="dimension"):
        reservoir.add(np.zeros((2, 4)))


def test_reservoir_pickle_is_small_and_resumes_the_stream():
    x = np.random.default_rng(1).normal(size=(3000, 16)).astype(np.float32)
    straight = Reservoir(1000, 16, seed=5).add(x)
    first = Reservoir(1000, 16, seed=5).add(x[:10])
    assert len(pickle.dumps(first)) < 4096  # the unused part of the buffer is not pickled
    resumed = pickle.loads(pickle.dumps(Reservoir(1000, 16, seed=5).add(x[:1700]))).add(x[1700:])
    np.testing.assert_array_equal(resumed.sample(), straight.sample())
    assert resumed.seen == 3000


# ---------------------------------------------------------------- as protocol objects


def test_test_objects_are_the_functions_with_their_options_fixed(centers):
    a, b = centers
    rng = np.random.default_rng(8)
    x, y = sphere(rng, 40, a), sphere(rng, 30, b)
    mmd = drift.MMDTest(n_permutations=50, seed=2, bandwidth=0.9).test(x, y)
    assert mmd == mmd_test(x, y, n_permutations=50, seed=2, bandwidth=0.9)
    assert mmd.statistic == mmd.mmd2
    clf = drift.DomainClassifierTest(seed=2, n_permutations=5, n_splits=4, C=0.01).test(x, y)
    assert clf == domain_classifier_test(x, y, seed=2, n_permutations=5, n_splits=4, C=0.01)
    assert clf.statistic == clf.auc


def test_knn_scores_are_its_score_per_row(centers):
    a, b = centers
    rng = np.random.default_rng(9)
    knn = KnnOod(sphere(rng, 50, a), k=3)
    rows = sphere(rng, 4, b)
    assert knn.scores(rows) == [{"ood_score": float(s)} for s in knn.score(rows)]
    assert knn.scores(rows[:0]) == [] and knn.scores([]) == []


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("name", drift.__all__)
def test_public_api_cites_its_source(name):
    obj = getattr(drift, name)
    assert inspect.getdoc(obj), f"{name} has no docstring"
    module_doc = inspect.getmodule(obj).__doc__ or ""
    assert re.search(r"[A-Z][a-z]+.*(19|20)\d\d", module_doc, re.S), f"{name}'s module cites no paper"


# ---------------------------------------------------------------- real text


def fortune_entries(name: str) -> list[str]:
    path = FORTUNES / name
    assert path.is_file(), f"{path} is missing: run `bash scripts/install_fortunes.sh` (as root)"
    entries = (" ".join(e.split()) for e in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"))
    return [e for e in dict.fromkeys(entries) if 20 <= len(e) <= 400]


def pydoc_paragraphs() -> list[str]:
    from pydoc_data.topics import topics

    paragraphs = (" ".join(p.split()) for text in topics.values() for p in text.split("\n\n"))
    return [p for p in dict.fromkeys(paragraphs) if 60 <= len(p) <= 400 and not p.startswith(("*", "="))]


def test_real_text_python_docs_against_fortunes():
    from parrotwatch.detectors.models.encoder import get_encoder

    rng = np.random.default_rng(0)
    docs, fortunes = pydoc_paragraphs(), fortune_entries("fortunes")
    docs = [docs[i] for i in rng.permutation(len(docs))[:120]]
    fortunes = [fortunes[i] for i in rng.permutation(len(fortunes))[:60]]
    emb = get_encoder().encode(docs + fortunes)
    ref, docs_held_out, other = emb[:60], emb[60:120], emb[120:]

    assert mmd_test(ref, other, n_permutations=500, seed=0).p_value < 0.01
    assert domain_classifier_test(ref, other, seed=0, n_permutations=149).p_value < 0.01
    assert mmd_test(ref, docs_held_out, n_permutations=500, seed=0).p_value > 0.01
    detector = KnnOod(ref, k=5)
    assert np.median(detector.score(other)) > 1.0
    assert np.mean(detector.score(docs_held_out) > 1.0) < 0.1
