"""Constructed RAG evaluation set for the grounding detector (``hallucination``).

Data: ``bench/data/rag_eval.jsonl``, one hand-written topic per line (36 topics: history, science,
engineering, geography), each with two source passages of factual sentences full of numbers, dates
and names; three paraphrases written by hand (new wording and sentence structure, same facts); two
plausible claims that no source states; and one entity swap (``[name in a source, a name absent
from the sources]``).

Build (deterministic: every choice comes from ``random.Random("rag-set/<topic>")``): four answers
per topic, 144 in all, whose sentences carry gold labels by category:

- ``supported``: a source sentence copied verbatim (5 per topic);
- ``paraphrased``: a hand-written paraphrase (3 per topic);
- ``swapped``: a copied sentence with one number or year changed to a value no source contains
  (``swap="number"`` / ``"year"``), or with the topic's entity swap (``swap="name"``) (2 per topic);
- ``added``: a plausible claim absent from the sources (2 per topic).

``supported`` and ``paraphrased`` sentences are faithful; ``swapped`` and ``added`` ones are
unsupported. Topics at even positions form the ``calibration`` split, odd ones the ``report`` split.

Usage: .venv/bin/python bench/rag_set.py [--out items.jsonl]   (writes the built items)
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "rag_eval.jsonl"
CATEGORIES = ("supported", "paraphrased", "swapped", "added")
FAITHFUL = frozenset({"supported", "paraphrased"})

_NUM = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\w|[.,]\d)")
_WORDS = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
               "ninety": 90, "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9})


@dataclass(frozen=True)
class GoldSentence:
    text: str
    start: int
    end: int
    category: str
    swap: str | None = None

    @property
    def unsupported(self) -> bool:
        return self.category not in FAITHFUL


@dataclass(frozen=True)
class RagItem:
    id: str
    topic: str
    split: str
    sources: tuple[str, ...]
    answer: str
    sentences: tuple[GoldSentence, ...]


def load_topics(path: Path = DATA) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _source_values(text: str) -> set[float]:
    """Every number a source states, in digits or words (scale words multiply)."""
    values = {float(a.replace(",", "") + (b or "")) for a, b in _NUM.findall(text)}
    values |= {float(v) for w, v in _WORDS.items() if re.search(rf"\b{w}\b", text, re.IGNORECASE)}
    for m in re.finditer(r"([\d.,]+) (thousand|million|billion)\b", text):
        values.add(float(m.group(1).replace(",", "")) * _WORDS[m.group(2)])
    return values


def _new_number(match: re.Match, rng: random.Random, taken: set[float], text: str) -> tuple[str, str]:
    whole, frac = match.group(1), match.group(2)
    value = float(whole.replace(",", "") + (frac or ""))
    if frac:
        places = len(frac) - 1
        options = [f"{value * k:.{places}f}" for k in (1.2, 0.8, 1.5, 0.6)] + [f"{value + 1:.{places}f}"]
        kind = "number"
    elif len(whole) == 4 and 1000 <= value <= 2100:
        options = [str(int(value) + d) for d in (-9, -6, -4, -2, 2, 3, 5, 8)]
        kind = "year"
    else:
        v = int(value)
        options = [("{:,}" if "," in whole else "{}").format(n)
                   for n in (v + 1, v + 2, 2 * v, round(1.5 * v), round(0.6 * v), v + 10) if n > 0]
        kind = "number"
    rng.shuffle(options)
    for option in options:
        if float(option.replace(",", "")) not in taken and option not in text:
            return option, kind
    raise ValueError(f"no swap value for {match.group(0)!r}")


def swap_number(sentence: str, rng: random.Random, sources_text: str) -> tuple[str, str]:
    """``sentence`` with one of its numbers changed to a value absent from the sources."""
    matches = list(_NUM.finditer(sentence))
    m = rng.choice(matches)
    new, kind = _new_number(m, rng, _source_values(sources_text), sources_text)
    return sentence[: m.start()] + new + sentence[m.end():], kind


def _assemble(parts: list[tuple[str, str, str | None]]) -> tuple[str, tuple[GoldSentence, ...]]:
    out, pos = [], 0
    for text, category, swap in parts:
        out.append(GoldSentence(text, pos, pos + len(text), category, swap))
        pos += len(text) + 1
    return " ".join(p[0] for p in parts), tuple(out)


def build_topic(topic: dict, split: str) -> list[RagItem]:
    name = topic["topic"]
    rng = random.Random(f"rag-set/{name}")
    sources = tuple(" ".join(passage) for passage in topic["sources"])
    every = [s for passage in topic["sources"] for s in passage]
    sources_text = " ".join(sources)
    old, new = topic["swap"]
    for word in re.findall(r"\w+", new):
        if re.search(rf"\b{re.escape(word)}\b", sources_text) and word not in old.split():
            raise ValueError(f"{name}: swap word {word!r} occurs in the sources")
    copies = rng.sample(every, 5)
    with_numbers = [s for s in every if _NUM.search(s) and s != copies[0]]
    swapped_number, kind = swap_number(rng.choice(with_numbers), rng, sources_text)
    holders = [s for s in every if old in s]
    if not holders:
        raise ValueError(f"{name}: swap source {old!r} is in no source sentence")
    swapped_name = rng.choice(holders).replace(old, new, 1)
    para, added = topic["paraphrases"], topic["added"]
    answers = [
        [(copies[0], "supported", None), (para[0], "paraphrased", None), (swapped_number, "swapped", kind)],
        [(para[1], "paraphrased", None), (copies[1], "supported", None), (added[0], "added", None)],
        [(copies[2], "supported", None), (swapped_name, "swapped", "name"),
         (para[2], "paraphrased", None), (added[1], "added", None)],
        [(copies[3], "supported", None), (copies[4], "supported", None)],
    ]
    items = []
    for i, parts in enumerate(answers):
        answer, sentences = _assemble(parts)
        items.append(RagItem(f"{name}-{i + 1}", name, split, sources, answer, sentences))
    return items


def build(path: Path = DATA) -> list[RagItem]:
    """All items: topics at even positions are ``calibration``, odd ones ``report``."""
    items = []
    for i, topic in enumerate(load_topics(path)):
        items.extend(build_topic(topic, "calibration" if i % 2 == 0 else "report"))
    return items


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, help="write the built items as JSONL here (default: stdout)")
    args = ap.parse_args(argv)
    lines = [json.dumps(asdict(item), ensure_ascii=False) for item in build()]
    if args.out:
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
