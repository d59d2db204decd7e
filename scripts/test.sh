#!/usr/bin/env bash
# The whole test suite: lint, unit tests, then integration tests against a real Kafka broker,
# PostgreSQL server, Spark and HTTP, all started by the tests' own fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
.venv/bin/ruff check .
.venv/bin/python scripts/lint_imports.py  # layer contracts (pyproject.toml [tool.importlinter])
if [ "$#" -gt 0 ]; then  # a selection of tests, as given
  exec .venv/bin/pytest -q --durations=25 "$@"
fi
# The unit tests on every core (pytest-xdist, one BLAS/OpenMP thread per worker so that workers
# do not oversubscribe the cores), then the integration tests one at a time: they start real
# brokers, databases and Spark jobs, and some time their recoveries on the wall clock.
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  .venv/bin/pytest -q --durations=25 -n "${PARROTWATCH_TEST_WORKERS:-auto}" tests/unit
.venv/bin/pytest -q --durations=25 tests/integration
