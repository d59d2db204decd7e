"""Grounding (``hallucination``) and self-consistency: text and fact helpers, the scorer's
contract (batching, pickling, determinism, no mutation), the NLI plumbing with a tiny random
model, the constructed RAG set and the acceptance regression on its report split."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

from bench.hallucination_eval import calibrated_threshold, judge, table
from bench.rag_set import FAITHFUL, build
from parrotwatch.detectors.grounding import (
    DEFAULT_THRESHOLD,
    FactIndex,
    GroundingInput,
    GroundingScorer,
    calibrate_threshold,
    self_inconsistency,
    source_chunks,
    split_sentences,
)
from parrotwatch.detectors.grounding import scorer as scorer_module
from parrotwatch.detectors.grounding.nli import NLIModel, entailment_index
from parrotwatch.detectors.models.encoder import MissingModelError

SOURCES = [
    "The Eiffel Tower was built for the 1889 World's Fair in Paris. It was designed by the company "
    "of Gustave Eiffel. The tower is 330 metres tall.",
    "About 7 million people visit the tower each year.",
]
TALL = "The tower is 330 metres tall."
FAITHFUL_ANSWER = "The Eiffel Tower was built for the 1889 World's Fair in Paris. " + TALL
SWAPPED_ANSWER = "The Eiffel Tower was built for the 1887 World's Fair in Paris. " + TALL


# --- text and facts -------------------------------------------------------------------------

def test_sentences_keep_exact_spans():
    text = "Dr. Smith visited Paris in 1889.  It was cold!\n\n- a list item\nNo full stop here"
    sents = split_sentences(text)
    assert [s.text for s in sents] == ["Dr. Smith visited Paris in 1889.", "It was cold!", "- a list item",
                                       "No full stop here"]
    assert all(text[s.start: s.end] == s.text for s in sents)
    assert split_sentences("  ... ") == []


def test_chunks_are_sentences_plus_windows():
    chunks = source_chunks(["A one. B two. C three.", "D four."], window=2)
    assert chunks == ["A one.", "B two.", "C three.", "A one. B two.", "B two. C three.", "D four."]
    assert source_chunks(["A one. B two."], window=1) == ["A one.", "B two."]


def test_numbers_compare_by_value():
    index = FactIndex(["It cost 1,000 francs and took ten years; 1.5 million came; the 19th century."])
    assert index.unsupported("It cost 1000 francs.") == ()
    assert index.unsupported("It took 10 years.") == ()
    assert index.unsupported("About 1,500,000 people came in the nineteenth century, 19th.") == ()
    assert index.unsupported("It cost 1,001 francs over eleven years.") == ("1,001", "eleven")
    # "one" is a pronoun more often than a number: never a fact of a response
    assert index.unsupported("It was one of the costs.") == ()


def test_names_and_dates_must_occur_in_a_source():
    index = FactIndex(["Marie Curie was born in Warsaw on 7 November 1867 and won a Nobel Prize."])
    assert index.unsupported("In November 1867 Curie's family lived in warsaw.") == ()
    assert index.unsupported("She was born in Krakow in December 1867.") == ("Krakow", "December")
    # the first word of a sentence is capitalised anyway; acronyms count everywhere
    assert index.unsupported("Physics was her subject.") == ()
    assert index.unsupported("NASA honoured her.") == ("NASA",)
    # accents and case do not matter, possessives are dropped
    assert FactIndex(["Émile Nouguier drew it."]).unsupported("It was EMILE Nouguier's sketch.") == ()


def test_calibrate_threshold_flags_at_most_fpr():
    sims = np.linspace(0.1, 1.0, 10)
    t = calibrate_threshold(sims, fpr=0.2)
    assert t == pytest.approx(0.2)
    assert np.mean(sims < t) <= 0.2
    with pytest.raises(ValueError):
        calibrate_threshold([], 0.1)


def test_self_inconsistency_by_hand():
    e1, e2 = np.eye(2, dtype=np.float32)
    answer = np.stack([e1, e2])
    samples = [e1[None], np.stack([e1, (e1 + e2) / math.sqrt(2)])]
    # S(1) = 1 - (1 + 1)/2 = 0; S(2) = 1 - (0 + 1/sqrt 2)/2; score = mean
    assert self_inconsistency(answer, samples) == pytest.approx((1 - (1 / math.sqrt(2)) / 2) / 2)
    # negative cosines count as 0 support; an empty sample supports nothing
    assert self_inconsistency(e1[None], [-e1[None], np.zeros((0, 2))]) == pytest.approx(1.0)
    assert self_inconsistency(answer, []) is None


# --- the scorer (real encoder) -------------------------------------------------------------

@pytest.fixture(scope="module")
def scorer():
    return GroundingScorer()


def test_faithful_answer_scores_zero_and_swapped_year_is_caught(scorer):
    assert scorer.score(FAITHFUL_ANSWER, SOURCES).hallucination == 0.0
    result = scorer.score(SWAPPED_ANSWER, SOURCES)
    assert result.hallucination == pytest.approx(0.5) and result.n_sentences == 2
    (span,) = result.unsupported
    assert SWAPPED_ANSWER[span.start: span.end] == span.text
    assert span.text.startswith("The Eiffel Tower was built for the 1887")
    assert span.unsupported_facts == ("1887",) and span.similarity > 0.9  # similarity alone misses it


def test_unrelated_sentence_is_unsupported_by_similarity(scorer):
    result = scorer.score("The tower is 330 metres tall. Bananas are rich in potassium.", SOURCES)
    assert result.hallucination == pytest.approx(0.5)
    assert result.unsupported[0].text == "Bananas are rich in potassium."
    assert result.unsupported[0].unsupported_facts == () and result.unsupported[0].similarity < 0.5


def test_none_without_sources_or_sentences(scorer):
    assert scorer.score(FAITHFUL_ANSWER, None).hallucination is None
    assert scorer.score(FAITHFUL_ANSWER, []).hallucination is None
    assert scorer.score(FAITHFUL_ANSWER, ["  "]).hallucination is None
    assert scorer.score("", SOURCES).hallucination is None
    assert scorer.score(FAITHFUL_ANSWER, SOURCES).self_inconsistency is None


def test_self_inconsistency_orders_consistent_below_contradicting(scorer):
    agree = ["The Eiffel Tower was built for the World's Fair of 1889 in Paris."] * 2
    disagree = ["Bananas are yellow.", "The stock market fell on Monday."]
    low = scorer.score(FAITHFUL_ANSWER, None, samples=agree).self_inconsistency
    high = scorer.score(FAITHFUL_ANSWER, None, samples=disagree).self_inconsistency
    assert 0.0 <= low < 0.35 < high <= 1.0


def test_batch_is_one_encoder_call_and_matches_single_scores(scorer, monkeypatch):
    items = [GroundingInput(FAITHFUL_ANSWER, SOURCES), GroundingInput(SWAPPED_ANSWER, SOURCES, ["x y."]),
             GroundingInput("Nothing to check.", None)]
    singles = [scorer.score(i.response, i.sources, i.samples) for i in items]
    calls = []
    real = scorer_module.get_encoder

    class Counting:
        def __init__(self, spec):
            self._enc = real(spec)

        def encode(self, texts):
            calls.append(len(texts))
            return self._enc.encode(texts)

    monkeypatch.setattr(scorer_module, "get_encoder", Counting)
    assert scorer.score_batch(items) == singles
    assert len(calls) == 1


def test_contract_pickle_determinism_no_mutation(scorer):
    sources, samples = list(SOURCES), ["The tower is 330 metres tall."]
    before = copy.deepcopy((sources, samples))
    first = scorer.score(SWAPPED_ANSWER, sources, samples)
    assert (sources, samples) == before
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone.score(SWAPPED_ANSWER, sources, samples) == first
    assert pickle.loads(pickle.dumps(first)) == first
    assert GroundingScorer.__doc__ and "RAGAS" in scorer_module.__doc__


def test_a_stricter_threshold_never_flags_fewer(scorer):
    answer = FAITHFUL_ANSWER + " Visitors love the view from the top. It has 3 floors."
    (evidence,), _ = scorer.evidence_batch([GroundingInput(answer, SOURCES)])
    flags = [sum(not GroundingScorer(threshold=t).is_supported(s) for s in evidence)
             for t in (0.0, 0.5, 0.7, 0.9, 1.01)]
    assert flags == sorted(flags) and flags[0] == 1 and flags[-1] == len(evidence) == 4


# --- NLI plumbing with a tiny random model -------------------------------------------------

def _tiny_nli(path, entail_bias: float):
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "eiffel", "tower", "was", "built",
             "for", "1889", "world", "'", "s", "fair", "in", "paris", "."]
    path.mkdir()
    (path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=64, num_labels=3,
                        id2label={0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"},
                        label2id={"CONTRADICTION": 0, "ENTAILMENT": 1, "NEUTRAL": 2})
    model = BertForSequenceClassification(config)
    if entail_bias:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor([0.0, entail_bias, 0.0]))
    model.save_pretrained(path)
    return str(path)


def test_entailment_label_mapping():
    assert entailment_index({0: "contradiction", 1: "neutral", 2: "entailment"}) == 2
    assert entailment_index({0: "ENTAILMENT", 1: "NOT_ENTAILMENT"}) == 0
    with pytest.raises(ValueError, match="entailment"):
        entailment_index({0: "LABEL_0", 1: "LABEL_1"})


def test_nli_probabilities_match_a_manual_forward_pass(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = _tiny_nli(tmp_path / "nli", entail_bias=0.0)
    nli = NLIModel(path, device="cpu")
    premises, hypotheses = ["the eiffel tower was built for 1889", "paris ."], ["the tower .", "fair"]
    got = nli.entailment(premises, hypotheses, batch_size=1)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        logits = model(**tok(premises, hypotheses, padding=True, return_tensors="pt")).logits
    assert got.shape == (2,) and nli.entailment_index == 1
    np.testing.assert_allclose(got, torch.softmax(logits, -1)[:, 1].numpy(), rtol=1e-5)
    with pytest.raises(ValueError):
        nli.entailment(["a"], [])


def test_nli_must_agree_for_support(tmp_path):
    agrees = GroundingScorer(nli_path=_tiny_nli(tmp_path / "yes", entail_bias=6.0))
    refuses = GroundingScorer(nli_path=_tiny_nli(tmp_path / "no", entail_bias=-6.0))
    yes = agrees.score(SWAPPED_ANSWER, SOURCES)
    assert yes.hallucination == pytest.approx(0.5)  # NLI agreeing cannot rescue a wrong year
    assert yes.unsupported[0].entailment == pytest.approx(math.exp(6) / (math.exp(6) + 2), rel=1e-4)
    no = refuses.score(FAITHFUL_ANSWER, SOURCES)
    assert no.hallucination == 1.0 and all(s.entailment < 0.01 for s in no.unsupported)
    assert GroundingScorer(nli_path=refuses.nli_path, nli_threshold=0.0).score(
        FAITHFUL_ANSWER, SOURCES).hallucination == 0.0


def test_missing_nli_path_says_how_to_fix(tmp_path):
    with pytest.raises(MissingModelError, match="save_pretrained"):
        GroundingScorer(nli_path=str(tmp_path / "absent")).score(FAITHFUL_ANSWER, SOURCES)


# --- the constructed RAG set and the acceptance regression ---------------------------------

def test_rag_set_is_deterministic_labelled_and_large_enough():
    items = build()
    assert items == build() and len(items) >= 100
    assert {i.topic for i in items if i.split == "calibration"}.isdisjoint(
        {i.topic for i in items if i.split == "report"})
    for item in items:
        assert all(item.answer[s.start: s.end] == s.text for s in item.sentences)
        for s in item.sentences:
            in_source = any(s.text in src for src in item.sources)
            assert in_source == (s.category == "supported"), s.text
    cats = [s.category for i in items for s in i.sentences]
    assert min(cats.count(c) for c in ("supported", "paraphrased", "swapped", "added")) >= 70


@pytest.fixture(scope="module")
def judged(scorer):
    items = [i for i in build() if i.split == "report"]
    return judge(items, scorer, batch=48)


def test_acceptance_on_the_report_split(scorer, judged):
    assert scorer.threshold == DEFAULT_THRESHOLD
    rows = table(judged, scorer)
    assert rows["swapped"]["flagged"] >= 0.95
    assert rows["overall"]["faithful_pass"] >= 0.90
    assert rows["overall"]["recall"] >= 0.90 and rows["overall"]["precision"] >= 0.85
    faithful = [j for j in judged if j.category in FAITHFUL]
    assert len(faithful) == 144


def test_default_threshold_is_the_calibrated_one(scorer):
    """DEFAULT_THRESHOLD is the 5% quantile of the faithful sentences' best similarity on the
    ``dev`` split of bench/data/grounding_relations_eval.jsonl (abstractive paraphrases and
    summaries); the older, less abstractive calibration split of the RAG set gives 0.78, which
    flagged a quarter of those paraphrases."""
    from bench.grounding_relations_eval import load

    sims = []
    for topic in load("dev"):
        supports, _ = scorer.evidence_batch([GroundingInput(c["sentence"], topic["sources"])
                                             for c in topic["cases"]])
        sims += [min(s.similarity for s in per) for c, per in zip(topic["cases"], supports,
                                                                   strict=True)
                 if c["label"] == "faithful"]
    assert len(sims) >= 100
    assert calibrate_threshold(sims, 0.05) == pytest.approx(DEFAULT_THRESHOLD, abs=0.01)
    assert calibrated_threshold(scorer, fpr=0.05) == pytest.approx(0.784, abs=0.01)


def test_long_blocks_keep_the_text_and_most_of_pysbds_sentences():
    """Cutting text into blocks of MAX_BLOCK_CHARS (which makes splitting linear in the text's
    length) keeps every character and nearly pySBD's own segmentation of the whole text, on real,
    code-heavy prose (Python's docs: 83 % identical sentences, 207 vs 233; pySBD's rules read
    context, so some of its cuts move with the block)."""
    from pydoc_data.topics import topics

    from parrotwatch.detectors.grounding import text as text_mod

    prose = " ".join(" ".join(topics[k].split()) for k in sorted(topics)[:40])[:30_000]
    assert len(prose) > 10 * text_mod.MAX_BLOCK_CHARS
    cut = [s.text for s in split_sentences(prose)]
    whole = [p.strip() for p in text_mod._segmenter().segment(prose) if p.strip()]
    whole = [p for p in whole if text_mod._HAS_WORD.search(p)]
    same = len(set(cut) & set(whole)) / len(set(whole))
    assert same > 0.75, same
    assert abs(len(cut) - len(whole)) <= 0.15 * len(whole)
    assert all(len(s) <= text_mod.MAX_BLOCK_CHARS for s in cut)
    assert "".join(cut).replace(" ", "") == "".join(whole).replace(" ", "")


def test_work_per_request_is_bounded_and_the_cut_is_reported(scorer):
    from parrotwatch.detectors.grounding.scorer import MAX_SENTENCES, MAX_TEXT_CHARS, _bounded

    assert _bounded(["ab", "cd"], 3) == (["ab", "c"], True)
    assert _bounded(["ab", "cd"], 4) == (["ab", "cd"], False)
    assert _bounded(["ab", "cd", "e"], 4) == (["ab", "cd"], True)
    long = "The rover landed in 2021. " * (MAX_SENTENCES + 50)
    result = scorer.score(long, ["The rover landed in 2021."] * 3)
    assert result.truncated and result.n_sentences == MAX_SENTENCES
    assert result.hallucination == 0.0
    short = scorer.score("The rover landed in 2021.", ["The rover landed in 2021."])
    assert not short.truncated and short.n_sentences == 1
    huge_source = scorer.score("The rover landed in 2021.", ["x " * MAX_TEXT_CHARS])
    assert huge_source.truncated
