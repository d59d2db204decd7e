#!/usr/bin/env python3
"""Check the import-linter contracts of pyproject.toml (layers, pure detectors, no cycles).

import-linter reads a package's modules from its folder, and Parrotwatch installs five folders
under one namespace (pyproject's ``package-dir``): ``detectors/`` is ``parrotwatch.detectors``.
So this script first builds, in a temporary folder, the package as it is installed: a
``parrotwatch/`` tree of symbolic links to the real files. It then runs ``lint-imports`` on it.

``--override detectors/lexical.py=/tmp/bad.py`` stages another file in place of one of the
repository's; the tests use it to show that every contract catches a violation.

Exit status: that of lint-imports (0 when every contract is kept).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage(dest: Path, overrides: dict[str, Path] | None = None) -> Path:
    """Link the installed layout of the package under ``dest``; returns ``dest``."""
    overrides = {Path(k).as_posix(): v for k, v in (overrides or {}).items()}
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in package_dir.items():
        source = ROOT / folder
        target = dest.joinpath(*package.split("."))
        for path in sorted(source.rglob("*.py")):
            rel = path.relative_to(source)
            if "__pycache__" in rel.parts:
                continue
            out = target / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            replacement = overrides.pop(path.relative_to(ROOT).as_posix(), None)
            if replacement is not None:
                shutil.copyfile(replacement, out)
            else:
                out.symlink_to(path)
    if overrides:
        raise SystemExit(f"lint_imports: no such file to override: {', '.join(overrides)}")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--override", action="append", default=[], metavar="REL=FILE",
                        help="stage FILE in place of the repository's REL (e.g. detectors/lexical.py)")
    parser.add_argument("--verbose", action="store_true", help="lint-imports --verbose")
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.override)
    with tempfile.TemporaryDirectory(prefix="parrotwatch-lint-") as tmp:
        stage(Path(tmp), {k: Path(v) for k, v in overrides.items()})
        env = {**os.environ, "PYTHONPATH": tmp}
        command = [str(Path(sys.executable).with_name("lint-imports")),
                   str(ROOT / "pyproject.toml"), "--no-cache", *(["--verbose"] if args.verbose else [])]
        return subprocess.run(command, env=env, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
