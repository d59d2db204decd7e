#!/usr/bin/env bash
# Installs Prometheus Alertmanager (Debian's `prometheus-alertmanager`) when neither
# `alertmanager` (upstream name) nor `prometheus-alertmanager` (Debian's name for the same binary)
# is on PATH. The dispatcher's Alertmanager integration test runs the real binary.
# Idempotent; needs root and apt-get. The package's own service is not needed: the tests start
# their own instance on a free port.
set -euo pipefail

found() { command -v alertmanager 2>/dev/null || command -v prometheus-alertmanager 2>/dev/null; }

if bin=$(found); then
  echo "install_alertmanager: $bin already present" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_alertmanager: no apt-get here; install Prometheus Alertmanager (v0.25+) so that" \
       "'alertmanager' is on PATH: https://prometheus.io/download/#alertmanager" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_alertmanager: run as root (sudo $0) to apt-get install prometheus-alertmanager" >&2
  exit 1
fi
echo "install_alertmanager: installing prometheus-alertmanager (Debian package)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  prometheus-alertmanager >&2
bin=$(found) || {
  echo "install_alertmanager: package installed but no alertmanager binary is on PATH" >&2; exit 1; }
echo "install_alertmanager: $bin $("$bin" --version 2>&1 | head -n1)" >&2
