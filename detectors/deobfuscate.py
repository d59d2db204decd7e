"""Undo the spelling tricks that hide words from a text classifier, before the classifier reads them.

Evasion of toxicity filters by character-level perturbation is well documented: Hosseini et al.
2017 ("Deceiving Google's Perspective API Built for Detecting Toxic Comments") beat Perspective
with misspellings and inserted dots or spaces, and Eger et al. 2019 ("Text Processing Like Humans
Do: Visually Attacking and Shielding NLP Systems", NAACL) with visually similar characters. Their
shield, as here, is to map the text back to the form a reader sees. :func:`deobfuscate` applies,
in order:

1. Unicode NFKC (fullwidth ``ｋｉｌｌ`` and styled letters to ASCII) and removal of invisible
   characters (zero-width space/joiners, word joiner, soft hyphen, BOM, bidi controls);
2. homoglyphs: a letter that looks like an ASCII letter (Cyrillic ``а``, Greek ``ο``...; the
   Unicode confusables table, UTS #39, as shipped by ``confusable-homoglyphs``) becomes that
   letter, in words that mix it with Latin letters, or anywhere when most letters of the text are
   Latin (so Russian or Greek text is left alone);
3. single characters split by one repeated separator (``f.u.c.k``, ``i-f``, ``g*@*r*b*a*g*e``) are
   joined (three at least when the separator is a dot: ``e.g.`` stays);
4. letter spacing (``k i l l   t h e   j o b``): runs of three or more single letters are joined,
   and a gap of two or more spaces inside such a run separates words;
5. leetspeak: ``4 @ 3 1 ! 0 5 $ 7`` become ``a a e i i o s s t`` in words that mix them with at
   least two letters (``1d10t``, ``$tupid``, ``k!ll``), or when the decoded word is a common
   word (``4r3``, ``1$``: Zipf frequency >= 3; ``@m``, ``7o``: >= 5 with one letter, so ``3h``
   stays); numbers, flags and words with other digits (``-9``, ``2024``, ``sha256``, ``HEAD~1``)
   are left alone;
6. a letter repeated three or more times (``stuuuupid``, ``yyyyou``) becomes one or two, whichever
   spelling is the more frequent word;
7. runs of spaces become one space.

Word frequencies are Zipf values (log10 of occurrences per billion words, Speer 2022, wordfreq),
the larger of English and French.

Linear in the text (regular expressions without nested quantifiers; at most 16 spellings tried per
repeated word); the text is unchanged when no trick is present, apart from runs of spaces. Pure:
no model, no I/O beyond reading the shipped confusables and frequency tables once.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import unicodedata
from importlib import resources

INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\u00ad\ufeff\u200e\u200f"
                                   "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
LEET = {"4": "a", "@": "a", "3": "e", "1": "i", "!": "i", "0": "o", "5": "s", "$": "s", "7": "t"}
_LEET_CLASS = re.escape("".join(LEET))
_WORD = re.compile(r"[^\s.,;:?\"'()\[\]{}<>/\\]+")
_LEET_SPLIT = re.compile(r"([^\w@!$.]|_)")  # keeps the separators (captured) in the split
_DOTTED_WORD = re.compile(r"[^\s,;:?\"'()\[\]{}<>/\\]+")  # keeps "v1.2.3" whole
_PIECE = r"(?:[^\W_]|[@!$])"  # a letter, digit or leet symbol
_SEPARATED = re.compile(rf"(?<![^\W_]){_PIECE}([.\-_*·+~|]){_PIECE}(?:\1{_PIECE})*(?![^\W_])")
# single letters separated by single spaces, or by 2+ spaces (a word gap), at least three letters
_SPACED = re.compile(rf"(?<![^\W_]){_PIECE}(?: {{1,4}}{_PIECE}(?![^\W_])){{2,}}")
_REPEAT = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r" {2,}")


#: Latin letters that only look like an ASCII one, for look-alikes whose table entry stops there
#: (Greek kappa and Cyrillic ka -> LATIN SMALL LETTER KRA).
_LATIN_LOOKALIKES = {"ĸ": "k", "ı": "i", "ȷ": "j"}


@functools.cache
def homoglyphs() -> dict[int, str]:
    """Code point -> the ASCII letter it is confusable with (UTS #39 confusables), non-ASCII only."""
    shipped = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    table = json.loads(shipped.read_text("utf-8"))

    def ascii_of(char: str) -> str | None:
        if len(char) == 1 and char.isascii() and char.isalpha():
            return char
        return _LATIN_LOOKALIKES.get(char)

    out = {}
    for char, entries in table.items():
        if len(char) != 1 or char.isascii() or not char.isalpha():
            continue
        found = [a for a in (ascii_of(e["c"]) for e in entries) if a]
        if found:
            out[ord(char)] = found[0]
    out.update({ord(k): v for k, v in _LATIN_LOOKALIKES.items()})
    return out


def _is_latin(ch: str) -> bool:
    return ch.isascii() or "LATIN" in unicodedata.name(ch, "")


def _unglyph(text: str) -> str:
    table = homoglyphs()
    letters = [c for c in text if c.isalpha()]
    if not any(ord(c) in table for c in letters):
        return text
    mostly_latin = sum(_is_latin(c) for c in letters) > len(letters) / 2

    def word(m: re.Match) -> str:
        w = m.group(0)
        if mostly_latin or any(c.isascii() and c.isalpha() for c in w):
            return w.translate(table)
        return w

    return _WORD.sub(word, text)


@functools.cache
def frequency(word: str) -> float:
    """Zipf frequency of ``word`` (lower-cased), the larger of English and French; 0 if unknown."""
    from wordfreq import zipf_frequency

    w = word.lower()
    return max(zipf_frequency(w, "en"), zipf_frequency(w, "fr"))


def _unleet(m: re.Match) -> str:
    # decode each run of letters and leet symbols on its own: "HEAD~1" keeps its "1"
    return "".join(_unleet_piece(p) for p in _LEET_SPLIT.split(m.group(0)))


def _unleet_piece(piece: str) -> str:
    body = piece.rstrip("!")  # a trailing "!" is punctuation, not an i
    if (not any(c in LEET for c in body) or body.isdigit()
            or any(c.isdigit() and c not in LEET for c in body)):
        return piece
    decoded = "".join(LEET.get(c, c) for c in body)
    letters = sum(c.isalpha() for c in body)
    if letters >= 2 or frequency(decoded) >= (5.0 if letters == 1 else 3.0):
        return decoded + piece[len(body):]
    return piece


def _unrepeat(m: re.Match) -> str:
    word = m.group(0)
    runs = list(_REPEAT.finditer(word))
    if not runs:
        return word
    if len(runs) > 4:  # 2**4 spellings at most: collapse the rest to two letters
        return _REPEAT.sub(r"\1\1", word)
    best, best_f = None, -1.0
    for keep in itertools.product((1, 2), repeat=len(runs)):
        parts, at = [], 0
        for run, k in zip(runs, keep, strict=True):
            parts += [word[at:run.start()], run.group(1) * k]
            at = run.end()
        spelling = "".join(parts) + word[at:]
        f = frequency(spelling)
        if f > best_f:
            best, best_f = spelling, f
    return best


def _unseparate(m: re.Match) -> str:
    joined = m.group(0).replace(m.group(1), "")
    if joined.isdigit() or (m.group(1) == "." and len(joined) < 3):
        return m.group(0)  # "1.2.3", "2024-01-05", "e.g" and "U.S" stay
    return joined


def _unspace(m: re.Match) -> str:
    words = []
    for part in re.split(r" {2,}", m.group(0)):
        word = part.replace(" ", "")
        plain = "".join(LEET.get(c, c) for c in word)
        if word[:1] in "aAiI" and len(word) > 2 and frequency(plain[1:]) > frequency(plain):
            words += [word[0], word[1:]]  # "a p a t h e t i c" reads "a pathetic", not "apathetic"
        else:
            words.append(word)
    return " ".join(words)


def deobfuscate(text: str) -> str:
    """``text`` with the spelling tricks of the module docstring undone.

    >>> deobfuscate("k i l l   t h e   j o b   a n d   r e t r y")
    'kill the job and retry'
    >>> deobfuscate("you f.u.c.k.i.n.g 1d10t, $tuuuupid")
    'you fucking idiot, stupid'
    >>> deobfuscate("Y0u 4r3 a l00000ser, g*@*r*b*a*g*e")
    'You are a loser, garbage'
    >>> deobfuscate("ｙｏｕ ａｒｅ ａ\u200b ｌｏｓｅｒ")
    'you are a loser'
    >>> deobfuscate("yоu idiоt")  # Cyrillic о
    'you idiot'
    >>> deobfuscate("kill -9 1234; see v1.2.3 and sha256 in the 2024 report")
    'kill -9 1234; see v1.2.3 and sha256 in the 2024 report'
    >>> deobfuscate("Это очень плохая идея.")
    'Это очень плохая идея.'
    """
    text = unicodedata.normalize("NFKC", text).translate(INVISIBLE)
    text = _unglyph(text)
    text = _SEPARATED.sub(_unseparate, text)
    text = _SPACED.sub(_unspace, text)
    text = _DOTTED_WORD.sub(_unleet, text)
    text = _WORD.sub(_unrepeat, text)
    return _SPACES.sub(" ", text)
