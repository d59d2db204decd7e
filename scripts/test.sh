#!/usr/bin/env bash
# The whole test suite: lint, unit tests, then integration tests against a real Kafka broker,
# PostgreSQL server, Spark and HTTP, all started by the tests' own fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/ruff check .
.venv/bin/python scripts/lint_imports.py  # layer contracts (pyproject.toml [tool.importlinter])
.venv/bin/pytest -q --durations=25 "$@"
