"""Borkan et al. 2019's subgroup AUCs (detectors/bias.py) against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from parrotwatch.detectors.bias import auc, subgroup_bias


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert auc(s, y) == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(auc(s[y == 1], y[y == 1]))


def test_subgroup_metrics_follow_their_definitions():
    rng = np.random.default_rng(1)
    n = 400
    groups = rng.choice(["a", "b", "c"], n)
    y = rng.integers(0, 2, n)
    s = rng.random(n) * 0.6 + 0.4 * y + 0.3 * ((groups == "b") & (y == 0))  # b's benign texts score high
    out = {r.subgroup: r for r in subgroup_bias(s, y, groups)}
    for g, r in out.items():
        inside = groups == g
        bpsn = (~inside & (y == 1)) | (inside & (y == 0))
        bnsp = (inside & (y == 1)) | (~inside & (y == 0))
        assert r.size == inside.sum()
        assert r.subgroup_auc == pytest.approx(roc_auc_score(y[inside], s[inside]))
        assert r.bpsn_auc == pytest.approx(roc_auc_score(y[bpsn], s[bpsn]))
        assert r.bnsp_auc == pytest.approx(roc_auc_score(y[bnsp], s[bnsp]))
        assert r.false_positive_rate == pytest.approx(np.mean(s[inside & (y == 0)] > 0.5))
    assert subgroup_bias(s, y, groups)[0].subgroup == "b"  # worst BPSN first
    assert out["b"].bpsn_auc < min(out["a"].bpsn_auc, out["c"].bpsn_auc)
