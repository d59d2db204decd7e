#!/usr/bin/env bash
# Installs Debian's fortune-cookie text files (packages `fortunes` and `fortunes-min`) when they
# are missing. The drift benchmark (bench/drift_power.py) and the real-text drift test read them
# as real human text from /usr/share/games/fortunes; `fortune` itself is not needed.
# Idempotent; needs root and apt-get.
set -euo pipefail

dir=/usr/share/games/fortunes
# `fortunes-min` ships fortunes, literature, riddles; `fortunes` adds the other topic files.
want=(fortunes literature riddles computers science politics definitions cookie men-women)

missing() {
  local f
  for f in "${want[@]}"; do [ -s "$dir/$f" ] || return 0; done
  return 1
}

if ! missing; then
  echo "install_fortunes: fortune files already present under $dir" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_fortunes: no apt-get here; install Debian's 'fortunes' and 'fortunes-min' packages" \
       "(or copy their files to $dir)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_fortunes: run as root (sudo $0) to apt-get install fortunes fortunes-min" >&2
  exit 1
fi
echo "install_fortunes: installing fortunes fortunes-min (Debian packages)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fortunes fortunes-min >&2
if missing; then
  echo "install_fortunes: packages installed but some of ${want[*]} are missing under $dir" >&2
  exit 1
fi
echo "install_fortunes: $(ls "$dir" | wc -l) files under $dir" >&2
