"""``parrotwatch --help`` (and every command's ``--help``) loads no heavy library: the command
modules import Spark, PostgreSQL, torch, scikit-learn... inside the commands, when they run."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from parrotwatch.cli import app

ROOT = Path(__file__).resolve().parents[4]
CLI = ROOT / "parrotwatch" / "cli"
HEAVY = {"torch", "pyspark", "sklearn", "psycopg", "pandas", "scipy", "ddsketch", "matplotlib", "numpy",
         "pyarrow", "fastapi", "kafka"}

PROBE = """\
import importlib, json, sys

for name in sys.argv[2:]:
    importlib.import_module(name)
from parrotwatch.cli import app

for line in json.loads(sys.argv[1]):
    try:
        app(line, prog_name="parrotwatch", standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, (line, exc.code)
print("MODULES=" + json.dumps(sorted(sys.modules)))
"""


def heavy_modules_after(command_lines: list[list[str]], preload: tuple[str, ...] = ()) -> set[str]:
    """The heavy top-level packages loaded by a fresh interpreter that ran these command lines."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(command_lines), *preload], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.rsplit("MODULES=", 1)[1])
    return {m.split(".")[0] for m in modules} & HEAVY


def _names() -> dict[str, list[str]]:
    """Every top-level command and group, each with its subcommands."""
    root = typer.main.get_command(app)
    return {name: sorted(getattr(command, "commands", {})) for name, command in root.commands.items()}


def test_root_help_loads_no_heavy_library():
    assert heavy_modules_after([["--help"]]) == set()


@pytest.mark.parametrize("name", sorted(_names()))
def test_command_help_loads_no_heavy_library(name):
    lines = [[name, "--help"]] + [[name, sub, "--help"] for sub in _names()[name]]
    assert heavy_modules_after(lines) == set()


def test_the_probe_sees_a_heavy_library_a_project_module_pulls_in():
    assert "psycopg" in heavy_modules_after([["--help"]], preload=("parrotwatch.db",))


def test_every_group_is_probed():
    groups = {"alerts", "audit", "dashboards", "index", "regurgitation", "testbed"}
    assert groups | {"up", "down", "status", "report"} <= set(_names())
    assert "index-build" not in _names()


def test_no_command_module_imports_the_package_back():
    modules = [p for p in CLI.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert {"common.py", "stack.py", "index.py"} <= {p.name for p in modules}
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "parrotwatch.cli", f"{path.name}: from parrotwatch.cli import ..."
            if isinstance(node, ast.Import):
                assert all(a.name != "parrotwatch.cli" for a in node.names), path.name


def test_the_reader_role_named_in_the_help_is_the_one_the_migrations_create():
    from parrotwatch.sql import READER_ROLE

    sql_dir = Path(__file__).resolve().parents[4] / "parrotwatch" / "sql"
    migration = (sql_dir / "012_reader_role.sql").read_text()
    assert f"CREATE ROLE {READER_ROLE} NOLOGIN" in migration


def _source_of(module: str) -> Path | None:
    """The file of a ``parrotwatch.*`` module, found through pyproject's package-dir, not imported."""
    import tomllib

    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package in sorted(package_dir, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            base = ROOT / package_dir[package] / Path(*module[len(package):].split(".")[1:])
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    return candidate
    return None


def _top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def test_every_deferred_project_import_of_the_commands_resolves():
    """The commands import project modules when they run; a moved module or renamed function would only
    show when someone runs that command, so each ``from parrotwatch... import name`` is checked here."""
    checked = 0
    for path in CLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("parrotwatch."):
                source = _source_of(node.module)
                assert source is not None, f"{path.name}: no module {node.module}"
                for alias in node.names:
                    submodule = _source_of(f"{node.module}.{alias.name}")
                    assert submodule or alias.name in _top_level_names(source), \
                        f"{path.name}: {node.module} has no {alias.name}"
                    checked += 1
    assert checked > 30
