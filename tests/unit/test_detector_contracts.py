"""Contract tests over every detector (STYLE.md; river's ``checks/common.py``): each one pickles
(same output after a round trip), is deterministic under a seed, does not mutate its input and
has a docstring that names its source."""

from __future__ import annotations

import copy
import inspect
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from parrotwatch.detectors.drift import KnnOod, Reservoir, domain_classifier_test, mmd_test
from parrotwatch.detectors.grounding import GroundingInput, GroundingScorer
from parrotwatch.detectors.grounding.consistency import self_inconsistency
from parrotwatch.detectors.lexical import compression_ratio, distinct_n, repetition_rate
from parrotwatch.detectors.likelihood import likelihood_scores, token_entropy
from parrotwatch.detectors.models.encoder import get_encoder
from parrotwatch.detectors.task_metrics import task_metrics
from parrotwatch.detectors.toxicity import ToxicityScorer

CITATION = re.compile(r"(19|20)\d\d|et al\.|https?://|arXiv", re.I)
RNG = np.random.default_rng(0)
REF, CUR = RNG.normal(size=(60, 8)), RNG.normal(0.3, 1.0, size=(40, 8))
TEXTS = ["Thanks, that fixed my build.", "You are a worthless idiot and everyone hates you.",
         "The Eiffel Tower is 330 metres tall and opened in 1889."]
GROUNDING = [GroundingInput(response="The tower opened in 1889. It is 500 metres tall.",
                            sources=["The Eiffel Tower opened in 1889 and is 330 metres tall."],
                            samples=["It opened in 1889.", "The tower opened in 1889."])]


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Any]  # a fresh detector (seeded); for a function, the function
    run: Callable[[Any, Any], Any]
    make_input: Callable[[], Any]
    source: Any  # the object whose docstring (or its module's) must cite the method



CASES = [
    Case("likelihood_scores", lambda: likelihood_scores, lambda d, x: d(x),
         lambda: [-0.1, -2.3, -0.5, -0.05], likelihood_scores),
    Case("token_entropy", lambda: token_entropy, lambda d, x: d(x),
         lambda: [[-0.1, -2.5], [-0.7, -0.7]], token_entropy),
    Case("distinct_n", lambda: distinct_n, lambda d, x: d(x, 2),
         lambda: ["a", "b", "a", "b", "c", "d"], distinct_n),
    Case("repetition_rate", lambda: repetition_rate, lambda d, x: d(x, 3),
         lambda: ["a", "b", "c", "a", "b", "c", "a", "b", "c"], repetition_rate),
    Case("compression_ratio", lambda: compression_ratio, lambda d, x: d(x),
         lambda: "to be or not to be " * 10, compression_ratio),
    Case("mmd_test", lambda: mmd_test, lambda d, x: d(*x, n_permutations=99, seed=3),
         lambda: (REF.copy(), CUR.copy()), mmd_test),
    Case("domain_classifier_test", lambda: domain_classifier_test, lambda d, x: d(*x, seed=3),
         lambda: (REF.copy(), CUR.copy()), domain_classifier_test),
    Case("KnnOod", lambda: KnnOod(REF, k=5), lambda d, x: d.score(x), lambda: CUR.copy(), KnnOod),
    Case("Reservoir", lambda: Reservoir(16, 8, seed=4), lambda d, x: d.add(x).sample(),
         lambda: CUR.copy(), Reservoir),
    Case("task_metrics", lambda: task_metrics, lambda d, x: d(*x),
         lambda: ("the cat sat on the mat", "a cat sat on the mat"), task_metrics),
    Case("self_inconsistency", lambda: self_inconsistency, lambda d, x: d(*x),
         lambda: (get_encoder().encode(["It opened in 1889."]),
                  [get_encoder().encode(["It opened in 1889."]), get_encoder().encode(["No."])]),
         self_inconsistency),
    Case("ToxicityScorer", lambda: ToxicityScorer(seed=0), lambda d, x: d.score(x),
         lambda: list(TEXTS), ToxicityScorer),
    Case("GroundingScorer", lambda: GroundingScorer(),
         lambda d, x: [r.as_dict() for r in d.score_batch(x)], lambda: list(GROUNDING), GroundingScorer),
    Case("Encoder", lambda: get_encoder(), lambda d, x: d.encode(x), lambda: list(TEXTS),
         get_encoder),
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return a == b or (a != a and b != b)  # NaN == NaN here


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_deterministic_under_a_seed(case):
    assert _same(case.run(case.make(), case.make_input()), case.run(case.make(), case.make_input()))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_does_not_mutate_its_input(case):
    x = case.make_input()
    before = copy.deepcopy(x)
    case.run(case.make(), x)
    assert _same(x, before)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pickles_and_gives_the_same_output_after_a_round_trip(case):
    detector = case.make()
    clone = pickle.loads(pickle.dumps(detector))
    assert _same(case.run(clone, case.make_input()), case.run(case.make(), case.make_input()))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_has_a_docstring_naming_its_source(case):
    doc = inspect.getdoc(case.source) or ""
    module_doc = inspect.getdoc(inspect.getmodule(case.source)) or ""
    assert doc.strip(), f"{case.name} has no docstring"
    assert CITATION.search(doc) or CITATION.search(module_doc), \
        f"{case.name}: neither it nor its module cites a paper, year or URL"


def test_a_mutating_detector_would_be_caught():
    """The contract checks can fail: a detector that sorts its input in place is caught."""
    def bad(x):
        x.sort()
        return x[0]

    x = [3.0, 1.0, 2.0]
    before = copy.deepcopy(x)
    bad(x)
    assert not _same(x, before)
