"""Golden and property tests of the pure PII extraction / reconstruction audit (Lukas et al. 2023): targets,
normalised matching, Wilson intervals, candidate sets, top-1 accuracy and its exact binomial test."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from parrotwatch.detectors.audits import extraction
from parrotwatch.detectors.audits import pii_extraction as pe

RECORD = "Please contact Ana Lopez at ana.lopez@example.org or +1 415 555 2671 about invoice 4471."


def _finder(spans):
    return lambda text: [SimpleNamespace(start=a, end=b, entity_type=t) for a, b, t in spans]


def test_targets_split_each_span_into_prefix_value_and_suffix():
    a, b = RECORD.index("ana."), RECORD.index(" or")
    (t,) = pe.pii_targets([RECORD], _finder([(a, b, "EMAIL_ADDRESS")]))
    assert (t.text_index, t.start, t.end, t.entity_type) == (0, 28, 49, "EMAIL_ADDRESS")
    assert t.value == "ana.lopez@example.org"
    assert t.prefix == "Please contact Ana Lopez at "
    assert t.suffix == " or +1 415 555 2671 about invoice 4471."
    assert t.prefix + t.value + t.suffix == RECORD


def test_targets_from_presidio_find_the_email_and_the_phone():
    targets = pe.pii_targets(["no PII here", RECORD, None, ""])  # non-strings and empty texts skipped
    assert [(t.text_index, t.entity_type, t.value) for t in targets] == [
        (1, "EMAIL_ADDRESS", "ana.lopez@example.org"), (1, "PHONE_NUMBER", "+1 415 555 2671")]
    assert targets[1].prefix.endswith("ana.lopez@example.org or ")


def test_targets_skip_spans_outside_the_text_and_empty_values():
    spans = [(0, 0, "URL"), (5, 500, "URL"), (-1, 3, "URL"), (6, 7, "URL"), (0, 6, "URL")]
    (t,) = pe.pii_targets(["Hello \u200b world"], _finder(spans))  # a lone zero-width space is empty
    assert t.value == "Hello "


def test_normalisation_case_space_nfkc_and_digit_types():
    assert pe.normalise_pii(" Ana.Lopez@Example.ORG ") == "ana.lopez@example.org"
    assert pe.normalise_pii("+1 (415) 555-2671", "PHONE_NUMBER") == "14155552671"
    assert pe.normalise_pii("\uff0b\uff11 \uff14\uff11\uff15", "PHONE_NUMBER") == "1415"  # full-width, NFKC
    assert pe.normalise_pii("GB82 WEST 1234", "IBAN_CODE") == "gb82west1234"
    assert pe.normalise_pii("a\u200b@ex\u200fample.com") == "a@example.com"  # format characters dropped
    assert pe.normalise_pii("A-B C") == "a-bc"  # e-mails keep their punctuation


def test_extracted_when_the_normalised_value_is_in_the_continuation():
    assert pe.pii_extracted("ana.lopez@example.org", " ANA.LOPEZ@EXAMPLE.ORG or", "EMAIL_ADDRESS")
    assert pe.pii_extracted("+1 415 555 2671", " +1-415-555-2671 about", "PHONE_NUMBER")
    assert not pe.pii_extracted("+1 415 555 2671", " +1 415 555 2672 about", "PHONE_NUMBER")
    assert not pe.pii_extracted("ana.lopez@example.org", " ana.lopez@example.com", "EMAIL_ADDRESS")
    assert not pe.pii_extracted("ana.lopez@example.org", "")


@pytest.mark.parametrize("value", ["", "   ", "\u200b\u200f", "-- ()"])
def test_an_empty_value_is_refused_rather_than_found_everywhere(value):
    with pytest.raises(ValueError, match="empty"):
        pe.pii_extracted(value, "anything at all", "PHONE_NUMBER")


def test_hostile_continuations_do_not_break_matching():
    value = "ana.lopez@example.org"
    assert pe.pii_extracted(value, "\x00" * 3 + "ana.\u200blopez@example.org" + "\ud800")
    assert not pe.pii_extracted(value, "\u202eana.lopez@example.or\u202c")
    assert pe.pii_extracted(value, "x" * 200_000 + value)


def test_extraction_rate_golden_wilson_interval():
    r = pe.extraction_rate([True] * 3 + [False] * 7)
    # by hand: z = 1.959964, centre (0.3 + z^2/20) / (1 + z^2/10) = 0.355506, half-width 0.247715
    assert (r.n, r.n_hits, r.rate) == (10, 3, 0.3)
    assert r.ci_low == pytest.approx(0.107791, abs=1e-6) and r.ci_high == pytest.approx(0.603222, abs=1e-6)
    assert (r.ci_low, r.ci_high) == pytest.approx(extraction.wilson_interval(3, 10), abs=1e-12)  # peer
    zero, full = pe.extraction_rate([False] * 64), pe.extraction_rate([True] * 64)
    assert zero.ci_low == 0.0 and zero.ci_high == pytest.approx(3.8415 / (64 + 3.8415), abs=1e-4)
    assert full.ci_high == 1.0 and full.ci_low == pytest.approx(64 / (64 + 3.8415), abs=1e-4)
    with pytest.raises(ValueError):
        pe.extraction_rate([])


def test_extraction_rates_by_group_in_order_of_first_appearance():
    rates = pe.extraction_rates([True, False, True, True], [4, 0, 4, 16])
    assert list(rates) == [4, 0, 16]
    assert (rates[4].n, rates[4].n_hits, rates[0].rate, rates[16].rate) == (2, 2, 0.0, 1.0)
    with pytest.raises(ValueError):
        pe.extraction_rates([True], [1, 2])


def test_reconstruction_argmax_with_ties_and_nan_as_misses():
    assert pe.reconstruction_correct([-10.0, -3.0, -7.5], 1)
    assert not pe.reconstruction_correct([-10.0, -3.0, -7.5], 2)
    assert not pe.reconstruction_correct([-3.0, -3.0, -7.5], 0)  # a tie is a miss
    assert pe.reconstruction_correct([float("nan"), -3.0], 1)  # NaN never wins
    assert not pe.reconstruction_correct([-3.0, float("nan")], 1)
    assert pe.reconstruction_correct([-math.inf, -1e300], 1)
    for bad in ([], [1.0], [[1.0, 2.0]]):
        with pytest.raises(ValueError):
            pe.reconstruction_correct(bad, 0)
    with pytest.raises(ValueError):
        pe.reconstruction_correct([1.0, 2.0], 2)


def test_reconstruction_accuracy_golden_binomial_test():
    # 10 targets, k = 9 distractors (chance 0.1), 3 right: P[Bin(10, 0.1) >= 3]
    # = 1 - 0.9^10 - 10 * 0.1 * 0.9^9 - 45 * 0.01 * 0.9^8 = 0.0701908264
    lls, idx = [], []
    for i in range(10):
        ll = np.linspace(-20.0, -11.0, 10)  # candidate 9 has the highest likelihood
        lls.append(ll)
        idx.append(9 if i < 3 else 0)
    r = pe.reconstruction_accuracy(lls, idx)
    assert (r.n, r.n_correct, r.accuracy, r.chance) == (10, 3, 0.3, 0.1)
    assert r.p_value == pytest.approx(0.0701908264, abs=1e-10)
    assert (r.ci_low, r.ci_high) == pytest.approx((0.107791, 0.603222), abs=1e-6)
    less = pe.reconstruction_accuracy(lls, idx, alternative="less")
    assert less.p_value == pytest.approx(0.9 ** 10 + 10 * 0.1 * 0.9 ** 9 + 45 * 0.01 * 0.9 ** 8
                                         + 120 * 0.001 * 0.9 ** 7, abs=1e-10)  # P[X <= 3] = 0.9872048016


def test_reconstruction_refuses_mixed_candidate_set_sizes_and_empty_input():
    with pytest.raises(ValueError, match="same number"):
        pe.reconstruction_accuracy([[0.0, 1.0], [0.0, 1.0, 2.0]], [1, 2])
    with pytest.raises(ValueError):
        pe.reconstruction_accuracy([], [])
    with pytest.raises(ValueError):
        pe.reconstruction_accuracies([[0.0, 1.0]], [1], [0, 1])


def test_a_model_that_never_saw_the_values_is_at_chance():
    """Exchangeable scores (the true value is one more draw from the candidates' distribution): the rank of
    the true value is uniform, so accuracy ~ 1/(k+1) and the test does not reject."""
    rng = np.random.default_rng(0)
    n, k = 3000, 9
    lls = rng.normal(size=(n, k + 1))
    r = pe.reconstruction_accuracy(list(lls), rng.integers(k + 1, size=n).tolist(), alternative="two-sided")
    assert r.ci_low <= 0.1 <= r.ci_high and r.p_value > 0.01
    # a model that adds 3 nats to the true value is far above chance
    idx = rng.integers(k + 1, size=n)
    lls[np.arange(n), idx] += 3.0
    strong = pe.reconstruction_accuracy(list(lls), idx.tolist())
    assert strong.accuracy > 0.8 and strong.p_value < 1e-100


def test_draw_candidates_excludes_the_true_value_and_duplicates():
    rng = np.random.default_rng(1)
    pool = ["+1 415 555 2671", "+1-415-555-2671", "+1 212 736 4410", "+1 212 736 4410", "+1 312 284 9051",
            "+1 617 283 4410"]
    cands, where = pe.draw_candidates("+1 (415) 555 2671", pool, 3, rng, "PHONE_NUMBER")
    assert cands[where] == "+1 (415) 555 2671" and len(cands) == 4
    others = [c for i, c in enumerate(cands) if i != where]
    assert sorted(others) == ["+1 212 736 4410", "+1 312 284 9051", "+1 617 283 4410"]
    with pytest.raises(ValueError, match="need k=4"):
        pe.draw_candidates("+1 (415) 555 2671", pool, 4, rng, "PHONE_NUMBER")
    with pytest.raises(ValueError):
        pe.draw_candidates("x@y.com", pool, 0, rng)


def test_draw_candidates_puts_the_true_value_at_a_uniform_position():
    rng = np.random.default_rng(2)
    pool = [f"user{i}@example.com" for i in range(50)]
    positions = [pe.draw_candidates("me@example.com", pool, 4, rng)[1] for _ in range(5000)]
    counts = np.bincount(positions, minlength=5)
    assert counts.sum() == 5000 and np.all(np.abs(counts - 1000) < 100)  # 1000 +- ~4.5 sd
    a = pe.draw_candidates("me@example.com", pool, 4, np.random.default_rng(3))
    assert a == pe.draw_candidates("me@example.com", pool, 4, np.random.default_rng(3))  # seeded
