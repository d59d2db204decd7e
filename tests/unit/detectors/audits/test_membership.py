"""Golden tests of the membership-inference scores on hand-computed small distributions."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from parrotwatch.detectors import likelihood
from parrotwatch.detectors.audits import membership as m

LN2 = math.log(2)
HALF, QUARTER, EIGHTH = math.log(0.5), math.log(0.25), math.log(0.125)


def test_loss_is_the_mean_token_log_probability():
    # (ln 1/2 + ln 1/4 + ln 1/8) / 3 = -(1 + 2 + 3) ln 2 / 3 = -2 ln 2 = -1.3863 nats/token
    assert m.loss_score([HALF, QUARTER, EIGHTH]) == pytest.approx(-2 * LN2)
    with pytest.raises(ValueError):
        m.loss_score([])


def test_zlib_bits_and_ratio():
    # zlib.compress(b"a") = 78 9c | 4b 04 00 | 00 62 00 62: 2-byte header, 3-byte fixed-Huffman block
    # (one literal + end of block), 4-byte Adler-32 = 9 bytes = 72 bits
    assert zlib.compress(b"a").hex() == "789c4b040000620062"
    assert m.zlib_bits("a") == 72
    # logppl = -(ln 1/2 + ln 1/4) / 2 = 1.5 ln 2 nats; score = -1.5 ln 2 / 72 = -0.014440
    assert m.zlib_score([HALF, QUARTER], "a") == pytest.approx(-1.5 * LN2 / 72)
    assert m.zlib_score([HALF, QUARTER], "a") == pytest.approx(-0.0144405, abs=1e-7)
    with pytest.raises(ValueError):
        m.zlib_bits("")


def test_zlib_ratio_discounts_low_perplexity_on_repetitive_text():
    # equal log-likelihood: the text that compresses well is "easy" text, not a memorised one
    logprobs = [QUARTER] * 20
    repetitive, varied = "1 2 3 4 " * 10, "Qx7 vK2 pL9 zR4 mN8 tB3 wC6 hJ1 yD5 gF0"
    assert m.zlib_bits(repetitive) < m.zlib_bits(varied)
    assert m.zlib_score(logprobs, varied) > m.zlib_score(logprobs, repetitive)


def test_lowercase_ratio():
    # original: logppl = ln 2; lowercased: -(ln 1/4 + ln 1/8)/2 = 2.5 ln 2; score = -ln 2 / 2.5 ln 2 = -0.4
    assert m.lowercase_score([HALF, HALF], [QUARTER, EIGHTH]) == pytest.approx(-0.4)
    # a model that memorised the casing finds the original far likelier than the lowercased text
    assert m.lowercase_score([HALF], [EIGHTH]) > m.lowercase_score([HALF], [QUARTER])
    with pytest.raises(ValueError, match="log-perplexity 0"):
        m.lowercase_score([HALF], [0.0, 0.0])


def test_reference_ratio():
    # target mean ln 1/2 = -ln 2; reference mean (ln 1/4 + ln 1/8)/2 = -2.5 ln 2; difference 1.5 ln 2 = 1.0397
    assert m.reference_score([HALF, HALF, HALF], [QUARTER, EIGHTH]) == pytest.approx(1.5 * LN2)
    assert m.reference_score([HALF], [HALF]) == 0.0


def test_min_k_prob_is_the_likelihood_module_function():
    assert m.min_k_prob is likelihood.min_k_prob  # reused, not rewritten
    lp = [-1.0, -5.0, -2.0, -8.0, -3.0, -0.5, -4.0, -6.0, -7.0, -0.1]
    # N = 10, k = 0.2: the floor(2) lowest are -8 and -7, mean -7.5
    assert m.min_k_prob(lp) == -7.5
    # N = 4: floor(0.8) = 0 -> at least one token: the minimum
    assert m.min_k_prob([-1.0, -2.0, -3.0, -4.0]) == -4.0


def _log(probabilities):
    with np.errstate(divide="ignore"):  # log 0 = -inf: a token the model never predicts
        return np.log(np.asarray(probabilities, dtype=np.float64))


def test_next_token_logp_moments():
    rows = _log([[0.5, 0.25, 0.25, 0.0], [0.25, 0.25, 0.25, 0.25]])
    mu, var = m.next_token_logp_moments(rows)
    # row 1: mu = 1/2(-ln2) + 2 * 1/4(-2ln2) = -1.5 ln2;
    #        E[(log p)^2] = 1/2 ln2^2 + 2 * 1/4 * 4 ln2^2 = 2.5 ln2^2
    #        var = 2.5 ln2^2 - 2.25 ln2^2 = 0.25 ln2^2 (the zero-probability token contributes nothing)
    # row 2: log p = -2 ln2 everywhere: mu = -2 ln2, var = 0
    np.testing.assert_allclose(mu, [-1.5 * LN2, -2 * LN2])
    np.testing.assert_allclose(var, [0.25 * LN2**2, 0.0], atol=1e-15)


# Five positions of a toy model, the observed token's probability, and z_t = (l_t - mu_t) / sigma_t:
#   1. p = (1/2, 1/4, 1/4), observed 1/2:  (-ln2 + 1.5ln2) / 0.5ln2 = +1
#   2. p = (1/2, 1/4, 1/4), observed 1/4:  (-2ln2 + 1.5ln2) / 0.5ln2 = -1
#   3. p = (0.9, 0.1), observed 0.1: for two outcomes z(q) = -sqrt((1-q)/q) for the one of probability q,
#      so z = -sqrt(0.9/0.1) = -3   (mu = 0.9 ln0.9 + 0.1 ln0.1 = -0.325083, var = 0.434502)
#   4. p uniform over 4, observed 1/4: sigma = 0 -> z = 0 by convention
#   5. p = (0.9, 0.1), observed 0.9: z = +sqrt(0.1/0.9) = +1/3
DISTS = [[0.5, 0.25, 0.25], [0.5, 0.25, 0.25], [0.9, 0.1, 0, 0], [0.25] * 4, [0.9, 0.1]]
OBSERVED = [0.5, 0.25, 0.1, 0.25, 0.9]
Z = [1.0, -1.0, -3.0, 0.0, 1 / 3]


def _moments():
    width = max(len(d) for d in DISTS)
    rows = _log([d + [0.0] * (width - len(d)) for d in DISTS])
    return m.next_token_logp_moments(rows)


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (0.2, -3.0),  # floor(0.2 * 5) = 1 lowest z: -3
        (0.4, -2.0),  # floor(2): (-3 - 1) / 2
        (1.0, (1 - 1 - 3 + 0 + 1 / 3) / 5),  # all: -0.53333
    ],
)
def test_min_k_plus_plus_matches_the_hand_z_scores(k, expected):
    mu, var = _moments()
    assert mu[2] == pytest.approx(-0.325083, abs=1e-6) and var[2] == pytest.approx(0.434502, abs=1e-6)
    assert m.min_k_plus_plus(np.log(OBSERVED), mu, var, k=k) == pytest.approx(expected)
    assert m.min_k_plus_plus(np.log(OBSERVED), mu, var, k=k) == pytest.approx(m.min_k_prob(Z, k))


def test_min_k_plus_plus_ranks_the_modal_text_higher_and_validates():
    mu, var = _moments()
    modal = np.log([0.5, 0.5, 0.9, 0.25, 0.9])  # the model's most likely token at every position
    assert m.min_k_plus_plus(modal, mu, var) > m.min_k_plus_plus(np.log(OBSERVED), mu, var)
    with pytest.raises(ValueError, match=">= 0"):
        m.min_k_plus_plus([-1.0], [-1.0], [-1e-9])
    with pytest.raises(ValueError, match="equal length"):
        m.min_k_plus_plus([-1.0, -2.0], [-1.0], [1.0])


def test_scores_are_deterministic_and_leave_inputs_alone():
    mu, var = _moments()
    lp = np.log(OBSERVED)
    ref = np.array([QUARTER, EIGHTH])
    args = [lp, mu, var, ref]
    before = [a.copy() for a in args]
    calls = [
        lambda: m.loss_score(lp),
        lambda: m.zlib_score(lp, "some text"),
        lambda: m.lowercase_score(lp, ref),
        lambda: m.reference_score(lp, ref),
        lambda: m.min_k_prob(lp),
        lambda: m.min_k_plus_plus(lp, mu, var),
        lambda: m.next_token_logp_moments(_log([DISTS[0]]))[1][0],
    ]
    for call in calls:
        assert call() == call()
    for a, b in zip(args, before, strict=True):
        np.testing.assert_array_equal(a, b)
