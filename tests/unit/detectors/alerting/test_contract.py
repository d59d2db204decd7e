"""Contract checks over every alerting component (river ``checks/common.py`` style)."""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import parrotwatch.detectors.alerting as alerting
from parrotwatch.detectors.alerting.baselines import Cusum, EwmaZScore, PageHinkley
from parrotwatch.detectors.alerting.stats import benjamini_hochberg, rate_ratio_test

DETECTORS = [
    lambda: EwmaZScore(alpha=0.2, threshold=2.0, warmup=5),
    lambda: Cusum(k=0.25, h=3.0, warmup=5),
    lambda: Cusum(k=0.5, h=2.0, target=0.0, sigma=1.0),
    lambda: PageHinkley(delta=0.1, threshold=3.0, min_instances=5),
]
MODULES = [
    importlib.import_module(f"{alerting.__name__}.{m.name}") for m in pkgutil.iter_modules(alerting.__path__)
]


def series() -> list[float]:
    rng = np.random.default_rng(42)
    return np.concatenate([rng.normal(0, 1, 60), rng.normal(4, 1, 20), rng.normal(0, 1, 40)]).tolist()


@pytest.mark.parametrize("make", DETECTORS)
def test_detector_pickles_mid_stream_and_continues_identically(make):
    xs = series()
    a = make()
    for x in xs[:70]:
        a.update(x)
    b = pickle.loads(pickle.dumps(a))
    trace_a = [(a.update(x).alarm, a.statistic) for x in xs[70:]]
    trace_b = [(b.update(x).alarm, b.statistic) for x in xs[70:]]
    assert trace_a == trace_b and any(alarm for alarm, _ in trace_a)


@pytest.mark.parametrize("make", DETECTORS)
def test_detector_is_deterministic_and_update_returns_self(make):
    xs = series()
    runs = []
    for _ in range(2):
        d = make()
        assert all(d.update(x) is d for x in xs[:3])
        runs.append([(d.update(x).alarm, d.statistic) for x in xs[3:]])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("make", DETECTORS)
def test_alarm_and_statistic_are_read_only(make):
    d = make()
    for attr in ("alarm", "statistic"):
        with pytest.raises(AttributeError):
            setattr(d, attr, 1)


def test_tests_do_not_mutate_their_input():
    p = [0.04, 0.001, 0.5, 0.02]
    frozen = copy.deepcopy(p)
    benjamini_hochberg(p, 0.05)
    assert p == frozen
    arr = np.array(p)
    benjamini_hochberg(arr, 0.05)
    assert arr.tolist() == frozen
    assert rate_ratio_test(3, 5, 0, 5) == rate_ratio_test(3, 5, 0, 5)


def test_every_public_class_function_and_method_has_a_docstring():
    missing = []
    for module in MODULES:
        assert module.__doc__, module.__name__
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not obj.__doc__:
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    func = member.fget if isinstance(member, property) else member
                    if not attr.startswith("_") and callable(func) and not inspect.getdoc(func):
                        missing.append(f"{module.__name__}.{name}.{attr}")
    assert missing == []


def test_modules_stay_small():
    for module in MODULES:
        lines = Path(module.__file__).read_text(encoding="utf-8").count("\n")
        assert lines < 400, f"{module.__name__} has {lines} lines"
