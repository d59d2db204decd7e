"""Relational checks between an answer sentence and the source passage it matches.

A sentence can share every word and name with its source and still contradict it: "the permit
is not approved" vs "the permit is approved", "prices rose" vs "prices fell", "5 miles" vs
"5 km", "moved from Lyon to Nantes" vs "moved from Nantes to Lyon". Embedding similarity cannot
see these (the pairs above are 0.8-0.95 cosine-similar with all-MiniLM-L6-v2), and a fact
lookup over all the sources cannot either. Each check below compares the sentence with one
*matched passage* (a source sentence or a window of them, see
:mod:`parrotwatch.detectors.grounding.scorer`) and returns :class:`Finding` objects whose
``detail`` is shown in the drill-down. They are the contradiction patterns of the factual
consistency literature: the FactCC transformations (Kryscinski, McCann, Xiong & Socher 2020,
"Evaluating the factual consistency of abstractive text summarization", EMNLP: entity, number
and pronoun swaps, negation) and the negation and antonym cues that NLI data shows to mark
contradiction (Gururangan et al. 2018, "Annotation artifacts in natural language inference
data"). All are rules with no model, and every one is pure.

- :func:`polarity_findings`: polarity = (negation cues + antonym substitutions) mod 2. A
  sentence whose polarity differs from its passage's is flagged; two changes cancel ("is
  forbidden" = "is not allowed"). Antonyms come from WordNet
  (:mod:`parrotwatch.detectors.grounding.lexicon`).
- :func:`unit_findings`: quantities carry their unit; the same number with another unit of
  the same dimension, or another rate denominator ("per minute" vs "per second"), is flagged,
  while a correct conversion (5 km = 3.1 miles, within 2%) supports the number.
- :func:`role_findings`: two anchors (names, numbers, dates) found on opposite sides of the
  same predicate word in the passage and in the sentence have exchanged roles ("A acquired B"
  vs "B acquired A"), unless the voice changed (a ``by`` between them in one text only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from parrotwatch.detectors.grounding.facts import names, numbers
from parrotwatch.detectors.grounding.lexicon import Lexicon

_TOKEN = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['\u2019][A-Za-z]+)?|\d+(?:[.,]\d+)*|%|/|°[CFcf]?")
#: explicit negators; ``n't`` is split off as "not" by :func:`tokens`
NEGATIONS = frozenset({
    "not", "no", "never", "without", "none", "neither", "nor", "cannot", "nobody", "nothing",
    "nowhere", "unless", "lack", "lacks", "lacked", "lacking", "fail", "fails", "failed", "non",
})
_STOP = frozenset("""a an the and or but if of to in on at by for with from as is are was were be
been being am do does did has have had having this that these those it its it's they them their
there here which who whom whose what when where why how than then so such can could may might
must shall should will would i you he she we me him her us our your my his also only just very
into onto over about after before under while during up down out off again further once both
each other any some all more most few many much own same too s t""".split()) - {  # noqa: SIM905
    "after",
    "before", "over", "under", "up", "down", "out", "off", "more", "most", "few", "all", "some",
    "any", "each", "many", "much", "may", "must", "can", "cannot", "should"}


@dataclass(frozen=True)
class Finding:
    """One contradiction found: ``kind`` (negation, antonym, unit, role or misplaced) and a
    ``detail`` for people ("'rose' where the source says 'fell'")."""

    kind: str
    detail: str


#: bounded work per check whatever the text: a sentence is read up to its first MAX_CHARS
#: characters and MAX_TOKENS tokens (a natural sentence is far shorter; a hostile one of 20,000
#: names would otherwise cost O(names^2 x verbs) in :func:`role_findings`)
MAX_CHARS = 8_192
MAX_TOKENS = 400


def tokens(text: str) -> list[str]:
    """Lower-case word tokens, with ``n't`` as a separate ``not`` (at most MAX_TOKENS, from the
    first MAX_CHARS characters).

    >>> tokens("It isn't approved, and costs 5 km/h.")
    ['it', 'is', 'not', 'approved', 'and', 'costs', '5', 'km', '/', 'h']
    >>> tokens("They can't go")
    ['they', 'ca', 'not', 'go']
    """
    out = []
    for tok in _TOKEN.findall(text[:MAX_CHARS].replace("\u2019", "'")):
        low = tok.lower()
        if low.endswith("n't"):
            out.extend([low[:-3], "not"] if len(low) > 3 else ["not"])
        else:
            out.append(low)
    return out[:MAX_TOKENS]


def content_words(toks: Sequence[str]) -> list[str]:
    """The tokens that are words and not stop words or negators."""
    return [t for t in toks if t.isalpha() and t not in _STOP and t not in NEGATIONS]


#: phrases with a negator that do not negate ("no later than" = "by"), removed before counting
NOT_NEGATING = (("no", "later", "than"), ("no", "earlier", "than"), ("no", "more", "than"),
                ("no", "less", "than"), ("no", "fewer", "than"), ("at", "no", "cost"),
                ("at", "no", "charge"), ("at", "no", "extra"), ("no", "matter"),
                ("not", "only"), ("no", "doubt"), ("nothing", "but"))
#: contrastive phrases that negate their complement ("X rather than Y" = "X, not Y")
CONTRASTIVE = (("rather", "than"), ("instead", "of"))


def negation_count(toks: Sequence[str]) -> int:
    """Explicit negators in ``toks`` ("fail to" counts, "failure" does not; "no later than"
    does not, "rather than" does).

    >>> negation_count(tokens("No refunds are given unless the item never shipped."))
    3
    >>> negation_count(tokens("File it no later than May, by post rather than online."))
    1
    """
    toks = list(toks)
    count, i = 0, 0
    while i < len(toks):
        skip = next((len(p) for p in NOT_NEGATING if tuple(toks[i: i + len(p)]) == p), 0)
        if skip:
            i += skip
            continue
        if any(tuple(toks[i: i + len(p)]) == p for p in CONTRASTIVE):
            count, i = count + 1, i + 2
            continue
        count += toks[i] in NEGATIONS
        i += 1
    return count


def antonym_swaps(sentence: Sequence[str], passage: Sequence[str], lexicon: Lexicon
                  ) -> list[tuple[str, str]]:
    """Pairs (word of the sentence, its antonym in the passage) where the sentence's word is
    absent from the passage and the passage's word absent from the sentence."""
    s_words, p_words = set(content_words(sentence)), set(content_words(passage))
    s_lemmas = {lem for w in s_words for lem in lexicon.lemmas(w)}
    p_lemmas = {lem: w for w in p_words for lem in lexicon.lemmas(w)}
    for w in ("after", "before", "more", "less", "all", "none", "always", "never"):
        if w in passage:  # function words of EXTRA_ANTONYMS that are stop words or negators
            p_lemmas.setdefault(w, w)
    swaps = []
    for word in dict.fromkeys(t for t in sentence if t.isalpha()):
        lemmas = lexicon.lemmas(word)
        if lemmas & set(p_lemmas):
            continue
        for opposite in sorted(lexicon.antonyms(word)):
            if opposite in p_lemmas and opposite not in s_lemmas:
                swaps.append((word, p_lemmas[opposite]))
                break
        else:
            prefixed = next((w for w in p_words if w not in s_words
                             and lexicon.prefix_opposed(word, w)), None)
            if prefixed:
                swaps.append((word, prefixed))
    return swaps


def negated_words(toks: Sequence[str], reach: int = 4) -> list[tuple[str, str]]:
    """(negator, the content word it negates) pairs: the first content word within ``reach``
    tokens after each negator of :func:`negation_count`.

    >>> negated_words(tokens("Pets are not allowed, and no refunds are given."))
    [('not', 'allowed'), ('no', 'refunds')]
    """
    toks = list(toks)
    out, i = [], 0
    while i < len(toks):
        skip = next((len(p) for p in NOT_NEGATING if tuple(toks[i: i + len(p)]) == p), 0)
        if skip:
            i += skip
            continue
        width = next((len(p) for p in CONTRASTIVE if tuple(toks[i: i + len(p)]) == p), 0)
        if width or toks[i] in NEGATIONS:
            cue = " ".join(toks[i: i + width]) if width else toks[i]
            after = content_words(toks[i + max(width, 1): i + max(width, 1) + reach])
            if after:
                out.append((cue, after[0]))
        i += max(width, 1)
    return out


def _negation_flips(s_toks: Sequence[str], p_toks: Sequence[str], lexicon: Lexicon | None
                    ) -> list[tuple[str, str]]:
    """Words negated in one text and present without negation in the other: (cue, word)."""
    def forms(word: str) -> set[str]:
        return set(lexicon.lemmas(word)) if lexicon is not None else {word}

    flips = []
    for mine, theirs in ((s_toks, p_toks), (p_toks, s_toks)):
        negated_here = negated_words(mine)
        negated_there = {f for _, w in negated_words(theirs) for f in forms(w)}
        plain_there = {f for w in content_words(theirs) for f in forms(w)}
        for cue, word in negated_here:
            if forms(word) & plain_there and not forms(word) & negated_there:
                flips.append((cue, word))
    return flips


def polarity_findings(sentence: str, passage: str, lexicon: Lexicon | None) -> list[Finding]:
    """A :class:`Finding` when the sentence's polarity differs from the passage's (module doc).

    Negation is judged where it can be: a word negated in one text and present, not negated,
    in the other ("not approved" vs "approved"). A negation of a word the other text does not
    hold ("will not open" vs "is closed") is left to similarity.

    >>> from parrotwatch.detectors.grounding.lexicon import get_lexicon
    >>> lex = get_lexicon()
    >>> [f.kind for f in polarity_findings("The permit was not approved.",
    ...                                    "The permit was approved in May.", lex)]
    ['negation']
    >>> polarity_findings("Pets are not allowed.", "Pets are forbidden.", lex)  # two changes
    []
    """
    s_toks, p_toks = tokens(sentence), tokens(passage)
    swaps = antonym_swaps(s_toks, p_toks, lexicon) if lexicon is not None else []
    flips = _negation_flips(s_toks, p_toks, lexicon)
    if swaps and not flips:
        # "not allowed" vs "forbidden": the negated word's antonym stands in the other text
        said = ", ".join(f"'{a}' where the source says '{b}'" for a, b in swaps)
        s_neg, p_neg = negation_count(s_toks), negation_count(p_toks)
        return [] if (s_neg - p_neg + len(swaps)) % 2 == 0 else [Finding("antonym", said)]
    if flips and len(flips) % 2 == 1 or (flips and swaps and (len(flips) + len(swaps)) % 2):
        cue, word = flips[0]
        return [Finding("negation", f"negation differs from the source: '{cue} {word}'")]
    return []


# --- units ----------------------------------------------------------------------------------
_U: dict[str, tuple[str, float]] = {}  # unit word -> (dimension, factor to the base unit)
_CANON: dict[str, str] = {}  # plural -> singular
for _dim, _table in {
    "length": {"mm": 1e-3, "millimetre millimeter": 1e-3, "cm": 1e-2, "centimetre centimeter": 1e-2,
               "m": 1.0, "metre meter": 1.0, "km": 1e3, "kilometre kilometer": 1e3,
               "mi mile": 1609.344, "ft foot feet": 0.3048, "inch inches": 0.0254,
               "yd yard": 0.9144, "nm": 1e-9},
    "mass": {"mg": 1e-6, "milligram": 1e-6, "g gram gramme": 1e-3, "kg kilogram kilo": 1.0,
             "lb lbs pound": 0.45359237, "oz ounce": 0.028349523, "t tonne ton": 1e3,
             "µg mcg microgram": 1e-9},
    "time": {"ms millisecond": 1e-3, "s sec second": 1.0, "min minute": 60.0,
             "h hr hour": 3600.0, "day": 86400.0, "week": 604800.0, "month": 2629800.0,
             "year yr": 31557600.0, "µs microsecond": 1e-6},
    "data": {"b byte": 1.0, "kb kilobyte": 1e3, "mb megabyte": 1e6, "gb gigabyte": 1e9,
             "tb terabyte": 1e12, "kib": 1024.0, "mib": 1024.0 ** 2, "gib": 1024.0 ** 3,
             "bit": 0.125, "mbps": 1.25e5, "gbps": 1.25e8},
    "volume": {"ml millilitre milliliter": 1e-3, "l litre liter": 1.0, "gallon gal": 3.785411784,
               "cl": 1e-2, "dl": 0.1},
    "temperature": {"°c celsius": 1.0, "°f fahrenheit": 1.0, "kelvin": 1.0},
    "share": {"% percent per_cent": 1.0},
    "points": {"point percentage_point": 1.0},
    "energy": {"kwh": 3.6e6, "wh": 3600.0, "j joule": 1.0, "kj": 1e3, "cal calorie": 4.184,
               "kcal": 4184.0},
    "power": {"w watt": 1.0, "kw kilowatt": 1e3, "mw megawatt": 1e6, "hp horsepower": 745.7},
    "speed": {"mph": 0.44704, "kph kmh": 1 / 3.6, "knot": 0.514444},
}.items():
    for _names, _factor in _table.items():
        for _name in _names.split():
            _U[_name] = (_dim, _factor)
            plural_ok = _name.replace("_", "").isalpha() and _name not in {"feet", "inches", "lbs", "ms"}
            if len(_name) > 1 and plural_ok:
                _U[_name + "s"] = (_dim, _factor)
                _CANON[_name + "s"] = _name
_U["inch"] = _U["inches"]
_DENOMINATOR_CUES = frozenset({"per", "a", "an", "each", "every", "/"})


@dataclass(frozen=True)
class Quantity:
    """A number with its ``unit`` (a key of the unit table, or None) and rate denominator."""

    text: str
    value: float
    unit: str | None
    per: str | None

    @property
    def dimension(self) -> str | None:
        return _U[self.unit][0] if self.unit else None


def _unit_at(toks: Sequence[str], i: int) -> tuple[str | None, int]:
    """The unit starting at token ``i`` (two-word units first), and the tokens it spans."""
    if i >= len(toks):
        return None, 0
    if i + 1 < len(toks):
        two = f"{toks[i]}_{toks[i + 1]}"
        if two in _U:
            return _CANON.get(two, two), 2
        if toks[i] == "degrees" and toks[i + 1] in _U:
            return _CANON.get(toks[i + 1], toks[i + 1]), 2
    word = toks[i]
    return (_CANON.get(word, word), 1) if word in _U else (None, 0)


def quantities(text: str) -> list[Quantity]:
    """Numbers of ``text`` with the unit right after them and a rate denominator within the next
    four tokens ("120 requests per minute", "3 km/h").

    >>> [(q.value, q.unit, q.per) for q in quantities("Pump 5 ml per hour, at most 2.5 km away.")]
    [(5.0, 'ml', 'hour'), (2.5, 'km', None)]
    >>> [(q.value, q.unit) for q in quantities("Inflation rose 3 percentage points to 7%.")]
    [(3.0, 'percentage_point'), (7.0, '%')]
    """
    toks = tokens(text.replace("per cent", "per_cent").replace("percentage point",
                                                                 "percentage_point"))
    toks = [t.replace("per_cent", "percent") for t in toks]
    out = []
    for i, tok in enumerate(toks):
        if not tok or not tok[0].isdigit():
            continue
        try:
            value = float(tok.replace(",", ""))
        except ValueError:
            continue
        unit, used = _unit_at(toks, i + 1)
        per = None
        for j in range(i + 1 + used, min(i + 6 + used, len(toks) - 1)):
            if toks[j] in _DENOMINATOR_CUES and toks[j + 1] in _U and _U[toks[j + 1]][0] == "time":
                per = toks[j + 1].rstrip("s") if toks[j + 1] not in {"s", "ms"} else toks[j + 1]
                break
            if toks[j][0].isdigit():
                break
        out.append(Quantity(tok, value, unit, per))
    return out


def _in_base(q: Quantity) -> float:
    dim, factor = _U[q.unit]
    if q.unit in {"°f", "fahrenheit", "fahrenheits"}:
        return (q.value - 32.0) * 5.0 / 9.0
    if q.unit in {"kelvin", "kelvins"}:
        return q.value - 273.15
    return q.value * factor


def converts(a: Quantity, b: Quantity, tolerance: float = 0.02) -> bool:
    """Whether ``a`` and ``b`` are the same amount in two different units of one dimension
    (within 2%, for rounded conversions); the same unit is never a conversion.

    >>> a, b = quantities("5 km")[0], quantities("3.1 miles")[0]
    >>> converts(a, b)
    True
    """
    if not (a.unit and b.unit) or a.unit == b.unit or a.dimension != b.dimension or a.per != b.per:
        return False
    x, y = _in_base(a), _in_base(b)
    return abs(x - y) <= tolerance * max(abs(x), abs(y), 1e-12)


def unit_findings(sentence: str, passage: str) -> tuple[list[Finding], set[str]]:
    """Unit mismatches of the sentence's quantities against the passage's, and the numbers (as
    written) that a unit conversion supports."""
    findings, converted = [], set()
    theirs = quantities(passage)
    for q in quantities(sentence):
        same = [p for p in theirs if p.value == q.value]
        if any(converts(q, p) for p in theirs):
            if not same:
                converted.add(q.text)
            continue
        if not q.unit and not q.per or any(p.unit == q.unit and p.per == q.per for p in same):
            continue
        for p in same:
            if q.unit and p.unit and q.unit != p.unit:  # the same value in another unit
                findings.append(Finding("unit", f"unit differs from the source: "
                                                f"'{q.text} {q.unit}' vs '{p.text} {p.unit}'"))
                break
            if q.per and p.per and q.per != p.per:
                findings.append(Finding("unit", f"rate differs from the source: per {q.per} "
                                                f"vs per {p.per}"))
                break
    return findings, converted


# --- roles ----------------------------------------------------------------------------------
def _anchor_keys(text: str) -> list[str]:
    """Names and numbers of ``text``, as lower-case tokens."""
    keys = [f.text.lower().split()[0].replace(",", "") for f in numbers(text, include_one=False)]
    return keys + [f.key for f in names(text)]


def _anchors(keys: Sequence[str], toks: Sequence[str]) -> dict[str, int]:
    """``keys`` found in ``toks`` -> the position of their first token."""
    pos: dict[str, int] = {}
    for key in keys:
        for i, tok in enumerate(toks):
            if tok.replace(",", "") == key or tok == key.split("-")[0]:
                pos.setdefault(key, i)
                break
    return pos


MAX_ANCHORS = 24  # names and numbers compared pairwise per sentence

#: relation words that are not verbs: "from A to B", "A rather than B", "A before B"
RELATION_WORDS = frozenset({"to", "from", "than", "before", "after", "over", "against", "into",
                            "versus", "vs", "between"})


def role_findings(sentence: str, passage: str, lexicon: Lexicon | None = None) -> list[Finding]:
    """Anchors that swapped sides of a shared predicate word (module doc). Predicates are the
    words WordNet knows as verbs and :data:`RELATION_WORDS` (any content word without WordNet).

    >>> [f.kind for f in role_findings("Brightline acquired Norvex in 2019.",
    ...                                "Norvex acquired Brightline in 2019.")]
    ['role']
    >>> role_findings("Brightline was acquired by Norvex.", "Norvex acquired Brightline.")
    []
    """
    s_toks, p_toks = tokens(sentence), tokens(passage)
    keys = list(dict.fromkeys(_anchor_keys(sentence[:MAX_CHARS]) + _anchor_keys(passage[:MAX_CHARS])))
    keys = keys[:MAX_ANCHORS]
    s_pos, p_pos = _anchors(keys, s_toks), _anchors(keys, p_toks)
    shared = [k for k in s_pos if k in p_pos]
    anchor_tokens = set(shared)

    def is_predicate(w: str) -> bool:
        if w in RELATION_WORDS:
            return True
        return bool(content_words([w])) and (lexicon is None or lexicon.is_verb(w))

    pivots = [w for w in dict.fromkeys(s_toks)
              if w in p_toks and w not in anchor_tokens and is_predicate(w)]
    for i, a in enumerate(shared):
        for b in shared[i + 1:]:
            for w in pivots:
                sw, pw = s_toks.index(w), p_toks.index(w)
                s_side = (s_pos[a] < sw) - (s_pos[b] < sw)
                p_side = (p_pos[a] < pw) - (p_pos[b] < pw)
                if s_side and p_side and s_side != p_side:
                    s_by = "by" in s_toks[min(s_pos[a], s_pos[b]): max(s_pos[a], s_pos[b])]
                    p_by = "by" in p_toks[min(p_pos[a], p_pos[b]): max(p_pos[a], p_pos[b])]
                    if s_by == p_by:
                        return [Finding("role", f"'{a}' and '{b}' exchange places around "
                                                f"'{w}' compared with the source")]
    return []
