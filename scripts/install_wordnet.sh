#!/usr/bin/env bash
# Installs Princeton WordNet 3.0's database (Debian package `wordnet-base`, /usr/share/wordnet)
# when it is missing. The grounding checks read antonyms and lemmas from it
# (detectors/grounding/lexicon.py), and the consistency model's training text comes from its
# example sentences (bench/train_consistency.py). Idempotent; needs root and apt-get.
set -euo pipefail

dir=/usr/share/wordnet
if [ -s "$dir/data.adj" ] && [ -s "$dir/index.verb" ]; then
  echo "install_wordnet: WordNet already present under $dir" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_wordnet: no apt-get here; install Debian's 'wordnet-base' package, or point" \
       "PARROTWATCH_WORDNET at a WordNet 3.0 dict directory" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_wordnet: run as root (sudo $0) to apt-get install wordnet-base" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wordnet-base >&2
