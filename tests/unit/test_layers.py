"""The import-linter contracts hold, and each one catches a deliberate violation.

scripts/lint_imports.py stages the installed layout of the package and runs lint-imports; here
one repository file at a time is staged with a bad import appended.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "lint_imports.py"

LAYERS = "Layers: the CLI, then the apps, then the core, then the pure detectors"
PURE = "detectors/ is pure: no Spark, Kafka, PostgreSQL, web framework or HTTP client"
ACYCLIC = "No import cycles between sibling packages"


def lint(*overrides: str) -> subprocess.CompletedProcess:
    args = [a for o in overrides for a in ("--override", o)]
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def broken(output: str) -> set[str]:
    """Names of the contracts lint-imports reports as broken."""
    names = set()
    for line in output.splitlines():
        name, _, verdict = line.rpartition(" ")
        if verdict == "BROKEN":
            names.add(name.strip())
    return names


@pytest.fixture(scope="module")
def baseline() -> subprocess.CompletedProcess:
    return lint()


def test_every_contract_is_kept(baseline):
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    assert "3 kept, 0 broken" in baseline.stdout


@pytest.mark.parametrize(("path", "bad_import", "contract"), [
    ("detectors/lexical.py", "import parrotwatch.settings", LAYERS),  # detectors reach up to the core
    ("parrotwatch/db.py", "import parrotwatch.streaming.job", LAYERS),  # the core reaches up to an app
    ("streaming/records.py", "import parrotwatch.services.api.app", LAYERS),  # apps are independent
    ("streaming/job.py", "import parrotwatch.cli", LAYERS),  # only the CLI imports everything
    ("detectors/lexical.py", "import httpx", PURE),  # an HTTP client in the pure maths
    ("detectors/toxicity.py", "import psycopg", PURE),
    ("detectors/lexical.py", "import parrotwatch.detectors.request", ACYCLIC),  # request imports lexical
])
def test_a_bad_import_breaks_its_contract(tmp_path, baseline, path, bad_import, contract):
    assert contract not in broken(baseline.stdout)  # so the violation below is what breaks it
    bad = tmp_path / Path(path).name
    bad.write_text((ROOT / path).read_text() + f"\n{bad_import}  # deliberate violation\n")
    done = lint(f"{path}={bad}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert contract in broken(done.stdout), done.stdout


def test_ruff_bans_the_bare_folder_names(tmp_path):
    """Inside the repository ``import services`` would still work (the root is on sys.path) and
    load a second copy of the package; ruff's banned-api rule (pyproject.toml) refuses it."""
    bad = tmp_path / "bad.py"
    bad.write_text("import services\nfrom streaming.job import main\nimport detectors.drift\n"
                   "from dashboards import DASHBOARDS\nfrom parrotwatch.detectors import drift\n")
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), "check", "--config", str(ROOT / "pyproject.toml"), "--select",
                           "TID251", "--output-format", "concise", str(bad)], capture_output=True, text=True)
    banned_lines = sorted(int(line.split(":")[1]) for line in done.stdout.splitlines() if "TID251" in line)
    assert banned_lines == [1, 2, 3, 4]
