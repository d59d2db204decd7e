"""Finding the records a sink write refuses (streaming.isolation), without a database."""

from __future__ import annotations

import psycopg
import pytest

from parrotwatch.streaming.isolation import describe, find_culprits, is_data_error


def _probe_failing_on(bad: set[int], calls: list):
    def probe(subset):
        calls.append(len(subset))
        hit = [x for x in subset if x in bad]
        return ValueError(f"bad {hit[0]}") if hit else None
    return probe


@pytest.mark.parametrize("bad", [set(), {0}, {999}, {3, 500, 501}, set(range(0, 1000, 97))])
def test_bisection_finds_exactly_the_records_that_fail_alone(bad):
    calls: list[int] = []
    found = find_culprits(list(range(1000)), _probe_failing_on(bad, calls))
    assert [x for x, _ in found] == sorted(bad)  # in input order
    assert all(str(err) == f"bad {x}" for x, err in found)
    if len(bad) == 1:  # about 2 log2(n) probes per culprit
        assert len(calls) <= 2 * 10 + 1


def test_a_failure_that_needs_two_records_finds_no_culprit():
    def probe(subset):
        return ValueError("pair") if {1, 2} <= set(subset) else None
    assert find_culprits([0, 1, 2, 3], probe) == []


def test_an_outage_during_the_search_propagates():
    def probe(subset):
        if len(subset) < 4:
            raise psycopg.OperationalError("server closed the connection")
        return ValueError("bad")
    with pytest.raises(psycopg.OperationalError):
        find_culprits(list(range(8)), probe)


def test_data_errors_are_told_from_outages():
    assert is_data_error(psycopg.errors.UntranslatableCharacter("NUL in jsonb"))
    assert is_data_error(psycopg.errors.ProgramLimitExceeded("index row size 3000 exceeds"))
    assert is_data_error(psycopg.errors.NotNullViolation("null value"))
    assert is_data_error(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert is_data_error(TypeError("Integer exceeds 64-bit range"))
    assert not is_data_error(psycopg.OperationalError("connection refused"))
    assert not is_data_error(psycopg.errors.QueryCanceled("statement timeout"))
    assert not is_data_error(psycopg.errors.UndefinedTable("no such table"))
    assert not is_data_error(RuntimeError("bug"))
    assert describe(ValueError("first line\nsecond")) == "ValueError: first line"
