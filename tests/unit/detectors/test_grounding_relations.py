"""The relational grounding checks: polarity, units, roles, matched passages, and poison text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parrotwatch.detectors.grounding import GroundingScorer
from parrotwatch.detectors.grounding.lexicon import get_lexicon
from parrotwatch.detectors.grounding.pair_model import FEATURES, PairModel, load_pair_model, pair_features
from parrotwatch.detectors.grounding.relations import (
    negated_words,
    polarity_findings,
    quantities,
    role_findings,
    unit_findings,
)
from parrotwatch.detectors.grounding.scorer import ALL_CHECKS, matched_passages
from parrotwatch.detectors.grounding.text import Chunk

LEX = get_lexicon()
needs_wordnet = pytest.mark.skipif(LEX is None, reason="WordNet missing: bash scripts/install_wordnet.sh")

SOURCE = ("Apex Freight was founded in Lyon and moved its offices to Nantes in 2010. "
          "The board approved the merger with Corvel in March. Trucks may carry up to 20 tonnes, "
          "and drivers rest for 45 minutes every 4 hours.")


@needs_wordnet
@pytest.mark.parametrize("sentence, passage, kind", [
    ("The merger was not approved.", "The merger was approved in March.", "negation"),
    ("The merger was approved.", "The merger was not approved.", "negation"),
    ("Prices fell in May.", "Prices rose in May.", "antonym"),
    ("The smallest truck leaves first.", "The largest truck leaves first.", "antonym"),
    ("The depot is north of the river.", "The depot is south of the river.", "antonym"),
])
def test_polarity_changes_are_found(sentence, passage, kind):
    assert [f.kind for f in polarity_findings(sentence, passage, LEX)] == [kind]


@needs_wordnet
@pytest.mark.parametrize("sentence, passage", [
    ("Pets are not allowed.", "Pets are forbidden."),              # negation + antonym cancel
    ("The merger was approved in March.", "The merger was approved in March."),
    ("The board approved the merger.", "In March, the board approved the merger with Corvel."),
])
def test_same_polarity_passes(sentence, passage):
    assert polarity_findings(sentence, passage, LEX) == []


def test_negation_scope_is_the_next_content_word():
    assert negated_words(["it", "is", "not", "very", "approved"]) == [("not", "approved")]
    assert negated_words(["no", "later", "than", "may"]) == []  # "no later than" does not negate


@pytest.mark.parametrize("sentence, passage, found, converted", [
    ("The route is 5 miles long.", "The route is 5 km long.", 1, set()),
    ("The route is 3.1 miles long.", "The route is 5 km long.", 0, {"3.1"}),
    ("It serves 200 requests per second.", "It serves 200 requests per minute.", 1, set()),
    ("Store below 25 °F.", "Store below 25 °C.", 1, set()),
    ("Store below 77 °F.", "Store below 25 °C.", 0, {"77"}),
    ("The route is 5 km long.", "The route is 5 km long.", 0, set()),
    ("The route is 5.1 km long.", "The route is 5 km long.", 0, set()),  # same unit: facts decide
])
def test_units_compare_by_value_and_dimension(sentence, passage, found, converted):
    findings, conv = unit_findings(sentence, passage)
    assert len(findings) == found and conv == converted


def test_quantities_read_rates_and_two_word_units():
    assert [(q.value, q.unit, q.per) for q in quantities("Give 5 mg per hour for 3 days.")] == [
        (5.0, "mg", "hour"), (3.0, "day", None)]


@pytest.mark.parametrize("sentence, passage, swapped", [
    ("Apex was founded in Nantes and moved to Lyon.", "Apex was founded in Lyon and moved to Nantes.", True),
    ("Corvel acquired Apex.", "Apex acquired Corvel.", True),
    ("Corvel was acquired by Apex.", "Apex acquired Corvel.", False),  # voice changed
    ("Apex moved to Nantes after starting in Lyon.", "Apex was founded in Lyon and moved to Nantes.", False),
])
def test_roles(sentence, passage, swapped):
    assert bool(role_findings(sentence, passage, LEX)) is swapped


def test_matched_passages_skip_a_window_carried_by_one_sentence():
    chunks = [Chunk("a", 0, 0), Chunk("b", 1, 1), Chunk("a b", 0, 1)]
    assert matched_passages(np.array([0.9, 0.2, 0.85]), chunks) == [0]
    assert matched_passages(np.array([0.7, 0.6, 0.9]), chunks) == [2]
    assert sorted(matched_passages(np.array([0.9, 0.85, 0.5]), chunks)) == [0, 1]


@needs_wordnet
def test_scorer_reports_the_reason_in_the_drilldown():
    scorer = GroundingScorer(checks=ALL_CHECKS[:-1])
    bad = scorer.score("Apex Freight was founded in Nantes and moved its offices to Lyon in 2010.",
                       [SOURCE])
    assert bad.hallucination == 1.0 and bad.unsupported[0].findings[0].kind == "role"
    good = scorer.score("Trucks can carry as much as 20 tonnes.", [SOURCE])
    assert good.hallucination == 0.0


def test_unknown_check_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown grounding checks"):
        GroundingScorer(checks=("negation", "vibes"))


POISON = ["", "\x00", "not " * 5000, "5 " * 3000 + "km", "\u202e\u0301\u200b", "per per per / / %",
          "°°°F 1e400 km", "NaN inf -inf", "ﬁ" * 100, "A" * 20_000, "n't n't n't", "99999999999999999999 kg",
          # slow poisons: thousands of names and numbers around shared verbs (bounded by MAX_TOKENS)
          " ".join(f"Name{i} acquired Name{i + 1} in {1900 + i}" for i in range(3_000))]


def test_role_check_work_is_bounded_on_a_sentence_of_thousands_of_names():
    text = " ".join(f"Kor{chr(97 + i % 26)}{i} acquired Vel{i} moved {i}" for i in range(5_000))
    import time

    start = time.process_time()
    role_findings(text, text[::-1], LEX)
    pair_features(text, text, 0.9, LEX)
    # bounded work (MAX_TOKENS, MAX_ANCHORS): unbounded, this takes minutes
    assert time.process_time() - start < 20


@needs_wordnet
@pytest.mark.parametrize("text", POISON)
def test_poison_text_never_raises(text):
    polarity_findings(text, SOURCE, LEX)
    polarity_findings(SOURCE, text, LEX)
    unit_findings(text, SOURCE)
    unit_findings(SOURCE, text)
    role_findings(text, SOURCE, LEX)
    features = pair_features(text, SOURCE, 0.5, LEX)
    assert len(features) == len(FEATURES) and all(np.isfinite(features))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_checks_are_total_on_any_text(a, b):
    for fn in (lambda: polarity_findings(a, b, LEX), lambda: unit_findings(a, b),
               lambda: role_findings(a, b, LEX)):
        fn()


def test_pair_model_round_trips_and_ignores_non_finite_features():
    model = load_pair_model()
    assert model is not None, "detectors/data/pair_model.json is missing"
    again = PairModel.from_json(model.to_json())
    assert again == model
    x = [0.5] * len(FEATURES)
    assert model.probability(x) == pytest.approx(again.probability(x))
    assert 0.0 <= model.probability([float("nan")] * len(FEATURES)) <= 1.0
    with pytest.raises(ValueError, match="retrain"):
        PairModel.from_json(model.to_json().replace('"similarity"', '"other"'))


@needs_wordnet
def test_relations_eval_does_not_regress():
    """The figures of docs/hallucination.md on the report split of the non-numeric error set
    (issue 15's acceptance, errors >= 0.85 with faithful >= 0.90, is NOT met yet: see there)."""
    from bench.grounding_relations_eval import judge, load

    topics = load("report")

    def rates(scorer):
        judged = judge(topics, scorer)
        errors = [flagged for _, c, flagged, _ in judged if c["label"] == "error"]
        faithful = [not flagged for _, c, flagged, _ in judged if c["label"] == "faithful"]
        return sum(errors) / len(errors), sum(faithful) / len(faithful)

    base_err, base_ok = rates(GroundingScorer(check_relations=False))
    default_err, default_ok = rates(GroundingScorer())
    all_err, all_ok = rates(GroundingScorer(checks=ALL_CHECKS[:-1]))
    assert base_err < 0.15 and base_ok >= 0.95
    assert default_err >= 0.30 and default_ok >= 0.93
    assert all_err >= 0.58 and all_ok >= 0.83
