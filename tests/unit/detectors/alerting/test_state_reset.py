"""A stored evaluator state that cannot be used is migrated or reset with a logged reason, and
never fails the micro-batch (streaming.alert_stage.restore_evaluator, Evaluator.from_state)."""

from __future__ import annotations

import copy
import json
import logging
import random

import pytest

from parrotwatch.detectors.alerting import Evaluator, StateError, load_default_rules
from parrotwatch.detectors.alerting import evaluate as evaluate_module
from parrotwatch.streaming.alert_stage import dump_state, restore_evaluator
from tests.unit.detectors.alerting.test_evaluate import run, traffic

RULES = load_default_rules()
HASH = "0123456789abcdef"
BATCHES = traffic(60, {"latency": (("llama", "chat"), 30, 40), "repetition": (("qwen", "chat"), 28, 45)})
CUT = 34


@pytest.fixture(scope="module")
def saved() -> tuple[dict, list[dict]]:
    """A state taken mid-incident (alerts firing) and the events that follow it."""
    evaluator = Evaluator(RULES)
    run(evaluator, BATCHES[:CUT])
    assert evaluator.active()
    state = json.loads(dump_state(evaluator))
    return state, run(evaluator, BATCHES[CUT:])


def restore(state_text: str, caplog) -> Evaluator:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="parrotwatch.streaming.alert_stage"):
        return restore_evaluator(RULES, HASH, (HASH, state_text))


def is_fresh(evaluator: Evaluator) -> bool:
    return evaluator.to_state() == Evaluator(RULES).to_state()


def warnings(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_saved_state_restores_silently_and_continues(saved, caplog):
    state, after = saved
    evaluator = restore(json.dumps(state), caplog)
    assert run(evaluator, BATCHES[CUT:]) == after and after
    assert not caplog.records


def test_no_row_or_changed_rules_start_afresh_without_a_warning(saved, caplog):
    state, _ = saved
    assert is_fresh(restore_evaluator(RULES, HASH, None))
    with caplog.at_level(logging.INFO, logger="parrotwatch.streaming.alert_stage"):
        assert is_fresh(restore_evaluator(RULES, "another-rule-set", (HASH, json.dumps(state))))
    assert "rules changed" in caplog.text and not warnings(caplog)


def test_pickle_dropped_by_migration_010_resets_with_its_reason(caplog):
    marker = {"version": 0, "dropped": "a pickled state from before migration 010, not read back"}
    assert is_fresh(restore(json.dumps(marker), caplog))
    message = warnings(caplog)
    assert "state version 0" in message and "pickled state" in message and "starting afresh" in message


def test_newer_version_resets_with_its_reason(saved, caplog):
    state, _ = saved
    assert is_fresh(restore(json.dumps({**state, "version": 2}), caplog))
    assert "state version 2 is newer than this code's 1" in warnings(caplog)


def test_older_version_is_migrated_and_logged(saved, caplog, monkeypatch):
    state, after = saved
    # a made-up version 0 layout: the same content under other names
    old = {"version": 0, "detectors": state["checks"], "alerts": state["trackers"]}
    monkeypatch.setitem(evaluate_module.MIGRATIONS, 0, lambda s: {
        "checks": s["detectors"], "trackers": s["alerts"]})
    evaluator = restore(json.dumps(old), caplog)
    assert run(evaluator, BATCHES[CUT:]) == after
    assert "migrated from version 0 to 1" in caplog.text and not warnings(caplog)


def _set(path: str, value):
    """A mutation: the value at ``path`` (dots; list indexes as numbers) becomes ``value``."""
    def mutate(state: dict) -> dict:
        node, *parts = state, *path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return state
    return mutate


_DELETE = object()
EWMA = "checks.0.state.detector"  # latency_p99_spike on llama/chat: an EWMA
TRACKER = "trackers.0.state"  # the same rule and segment: firing at the cut
GARBAGE = {
    "not JSON": ("{'version': 1", "JSONDecodeError"),
    "an array": ("[]", "expected an object, got list"),
    "a string": ('"garbage"', "expected an object, got str"),
    "deep nesting": ("[" * 100_000, "RecursionError"),
    "version as text": (_set("version", "1"), "no integer 'version'"),
    "no version": (_set("version", _DELETE), "no integer 'version'"),
    "missing key": (_set("trackers", _DELETE), "missing keys ['trackers']"),
    "unknown key": (_set("extra", 1), "unknown keys ['extra']"),
    "raw NaN": (_set(f"{EWMA}.vars.mean", float("nan")), "a raw NaN"),
    "number as text": (_set(f"{EWMA}.vars.mean", "1.5"), "expected a number"),
    "count as text": (_set(f"{EWMA}.vars.n", "7"), "expected an integer"),
    "count as bool": (_set(f"{EWMA}.vars.n", True), "expected an integer"),
    "negative count": (_set(f"{EWMA}.vars.n", -1), "expected an integer >= 0"),
    "huge count": (_set(f"{EWMA}.vars.n", 10**30), "beyond 2**53"),
    "negative variance": (_set(f"{EWMA}.vars.var", -1.0), "variance cannot be negative"),
    "detector params": (_set(f"{EWMA}.params.threshold", 3.0), "parameters differ"),
    "bad detector params": (_set(f"{EWMA}.params.alpha", 7.0), "alpha must be in (0, 1]"),
    "detector version": (_set(f"{EWMA}.version", 9), "newer than this code's"),
    "unknown rule": (_set("checks.0.rule", "no_such_rule"), "'no_such_rule' is not in the rule set"),
    "short segment": (_set("checks.0.segment", ["llama"]), "expected 2 strings"),
    "duplicate": (lambda s: {**s, "checks": s["checks"] + s["checks"][:1]}, "a second entry"),
    "lifecycle": (_set(f"{TRACKER}.vars.state", "exploded"), "unknown lifecycle state"),
    "firing, no times": (_set(f"{TRACKER}.vars.last_sent", None), "a firing alert needs last_sent"),
    "naive time": (_set(f"{TRACKER}.vars.last_end", "2026-03-01T00:30:00"), "has no UTC offset"),
    "not a time": (_set(f"{TRACKER}.vars.last_end", "yesterday"), "not an ISO 8601 time"),
    "time beyond UTC": (_set(f"{TRACKER}.vars.last_end", "0001-01-01T00:00:00+05:00"), "out of range"),
    "tracker params": (_set(f"{TRACKER}.params.severity", "info"), "differ from what rule"),
    "labels": (_set(f"{TRACKER}.params.labels", {"model": "m"}), "expected [key, value] pairs"),
    "label pair": (_set(f"{TRACKER}.params.labels.0", ["model", 1]), "expected [key, value] pairs"),
    "label twice": (_set(f"{TRACKER}.params.labels.1", ["model", "x"]), "a label key is repeated"),
}


@pytest.mark.parametrize("case", GARBAGE)
def test_malformed_state_resets_with_a_logged_reason(saved, caplog, case):
    mutation, reason = GARBAGE[case]
    text = mutation if isinstance(mutation, str) else json.dumps(mutation(copy.deepcopy(saved[0])))
    evaluator = restore(text, caplog)
    assert is_fresh(evaluator)
    assert reason in warnings(caplog) and "starting afresh" in warnings(caplog)
    run(evaluator, BATCHES[CUT:])  # and the stream goes on


def test_a_stored_rate_ratio_check_with_more_windows_than_the_rule_keeps_keeps_the_newest(saved):
    # a rule whose baseline_windows was lowered: the oldest windows go, the newest stay
    state = copy.deepcopy(saved[0])
    entry = next(c for c in state["checks"] if "history" in c["state"] and "added" in c["state"])
    entry["state"]["history"] = [[0.0, 1.0, True, float(t)] for t in range(1000)]
    entry["state"]["span"] = 1
    restored = Evaluator.from_state(RULES, state)
    check = next(c for k, c in restored._checks.items() if k.rule == entry["rule"]
                 and list(k.segment) == entry["segment"])
    history = check.to_state()["history"]
    assert len(history) == check._history.maxlen < 1000 and history[-1][3] == 999.0


@pytest.mark.parametrize("window", [[5.0, 2.0, True, 1.0], [-1.0, 2.0, True, 1.0],
                                    [0.0, 2.0**40, True, 1.0], [0.0, "inf", True, 1.0],
                                    [0.0, "nan", True, 1.0], [1.0, 2.0, True]])
def test_a_stored_rate_ratio_window_out_of_range_is_malformed(saved, window):
    # 2**40 requests in a window: no window holds it, and Fisher's test would take seconds
    state = copy.deepcopy(saved[0])
    entry = next(c for c in state["checks"] if "history" in c["state"] and "added" in c["state"])
    entry["state"]["history"] = [window]
    entry["state"]["span"] = 0
    with pytest.raises(StateError, match=r"need counts|expected \[k, n, clean, t\]"):
        Evaluator.from_state(RULES, state)


def test_a_rate_ratio_state_of_version_1_migrates_into_the_baseline(saved):
    state = copy.deepcopy(saved[0])
    entry = next(c for c in state["checks"] if "history" in c["state"] and "added" in c["state"])
    entry["state"] = {"version": 1, "recent": [[1.0, 40.0, True]], "baseline": [[0.0, 40.0]] * 3,
                      "added": True}
    restored = Evaluator.from_state(RULES, state)
    check = next(c for k, c in restored._checks.items() if k.rule == entry["rule"]
                 and list(k.segment) == entry["segment"])
    assert check.baseline_counts() == (1.0, 160.0)  # old windows: baseline only, never "now"


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield path + (k,), node, k
            yield from _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield path + (i,), node, i
            yield from _leaves(v, path + (i,))


JUNK = [None, True, False, -1, 0, 3, 2**40, 2**60, -1e308, 0.5, float("nan"), "", "x", "nan", "-inf",
        "2026-03-01T00:40:00+00:00", "2026-03-01T00:40:00", [], [1, 2], {}, {"version": 1}]


def test_fuzzed_states_restore_or_raise_state_error_and_never_break_evaluation(saved):
    rng = random.Random(12)
    restored = 0
    for _ in range(400):
        state = copy.deepcopy(saved[0])
        for _ in range(rng.randint(1, 3)):
            _path, parent, key = rng.choice(list(_leaves(state)))
            if rng.random() < 0.2 and isinstance(parent, dict):
                del parent[key]
            else:
                parent[key] = copy.deepcopy(rng.choice(JUNK))
        try:
            evaluator = Evaluator.from_state(RULES, json.loads(json.dumps(state)))
        except StateError:
            continue
        restored += 1
        run(evaluator, BATCHES[CUT:CUT + 8])  # whatever passed validation must evaluate
        dump_state(evaluator)
    assert 0 < restored < 400
