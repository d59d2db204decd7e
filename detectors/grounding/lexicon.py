"""English lexical relations for the grounding checks: lemmas, antonyms and synonyms.

The source is Princeton WordNet 3.0 (Miller 1995, "WordNet: a lexical database for English",
CACM 38(11)), read with NLTK's ``WordNetCorpusReader`` from the database files that Debian's
``wordnet-base`` package installs under ``/usr/share/wordnet`` (``bash scripts/install_wordnet.sh``;
another directory can be given with ``PARROTWATCH_WORDNET``). Nothing is downloaded at run time.
NLTK expects a ``lexnames`` file that the Debian package lacks, and only reads corpora from
directories it was told about, so the files are copied once into a per-user cache with that
file added.

Antonyms are WordNet's direct antonym pointers (``!``) between lemmas, found from any inflected
form through WordNet's morphology (``largest`` -> ``large`` <-> ``small``), plus the small closed
list :data:`EXTRA_ANTONYMS` of function words WordNet does not link (before/after, more/less,
minimum/maximum, ...). Without the database :func:`get_lexicon` returns ``None`` and the checks
that need it are skipped (they say so in :mod:`parrotwatch.detectors.grounding.relations`).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

DEBIAN_DIR = Path("/usr/share/wordnet")
ENV = "PARROTWATCH_WORDNET"  # another WordNet database directory
_FILES = [f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")]
_FILES += [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")]
# WordNet 3.0's lexicographer files, numbered as in its ``lexnames`` (wninput(5WN))
_LEXNAMES = (  # noqa: SIM905
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
    "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food noun.group "
    "noun.location noun.motive noun.object noun.person noun.phenomenon noun.plant "
    "noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
    "noun.substance noun.time verb.body verb.change verb.cognition verb.communication "
    "verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl").split()
_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}

#: pairs of opposites among function words and quantity words that WordNet leaves unlinked
EXTRA_ANTONYMS = (
    ("before", "after"), ("above", "below"), ("over", "under"), ("more", "less"),
    ("more", "fewer"), ("most", "least"), ("minimum", "maximum"), ("min", "max"),
    ("first", "last"), ("earliest", "latest"), ("inside", "outside"), ("within", "outside"),
    ("always", "never"), ("all", "none"), ("everyone", "nobody"), ("upstream", "downstream"),
    ("ascending", "descending"), ("inbound", "outbound"), ("import", "export"),
    ("increase", "decrease"), ("increase", "reduce"), ("rise", "fall"), ("rise", "drop"),
    ("gain", "loss"), ("profit", "loss"), ("win", "lose"), ("allow", "forbid"),
    ("allow", "prohibit"), ("permit", "forbid"), ("permit", "prohibit"), ("accept", "reject"),
    ("approve", "reject"), ("approve", "deny"), ("grant", "deny"), ("include", "exclude"),
    ("enable", "disable"), ("start", "stop"), ("begin", "end"), ("open", "close"),
    ("on", "off"), ("north", "south"), ("east", "west"), ("northern", "southern"),
    ("eastern", "western"), ("left", "right"), ("top", "bottom"), ("upper", "lower"),
    ("high", "low"), ("cheap", "expensive"), ("early", "late"), ("entry", "exit"),
    ("compulsory", "optional"), ("mandatory", "optional"), ("required", "optional"),
    ("obligatory", "optional"), ("run", "stop"), ("fast", "slowly"), ("quickly", "slowly"),
    ("start", "end"), ("morning", "evening"), ("morning", "afternoon"), ("pre", "post"),
    ("arrive", "depart"), ("arrival", "departure"), ("send", "receive"), ("sender", "recipient"),
    ("temporary", "permanent"), ("free", "paid"), ("online", "offline"),
    ("domestic", "international"), ("weekday", "weekend"), ("buyer", "seller"),
    ("employer", "employee"), ("landlord", "tenant"), ("parent", "child"), ("upgrade", "downgrade"),
)
#: prefixes that negate the word they start ("unsafe", "inactive", "disallowed", "illegal")
NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "parrotwatch" / "wordnet"


def _prepared(source: Path) -> Path | None:
    """A copy of the WordNet database in ``source`` with ``lexnames`` added, or None."""
    if not all((source / f).is_file() for f in _FILES):
        return None
    if (source / "lexnames").is_file():
        return source
    target = _cache_dir()
    if not (target / "lexnames").is_file():
        # built aside and renamed into place: processes that prepare it at once (test workers, Spark
        # workers) never read a file another one is still writing
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
        try:
            for name in _FILES:
                shutil.copyfile(source / name, staging / name)
            lines = (f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n"
                     for i, name in enumerate(_LEXNAMES))
            (staging / "lexnames").write_text("".join(lines))
            if target.exists() and not (target / "lexnames").is_file():
                shutil.rmtree(target, ignore_errors=True)  # an incomplete copy of an older version
            try:
                staging.rename(target)
            except OSError:  # another process renamed its copy first: use that one
                if not (target / "lexnames").is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


class Lexicon:
    """Lemmas, antonyms and synonyms of English words from a WordNet database directory."""

    def __init__(self, root: Path):
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        class _Reader(WordNetCorpusReader):
            def map_wn(self, version="wordnet"):  # no OMW mapping: it would look for NLTK's data
                return None

        if str(root) not in nltk.data.path:
            nltk.data.path.append(str(root))  # NLTK reads corpora only from known directories
        with warnings.catch_warnings():  # "multilingual functions are not available": not used
            warnings.simplefilter("ignore", UserWarning)
            self.wordnet = _Reader(str(root), None)
        self._extra: dict[str, set[str]] = {}
        for a, b in EXTRA_ANTONYMS:
            self._extra.setdefault(a, set()).add(b)
            self._extra.setdefault(b, set()).add(a)

    @functools.lru_cache(maxsize=65_536)  # noqa: B019 - one Lexicon per process
    def lemmas(self, word: str) -> frozenset[str]:
        """The base forms of ``word`` over the parts of speech (``fell`` -> fall, fell)."""
        word = word.lower()
        out = {word}
        for pos in "nvar":
            out.update(self.wordnet._morphy(word, pos))
        return frozenset(out)

    @functools.lru_cache(maxsize=65_536)  # noqa: B019
    def antonyms(self, word: str) -> frozenset[str]:
        """Base forms opposite to some base form of ``word`` (WordNet pointers and the extra list)."""
        out: set[str] = set()
        for lemma in self.lemmas(word):
            out.update(self._extra.get(lemma, ()))
            for synset in self.wordnet.synsets(lemma):
                for entry in synset.lemmas():
                    if entry.name().lower() == lemma:
                        out.update(a.name().lower() for a in entry.antonyms())
        return frozenset(out - self.lemmas(word))

    @functools.lru_cache(maxsize=65_536)  # noqa: B019
    def synonyms(self, word: str) -> frozenset[str]:
        """Base forms sharing a synset with some base form of ``word`` (``word``'s lemmas included)."""
        out = set(self.lemmas(word))
        for lemma in self.lemmas(word):
            for synset in self.wordnet.synsets(lemma):
                out.update(e.name().lower() for e in synset.lemmas() if "_" not in e.name())
        return frozenset(out)

    @functools.lru_cache(maxsize=65_536)  # noqa: B019
    def is_verb(self, word: str) -> bool:
        """Whether some form of ``word`` is a WordNet verb (``acquired``, ``moved``)."""
        return bool(self.wordnet._morphy(word.lower(), "v"))

    def prefix_opposed(self, a: str, b: str) -> bool:
        """Whether one word is the other with a negating prefix whose stem is a word (so that
        "unsafe"/"safe" count, "interest"/"terest" cannot).

        >>> lex = get_lexicon()
        >>> lex is None or (lex.prefix_opposed("unsafe", "safe") and not lex.prefix_opposed("inform", "form"))
        True
        """
        long, short = (a, b) if len(a) > len(b) else (b, a)
        if len(short) < 4 or not long.endswith(short):
            return False
        prefix = long[: len(long) - len(short)].rstrip("-")
        if prefix not in NEGATING_PREFIXES:
            return False
        is_word = any(self.wordnet._morphy(short, pos) for pos in "nvar")
        # an adjective ("invalid"), or a verb with dis-/un- ("disallow"); not "inform"/"form"
        as_verb = prefix in ("dis", "un") and self.wordnet._morphy(long, "v")
        return is_word and bool(self.wordnet._morphy(long, "a") or as_verb)

    def opposed(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` are antonyms in some of their forms.

        >>> lex = get_lexicon()
        >>> lex is None or (lex.opposed("largest", "smallest") and lex.opposed("rose", "fell"))
        True
        >>> lex is None or lex.opposed("large", "big")
        False
        """
        return bool(self.antonyms(a) & self.lemmas(b))


@functools.cache
def get_lexicon() -> Lexicon | None:
    """The process's :class:`Lexicon`, or None (logged once) where no WordNet database is found."""
    source = Path(os.environ.get(ENV, DEBIAN_DIR))
    try:
        root = _prepared(source)
    except OSError as exc:
        log.warning("WordNet at %s cannot be prepared (%s): polarity checks without antonyms",
                    source, exc)
        return None
    if root is None:
        log.warning("no WordNet database under %s (bash scripts/install_wordnet.sh): polarity "
                    "checks run without antonyms", source)
        return None
    return Lexicon(root)
