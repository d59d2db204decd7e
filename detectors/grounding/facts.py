"""Checkable facts of a sentence: numbers, dates and named entities, and whether sources hold them.

A heuristic in the spirit of FActScore's atomic facts (Min et al. 2023, EMNLP) cut down to what a
regular expression can check without a model: a response sentence whose number, date or name
occurs in no source is unsupported, whatever its embedding similarity (a sentence with one swapped
year is ~0.93 cosine-similar to the original with all-MiniLM-L6-v2).

- Numbers: digits with thousands commas, decimals, ordinals (``19th``) and scale words
  (``1.5 million``), and English number words from two up (``ten``, ``twenty-five``; "one" is
  skipped in responses, it is more often a pronoun). They compare by value: ``1,000`` = ``1000``
  = ``one thousand``. Tokens with two or more dots (``3.12.1``) compare as strings.
- Names and dates: capitalised words that do not start the sentence (month names included), and
  all-caps acronyms anywhere; possessive ``'s`` is dropped; they compare case- and
  accent-insensitively with the words of the sources (a hyphenated word is also found by its
  parts). Scripts without letter case (e.g. Chinese) yield numbers only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_UNITS = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"))}
_TENS = {w: 10 * i for i, w in enumerate(
    ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"), start=2)}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_WORD_NUM = "|".join(sorted([*_UNITS, *_TENS, "dozen"], key=len, reverse=True))
_SCALE_RE = "|".join(_SCALES)
_NUMBER = re.compile(
    rf"(?<![\w.])(?P<digits>\d(?:[\d,]*\d)?(?:\.\d+)*)(?P<ord>st|nd|rd|th)?(?![\w])"
    rf"|\b(?P<word>(?:{_WORD_NUM})(?:-(?:{_WORD_NUM}))?)\b", re.IGNORECASE)
_SCALE_AFTER = re.compile(rf"\s+(?P<scale>{_SCALE_RE})\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['\u2019\-])*")
_POSSESSIVE = re.compile(r"['\u2019]s?$")


@dataclass(frozen=True)
class Fact:
    """``text`` as written, ``kind`` (``number`` or ``name``) and the normalised ``key``."""

    text: str
    kind: str
    key: str


def _number_key(value: float) -> str:
    return format(round(value, 6), ".10g")


def _word_value(word: str) -> float | None:
    total = 0
    for part in word.lower().split("-"):
        if part in _UNITS:
            total += _UNITS[part]
        elif part in _TENS:
            total += _TENS[part]
        elif part == "dozen":
            total += 12
        else:
            return None
    return float(total)


def numbers(text: str, include_one: bool = True) -> list[Fact]:
    """Numbers of ``text`` with value keys (a scale word after a number multiplies it)."""
    out = []
    for m in _NUMBER.finditer(text):
        if m.group("digits"):
            raw = m.group("digits").rstrip(",")
            plain = raw.replace(",", "")
            if plain.count(".") > 1 or not re.fullmatch(r"\d+(?:\.\d+)?", plain):
                out.append(Fact(m.group(0), "number", plain))
                continue
            value = float(plain)
        else:
            value = _word_value(m.group("word"))
            if value is None or (value == 1 and not include_one):
                continue
        end = m.end()
        scale = _SCALE_AFTER.match(text, end)
        if scale:
            value *= _SCALES[scale.group("scale").lower()]
            end = scale.end()
        out.append(Fact(text[m.start(): end], "number", _number_key(value)))
    return out


def _norm_word(word: str) -> str:
    """Lower case, no possessive, no accents (``Émile`` matches ``Emile``)."""
    word = unicodedata.normalize("NFKD", _POSSESSIVE.sub("", word).lower().strip("-"))
    return "".join(ch for ch in word if not unicodedata.combining(ch))


def names(sentence: str) -> list[Fact]:
    """Capitalised words not at the start of ``sentence``, and acronyms anywhere."""
    out = []
    for i, m in enumerate(_WORD.finditer(sentence)):
        word = m.group(0)
        is_acronym = len(word) > 1 and word.isupper()
        if word == "I" or not word[0].isupper() or (i == 0 and not is_acronym):
            continue
        out.append(Fact(word, "name", _norm_word(word)))
    return out


class FactIndex:
    """The numbers and words of a set of sources, to look response facts up in."""

    def __init__(self, sources: Iterable[str]):
        self._numbers: set[str] = set()
        self._words: set[str] = set()
        for source in sources:
            for fact in numbers(source, include_one=True):
                self._numbers.add(fact.key)
                # "1.5 million" in a source also supports a bare "1.5"
                bare = numbers(fact.text.split()[0]) if " " in fact.text else []
                self._numbers.update(f.key for f in bare)
            for m in _WORD.finditer(source):
                word = _norm_word(m.group(0))
                self._words.add(word)
                self._words.update(word.split("-"))

    def _has_name(self, key: str) -> bool:
        return key in self._words or all(p in self._words for p in key.split("-") if p)

    def unsupported(self, sentence: str) -> tuple[str, ...]:
        """Facts of ``sentence`` (as written) that no source holds, in order of appearance."""
        missing = [f.text for f in numbers(sentence, include_one=False) if f.key not in self._numbers]
        missing += [f.text for f in names(sentence) if not self._has_name(f.key)]
        return tuple(dict.fromkeys(missing))
