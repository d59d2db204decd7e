"""``parrotwatch audit`` without a database: ``run --no-store``, spec errors, an unreachable server."""

from __future__ import annotations

from typer.testing import CliRunner

from parrotwatch.cli.audit import app
from parrotwatch.stack.processes import free_port


def test_run_no_store_prints_the_summary_and_writes_the_report(audit_home, tmp_path, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: cli\nmodel: {testbed: {preset: tiny, seed: 0}}\ndata: testbed\n"
                    "audits: {membership: {methods: [loss], n_bootstrap: 100}}\n")
    monkeypatch.setenv("PARROTWATCH_HOME", str(audit_home))
    report = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["run", str(spec), "--no-store", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "membership" in result.stdout and "method=loss" in result.stdout and "auc" in result.stdout
    assert "membership: scoring" in result.stderr  # the progress bar
    assert "cli: not stored" in result.stderr and report.read_text().startswith("<!doctype html>")


def test_spec_errors_exit_1_with_the_valid_keys(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmodel: {testbed: {preset: huge}}\ndata: testbed\n"
                    "audits: {membership: {methds: [loss]}}\n")
    result = CliRunner().invoke(app, ["run", str(spec)])
    assert result.exit_code == 1
    assert "model.testbed.preset: Input should be 'tiny' or 'small' (got 'huge')" in result.stderr
    assert "unknown key 'methds' (did you mean 'methods'?); valid keys: methods, k" in result.stderr


def test_an_unreachable_database_says_how_to_fix_it(tmp_path, monkeypatch):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: x\nmodel: /m\ndata: {members: m.txt, non_members: n.txt}\n"
                    "audits: {membership: {}}\n")
    monkeypatch.setenv("PARROTWATCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    for args in (["run", str(spec)], ["list"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert "cannot reach PostgreSQL" in result.stderr and "parrotwatch up" in result.stderr
