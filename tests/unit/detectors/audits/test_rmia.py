"""RMIA, offline (Zarifzadeh et al. 2024): golden values by hand, value parity with ML Privacy Meter's
formula, and the properties of the score (limits in a, monotone in gamma, range)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from parrotwatch.detectors.audits import rmia

# Hand-computed example, a = 0.5, so Pr(x) = 1/2 (1.5 Pr_OUT + 0.5) = 0.75 Pr_OUT + 0.25:
#   x    refs        Pr_OUT  Pr(x)   target  ratio(x)
#   x1   0.2, 0.4    0.3     0.475   0.95    2.0
#   x2   0.1, 0.1    0.1     0.325   0.2925  0.9
#   x3   0.6, 0.2    0.4     0.55    0.33    0.6
#   z1   0.2, 0.2    0.2     0.4     0.2     0.5
#   z2   0.3, 0.5    0.4     0.55    0.55    1.0
#   z3   0.1, 0.3    0.2     0.4     0.4     1.0
#   z4   0.5, 0.5    0.5     0.625   0.5     0.8
# LR(x, z) = ratio(x) / ratio(z):  x1: 4, 2, 2, 2.5   x2: 1.8, 0.9, 0.9, 1.125   x3: 1.2, 0.6, 0.6, 0.75
# gamma = 1:   x1 beats 4 of 4, x2 2 of 4 (z1, z4), x3 1 of 4 (z1)  ->  1, 0.5, 0.25
# gamma = 1.5: x1 4 of 4, x2 1 of 4 (1.8), x3 none                   ->  1, 0.25, 0
# gamma = 3:   x1 1 of 4 (4), x2 and x3 none                          ->  0.25, 0, 0
REF_X = [[0.2, 0.4], [0.1, 0.1], [0.6, 0.2]]
TARGET_X = [0.95, 0.2925, 0.33]
REF_Z = [[0.2, 0.2], [0.3, 0.5], [0.1, 0.3], [0.5, 0.5]]
TARGET_Z = [0.2, 0.55, 0.4, 0.5]


def test_hand_computed_scores_marginals_and_ratios():
    assert rmia.offline_marginal(REF_X, 0.5) == pytest.approx([0.475, 0.325, 0.55])
    assert rmia.likelihood_ratios(TARGET_X, REF_X, 0.5) == pytest.approx([2.0, 0.9, 0.6])
    assert rmia.likelihood_ratios(TARGET_Z, REF_Z, 0.5) == pytest.approx([0.5, 1.0, 1.0, 0.8])
    for gamma, expected in ((1.0, [1.0, 0.5, 0.25]), (1.5, [1.0, 0.25, 0.0]), (3.0, [0.25, 0.0, 0.0])):
        scores = rmia.rmia_scores(TARGET_X, REF_X, TARGET_Z, REF_Z, offline_a=0.5, gamma=gamma)
        assert scores.tolist() == expected


def test_sequence_probability_is_the_geometric_mean_token_probability():
    # tokens of probability 1/2, 1/4, 1/8: (1/64) ** (1/3) = 1/4
    assert rmia.sequence_probability(np.log([0.5, 0.25, 0.125])) == pytest.approx(0.25)
    assert rmia.sequence_probability([0.0]) == 1.0
    for bad in ([], [0.1], [-math.inf], [[-1.0]]):
        with pytest.raises(ValueError):
            rmia.sequence_probability(bad)


# ---- value parity with ML Privacy Meter --------------------------------------------------------------
# Followed: privacytrustlab/ml_privacy_meter at commit e384af8 (2025-04-26),
#   modules/mia/attacks/rmia.py, functions run_rmia and get_out_ref_signals (the same computation as
#   run_rmia / get_rmia_out_signals in attacks.py), and get_signals.py, get_softmax (the LLM signal).
# Their computation, restated (not copied):
#   signal of a text under a PreTrainedModel = exp( sum_t mask_t * log p_t / sum_t mask_t )
#   out signals = each reference model's signal where the text is OUT of it; with every reference OUT and
#     num_reference_models = k, the descending sort keeps all k columns, so the mean is unchanged; with
#     k = 1 the IN-correction term is multiplied by a membership of False and adds nothing
#   mean_x = (1 + offline_a) / 2 * mean_out_x + (1 - offline_a) / 2
#   prob_ratio_x = target_signal_x / mean_x            (the same for population z, all OUT)
#   score_x = average over z of [ prob_ratio_x / prob_ratio_z > 1.0 ]
# ML Privacy Meter fixes gamma at 1.0, strict ">"; offline_a defaults to 0.3 (get_out_ref_signals).

def _privacy_meter_signal(logprobs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """exp of the masked mean token log-probability, one per row (get_softmax's LLM path)."""
    return np.exp((logprobs * mask).sum(axis=1) / mask.sum(axis=1))


def _privacy_meter_rmia(target_x, ref_x, target_z, ref_z, a):
    ratio_x = target_x / ((1 + a) / 2 * np.mean(ref_x, axis=1) + (1 - a) / 2)
    ratio_z = target_z / ((1 + a) / 2 * np.mean(ref_z, axis=1) + (1 - a) / 2)
    return np.average(ratio_x[:, np.newaxis] / ratio_z > 1.0, axis=1)


def test_llm_signal_matches_privacy_meters_masked_mean():
    lp = np.log(np.array([[0.5, 0.25, 0.125, 0.9], [0.3, 0.6, 0.9, 0.9]]))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])  # padding at the end of each row
    expected = _privacy_meter_signal(lp, mask)
    # by hand: row 1 = (1/64) ** (1/3) = 0.25; row 2 = sqrt(0.18) = 0.424264
    assert expected == pytest.approx([0.25, math.sqrt(0.18)])
    ours = [rmia.sequence_probability(row[m.astype(bool)]) for row, m in zip(lp, mask, strict=True)]
    assert ours == pytest.approx(expected.tolist(), rel=1e-15)


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("a", [0.0, 0.3, 0.7, 1.0])
def test_scores_equal_privacy_meters_formula(k, a):
    rng = np.random.default_rng(100 * k + int(10 * a))
    n, m = 40, 300
    target_x, target_z = rng.uniform(0.01, 1, n), rng.uniform(0.01, 1, m)
    ref_x, ref_z = rng.uniform(0.01, 1, (n, k)), rng.uniform(0.01, 1, (m, k))
    expected = _privacy_meter_rmia(target_x, ref_x, target_z, ref_z, a)
    ours = rmia.rmia_scores(target_x, ref_x, target_z, ref_z, offline_a=a, gamma=1.0, block=7)
    assert ours.tolist() == expected.tolist()  # exact: the same float operations, compared with ">"
    assert len(set(expected.tolist())) > 10  # the arrays exercise many distinct scores


def test_parity_on_the_hand_example_at_privacy_meters_default_a():
    # a = 0.3: Pr(x) = 0.65 Pr_OUT + 0.35
    #   x: Pr(x) = 0.545, 0.415, 0.61;        ratio(x) = 1.7431, 0.7048, 0.5410
    #   z: Pr(z) = 0.48, 0.61, 0.48, 0.675;   ratio(z) = 0.4167, 0.9016, 0.8333, 0.7407
    # x1 beats all 4; x2 beats z1 only (0.7048 / 0.4167 = 1.69; 0.7048 < 0.7407); x3 beats z1 only
    args = [np.asarray(v) for v in (TARGET_X, REF_X, TARGET_Z, REF_Z)]
    expected = _privacy_meter_rmia(*args, 0.3)
    assert expected.tolist() == [1.0, 0.25, 0.25]
    assert rmia.rmia_scores(*args, offline_a=0.3).tolist() == expected.tolist()


# ---- properties ---------------------------------------------------------------------------------------

def _random(seed: int, n: int = 30, m: int = 200, k: int = 3):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.01, 1, n), rng.uniform(0.01, 1, (n, k)), rng.uniform(0.01, 1, m), \
        rng.uniform(0.01, 1, (m, k))


def test_a_equal_one_is_the_plain_reference_ratio_and_a_zero_damps_it():
    tx, rx, tz, rz = _random(1)
    assert rmia.offline_marginal(rx, 1.0) == pytest.approx(rx.mean(axis=1))
    assert rmia.offline_marginal(rx, 0.0) == pytest.approx((1 + rx.mean(axis=1)) / 2)
    ratio_x, ratio_z = tx / rx.mean(axis=1), tz / rz.mean(axis=1)
    by_hand = [(rx_ / ratio_z > 1.0).mean() for rx_ in ratio_x]
    assert rmia.rmia_scores(tx, rx, tz, rz, offline_a=1.0).tolist() == pytest.approx(by_hand)
    # a = 0 with tiny reference probabilities: Pr(x) ~ 1/2 for every text, so RMIA ranks by Pr(x | theta)
    tiny = 1e-9
    loss_like = [(t > tz).mean() for t in tx]
    scores = rmia.rmia_scores(tx, np.full_like(rx, tiny), tz, np.full_like(rz, tiny), offline_a=0.0)
    assert scores.tolist() == pytest.approx(loss_like)


@pytest.mark.parametrize("a", [0.0, 0.3, 1.0])
def test_equal_reference_probabilities_reduce_rmia_to_the_target_probability(a):
    tx, rx, tz, rz = _random(2)
    # every text equally likely under the references: Pr(x) is one constant,
    # so LR(x, z) = Pr(x | theta) / Pr(z | theta)
    scores = rmia.rmia_scores(tx, np.full_like(rx, 0.3), tz, np.full_like(rz, 0.3), offline_a=a, gamma=1.2)
    assert scores.tolist() == pytest.approx([(t / tz > 1.2).mean() for t in tx])


def test_scores_are_shares_in_0_1_falling_with_gamma_and_rising_with_the_ratio():
    tx, rx, tz, rz = _random(3)
    previous = np.ones(tx.size)
    for gamma in (0.25, 0.5, 1.0, 1.5, 2.0, 4.0, 1e6):
        s = rmia.rmia_scores(tx, rx, tz, rz, offline_a=0.3, gamma=gamma)
        assert ((s >= 0) & (s <= 1)).all() and np.allclose(s * tz.size, np.round(s * tz.size))
        assert (s <= previous).all()
        previous = s
    assert previous.max() == 0.0  # gamma far above every ratio
    assert rmia.rmia_scores(tx, rx, tz, rz, gamma=1e-9).min() == 1.0
    ratio = rmia.likelihood_ratios(tx, rx, 0.3)
    s = rmia.rmia_scores(tx, rx, tz, rz, offline_a=0.3)
    order = np.argsort(ratio)
    assert (np.diff(s[order]) >= 0).all()


def test_a_member_like_text_outscores_a_reference_like_one():
    # the target is 4x likelier on x1 than the references are; on x2 it is as likely as they are
    population_t, population_r = np.full(50, 0.2), np.full((50, 2), 0.2)
    s = rmia.rmia_scores([0.8, 0.2], [[0.2, 0.2], [0.2, 0.2]], population_t, population_r)
    assert s.tolist() == [1.0, 0.0]


def test_inputs_are_checked():
    tx, rx, tz, rz = _random(4, k=2)
    with pytest.raises(ValueError, match="offline_a"):
        rmia.rmia_scores(tx, rx, tz, rz, offline_a=1.5)
    with pytest.raises(ValueError, match="gamma"):
        rmia.rmia_scores(tx, rx, tz, rz, gamma=0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        rmia.rmia_scores(np.r_[tx[:-1], 0.0], rx, tz, rz)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        rmia.rmia_scores(tx, rx, tz, rz * 2)
    with pytest.raises(ValueError, match="texts"):
        rmia.rmia_scores(tx[:-1], rx, tz, rz)
    with pytest.raises(ValueError, match="reference models"):
        rmia.rmia_scores(tx, rx, tz, rz[:, :1])
    # one reference model may be a 1-D array
    assert rmia.rmia_scores(tx, rx[:, 0], tz, rz[:, 0]).tolist() == \
        rmia.rmia_scores(tx, rx[:, :1], tz, rz[:, :1]).tolist()
