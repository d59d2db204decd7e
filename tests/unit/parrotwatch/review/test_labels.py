import pytest

from parrotwatch.review.labels import calibrated_labels, yes_no


@pytest.mark.parametrize("labels,expected", [
    ({"toxic": True}, 1.0), ({"toxic": False, "other": {"x": [1]}}, 0.0),
])
def test_yes_no_answers(labels, expected):
    assert yes_no(labels, "toxic") == (expected, None)


@pytest.mark.parametrize("labels", [{"toxic": "yes"}, {"toxic": 1}, {"toxic": [True]}, {"toxic": {}},
                                    ["toxic"], "toxic", 3, True])
def test_anything_else_is_refused_with_a_reason(labels):
    value, reason = yes_no(labels, "toxic")
    assert value is None and reason


def test_an_absent_or_null_label_is_no_answer_and_no_error():
    assert yes_no({"helpful": 3}, "toxic") == (None, None)
    assert yes_no({"toxic": None}, "toxic") == (None, None)


def test_the_shipped_schema_calibrates_three_detectors():
    assert calibrated_labels() == {"toxicity": "toxic", "hallucination": "hallucinated",
                                   "ood_score": "off_topic"}
