"""Contract tests over every registered detector (``parrotwatch.detectors.protocols.REGISTRY``),
as river's ``checks/common.py`` runs its checks over every estimator.

Each registered component conforms to the protocol of its kind, pickles (same output after a round
trip), is deterministic under a seed, does not mutate its input and has a docstring that names its
source; then the behaviour of its kind: a streaming detector resets to its initial state and
catches a shift, a two-sample test gives p-values in [0, 1] and rejects a clear shift, a request
scorer gives one finite-or-None score per name and item. A class of ``parrotwatch.detectors`` that
has the shape of a kind but is not registered fails :func:`test_every_detector_is_registered`.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import pickle
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import parrotwatch.detectors as detectors
from parrotwatch.detectors import protocols
from parrotwatch.detectors.drift import Reservoir
from parrotwatch.detectors.grounding.consistency import self_inconsistency
from parrotwatch.detectors.likelihood import likelihood_scores, token_entropy
from parrotwatch.detectors.models.encoder import get_encoder
from parrotwatch.detectors.protocols import KINDS, REGISTRY, TwoSampleResult
from parrotwatch.detectors.task_metrics import task_metrics

CITATION = re.compile(r"(19|20)\d\d|et al\.|https?://|arXiv", re.I)
ENTRIES = [(kind, name) for kind, members in REGISTRY.items() for name in members]
IDS = [f"{kind}:{name}" for kind, name in ENTRIES]
STREAMING = [e for e in ENTRIES if e[0] == "streaming"]
TWO_SAMPLE = [e for e in ENTRIES if e[0] == "two_sample"]
REQUEST = [e for e in ENTRIES if e[0] == "request"]
SHIFT_AT = 60

#: Classes with the shape of a kind that are not detectors of it, and why.
NOT_DETECTORS = {
    "parrotwatch.detectors.models.causal_lm.CausalLMScorer":
        "a model backend: token log-probabilities that the likelihood and membership scores read",
}


def component(kind: str, name: str) -> type:
    return protocols.resolve(REGISTRY[kind][name])


def make(kind: str, name: str) -> Any:
    """A fresh, seeded instance, with the class's ``_unit_test_params()`` when it has them."""
    cls = component(kind, name)
    params = cls._unit_test_params() if hasattr(cls, "_unit_test_params") else {}
    return cls(**params)


def series() -> list[float]:
    """In control for ``SHIFT_AT`` values, then shifted up by 8 standard deviations."""
    rng = np.random.default_rng(42)
    return np.concatenate([rng.normal(10, 1, SHIFT_AT), rng.normal(18, 1, 30)]).tolist()


def samples(shift: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 8)), rng.normal(shift, 1.0, size=(40, 8))


def make_input(kind: str, name: str) -> Any:
    if kind == "streaming":
        return series()
    if kind == "two_sample":
        return samples()
    cls = component(kind, name)
    assert hasattr(cls, "_unit_test_batch"), f"request scorer {name} needs a _unit_test_batch() classmethod"
    return cls._unit_test_batch()


def run(kind: str, obj: Any, x: Any) -> Any:
    if kind == "streaming":
        return [(obj.update(v).alarm, obj.statistic, obj.ready) for v in x]
    if kind == "two_sample":
        return obj.test(*x)
    return obj.scores(x)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return a == b or (a != a and b != b)  # NaN == NaN here


def cites_its_source(obj: Any) -> bool:
    doc = inspect.getdoc(obj) or ""
    module_doc = inspect.getdoc(inspect.getmodule(obj)) or ""
    return bool(doc.strip()) and bool(CITATION.search(doc) or CITATION.search(module_doc))


def protocol_members(proto: type) -> dict[str, Any]:
    """The members a protocol declares: methods (functions), properties and plain attributes."""
    members = {n: v for n, v in vars(proto).items() if not n.startswith("_")}
    members.update({n: None for n in getattr(proto, "__annotations__", {}) if not n.startswith("_")})
    return members


# ---------------------------------------------------------------- every registered component


def test_the_registry_is_not_empty_and_names_each_kind():
    assert set(REGISTRY) == set(KINDS) == {"streaming", "two_sample", "request"}
    assert all(REGISTRY[kind] for kind in REGISTRY)


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=IDS)
def test_conforms_to_the_protocol_of_its_kind(kind, name):
    obj, proto = make(kind, name), KINDS[kind]
    assert isinstance(obj, proto)
    for member, declared in protocol_members(proto).items():
        if inspect.isfunction(declared):  # the method takes the protocol's arguments
            arity = len(inspect.signature(declared).parameters) - 1
            inspect.signature(getattr(obj, member)).bind(*range(arity))
        elif isinstance(declared, property):
            assert isinstance(getattr(type(obj), member), property), f"{name}.{member} is not read-only"


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=IDS)
def test_deterministic_under_a_seed(kind, name):
    assert same(run(kind, make(kind, name), make_input(kind, name)),
                run(kind, make(kind, name), make_input(kind, name)))


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=IDS)
def test_does_not_mutate_its_input(kind, name):
    x = make_input(kind, name)
    before = copy.deepcopy(x)
    run(kind, make(kind, name), x)
    assert same(x, before)


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=IDS)
def test_pickles_and_gives_the_same_output_after_a_round_trip(kind, name):
    clone = pickle.loads(pickle.dumps(make(kind, name)))
    assert same(run(kind, clone, make_input(kind, name)), run(kind, make(kind, name), make_input(kind, name)))


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=IDS)
def test_has_a_docstring_naming_its_source(kind, name):
    assert cites_its_source(component(kind, name)), \
        f"{name}: no docstring, or neither it nor its module cites a paper, year or URL"


# ---------------------------------------------------------------- streaming detectors


@pytest.mark.parametrize(("kind", "name"), STREAMING, ids=[n for _, n in STREAMING])
def test_streaming_detector_starts_clear_and_update_returns_self(kind, name):
    d = make(kind, name)
    assert d.alarm is False and d.statistic == 0.0
    for x in series():
        assert d.update(x) is d
        assert isinstance(d.alarm, bool) and isinstance(d.statistic, float) and not math.isnan(d.statistic)


@pytest.mark.parametrize(("kind", "name"), STREAMING, ids=[n for _, n in STREAMING])
def test_streaming_detector_reset_restores_the_initial_state(kind, name):
    fresh, used = make(kind, name), make(kind, name)
    xs = series()
    run(kind, used, xs)
    used.reset()
    assert used.alarm is False and used.statistic == 0.0 and used.ready == fresh.ready
    if hasattr(used, "to_state"):
        assert used.to_state() == fresh.to_state()
    assert run(kind, used, xs) == run(kind, fresh, xs)


@pytest.mark.parametrize(("kind", "name"), STREAMING, ids=[n for _, n in STREAMING])
def test_streaming_detector_catches_a_shift_and_not_before(kind, name):
    alarms = [alarm for alarm, _, _ in run(kind, make(kind, name), series())]
    assert not any(alarms[:SHIFT_AT]) and any(alarms[SHIFT_AT:SHIFT_AT + 10])


@pytest.mark.parametrize(("kind", "name"), STREAMING, ids=[n for _, n in STREAMING])
def test_streaming_detector_state_round_trip_continues_identically(kind, name):
    d, xs = make(kind, name), series()
    run(kind, d, xs[:SHIFT_AT - 5])
    restored = type(d).from_state(d.to_state())
    assert run(kind, restored, xs[SHIFT_AT - 5:]) == run(kind, d, xs[SHIFT_AT - 5:])


# ---------------------------------------------------------------- two-sample tests


@pytest.mark.parametrize(("kind", "name"), TWO_SAMPLE, ids=[n for _, n in TWO_SAMPLE])
@pytest.mark.parametrize("shift", [0.0, 0.3, 2.0])
def test_two_sample_result_has_a_finite_statistic_and_a_p_value_in_0_1(kind, name, shift):
    result = make(kind, name).test(*samples(shift))
    assert isinstance(result, TwoSampleResult)
    assert isinstance(result.statistic, float) and math.isfinite(result.statistic)
    assert isinstance(result.p_value, float) and 0.0 <= result.p_value <= 1.0
    for alpha in (0.01, 0.05, 0.5):
        assert result.is_drift(alpha) == (result.p_value < alpha)


@pytest.mark.parametrize(("kind", "name"), TWO_SAMPLE, ids=[n for _, n in TWO_SAMPLE])
def test_two_sample_test_rejects_a_clear_shift_and_not_a_copy(kind, name):
    test = make(kind, name)
    x, y = samples(2.0)
    assert test.test(x, y).p_value <= 0.05
    assert test.test(x, x.copy()).p_value > 0.2


@pytest.mark.parametrize(("kind", "name"), TWO_SAMPLE, ids=[n for _, n in TWO_SAMPLE])
def test_two_sample_test_refuses_samples_of_different_dimensions(kind, name):
    x, y = samples()
    with pytest.raises(ValueError, match="dimension"):
        make(kind, name).test(x, y[:, :5])


# ---------------------------------------------------------------- request scorers


@pytest.mark.parametrize(("kind", "name"), REQUEST, ids=[n for _, n in REQUEST])
def test_request_scorer_gives_each_item_finite_scores_or_none(kind, name):
    scorer, batch = make(kind, name), make_input(kind, name)
    names = scorer.score_names
    assert isinstance(names, tuple) and names and len(set(names)) == len(names)
    assert all(isinstance(n, str) and n for n in names)
    out = scorer.scores(batch)
    assert isinstance(out, list) and len(out) == len(batch)
    for row in out:
        assert isinstance(row, dict) and tuple(row) == names
        assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in row.values()), row
    assert any(v is not None for row in out for v in row.values())
    assert scorer.scores(batch[:0]) == []


@pytest.mark.parametrize(("kind", "name"), REQUEST, ids=[n for _, n in REQUEST])
def test_request_scorer_scores_an_item_alone_as_in_its_batch(kind, name):
    scorer, batch = make(kind, name), make_input(kind, name)
    together = scorer.scores(batch)
    for i in range(len(batch)):
        (alone,) = scorer.scores(batch[i:i + 1])
        for key, value in alone.items():
            if value is None or together[i][key] is None:
                assert value is together[i][key], (i, key)
            else:
                assert value == pytest.approx(together[i][key], abs=1e-5), (i, key)


# ---------------------------------------------------------------- completeness of the registry


def detector_modules() -> list[Any]:
    return [importlib.import_module(m.name)
            for m in pkgutil.walk_packages(detectors.__path__, f"{detectors.__name__}.")]


def shapes(cls: type) -> set[str]:
    """The kinds whose shape ``cls`` has (a heuristic wider than the protocols, on purpose)."""
    out = set()
    if hasattr(cls, "update") and hasattr(cls, "alarm"):
        out.add("streaming")
    if callable(getattr(cls, "test", None)) or cls.__name__.endswith("Test"):
        out.add("two_sample")
    if any(callable(getattr(cls, m, None)) for m in ("score", "scores", "score_batch")) \
            or cls.__name__.endswith("Scorer"):
        out.add("request")
    return out


def is_two_sample_function(obj: Any) -> bool:
    if not inspect.isfunction(obj) or obj.__name__.startswith("_") or not obj.__name__.endswith("_test"):
        return False
    return list(inspect.signature(obj).parameters)[:2] == ["reference", "current"]


def unregistered(modules: list[Any]) -> list[str]:
    """What in ``modules`` has the shape of a kind without being registered (or in NOT_DETECTORS)."""
    registered = {kind: set(protocols.registered(kind).values()) for kind in REGISTRY}
    missing = []
    for module in modules:
        wrappers = [w for w in registered["two_sample"] if w.__module__ == module.__name__]
        for obj in vars(module).values():
            if getattr(obj, "__module__", None) != module.__name__ or module is protocols:
                continue
            qualified = f"{module.__name__}.{getattr(obj, '__name__', '')}"
            if inspect.isclass(obj) and not getattr(obj, "_is_protocol", False):
                missing += [f"{qualified} looks like a {kind} detector" for kind in sorted(shapes(obj))
                            if obj not in registered[kind] and qualified not in NOT_DETECTORS]
            elif is_two_sample_function(obj) and not any(obj.__name__ in inspect.getsource(w)
                                                         for w in wrappers):
                missing.append(f"{qualified} is a two-sample test that no registered class wraps")
    return missing


def test_every_detector_is_registered():
    """Register what this lists in protocols.REGISTRY (or add it to NOT_DETECTORS, saying why)."""
    assert unregistered(detector_modules()) == []


def test_the_registry_check_can_fail():
    class Shifty:
        def update(self, x):
            return self

        alarm = False

    class LooksLikeTest:
        def test(self, reference, current):
            return None

    assert shapes(Shifty) == {"streaming"} and shapes(LooksLikeTest) == {"two_sample"}

    def fake_test(reference, current, seed=0):
        return None

    assert is_two_sample_function(fake_test)


def test_not_detectors_names_real_classes():
    for qualified in NOT_DETECTORS:
        module, _, name = qualified.rpartition(".")
        assert inspect.isclass(getattr(importlib.import_module(module), name)), qualified


# ---------------------------------------------------------------- components that are not of a kind


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Any]  # a fresh component (seeded); for a function, the function
    run: Callable[[Any, Any], Any]
    make_input: Callable[[], Any]
    source: Any  # the object whose docstring (or its module's) must cite the method


#: Helpers and plain functions outside the three kinds (the kinds are covered above, from the registry).
HELPERS = [
    Case("likelihood_scores", lambda: likelihood_scores, lambda d, x: d(x),
         lambda: [-0.1, -2.3, -0.5, -0.05], likelihood_scores),
    Case("token_entropy", lambda: token_entropy, lambda d, x: d(x),
         lambda: [[-0.1, -2.5], [-0.7, -0.7]], token_entropy),
    Case("Reservoir", lambda: Reservoir(16, 8, seed=4), lambda d, x: d.add(x).sample(),
         lambda: np.random.default_rng(1).normal(size=(40, 8)), Reservoir),
    Case("task_metrics", lambda: task_metrics, lambda d, x: d(*x),
         lambda: ("the cat sat on the mat", "a cat sat on the mat"), task_metrics),
    Case("self_inconsistency", lambda: self_inconsistency, lambda d, x: d(*x),
         lambda: (get_encoder().encode(["It opened in 1889."]),
                  [get_encoder().encode(["It opened in 1889."]), get_encoder().encode(["No."])]),
         self_inconsistency),
    Case("Encoder", lambda: get_encoder(), lambda d, x: d.encode(x),
         lambda: ["Thanks, that fixed my build.", "The Eiffel Tower opened in 1889."], get_encoder),
]
HELPER_IDS = [c.name for c in HELPERS]


@pytest.mark.parametrize("case", HELPERS, ids=HELPER_IDS)
def test_helper_is_deterministic_does_not_mutate_and_pickles(case):
    x = case.make_input()
    before = copy.deepcopy(x)
    out = case.run(case.make(), x)
    assert same(x, before)
    assert same(out, case.run(case.make(), case.make_input()))
    clone = pickle.loads(pickle.dumps(case.make()))
    assert same(case.run(clone, case.make_input()), out)


@pytest.mark.parametrize("case", HELPERS, ids=HELPER_IDS)
def test_helper_has_a_docstring_naming_its_source(case):
    assert cites_its_source(case.source), f"{case.name}: neither it nor its module cites its source"


def test_a_mutating_detector_would_be_caught():
    """The contract checks can fail: a detector that sorts its input in place is caught."""
    def bad(x):
        x.sort()
        return x[0]

    x = [3.0, 1.0, 2.0]
    before = copy.deepcopy(x)
    bad(x)
    assert not same(x, before)


def test_the_rule_kinds_and_the_streaming_registry_name_the_same_classes():
    """Rules build their baselines from ``baselines.BASELINES``; the contracts run over
    ``REGISTRY["streaming"]``: a baseline added to one must be in the other."""
    from parrotwatch.detectors.alerting.baselines import BASELINES

    assert set(BASELINES.values()) == set(protocols.registered("streaming").values())
