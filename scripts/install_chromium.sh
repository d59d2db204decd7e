#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium (package `chromium`) when it is missing. The report
# test (tests/integration/test_report.py) loads `parrotwatch report` pages in it and reads their
# DOM and console through the DevTools protocol. Idempotent; needs root and apt-get.
# Prints the browser's path on stdout.
set -euo pipefail

for candidate in "${PARROTWATCH_CHROMIUM:-}" chromium chromium-browser; do
  if [ -n "$candidate" ] && path=$(command -v "$candidate" 2>/dev/null); then
    echo "install_chromium: $("$path" --version 2>/dev/null || echo "$path") already installed" >&2
    echo "$path"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get here; install Chromium and set PARROTWATCH_CHROMIUM to it" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_chromium: run as root (sudo $0) to apt-get install chromium" >&2
  exit 1
fi
echo "install_chromium: installing chromium (Debian package)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
path=$(command -v chromium) || {
  echo "install_chromium: package installed but no chromium on PATH" >&2; exit 1; }
echo "install_chromium: $("$path" --version) installed" >&2
echo "$path"
