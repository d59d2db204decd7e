"""Bad input to the CLI ends in one ``error:`` line and a non-zero status, never a traceback: a corpus
that cannot be indexed, a file that is not an index, an output that would overwrite its input, and
(through the installed entry point) an unreachable database or a file that is not UTF-8."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from parrotwatch.cli import app
from parrotwatch.stack.processes import free_port


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_index_build_refuses_bad_and_empty_corpora_and_names_the_file_it_writes(tmp_path):
    (tmp_path / "trunc.jsonl").write_text('{"text": "cut', encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "doc.txt").write_text("a small training document of a few words", encoding="utf-8")
    bad = _run("index", "build", str(tmp_path / "trunc.jsonl"), "-o", str(tmp_path / "i.npz"))
    assert bad.exit_code == 1 and "trunc.jsonl:1:" in bad.stderr and bad.exception.__class__ is SystemExit
    empty = _run("index", "build", str(tmp_path / "empty.txt"), "-o", str(tmp_path / "i.npz"))
    assert empty.exit_code == 1 and "nothing to index" in empty.stderr
    assert not (tmp_path / "i.npz").exists()
    ok = _run("index", "build", str(tmp_path / "doc.txt"), "-o", str(tmp_path / "new" / "idx"))
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "new" / "idx.npz").is_file() and "new/idx.npz: " in ok.stderr


def test_score_refuses_a_file_that_is_not_an_index_and_an_output_over_its_input(tmp_path, monkeypatch):
    events = tmp_path / "e.jsonl"
    events.write_text("{}\n", encoding="utf-8")
    np.savez(tmp_path / "other.npz", x=np.arange(3))
    for index in (events, tmp_path / "other.npz"):
        monkeypatch.setenv("PARROTWATCH_REGURGITATION_INDEX", str(index))
        result = _run("score", str(events), "-o", str(tmp_path / "out.jsonl"), "--model-free")
        assert result.exit_code == 1 and "is not a Parrotwatch n-gram index" in result.stderr
    monkeypatch.delenv("PARROTWATCH_REGURGITATION_INDEX")
    same = _run("score", str(events), "-o", str(events), "--model-free")
    assert same.exit_code == 1 and "would overwrite the input" in same.stderr


def test_the_entry_point_turns_environment_errors_into_one_line(tmp_path):
    bad_utf8 = tmp_path / "rules.yaml"
    bad_utf8.write_bytes(b"rules:\n  - \xff\xfe\n")
    env = {"PATH": "/usr/bin:/bin", "PARROTWATCH_HOME": str(tmp_path / "home"),
           "PARROTWATCH_DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/nothing"}
    for args in (["alerts", "list"], ["alerts", "test-rules", str(bad_utf8)]):
        done = subprocess.run([sys.executable, "-m", "parrotwatch.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
