import pytest

from parrotwatch.review.alerts import AGREEMENT, DIVERGENCE, check_record


def _by_rule(record, **kw):
    return {f.rule: f for f in check_record(record, **kw)}


@pytest.mark.parametrize("kappa,high,fires,severity", [
    (0.39, 0.6, True, "warning"), (0.2, 0.35, True, "critical"), (0.41, 0.7, False, "warning"),
])
def test_agreement_below_the_level(kappa, high, fires, severity):
    f = _by_rule({"kappa": kappa, "kappa_high": high})[AGREEMENT]
    assert f.condition is fires and f.severity == severity and f.value == kappa


def test_the_level_is_configurable():
    assert _by_rule({"kappa": 0.5}, kappa_level=0.6)[AGREEMENT].condition is True


@pytest.mark.parametrize("raw,corrected,ci,fires", [
    (0.10, 0.30, (0.2, 0.4), True),     # outside and far
    (0.25, 0.30, (0.2, 0.4), False),    # inside the CI
    (0.19, 0.22, (0.2, 0.4), False),    # outside, but within 0.05
    (0.50, 0.30, (0.2, 0.4), True),     # above the CI
])
def test_divergence_needs_raw_outside_the_ci_and_far(raw, corrected, ci, fires):
    f = _by_rule({"raw_rate": raw, "corrected_rate": corrected, "corrected_low": ci[0],
                  "corrected_high": ci[1]})[DIVERGENCE]
    assert f.condition is fires
    assert f.baseline == raw and f.value == corrected


@pytest.mark.parametrize("record", [{}, {"kappa": None, "raw_rate": 0.1}, {"kappa": float("nan")},
                                    {"kappa": "0.1", "corrected_rate": [1]}])
def test_missing_or_odd_statistics_are_no_data(record):
    assert {f.condition for f in check_record(record)} == {None}
