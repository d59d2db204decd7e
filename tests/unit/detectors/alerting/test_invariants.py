"""Invariants of the alerting core's modules beyond the protocol contracts that
tests/unit/detectors/test_contracts.py runs over its streaming detectors (pickling, determinism,
read-only alarms): the statistics do not mutate their input, everything public is documented,
and modules stay small."""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
from pathlib import Path

import numpy as np

import parrotwatch.detectors.alerting as alerting
from parrotwatch.detectors.alerting.stats import benjamini_hochberg, rate_ratio_test

MODULES = [
    importlib.import_module(f"{alerting.__name__}.{m.name}") for m in pkgutil.iter_modules(alerting.__path__)
]


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
