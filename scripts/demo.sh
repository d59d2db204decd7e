#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, start the local stack
# (Kafka, PostgreSQL, Spark scoring job, API), play realistic traffic, print the results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/parrotwatch demo "$@"
