"""The review label schema: loading (every rule, with errors naming file, label and fix) and the
validation of submitted labels."""

from __future__ import annotations

import textwrap

import pytest

from parrotwatch.contracts.review_labels import (
    LabelError,
    LabelSchemaError,
    calibration_labels,
    load_label_schema,
)
from parrotwatch.detectors.metrics import SCORE_NAMES

GOOD = """\
labels:
  - {key: toxic, kind: boolean, question: "Toxic?", calibrates: toxicity, shortcut: t}
  - {key: helpful, kind: scale, min: 1, max: 5, question: "Helpful?"}
  - {key: note_worthy, kind: boolean, question: "Worth a note?", required: false}
"""


def _write(tmp_path, text: str):
    path = tmp_path / "labels.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def schema(tmp_path):
    return load_label_schema(_write(tmp_path, GOOD))


def test_the_shipped_schema_loads_and_calibrates_registered_scores():
    schema = load_label_schema()
    assert {"toxic", "hallucinated", "helpful"} <= set(schema.keys)
    mapping = calibration_labels(schema)
    assert mapping and set(mapping) <= set(SCORE_NAMES)
    assert mapping["toxicity"] == "toxic"


def test_a_loaded_schema_keeps_order_kinds_and_bounds(schema):
    assert schema.keys == ("toxic", "helpful", "note_worthy")
    public = schema.public()
    assert public["labels"][1] == {"key": "helpful", "kind": "scale", "question": "Helpful?",
                                   "required": True, "calibrates": None, "shortcut": None,
                                   "min": 1, "max": 5}
    assert public["labels"][2]["required"] is False
    assert calibration_labels(schema) == {"toxicity": "toxic"}


@pytest.mark.parametrize(("entry", "says"), [
    ("{key: Toxic, kind: boolean, question: q}", "lower-case identifier"),
    ("{key: 1bad, kind: boolean, question: q}", "lower-case identifier"),
    ("{key: toxic, kind: ternary, question: q}", "boolean, scale"),
    ("{key: toxic, kind: boolean}", "add a 'question'"),
    ("{key: toxic, kind: boolean, question: q, shorcut: t}", "unknown field(s) ['shorcut']"),
    ("{key: toxic, kind: boolean, question: q, calibrates: toxicty}", "metric registry"),
    ("{key: helpful, kind: scale, question: q, min: 1, max: 5, calibrates: toxicity}",
     "only a yes/no label"),
    ("{key: helpful, kind: scale, question: q, min: 1}", "integer min and max"),
    ("{key: helpful, kind: scale, question: q, min: 1.5, max: 5}", "integer min and max"),
    ("{key: helpful, kind: scale, question: q, min: 5, max: 5}", "must be below max"),
    ("{key: toxic, kind: boolean, question: q, min: 0, max: 1}", "belong to scale labels"),
    ("{key: toxic, kind: boolean, question: q, shortcut: tt}", "one lower-case letter"),
    ("{key: toxic, kind: boolean, question: q, shortcut: s}", "skip key"),
    ("{key: helpful, kind: scale, question: q, min: 1, max: 5, shortcut: h}", "digit keys"),
    ("{key: toxic, kind: boolean, question: q, required: maybe}", "true or false"),
])
def test_a_broken_label_is_refused_naming_file_label_and_fix(tmp_path, entry, says):
    path = _write(tmp_path, f"labels:\n  - {entry}\n")
    with pytest.raises(LabelSchemaError) as refused:
        load_label_schema(path)
    assert str(path) in str(refused.value)
    assert says in str(refused.value)


@pytest.mark.parametrize(("second", "says"), [
    ("{key: toxic, kind: boolean, question: again}", "key 'toxic' is used by another"),
    ("{key: rude, kind: boolean, question: q, shortcut: t}", "shortcut 't' is used by another"),
    ("{key: rude, kind: boolean, question: q, calibrates: toxicity}",
     "detector to calibrate 'toxicity' is used by another"),
])
def test_duplicates_are_refused(tmp_path, second, says):
    first = "{key: toxic, kind: boolean, question: q, shortcut: t, calibrates: toxicity}"
    path = _write(tmp_path, f"labels:\n  - {first}\n  - {second}\n")
    with pytest.raises(LabelSchemaError, match=says):
        load_label_schema(path)


@pytest.mark.parametrize("text", ["", "labels: []\n", "- key: toxic\n", "labels: [toxic]\n",
                                  "labels: [\n"])
def test_a_file_without_a_list_of_labels_is_refused(tmp_path, text):
    with pytest.raises(LabelSchemaError, match="labels"):
        load_label_schema(_write(tmp_path, text))


def test_a_missing_file_says_which_setting_to_fix(tmp_path):
    with pytest.raises(LabelSchemaError, match="PARROTWATCH_REVIEW_LABELS"):
        load_label_schema(tmp_path / "absent.yaml")


def test_valid_labels_pass_and_an_optional_label_may_be_left_out(schema):
    assert schema.validate({"toxic": True, "helpful": 5}) == {"toxic": True, "helpful": 5}
    assert schema.validate({"toxic": False, "helpful": 1, "note_worthy": None}) == {
        "toxic": False, "helpful": 1}


def test_an_unknown_key_is_named_with_the_valid_ones(schema):
    with pytest.raises(LabelError) as refused:
        schema.validate({"toxic": True, "helpful": 3, "toxicc": True})
    assert refused.value.problems == [
        "unknown label(s) 'toxicc'; this schema's labels are toxic, helpful, note_worthy"]


@pytest.mark.parametrize(("labels", "says"), [
    ({"toxic": 1, "helpful": 3}, "label 'toxic' is yes/no: send true or false, not 1"),
    ({"toxic": "yes", "helpful": 3}, "not 'yes'"),
    ({"toxic": True, "helpful": 6}, "label 'helpful' must be from 1 to 5, not 6"),
    ({"toxic": True, "helpful": 0}, "must be from 1 to 5, not 0"),
    ({"toxic": True, "helpful": 3.0}, "send an integer from 1 to 5, not 3.0"),
    ({"toxic": True, "helpful": True}, "send an integer from 1 to 5, not True"),
    ({"helpful": 3}, "label 'toxic' is missing: Toxic?"),
    ({"toxic": None, "helpful": 3}, "label 'toxic' is missing"),
])
def test_wrong_out_of_range_and_missing_labels_are_refused(schema, labels, says):
    with pytest.raises(LabelError) as refused:
        schema.validate(labels)
    assert says in str(refused.value)


def test_every_problem_is_listed_at_once(schema):
    with pytest.raises(LabelError) as refused:
        schema.validate({"bogus": 1, "helpful": 9})
    assert len(refused.value.problems) == 3  # unknown, toxic missing, helpful out of range
