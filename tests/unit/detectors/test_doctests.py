"""The ``>>>`` examples of every module of ``parrotwatch.detectors`` run and give their known answers.

As river runs its docstrings: the core maths carries small, hand-checkable examples (a Fisher test
of 3/5 against 0/5, Benjamini-Hochberg's step-up, a surprisal of 2 nats, an exposure of log2 8
bits, ...), and a change that breaks one fails here. torch is never imported by these modules at
import time (the model-backed classes load it lazily), so every module is collected.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import parrotwatch.detectors as detectors

MODULES = [m.name for m in pkgutil.walk_packages(detectors.__path__, f"{detectors.__name__}.")]
#: The modules whose public functions must carry worked examples, and how many at least each.
REQUIRED = {
    "parrotwatch.detectors.alerting.baselines": 5,
    "parrotwatch.detectors.alerting.cusum": 3,
    "parrotwatch.detectors.alerting.stats": 14,
    "parrotwatch.detectors.alerting.pooling": 6,
    "parrotwatch.detectors.likelihood": 13,
    "parrotwatch.detectors.lexical": 11,
    "parrotwatch.detectors.drift.mmd": 10,
    "parrotwatch.detectors.audits.exposure": 10,
    "parrotwatch.detectors.audits.roc": 5,
}
MIN_EXAMPLES = 70  # over all modules
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.fixture(scope="module")
def results() -> dict[str, doctest.TestResults]:
    return {name: doctest.testmod(importlib.import_module(name), optionflags=FLAGS, report=True)
            for name in MODULES}


def test_every_doctest_passes(results):
    failed = {name: r.failed for name, r in results.items() if r.failed}
    assert failed == {}, "doctest failures (the report is in the captured stdout)"


def test_enough_examples_run(results):
    attempted = sum(r.attempted for r in results.values())
    assert attempted >= MIN_EXAMPLES, f"only {attempted} doctest examples ran"


@pytest.mark.parametrize("module", sorted(REQUIRED))
def test_the_core_maths_has_worked_examples(results, module):
    assert module in results, f"{module} is not a module of parrotwatch.detectors"
    assert results[module].attempted >= REQUIRED[module]


def test_a_wrong_answer_fails():
    """The check can fail: an example with a wrong expected value is counted as a failure."""
    test = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "wrong", None, 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=lambda _: None)
    assert runner.summarize(verbose=False) == doctest.TestResults(failed=1, attempted=1)
