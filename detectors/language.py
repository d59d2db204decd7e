"""The language of a text, and which detectors can read it.

Identification: py3langid, the maintained fork of langid.py (Lui & Baldwin 2012, "langid.py: An
Off-the-shelf Language Identification Tool", ACL demo): a naive Bayes model over byte n-grams for
97 languages, shipped inside the package (no download). Its normalised posterior P(l | x) is
reweighted by a prior that favours the languages the detectors read (:data:`FAVOURED`, weight
:data:`PRIOR_WEIGHT` each, 1 for every other language):

    P'(l | x) = P(l | x) w(l) / Σ_k P(k | x) w(k)

because short texts are ambiguous ("Shut it, dumbass." comes out Latin, "ta gueule" Acehnese)
and most traffic is in those languages, while a clear German or Russian sentence keeps a
posterior near 1 and still wins. The language is ``"und"`` (undetermined, ISO 639-2) when the
best P'(l | x) is below :data:`MIN_CONFIDENCE` ("lol", "ok", a bare number), or when the best is
a language the detectors do not read with P'(l | x) below :data:`MIN_OTHER_CONFIDENCE` ("Gracias
por todo" is Spanish at 0.48): detectors then read the text with every language they support
rather than return nothing. Nigerian Pidgin (``pcm``) is English-lexified, and the model tells it
from English by a handful of words (and by "Nigerian": "I am Nigerian." is pcm at 0.84), so it
is reported as English (:data:`READ_AS`).

Only the first :data:`MAX_CHARS` characters are read: bounded work on hostile inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNDETERMINED = "und"
#: Languages some detector reads: short ambiguous texts lean towards them (see the module docstring).
FAVOURED = ("en", "fr")
PRIOR_WEIGHT = 10.0  # chosen on the English eval and seed sets and 30 hand-written texts in 12 languages
MIN_CONFIDENCE = 0.1
MIN_OTHER_CONFIDENCE = 0.5
READ_AS = {"pcm": "en"}
MAX_CHARS = 2000


@dataclass(frozen=True)
class Language:
    """``code``: ISO 639-1 (``"en"``), or ``"und"``; ``confidence``: the reweighted posterior."""

    code: str
    confidence: float


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, favoured: Iterable[str] = FAVOURED, prior_weight: float = PRIOR_WEIGHT,
             min_confidence: float = MIN_CONFIDENCE) -> Language:
    """The language of ``text`` (module docstring).

    >>> identify("The deployment finished without errors.").code
    'en'
    >>> identify("Le déploiement s'est terminé sans erreur.").code
    'fr'
    >>> identify("Das ist wirklich eine schlechte Idee.").code
    'de'
    >>> identify("").code, identify("42").code
    ('und', 'und')
    """
    favoured = frozenset(favoured)
    ranked = _identifier().rank(text[:MAX_CHARS].replace("\x00", " "))
    weighted = [(code, p * (prior_weight if code in favoured else 1.0)) for code, p in ranked]
    total = sum(w for _, w in weighted)
    code, best = max(weighted, key=lambda cw: cw[1])
    confidence = best / total if total > 0 else 0.0
    code = READ_AS.get(code, code)
    floor = min_confidence if code in favoured else max(min_confidence, MIN_OTHER_CONFIDENCE)
    return Language(code if confidence >= floor else UNDETERMINED, round(float(confidence), 4))


def identify_many(texts: Sequence[str], **options) -> list[Language]:
    """:func:`identify` of each text, in order."""
    return [identify(t, **options) for t in texts]


@dataclass(frozen=True)
class LanguageSupport:
    """The languages one detector reads. ``reason(code)`` is None when it reads ``code`` (or the
    language is undetermined), else why it returns null instead of a score.

    >>> LanguageSupport("toxicity", ("en", "fr")).reason("de")
    "toxicity reads en, fr; this text is in 'de'"
    >>> LanguageSupport("toxicity", ("en", "fr")).reason("und") is None
    True
    """

    detector: str
    languages: tuple[str, ...]

    def reads(self, code: str) -> bool:
        return code == UNDETERMINED or code in self.languages

    def reason(self, code: str) -> str | None:
        if self.reads(code):
            return None
        return f"{self.detector} reads {', '.join(self.languages)}; this text is in {code!r}"
