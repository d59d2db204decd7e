"""The ``toxicity`` score (detectors/toxicity.py): contract, range, ordering, the optional
transformer classifier's plumbing, and the AUC acceptance thresholds on the held-out eval set."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("profanity_check", reason="needs the models extra: pip install -e '.[models]'")
pytest.importorskip("sentence_transformers", reason="needs the models extra: pip install -e '.[models]'")

from sklearn.metrics import roc_auc_score  # noqa: E402

from parrotwatch.detectors import toxicity  # noqa: E402
from parrotwatch.detectors.models.encoder import MissingModelError, get_encoder  # noqa: E402
from parrotwatch.detectors.toxicity import (  # noqa: E402
    SEED_PATH,
    ToxicityScorer,
    fit_weights,
    load_labelled,
    profanity_prob,
)

EVAL_PATH = Path(__file__).resolve().parents[3] / "bench" / "data" / "toxicity_eval.jsonl"
TOXIC = ["I will find out where you live and make you regret it.",
         "You are a worthless idiot and everyone knows it.",
         "People like them are vermin and should be driven out of the country.",
         "Shut up, you fucking moron."]
BENIGN = ["Run kill -TERM on the old server process before starting the new one.",
          "The invading army burned the town in 1066, the chronicle says.",
          "I disagree with this design; the cache invalidation logic seems fragile.",
          "Damn, this pizza is amazing.",
          "Thanks, that fixed the bug!"]


@pytest.fixture(scope="module")
def scorer() -> ToxicityScorer:
    return ToxicityScorer()


@pytest.fixture(scope="module")
def seed_set(scorer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, profanity probabilities, labels) of the shipped seed set, encoded once."""
    texts, labels, _ = load_labelled(SEED_PATH)
    return get_encoder(scorer.encoder_spec).encode(texts), profanity_prob(texts), labels


@pytest.fixture(scope="module")
def eval_rows() -> list[dict]:
    return [json.loads(line) for line in EVAL_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_docstrings_cite_sources_and_formula():
    doc = toxicity.__doc__
    for ref in ("alt-profanity-check", "Dixon et al. 2018", "Vidgen et al. 2021", "Wolpert 1992",
                "Reimers", "Wulczyn", "sigmoid(a * z_emb + c * logit(p_prof) + g * z_ngram + d)"):
        assert ref in doc, ref
    assert ToxicityScorer.__doc__ and ToxicityScorer.score.__doc__


def test_range_shape_and_empty(scorer):
    s = scorer.score(TOXIC + BENIGN)
    assert s.shape == (len(TOXIC) + len(BENIGN),) and s.dtype == np.float64
    assert np.all((s >= 0) & (s <= 1))
    assert scorer.score([]).shape == (0,)
    with pytest.raises(TypeError, match="sequence of texts"):
        scorer.score("a single string")


def test_obvious_cases_are_ordered(scorer):
    s = scorer.score(TOXIC + BENIGN)
    tox, ben = s[: len(TOXIC)], s[len(TOXIC):]
    assert tox.min() > ben.max()
    assert np.all(tox > 0.8), dict(zip(TOXIC, tox, strict=True))
    assert np.all(ben < 0.2), dict(zip(BENIGN, ben, strict=True))


def test_precomputed_embeddings_give_the_same_scores(scorer):
    texts = TOXIC + BENIGN
    emb = get_encoder(scorer.encoder_spec).encode(texts)
    np.testing.assert_allclose(scorer.score(texts, embeddings=emb), scorer.score(texts), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="embeddings must have shape"):
        scorer.score(texts, embeddings=emb[:-1])


def test_pickle_round_trip_is_small_and_identical(scorer):
    blob = pickle.dumps(scorer)
    assert len(blob) < 20_000  # fitted weights and options only, no encoder weights
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.score(TOXIC + BENIGN), scorer.score(TOXIC + BENIGN))


def test_deterministic_fit_and_score(scorer, seed_set):
    emb, pp, labels = seed_set
    a, b = fit_weights(emb, pp, labels, seed=0), fit_weights(emb, pp, labels, seed=0)
    np.testing.assert_array_equal(a.emb_coef, b.emb_coef)
    assert (a.emb_intercept, a.stack_coef, a.stack_intercept) == (b.emb_intercept, b.stack_coef,
                                                                   b.stack_intercept)
    np.testing.assert_array_equal(scorer.score(TOXIC), scorer.score(TOXIC))


def test_does_not_mutate_input(scorer):
    texts = TOXIC + BENIGN
    before = list(texts)
    emb = get_encoder(scorer.encoder_spec).encode(texts)
    emb_before = emb.copy()
    scorer.score(texts, embeddings=emb)
    assert texts == before
    np.testing.assert_array_equal(emb, emb_before)


def test_fitted_weights_are_cached_on_disk(tmp_path, monkeypatch, scorer):
    first = ToxicityScorer(cache_dir=tmp_path)
    files = list(tmp_path.glob("toxicity-*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(toxicity, "_FITS", {})  # a fresh process: only the disk cache is left

    def no_refit(self):
        raise AssertionError("refitted although the cache file exists")

    monkeypatch.setattr(ToxicityScorer, "_fit_now", no_refit)
    second = ToxicityScorer(cache_dir=tmp_path)
    np.testing.assert_array_equal(second.score(TOXIC), first.score(TOXIC))


# -- optional transformer classifier: plumbing, with a tiny randomly initialised local model ----------

@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> str:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-toxic-bert")
    words = sorted({w.strip(".,!?;").lower() for t in TOXIC + BENIGN for w in t.split()})
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        num_labels=2, id2label={0: "toxic", 1: "severe_toxic"},
                        label2id={"toxic": 0, "severe_toxic": 1}, problem_type="multi_label_classification")
    BertForSequenceClassification(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_classifier_plumbing_shapes_range_and_batching(tiny_classifier, scorer):
    texts = TOXIC + BENIGN
    small = ToxicityScorer(classifier_path=tiny_classifier, classifier_weight=1.0, device="cpu", batch_size=2)
    big = ToxicityScorer(classifier_path=tiny_classifier, classifier_weight=1.0, device="cpu", batch_size=64)
    s_small, s_big = small.score(texts), big.score(texts)
    assert s_small.shape == (len(texts),) and np.all((s_small >= 0) & (s_small <= 1))
    np.testing.assert_allclose(s_small, s_big, atol=1e-5)  # padding per batch does not change scores
    assert np.ptp(s_small) > 0  # a real forward pass per text, not a constant
    assert small._weights is None  # classifier alone: the default is not fitted
    assert small.score([]).shape == (0,)
    long = small.score([" ".join(BENIGN * 20)])  # past the model's 64 positions: truncated, not an error
    assert long.shape == (1,) and 0 <= long[0] <= 1

    blend = ToxicityScorer(classifier_path=tiny_classifier, device="cpu")  # classifier_weight 0.5
    np.testing.assert_allclose(blend.score(texts), 0.5 * scorer.score(texts) + 0.5 * s_small, atol=1e-6)
    clone = pickle.loads(pickle.dumps(blend))
    assert clone._classifier is None
    np.testing.assert_allclose(clone.score(texts), blend.score(texts), atol=1e-6)


def test_classifier_picks_the_toxic_label(tiny_classifier):
    import torch

    clf = ToxicityScorer(classifier_path=tiny_classifier, classifier_weight=1.0, device="cpu")
    p = clf.classifier_score(TOXIC)
    model, tokenizer = clf._classifier.model, clf._classifier.tokenizer
    with torch.no_grad():
        logits = model(**tokenizer(TOXIC, padding=True, return_tensors="pt")).logits
    np.testing.assert_allclose(p, torch.sigmoid(logits[:, 0]).numpy(), atol=1e-5)  # "toxic" is label 0


def test_missing_classifier_path_names_the_option(tmp_path):
    with pytest.raises(MissingModelError, match="classifier_path"):
        ToxicityScorer(classifier_path=str(tmp_path / "no-such-model"))
    with pytest.raises(ValueError, match="classifier_weight"):
        ToxicityScorer(classifier_weight=1.5)


# -- data sets and the acceptance thresholds ------------------------------------------------------------

def test_eval_set_is_labelled_disjoint_and_mixed(eval_rows):
    assert len(eval_rows) >= 200
    assert all(set(r) == {"text", "toxic", "profanity", "category"} for r in eval_rows)
    assert all(r["toxic"] in (0, 1) and r["profanity"] in (0, 1) for r in eval_rows)
    seed_texts, seed_labels, _ = load_labelled(SEED_PATH)
    norm = {t.lower().strip() for t in seed_texts}
    assert not norm & {r["text"].lower().strip() for r in eval_rows}
    kinds = {(r["toxic"], r["profanity"]) for r in eval_rows}
    assert kinds == {(0, 0), (0, 1), (1, 0), (1, 1)}  # every mix of toxic and profane is present
    assert 0.4 < seed_labels.mean() < 0.6  # the seed set is balanced


def test_auc_acceptance_on_eval_set(scorer, seed_set, eval_rows):
    texts = [r["text"] for r in eval_rows]
    y = np.array([r["toxic"] for r in eval_rows])
    no_prof = np.array([r["profanity"] == 0 for r in eval_rows])
    emb = get_encoder(scorer.encoder_spec).encode(texts)
    assert (emb @ seed_set[0].T).max() < 0.9  # no near-duplicate of a seed text in the eval set

    default, baseline = scorer.score(texts, embeddings=emb), profanity_prob(texts)
    auc = roc_auc_score(y, default)
    gain = roc_auc_score(y[no_prof], default[no_prof]) - roc_auc_score(y[no_prof], baseline[no_prof])
    assert auc > 0.95, auc
    assert gain >= 0.05, gain
