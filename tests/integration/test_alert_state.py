"""The alert evaluator's state in the real PostgreSQL: versioned JSON in a jsonb column (migration
010), restored exactly after a reload; a pickled row from before 010 and garbage are reset with
a logged reason instead of failing the micro-batch (streaming/alert_stage.py)."""

from __future__ import annotations

import json
import logging
import math
import pickle
import re
from datetime import timedelta

import psycopg
import pytest

from parrotwatch.db import migrations
from parrotwatch.detectors.alerting import Evaluator
from parrotwatch.detectors.alerting.rules import DEFAULT_RULES_PATH, load_rules
from parrotwatch.detectors.alerting.state import decode_float, encode_float
from parrotwatch.streaming.alert_stage import AlertStage, restore_evaluator
from tests.unit.detectors.alerting.test_evaluate import run, traffic

pytestmark = pytest.mark.integration

RULES_TEXT = DEFAULT_RULES_PATH.read_text()
RULES = load_rules(RULES_TEXT)
BATCHES = traffic(60, {"latency": (("llama", "chat"), 30, 40), "repetition": (("qwen", "chat"), 28, 45)})
AWKWARD = [0.1, 1 / 3, 1e308, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, 1e-300,
           -123456.789e-200, 123456789.12345679, -0.0, 0.0, math.inf, -math.inf, math.nan,
           math.copysign(math.nan, -1.0)]


def stage(namespace) -> AlertStage:
    return AlertStage(namespace.settings, RULES, RULES_TEXT, timedelta(seconds=10))


def save(namespace, evaluator: Evaluator) -> None:
    with psycopg.connect(namespace.database_url) as conn:
        stage(namespace)._save(conn, evaluator)


def load(namespace) -> Evaluator:
    with psycopg.connect(namespace.database_url) as conn:
        return stage(namespace)._load(conn)


def test_state_is_versioned_jsonb_and_survives_reloads(namespace):
    evaluator = Evaluator(RULES)
    run(evaluator, BATCHES[:34])
    assert evaluator.active()  # mid-incident: alerts firing, baselines learned
    save(namespace, evaluator)
    kind, shape, version, rules_hash = namespace.sql(
        "SELECT pg_typeof(state)::text, jsonb_typeof(state), state -> 'version', rules_hash "
        "FROM alert_evaluator_state WHERE name = 'inference'")[0]
    assert (kind, shape, version, rules_hash) == ("jsonb", "object", 1, stage(namespace).rules_hash)

    reloaded = load(namespace)
    # every float exact through jsonb, and every order (trackers, labels) kept
    assert json.dumps(reloaded.to_state()) == json.dumps(evaluator.to_state())
    expected = run(evaluator, BATCHES[34:50])
    assert run(reloaded, BATCHES[34:50]) == expected and expected
    save(namespace, reloaded)
    again = load(namespace)
    assert again.to_state() == evaluator.to_state()
    assert run(again, BATCHES[50:]) == run(evaluator, BATCHES[50:])


def test_awkward_floats_round_trip_through_jsonb_exactly(namespace):
    text = json.dumps({"version": 1, "xs": [encode_float(x) for x in AWKWARD]}, allow_nan=False)
    stored = namespace.scalar("SELECT %s::jsonb::text", text)
    back = [decode_float(v, "x") for v in json.loads(stored)["xs"]]
    assert [encode_float(x) for x in back] == [encode_float(x) for x in AWKWARD]


def test_migration_010_turns_a_pickle_into_a_marker_that_is_reset_with_its_reason(namespace, caplog):
    before = next(sql for version, sql in migrations() if version.startswith("004_"))
    table = re.search(r"CREATE TABLE alert_evaluator_state \(.*?\);", before, re.S).group(0)
    after = next(sql for version, sql in migrations() if version.startswith("010_"))
    rules_hash = stage(namespace).rules_hash
    with psycopg.connect(namespace.database_url) as conn:
        # the table as 004 made it, in a schema of its own, with a pickled row; then 010
        conn.execute("CREATE SCHEMA before_010")
        conn.execute("SET search_path TO before_010")
        conn.execute(table)
        conn.execute("INSERT INTO alert_evaluator_state (name, rules_hash, state) "
                     "VALUES ('inference', %s, %s)", (rules_hash, pickle.dumps(Evaluator(RULES))))
        conn.execute(after)
        row = conn.execute("SELECT rules_hash, state::text FROM alert_evaluator_state").fetchone()
        assert json.loads(row[1])["version"] == 0
        with pytest.raises(psycopg.errors.CheckViolation):  # a state always has a version
            conn.execute("UPDATE alert_evaluator_state SET state = '\"garbage\"'")
        conn.rollback()  # and the scratch schema goes with it
    with caplog.at_level(logging.INFO, logger="parrotwatch.streaming.alert_stage"):
        evaluator = restore_evaluator(RULES, rules_hash, row)
    assert evaluator.to_state() == Evaluator(RULES).to_state()
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "state version 0" in warning[0] and "pickle" in warning[0]


def test_garbage_in_the_table_resets_with_a_logged_reason(namespace, caplog):
    evaluator = Evaluator(RULES)
    run(evaluator, BATCHES[:34])
    save(namespace, evaluator)
    with psycopg.connect(namespace.database_url) as conn:
        conn.execute("UPDATE alert_evaluator_state SET state = jsonb_set(state, '{checks,0,state}', "
                     "'{\"version\": 1, \"detector\": \"garbage\"}')")
    with caplog.at_level(logging.INFO, logger="parrotwatch.streaming.alert_stage"):
        reloaded = load(namespace)
    assert reloaded.to_state() == Evaluator(RULES).to_state()
    assert "evaluator.checks[0].state.detector: expected an object, got str" in caplog.text
    save(namespace, reloaded)  # and the next batch stores a good state again
    assert load(namespace).to_state() == reloaded.to_state()


def test_windows_the_rules_cannot_judge_are_skipped_with_a_logged_reason(namespace, caplog, monkeypatch):
    # Whatever a future rule trips on, the sink's transaction must not fail on it batch after batch.
    evaluator = Evaluator(RULES)
    run(evaluator, BATCHES[:20])
    save(namespace, evaluator)
    start = BATCHES[20][0].window_start
    with psycopg.connect(namespace.database_url) as conn:
        conn.execute("INSERT INTO window_counts (model, app, window_start, window_end, requests) "
                     "VALUES ('llama', 'chat', %s, %s, 40)", (start, start + timedelta(minutes=1)))
        conn.execute("INSERT INTO stream_watermarks (sink, max_event_time, updated_at, evaluated_until) "
                     "VALUES ('inference', %s, now(), %s)", (start + timedelta(minutes=3), start))

    def broken(self, windows):
        raise ZeroDivisionError("a rule divided by zero")

    monkeypatch.setattr(Evaluator, "evaluate", broken)
    with caplog.at_level(logging.ERROR, logger="parrotwatch.streaming.alert_stage"), \
            psycopg.connect(namespace.database_url) as conn:
        assert stage(namespace).evaluate(conn, "sink:test") == 0
        until = conn.execute("SELECT evaluated_until FROM stream_watermarks").fetchone()[0]
    assert until > start  # judged (without alerts): the next batch does not meet them again
    assert "skipped without alerts: ZeroDivisionError: a rule divided by zero" in caplog.text
    assert load(namespace).to_state() == evaluator.to_state()  # the state from before them
