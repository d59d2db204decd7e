"""A learned factual-consistency check of an answer sentence against its matched passage.

In the spirit of FactCC (Kryscinski, McCann, Xiong & Socher 2020, EMNLP): a classifier trained
on *synthetic* inconsistencies made by rule-based transformations of faithful sentences
(negation, antonym, role, quantifier and noun swaps), against faithful copies, synonym rewrites
and shortenings (``bench/train_pair_model.py``, text: WordNet's example sentences). FactCC
fine-tunes BERT on such pairs; this model is a logistic regression on the pair features of
:func:`pair_features` instead, so that it trains on two CPU cores in a minute, runs at
microseconds per pair, and ships as a few numbers (``detectors/data/pair_model.json``):

    P(inconsistent | x) = 1 / (1 + exp(-(b + w . (x - mu) / sigma)))

It adds what the hard rules of :mod:`parrotwatch.detectors.grounding.relations` cannot decide
alone: a changed qualifier or an unsupported content word ("severe disease" vs "any
infection", "all staff" vs "full-time staff"), weighed against the similarity and the share of
the passage the sentence covers.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from parrotwatch.detectors.grounding.lexicon import Lexicon
from parrotwatch.detectors.grounding.relations import (
    content_words,
    negation_count,
    polarity_findings,
    role_findings,
    tokens,
)

MODEL_PATH = Path(__file__).resolve().parents[1] / "data" / "pair_model.json"

#: classes of qualifier words: a word of one class replaced by another of the same class
#: changes the scope of a claim
QUALIFIERS = (
    frozenset({"all", "every", "each", "some", "any", "most", "many", "few", "several", "none",
               "only", "both", "either", "no"}),
    frozenset({"always", "usually", "often", "sometimes", "occasionally", "rarely", "never",
               "generally", "typically", "frequently", "seldom"}),
    frozenset({"may", "might", "must", "can", "should", "will", "could", "shall", "required",
               "optional", "mandatory", "recommended"}),
    frozenset({"severe", "mild", "moderate", "serious", "minor", "major", "acute", "chronic",
               "critical", "slight"}),
    frozenset({"adult", "adults", "child", "children", "everyone", "employees", "staff",
               "patients", "students", "members", "customers", "residents", "visitors"}),
    frozenset({"full-time", "part-time", "temporary", "permanent", "senior", "junior", "new",
               "existing", "registered", "unregistered"}),
)
_QUALIFIER_WORDS = frozenset().union(*QUALIFIERS)

FEATURES = ("similarity", "novel_share", "novel_count", "dropped_share", "qualifier_changed",
            "qualifier_added", "polarity_flip", "negation_diff", "role_swap", "order_crossings",
            "length_ratio")


def _covered(word: str, passage_forms: set[str], lexicon: Lexicon | None) -> bool:
    if word in passage_forms:
        return True
    if lexicon is None:
        return False
    return bool(lexicon.synonyms(word) & passage_forms)


def pair_features(sentence: str, passage: str, similarity: float,
                  lexicon: Lexicon | None) -> list[float]:
    """The :data:`FEATURES` of one (sentence, passage) pair.

    >>> f = dict(zip(FEATURES, pair_features("All staff must attend.", "Some staff must attend.",
    ...                                      0.9, None)))
    >>> f["qualifier_changed"], f["novel_count"], f["polarity_flip"]
    (1.0, 0.0, 0.0)
    """
    s_toks, p_toks = tokens(sentence), tokens(passage)
    s_words, p_words = content_words(s_toks), content_words(p_toks)
    p_forms = set(p_toks)
    if lexicon is not None:
        p_forms |= {lem for w in p_words for lem in lexicon.lemmas(w)}
    novel = [w for w in dict.fromkeys(s_words) if w not in _QUALIFIER_WORDS
             and not _covered(w, p_forms, lexicon)]
    s_set = set(s_toks) | ({lem for w in s_words for lem in lexicon.lemmas(w)} if lexicon else set())
    dropped = [w for w in dict.fromkeys(p_words) if w not in s_set]
    changed = added = 0.0
    for cls in QUALIFIERS:
        mine, theirs = cls & set(s_toks), cls & set(p_toks)
        if mine - theirs:
            if theirs - mine:
                changed = 1.0
            else:
                added = 1.0
    shared = [w for w in dict.fromkeys(s_words) if w in p_toks][:100]  # pairs: at most 4,950
    s_rank = {w: s_toks.index(w) for w in shared}
    p_rank = {w: p_toks.index(w) for w in shared}
    pairs = [(a, b) for i, a in enumerate(shared) for b in shared[i + 1:]]
    crossings = sum((s_rank[a] < s_rank[b]) != (p_rank[a] < p_rank[b]) for a, b in pairs)
    return [
        round(min(float(similarity), 1.0), 4),  # float noise puts copies at 1 +- 1e-7
        len(novel) / max(len(set(s_words)), 1),
        float(len(novel)),
        len(dropped) / max(len(set(p_words)), 1),
        changed,
        added,
        float(bool(polarity_findings(sentence, passage, lexicon))),
        float(abs(negation_count(s_toks) - negation_count(p_toks))),
        float(bool(role_findings(sentence, passage, lexicon))),
        crossings / max(len(pairs), 1),
        math.log((len(s_toks) + 1) / (len(p_toks) + 1)),
    ]


@dataclass(frozen=True)
class PairModel:
    """A standardised logistic regression over :data:`FEATURES` and its decision ``threshold``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float
    threshold: float
    trained_on: str = ""

    def probability(self, features: Sequence[float]) -> float:
        """P(inconsistent) for one feature vector.

        >>> m = PairModel((0.0,) * 11, (1.0,) * 11, (0.0,) * 10 + (1.0,), 0.0, 0.5)
        >>> m.probability([0.0] * 11), round(m.probability([0.0] * 10 + [2.0]), 4)
        (0.5, 0.8808)
        """
        z = self.intercept + sum(w * (x - m) / s if math.isfinite(x) else 0.0 for w, x, m, s
                                 in zip(self.weights, features, self.mean, self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def inconsistent(self, features: Sequence[float]) -> bool:
        """The decision: P(inconsistent) strictly above ``threshold`` (ties go to consistent)."""
        return self.probability(features) > self.threshold

    def to_json(self) -> str:
        return json.dumps({"features": list(FEATURES), "mean": self.mean, "scale": self.scale,
                           "weights": self.weights, "intercept": self.intercept,
                           "threshold": self.threshold, "trained_on": self.trained_on}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> PairModel:
        raw = json.loads(text)
        if tuple(raw["features"]) != FEATURES:
            raise ValueError(f"pair model features {raw['features']} differ from {FEATURES}: "
                             "retrain it (bench/train_pair_model.py)")
        return cls(tuple(raw["mean"]), tuple(raw["scale"]), tuple(raw["weights"]),
                   float(raw["intercept"]), float(raw["threshold"]), raw.get("trained_on", ""))


@functools.cache
def load_pair_model(path: str | None = None) -> PairModel | None:
    """The shipped model (or the one at ``path``); None where the file is absent."""
    file = Path(path) if path else MODEL_PATH
    return PairModel.from_json(file.read_text()) if file.is_file() else None
