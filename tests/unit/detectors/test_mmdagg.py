"""MMDAgg (Schrab et al. 2023): golden statistics, level under the null over many seeds, power where
the median-bandwidth MMD has none, agreement with the single-kernel test, the level correction
against the paper's bisection, poison inputs and determinism."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist
from scipy.stats import binom

from parrotwatch.detectors.drift import MMDAggResult, mmd_test, mmdagg_test
from parrotwatch.detectors.drift.mmdagg import bandwidth_collection, level_correction

FAST = {"n_permutations": 199, "n_calibration": 399}


def naive_mmd2(x: np.ndarray, y: np.ndarray, kind: str, lam: float) -> float:
    """Gretton et al. 2012 eq. 3, sums over i != j written out, the paper's kernels (Schrab et al. §5.1)."""
    def k(a, b):
        if kind == "laplace":
            return np.exp(-cdist(a, b, "cityblock") / lam)
        return np.exp(-cdist(a, b) ** 2 / lam**2)

    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * k(x, y).sum() / (m * n))


def grid(rng: np.random.Generator, n: int, jitter: float) -> np.ndarray:
    """Points near the integers 0..9: the two samples differ only at the scale of ``jitter``."""
    return rng.integers(0, 10, size=(n, 1)) + jitter * rng.normal(size=(n, 1))


# ---------------------------------------------------------------- statistic and collection


def test_golden_statistics_for_both_kernels():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(6, 3)) + 0.4
    r = mmdagg_test(x, y, kernels=("laplace", "gaussian"), bandwidths=[0.7, 1.9], **FAST)
    assert r.kernels == (("laplace", 0.7), ("laplace", 1.9), ("gaussian", 0.7), ("gaussian", 1.9))
    expected = [naive_mmd2(x, y, kind, lam) for kind, lam in r.kernels]
    np.testing.assert_allclose(r.mmd2s, expected, rtol=1e-10)


def test_default_collection_is_the_papers_on_pooled_distances_and_label_free():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    r = mmdagg_test(x, y, **FAST)
    pooled = np.vstack([x, y])
    l1 = bandwidth_collection(pdist(pooled, "cityblock"))
    l2 = bandwidth_collection(pdist(pooled))
    assert len(r.kernels) == 20
    np.testing.assert_allclose([b for _, b in r.kernels], np.r_[l1, l2], rtol=1e-6)
    assert l2[0] == pytest.approx(pdist(pooled).min() / 2)
    assert l2[-1] == pytest.approx(2 * pdist(pooled).max())
    assert mmdagg_test(y, x, **FAST).kernels == r.kernels  # the collection does not see the labels


def test_collection_uses_the_5_percent_quantile_when_points_nearly_coincide():
    d = np.r_[0.0, np.linspace(0.5, 3.0, 99)]
    lam = bandwidth_collection(d, 4)
    assert lam[0] == pytest.approx(np.quantile(d, 0.05) / 2) and lam[-1] == pytest.approx(6.0)


# ---------------------------------------------------------------- level and power


@pytest.mark.parametrize(("m", "n"), [(25, 25), (15, 45)])
def test_level_under_the_null_over_200_seeds(m, n):
    """Same Gaussian on both sides: P(p < 0.05) = 19/400 exactly; 200 seeds land in its 99.8% band."""
    p = np.array([mmdagg_test(np.random.default_rng(s).normal(size=(m, 5)),
                              np.random.default_rng(10_000 + s).normal(size=(n, 5)), s, **FAST).p_value
                  for s in range(200)])
    lo, hi = binom.ppf([0.001, 0.999], 200, 19 / 400)
    assert lo <= np.count_nonzero(p < 0.05) <= hi
    assert 0.4 < np.mean(p) < 0.6 and 0.35 < np.mean(p < 0.5) < 0.65  # roughly uniform, not only the tail


def test_power_where_the_median_bandwidth_mmd_has_none():
    """Jitter 0.02 against 0.2 around the same integers: the median distance (~3) blurs it away."""
    single, agg, fired = [], [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        x, y = grid(rng, 100, 0.02), grid(rng, 100, 0.2)
        single.append(mmd_test(x, y, n_permutations=500, seed=seed).p_value)
        r = mmdagg_test(x, y, seed, n_permutations=500, n_calibration=500)
        agg.append(r.p_value)
        fired.append(r.kernel[1])
    assert min(single) > 0.1
    assert max(agg) < 0.02
    assert max(fired) < 0.1  # a small bandwidth fired, far below the median distance


def test_detects_a_mean_shift_and_fires_at_the_nominal_level():
    rng = np.random.default_rng(3)
    r = mmdagg_test(rng.normal(size=(60, 8)), rng.normal(0.5, 1.0, size=(40, 8)), 3, **FAST)
    # beyond all B₁ relabellings, p_λ goes on below 1/(1 + B₁), so T passes every calibration T_b
    assert min(r.kernel_p_values) < 1 / 200 and r.statistic > -np.log10(20 / 200)
    assert r.p_value == 1 / 400 and r.is_drift(0.01)
    assert r.kernel in r.fired and r.u > 0


def test_far_apart_samples_keep_a_finite_statistic_and_the_smallest_p_value():
    rng = np.random.default_rng(8)
    r = mmdagg_test(rng.normal(size=(50, 4)), rng.normal(40.0, 1.0, size=(50, 4)), **FAST)
    assert np.isfinite(r.statistic) and min(r.kernel_p_values) > 0 and r.p_value == 1 / 400


# ---------------------------------------------------------------- agreement and calibration rule


def test_one_kernel_is_the_permutation_mmd_test():
    """One Gaussian with λ = √2 σ is mmd_test's kernel; the first B₁ relabellings are mmd_test's own."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(40, 3)) + 0.15
    sigma = float(np.median(pdist(np.vstack([x, y]))))
    single = mmd_test(x, y, n_permutations=1000, seed=7)
    r = mmdagg_test(x, y, 7, kernels=("gaussian",), bandwidths=[np.sqrt(2) * sigma],
                    n_permutations=1000, n_calibration=2000)
    assert r.mmd2s[0] == pytest.approx(single.mmd2, rel=1e-10)
    assert r.kernel_p_values[0] == single.p_value  # same relabellings, same count
    assert 0.05 < single.p_value < 0.95 and r.p_value == pytest.approx(single.p_value, abs=0.04)


def bisection_u(t_null: np.ndarray, alpha: float, steps: int = 60) -> float:
    """Schrab et al. 2023, Algorithm 1 step 2: bisection of u on
    P̂(u) = (1 + #{T_b <= u})/(1 + B₂) < α."""
    lo, hi = 0.0, float(t_null.max()) + 1.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        if (1 + np.count_nonzero(t_null <= mid)) / (1 + len(t_null)) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


@pytest.mark.parametrize(("b2", "alpha"),
                         [(19, 0.25), (99, 0.05), (399, 0.05), (1999, 0.05), (500, 0.01), (9, 0.05)])
def test_level_correction_is_where_the_papers_bisection_converges(b2, alpha):
    rng = np.random.default_rng(b2)
    t_null = np.sort(rng.integers(1, 40, size=b2) / 40)  # ties, as min_λ p_λ / w_λ has
    u, approx = level_correction(t_null, alpha), bisection_u(t_null, alpha)
    for t in np.r_[t_null, t_null[0] / 2, 2.0]:
        p = (1 + np.count_nonzero(t_null <= t)) / (1 + b2)
        assert (t < u) == (t <= approx) == (p < alpha)


def test_fired_kernels_are_the_rejections_at_the_nominal_level():
    decisions = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(20, 2)), rng.normal(0.35, 1.0, size=(20, 2))
        r = mmdagg_test(x, y, seed, alpha=0.1, **FAST)
        assert r.is_drift(0.1) == bool(r.fired)
        assert set(r.fired) == {k for k, p in zip(r.kernels, r.kernel_p_values, strict=True) if p * 20 < r.u}
        decisions.append(r.is_drift(0.1))
    assert 0 < sum(decisions) < 30  # both outcomes occur, so the check above bites


# ---------------------------------------------------------------- poison inputs and contract


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_refused(bad):
    x, y = np.zeros((5, 3)), np.ones((5, 3))
    y[2, 1] = bad
    with pytest.raises(ValueError, match="current contains NaN or infinite"):
        mmdagg_test(x, y)
    with pytest.raises(ValueError, match="reference contains NaN or infinite"):
        mmdagg_test(y, x)


def test_too_few_rows_other_dimensions_and_bad_options_are_refused():
    x = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmdagg_test(x[:1], x)
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmdagg_test(x, x[:1])
    with pytest.raises(ValueError, match="dimension"):
        mmdagg_test(x, x[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        mmdagg_test(x[0], x)
    for options in ({"kernels": ("rbf",)}, {"kernels": ()}, {"bandwidths": [1.0, 0.0]}, {"bandwidths": []},
                    {"n_permutations": 0}, {"n_calibration": 0}, {"alpha": 0.0}):
        with pytest.raises(ValueError):
            mmdagg_test(x, x + 1, **options)


def test_identical_points_give_positive_bandwidths_and_no_drift():
    same = np.ones((8, 4))
    r = mmdagg_test(same, same.copy(), **FAST)
    assert all(lam > 0 for _, lam in r.kernels) and np.isfinite(r.statistic)
    assert r.p_value == 1.0 and not r.is_drift(0.5) and r.fired == ()
    apart = mmdagg_test(np.zeros((10, 2)), np.ones((10, 2)), **FAST)  # every distance 0 or 2 (L1)
    assert all(lam > 0 for _, lam in apart.kernels) and apart.p_value < 0.01


def test_deterministic_does_not_mutate_and_pickles():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(17, 3))
    x.flags.writeable = False
    y.flags.writeable = False
    r = mmdagg_test(x, y, 11, **FAST)
    assert isinstance(r, MMDAggResult) and r == mmdagg_test(x.tolist(), y.tolist(), 11, **FAST)
    assert pickle.loads(pickle.dumps(r)) == r
    others = {mmdagg_test(x, y, s, **FAST).p_value for s in range(12, 17)}
    assert len(others | {r.p_value}) > 1  # the seed does drive the relabellings
