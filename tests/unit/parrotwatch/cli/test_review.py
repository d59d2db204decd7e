"""The review commands' argument checks, before any database is touched."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from parrotwatch.cli import app

runner = CliRunner()


def test_the_review_and_calibrate_groups_are_registered():
    commands = typer.main.get_command(app).commands
    assert set(commands["review"].commands) == {"sample", "purge", "schedule"}
    assert set(commands["calibrate"].commands) == {"apply", "revoke", "show"}


def test_an_explicit_period_needs_both_ends():
    result = runner.invoke(app, ["review", "sample", "--period-start", "2026-01-01T00:00:00"])
    assert result.exit_code == 1
    assert "both --period-start and --period-end" in result.output


def test_one_target_at_a_time():
    result = runner.invoke(app, ["calibrate", "--target-precision", "0.9", "--target-recall", "0.8"])
    assert result.exit_code == 1
    assert "not both" in result.output


def test_apply_and_revoke_need_who():
    for line in (["calibrate", "apply", "3"], ["calibrate", "revoke", "toxicity"]):
        result = runner.invoke(app, line)
        assert result.exit_code == 2 and "--by" in result.output, line
