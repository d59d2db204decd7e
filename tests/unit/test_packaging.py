"""The one import namespace: the top-level folders install as ``parrotwatch.*`` and nothing else."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for name, folder in PYPROJECT["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join((name, *rel.parts)))
    return found


#: folders of data files, listed as packages so that setuptools installs them without a warning
DATA_PACKAGES = {"parrotwatch.data": "parrotwatch/data", "parrotwatch.detectors.data": "detectors/data",
                 "parrotwatch.services.api.static": "services/api/static"}


def test_every_package_folder_is_listed_for_installation():
    assert set(PYPROJECT["packages"]) - set(DATA_PACKAGES) == _packages_on_disk()
    for name, folder in DATA_PACKAGES.items():  # data only, and shipped whole
        assert name in PYPROJECT["packages"] and not list((ROOT / folder).glob("*.py"))
        assert PYPROJECT["package-data"][name] == ["*"]


def test_every_folder_maps_under_the_parrotwatch_namespace():
    assert all(name == "parrotwatch" or name.startswith("parrotwatch.") for name in PYPROJECT["package-dir"])


@pytest.mark.parametrize("name", ["services", "streaming", "detectors", "dashboards"])
def test_generic_names_are_not_importable_outside_the_repository(tmp_path, name):
    done = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "No module named" in done.stderr


def test_the_job_folder_shadows_no_module_when_run_as_a_script(tmp_path):
    """``spark-submit .../parrotwatch/streaming/job.py`` puts the job's folder first on sys.path,
    so no module there may share a name with a standard or installed top-level module."""
    names = sorted(p.stem for p in (ROOT / "streaming").glob("*.py") if p.stem != "__init__")
    probe = ("import importlib.util, sys\n"
             "print([n for n in sys.argv[1:]\n"
             "       if n in sys.stdlib_module_names or importlib.util.find_spec(n)])")
    done = subprocess.run([sys.executable, "-c", probe, *names], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, check=True)
    assert len(names) > 10 and done.stdout.strip() == "[]"
