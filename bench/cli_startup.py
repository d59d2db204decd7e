"""Benchmark: the start-up cost of the command line, ``parrotwatch --help`` in a fresh process.

Prints the wall time (median of --runs runs, and the spread), the peak RSS of one run, and the
--top imports by cumulative time under ``python -X importtime`` (the same --help, in process).
tests/unit/parrotwatch/cli/test_startup.py keeps the heavy libraries out of it; this shows what is left.

Usage: .venv/bin/python bench/cli_startup.py [--runs 5] [--top 10] [ARGS...]   (default ARGS: --help)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(args: list[str]) -> list[str]:
    """The installed console script next to this interpreter, else ``python -m parrotwatch.cli``."""
    script = Path(sys.executable).parent / "parrotwatch"
    if script.exists():
        return [str(script), *args]
    found = shutil.which("parrotwatch")
    return [found, *args] if found else [sys.executable, "-m", "parrotwatch.cli", *args]


def run_once(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one run."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return took, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def import_times(args: list[str]) -> list[tuple[int, int, str]]:
    """``(cumulative us, self us, module)`` of every import of the command, slowest first."""
    code = ("import sys\nfrom parrotwatch.cli import app\n"
            "try:\n    app(sys.argv[1:], prog_name='parrotwatch', standalone_mode=False)\n"
            "except SystemExit:\n    pass\n")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative), int(own), name.rstrip()))
    return sorted(rows, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="Timed runs (the median is reported).")
    parser.add_argument("--top", type=int, default=10, help="Imports to list, by cumulative time.")
    parser.add_argument("args", nargs="*", default=["--help"], help="The command's arguments.")
    opts = parser.parse_args()
    argv = command(opts.args)
    run_once(argv)  # warm the file cache: the runs below measure start-up, not the disk
    runs = [run_once(argv) for _ in range(opts.runs)]
    walls = [w for w, _ in runs]
    print(f"{' '.join(['parrotwatch', *opts.args])}: median {statistics.median(walls):.3f} s over "
          f"{len(walls)} runs (min {min(walls):.3f}, max {max(walls):.3f}), peak RSS "
          f"{max(r for _, r in runs) / 2**20:.1f} MiB")
    rows = import_times(opts.args)
    print(f"{len(rows)} modules imported; top {opts.top} by cumulative import time (-X importtime):")
    print(f"{'cumulative ms':>14} {'self ms':>8}  module")
    for cumulative, own, name in rows[:opts.top]:
        print(f"{cumulative / 1000:14.1f} {own / 1000:8.1f}  {name}")


if __name__ == "__main__":
    main()
