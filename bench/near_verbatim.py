"""Benchmark: near-verbatim regurgitation (issue 17, item 5), the live score's cost and the catch rates.

Corpus: Python's documentation topics (``pydoc_data.topics``). Copies: --passages prose passages of
100 words from it, each styled one way (ALL CAPS, fullwidth caps, re-spaced ``t h e  c a t``,
hyphenated ``T-H-E``, and lightly edited: one word in 12 replaced, punctuation changed) inside a
short reply. Clean outputs: fortune cookies (/usr/share/games/fortunes), a source the corpus does not
hold. Matchers, all thresholded at 50 tokens:

* ``before``: the previous live score, tokenizer ``regex-v1`` (lower-cased words and punctuation),
  the longest verbatim run of indexed 50-grams (``longest_overlap(..., max_gap=None)``);
* ``norm n=50``: the ``norm-v1`` tokens, verbatim runs of 50-grams;
* ``live n=50`` / ``live n=8``: the live score now, ``norm-v1`` tokens, runs chained over gaps of
  <= ``LIVE_MAX_GAP`` tokens, with an index of 50-grams (the CLI default) or of 8-grams;
* ``batch``: ``near_verbatim_scan`` (8-gram candidates, edit similarity >= 0.8 against the corpus).

Per-request cost: one ``longest_overlap`` call per clean output, as the stream scores an event;
``tokenize`` alone is timed too. Exact indexes; timings are the best of --repeat runs.

Usage: .venv/bin/python bench/near_verbatim.py [--passages 200] [--clean 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.audits.near_verbatim import near_verbatim_scan  # noqa: E402
from parrotwatch.detectors.audits.ngram_index import (  # noqa: E402
    WORD_PATTERN,
    ExactIndex,
    tokenize,
    tokenize_regex_v1,
)
from parrotwatch.detectors.audits.regurgitation import LIVE_MAX_GAP, longest_overlap  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")
PROSE = re.compile(r"[A-Za-z0-9 ,.;:'\"()\-\n]+")
WORD = re.compile(r"[A-Za-z]{2,}")


def passages(corpus: dict[str, str], count: int, rng: np.random.Generator) -> list[str]:
    names = sorted(k for k, d in corpus.items() if len(tokenize(d)) >= 400)
    out: list[str] = []
    while len(out) < count:
        doc = corpus[names[int(rng.integers(len(names)))]]
        spans = [m.span() for m in WORD_PATTERN.finditer(doc)]
        a = int(rng.integers(0, len(spans) - 100))
        text = doc[spans[a][0]: spans[a + 99][1]]
        if PROSE.fullmatch(text) and sum(not w.isalpha() for w in tokenize(text)) <= 5:
            out.append(text)
    return out


def edited(text: str, rng: np.random.Generator) -> str:
    words = list(WORD.finditer(text))
    swap = {m.span() for m in words[int(rng.integers(12))::12]}
    out = "".join(("zorblax" if (m.start(), m.end()) in swap else m.group(0))
                  for m in re.finditer(r"[A-Za-z]{2,}|[^A-Za-z]+|[A-Za-z]", text))
    return out.replace(",", ";").replace(".", "!").translate(str.maketrans("", "", "()\"'`"))


STYLES = {
    "ALL CAPS": lambda t, rng: t.upper(),
    "fullwidth caps": lambda t, rng: "".join(chr(ord(c) - 0x41 + 0xFF21) if "A" <= c <= "Z" else c
                                             for c in t.upper()),
    "re-spaced": lambda t, rng: "  ".join(" ".join(w) if w.isalpha() else w for w in t.split()),
    "hyphenated": lambda t, rng: " ".join("-".join(w.upper()) if w.isalpha() else w for w in t.split()),
    "1 word in 12 + punctuation": edited,
}


def clean_outputs(limit: int) -> list[str]:
    if not FORTUNES.is_dir():
        raise SystemExit(f"{FORTUNES} is missing: install the fortune files (apt-get install fortunes)")
    texts = []
    for f in sorted(FORTUNES.iterdir()):
        if f.is_file() and f.suffix not in (".dat", ".u8"):
            texts += [t.strip() for t in f.read_text(errors="replace").split("\n%\n") if len(t.split()) >= 20]
    step = max(1, len(texts) // limit) if limit else 1
    return texts[::step][:limit] if limit else texts


def per_request_us(texts: list[str], fn, repeat: int) -> tuple[float, float, float]:
    """Best-of-``repeat`` mean, and the p50 / p99 of the best run, microseconds per call."""
    best = None
    for _ in range(repeat):
        times = np.empty(len(texts))
        for i, t in enumerate(texts):
            t0 = time.perf_counter()
            fn(t)
            times[i] = time.perf_counter() - t0
        if best is None or times.mean() < best.mean():
            best = times
    return best.mean() * 1e6, np.percentile(best, 50) * 1e6, np.percentile(best, 99) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--passages", type=int, default=200, help="copies per style")
    ap.add_argument("--clean", type=int, default=0, help="clean outputs (0: every fortune of >= 20 words)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(17)
    corpus = dict(topics)
    t0 = time.perf_counter()
    indexes = {"before": ExactIndex.from_documents(corpus.values(), n=50, tokenizer_name="regex-v1"),
               "norm n=50": ExactIndex.from_documents(corpus.values(), n=50),
               "n=8": ExactIndex.from_documents(corpus.values(), n=8)}
    print(f"corpus: {len(corpus)} topics, {sum(len(tokenize(d)) for d in corpus.values()):,} norm-v1 tokens; "
          f"3 indexes built in {time.perf_counter() - t0:.1f} s")
    matchers = {"before": lambda t: longest_overlap(t, indexes["before"], max_gap=None).tokens,
                "norm n=50": lambda t: longest_overlap(t, indexes["norm n=50"], max_gap=None).tokens,
                "live n=50": lambda t: longest_overlap(t, indexes["norm n=50"]).tokens,
                "live n=8": lambda t: longest_overlap(t, indexes["n=8"]).tokens}
    clean = clean_outputs(args.clean)
    texts = passages(corpus, args.passages, rng)
    cols = [*matchers, "batch"]
    print(f"\ncaught at >= 50 tokens, of {len(texts)} copies per style (LIVE_MAX_GAP = {LIVE_MAX_GAP}):")
    print(f"{'style':<28}" + "".join(f"{c:>11}" for c in cols) + "  batch similarity (min-max)")
    for style, fn in STYLES.items():
        outs = [f"Here is what I remember:\n{fn(t, rng)}\nHope this helps." for t in texts]
        row = [np.mean([m(o) >= 50 for o in outs]) for m in matchers.values()]
        rep = near_verbatim_scan(outs, corpus, indexes["n=8"], min_tokens=50)
        sims = [m.similarity for _, m in rep.matches] or [0.0]
        print(f"{style:<28}" + "".join(f"{v:>11.3f}" for v in [*row, rep.hit_rate])
              + f"  {min(sims):.3f}-{max(sims):.3f}")
    false = [sum(m(o) >= 50 for o in clean) for m in matchers.values()]
    rep = near_verbatim_scan(clean, corpus, indexes["n=8"], min_tokens=50)
    print(f"{'false hits, ' + str(len(clean)) + ' fortunes':<28}" + "".join(f"{v:>11d}" for v in
                                                                             [*false, rep.n_hits]))
    print(f"  batch on the clean outputs: {rep.n_candidates} candidates, {rep.n_unverified} unverified, "
          f"{rep.seconds:.2f} s ({rep.seconds / len(clean) * 1e6:.0f} us per output)")

    words = np.mean([len(tokenize(t)) for t in clean])
    print(f"\nper-request cost, {len(clean)} clean outputs (mean {words:.0f} norm-v1 tokens), one call each, "
          f"best of {args.repeat}:")
    print(f"{'call':<44}{'mean us':>9}{'p50 us':>9}{'p99 us':>9}")
    calls = {"tokenize_regex_v1 (before)": tokenize_regex_v1, "tokenize, norm-v1 (now)": tokenize,
             "longest_overlap, before (regex-v1, n=50)": matchers["before"],
             "longest_overlap, live now, n=50": matchers["live n=50"],
             "longest_overlap, live now, n=8": matchers["live n=8"]}
    for name, fn in calls.items():
        mean, p50, p99 = per_request_us(clean, fn, args.repeat)
        print(f"{name:<44}{mean:>9.1f}{p50:>9.1f}{p99:>9.1f}")


if __name__ == "__main__":
    main()
