"""Typed protocols of the three detector kinds, and the registry of the components of each kind.

A component belongs to a kind by its shape (``typing.Protocol``, checked with ``isinstance``),
not by inheritance, as river's ``base.DriftDetector`` and scipy's two-sample tests are used:

- :class:`StreamingDetector`: a change detector over one metric's own history, one value at a
  time (``update`` / ``reset`` / ``alarm``), e.g. the alert rules' EWMA, CUSUM and Page-Hinkley.
- :class:`TwoSampleTest`: ``test(reference, current)`` of two ``(n, dim)`` embedding samples,
  returning a :class:`TwoSampleResult` with a ``statistic`` and a ``p_value``.
- :class:`RequestScorer`: ``scores(batch)``, one ``{score name: value}`` per request of a batch.

:data:`REGISTRY` names every component of each kind (``"module:Class"``, imported on demand by
:func:`registered`, so importing this module stays cheap). The contract tests
(tests/unit/detectors/test_contracts.py) run over everything registered, and fail when a class
in ``parrotwatch.detectors`` has the shape of a kind without being registered.

Optional hooks a registered class may define for those tests (river's ``_unit_test_params``):
``_unit_test_params()`` gives constructor arguments (a class whose constructor needs arguments
must define it) and, for a request scorer, ``_unit_test_batch()`` a small example batch.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol, Self, runtime_checkable


@runtime_checkable
class StreamingDetector(Protocol):
    """A change detector over one numeric series, fed one value at a time.

    Contract (checked over every registered detector):

    - ``update(x)`` reads one float and returns the detector itself (so ``d.update(x).alarm``);
    - ``alarm`` is ``True`` exactly when the last value signalled; ``False`` before any value;
    - ``statistic`` is the float compared with the threshold for the last value (0.0 before any
      value; it may be infinite when the learned spread is 0);
    - ``ready`` says whether the next value can alarm (warmup over);
    - ``reset()`` forgets the history: afterwards the detector behaves exactly as a fresh one
      with the same hyperparameters, whatever it saw before;
    - no randomness: the same series gives the same alarms and statistics.
    """

    def update(self, x: float) -> Self:
        """Read one value; return ``self``."""
        ...

    def reset(self) -> None:
        """Back to the initial state (hyperparameters kept)."""
        ...

    @property
    def alarm(self) -> bool:
        """Whether the last value signalled."""
        ...

    @property
    def statistic(self) -> float:
        """The number compared with the threshold for the last value."""
        ...

    @property
    def ready(self) -> bool:
        """Whether the next value can alarm."""
        ...


@runtime_checkable
class TwoSampleResult(Protocol):
    """The outcome of a two-sample test.

    ``statistic``: a finite float, larger means more different; ``p_value``: in [0, 1], small
    means "not the same distribution" (``None`` only when the test was asked for the statistic
    alone, e.g. zero permutations); ``is_drift(alpha)`` is ``p_value < alpha``.
    """

    @property
    def statistic(self) -> float:
        """The test statistic."""
        ...

    @property
    def p_value(self) -> float | None:
        """The p-value of ``statistic`` under "same distribution"."""
        ...

    def is_drift(self, alpha: float = 0.05) -> bool:
        """Reject "same distribution" at level ``alpha``."""
        ...


@runtime_checkable
class TwoSampleTest(Protocol):
    """A two-sample test of a ``reference`` (m, dim) against a ``current`` (n, dim) sample.

    Contract: ``test`` returns a :class:`TwoSampleResult`; it is deterministic for the options
    the test was built with (its ``seed``), does not modify its inputs, and accepts any array-like
    of finite floats with the same ``dim`` on both sides (a ``ValueError`` otherwise).
    """

    def test(self, reference: Any, current: Any) -> TwoSampleResult:
        """Test ``reference`` against ``current``."""
        ...


@runtime_checkable
class RequestScorer(Protocol):
    """Per-request scores of a batch of requests.

    Contract: ``score_names`` are the names (registered in :mod:`parrotwatch.detectors.metrics`) each request
    gets; ``scores(batch)`` returns one dict per item, in order, with exactly those keys, each a
    finite float or ``None`` (the item does not allow the score: no sources, no tokens, ...). An
    empty batch gives ``[]``. Deterministic, does not modify the batch, and an item's scores do
    not depend on the other items of its batch (up to float rounding of batched inference).
    """

    score_names: tuple[str, ...]

    def scores(self, batch: Sequence[Any]) -> list[dict[str, float | None]]:
        """One ``{score name: value}`` per item of ``batch``."""
        ...


#: Per kind, every component: ``{name: "module:Class"}`` (module relative to this package).
REGISTRY: dict[str, dict[str, str]] = {
    "streaming": {
        "ewma": "alerting.baselines:EwmaZScore",
        "cusum": "alerting.baselines:Cusum",
        "page_hinkley": "alerting.baselines:PageHinkley",
    },
    "two_sample": {
        "mmd": "drift.mmd:MMDTest",
        "mmdagg": "drift.mmdagg:MMDAggTest",
        "domain_classifier": "drift.classifier:DomainClassifierTest",
    },
    "request": {
        "likelihood": "likelihood:LikelihoodScorer",
        "entropy": "likelihood:EntropyScorer",
        "lexical": "lexical:LexicalScorer",
        "toxicity": "toxicity:ToxicityScorer",
        "cost": "cost:PriceTable",
        "grounding": "grounding.scorer:GroundingScorer",
        "knn_ood": "drift.knn:KnnOod",
        "pii": "pii:PiiScorer",
        "injection": "injection:InjectionScorer",
    },
}
#: The protocol of each kind.
KINDS: dict[str, type] = {
    "streaming": StreamingDetector,
    "two_sample": TwoSampleTest,
    "request": RequestScorer,
}


def resolve(path: str) -> type:
    """The class a registry entry names, e.g. ``resolve("alerting.baselines:Cusum")``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def registered(kind: str) -> dict[str, type]:
    """``{name: class}`` of every component of ``kind`` (a key of :data:`REGISTRY`).

    >>> sorted(registered("streaming"))
    ['cusum', 'ewma', 'page_hinkley']
    """
    if kind not in REGISTRY:
        raise KeyError(f"unknown kind {kind!r}; kinds: {', '.join(REGISTRY)}")
    return {name: resolve(path) for name, path in REGISTRY[kind].items()}
