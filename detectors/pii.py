"""PII in prompts and responses: pattern and checksum recognizers of Microsoft Presidio, no NER model.

Detector: Presidio's analyzer (https://microsoft.github.io/presidio/, presidio-analyzer 2.2) with a
fixed set of recognizers, each a regular expression plus, where the type has one, a checksum:

===============  ==========================================================================
EMAIL_ADDRESS    RFC 5322-like local part @ domain; the domain's public suffix must be known
                 (tldextract with its bundled Public Suffix List snapshot, never fetched)
PHONE_NUMBER     Google's libphonenumber (python-phonenumbers), numbers valid for their
                 region: international "+CC ..." numbers of any country, national formats of
                 :data:`PHONE_REGIONS`
CREDIT_CARD      13-19 digit card numbers (Visa, Mastercard, Amex, Discover, ...) passing Luhn:
                 sum of the digits, every second one from the right doubled (minus 9 when
                 above 9), = 0 mod 10 (ISO/IEC 7812-1)
IBAN_CODE        country code, 2 check digits, BBAN of the country's length; valid when the
                 number formed by moving the first 4 characters to the end (letters A=10 ..
                 Z=35) is = 1 mod 97 (ISO 13616 / ISO 7064 MOD 97-10)
US_SSN           AAA-GG-SSSS with one kind of separator, area not 000/666/9xx, group not 00,
                 serial not 0000, known sample numbers excluded
IP_ADDRESS       IPv4 and IPv6 (with embedded and mapped IPv4)
URL              with a scheme (http, https, ...) or "www."; a bare domain only with one of
                 :data:`BARE_URL_TLDS` (so file names such as setup.py or README.md, whose
                 extensions are also country domains, are not URLs)
CRYPTO           Bitcoin addresses: Base58Check (double SHA-256 checksum) or Bech32 (BIP 173)
DATE_OF_BIRTH    a date right after "date of birth", "DOB", "born (on)", "birthday", "birth
                 date" (added here; a date alone is not counted: most dates are not PII)
===============  ==========================================================================

Overlaps (an URL inside an e-mail, a phone number that is also an SSN) keep the longest span, then
the highest Presidio score (SSN 0.5 over phone 0.4). Findings under score 0.3 (Presidio's
"very weak" SSN patterns: any 9 digits) are dropped.

Why no NER model: the spaCy models Presidio uses by default (en_core_web_lg/sm) are published on
GitHub, not PyPI, and the analyzer would download one at start-up. Here the analyzer runs with
Presidio's ``NoOpNlpEngine``: nothing is loaded or downloaded, and there is no PERSON, LOCATION or
street address detection (docs/pii.md).

Input hygiene, so that hostile text cannot hide PII or stall a worker: a text is cut to its first
:data:`MAX_CHARS` characters; NUL and lone surrogates become spaces (one for one, offsets kept);
Unicode format characters (category Cf: zero-width spaces and joiners, bidi marks such as U+200F,
soft hyphens) are skipped when matching, so "a\\u200b@example.com" is still an e-mail, and the spans
are given in the original text's offsets.

Scores (a ``protocols.RequestScorer``): ``pii_count`` = |PII spans of the prompt| + |PII spans of
the response|, and each side's count (``None`` for a side the request does not have).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Characters of a text that are analysed; the rest is not scanned (and :func:`redact` drops it).
MAX_CHARS = 10_000
#: Findings under this Presidio score are dropped.
MIN_SCORE = 0.3
#: Regions whose national phone formats (no "+CC") are recognised; "+CC" numbers match for any region.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "CA", "BR", "AU", "ES", "IT", "NL")
#: libphonenumber's leniency: 2 = STRICT_GROUPING (valid number, digits grouped as the country writes them).
PHONE_LENIENCY = 2
#: Top-level domains that make a bare "name.tld" (no scheme, no "www.") a URL.
BARE_URL_TLDS = ("com", "org", "net", "edu", "gov", "io", "ai", "dev", "app", "co", "info", "biz", "uk",
                 "us", "eu", "de", "fr", "ca")
#: Every entity type this module reports, sorted.
ENTITY_TYPES = ("CREDIT_CARD", "CRYPTO", "DATE_OF_BIRTH", "EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS",
                "PHONE_NUMBER", "URL", "US_SSN")
#: What :func:`redact` puts in place of the part of a text past :data:`MAX_CHARS`.
TRUNCATED = "<TRUNCATED>"

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
           r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = (r"(?:\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d{2}"          # 03/14/1985, 14.03.1985
         r"|(?:19|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2}"            # 1985-03-14
         rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+(?:19|20)\d{{2}}"  # 14 March 1985
         rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}})")         # March 14, 1985
_DOB_CONTEXT = (r"(?<=\b(?:date\s+of\s+birth|d\.?o\.?b\.?|birth\s*date|birthday|born(?:\s+on)?)"
                r"\s*(?:is|was|:|-|=)?\s*)")


@dataclass(frozen=True, order=True)
class PiiSpan:
    """One finding: ``text[start:end]`` is of ``entity_type`` (Presidio's ``score`` in [0, 1])."""

    start: int
    end: int
    entity_type: str
    score: float = field(compare=False)


@dataclass(frozen=True)
class PiiFindings:
    """The PII of one request: ``types`` (sorted, distinct) over both sides, and each side's spans
    (``None`` for a side the request does not have)."""

    types: list[str]
    prompt: list[PiiSpan] | None
    response: list[PiiSpan] | None


@functools.cache
def analyzer() -> Any:
    """The process's Presidio ``AnalyzerEngine`` (built on first use, ~5 s of imports, then cached):
    the recognizers of the module docstring over a ``NoOpNlpEngine`` (no model, no download)."""
    import tldextract
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsSsnRecognizer,
    )

    # the bundled Public Suffix List snapshot: no suffix_list_urls, no cache directory, no HTTP
    offline_suffixes = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline_suffixes(pattern_text).fqdn != ""

    base = UrlRecognizer.BASE_URL_REGEX
    bare = (r"(?<![\w@.\-])[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.(?:" + "|".join(BARE_URL_TLDS)
            + r")\b(?:/[^\s()<>\"']*)?")
    url = UrlRecognizer(patterns=[
        Pattern("URL with scheme", r"(?i)\b(?:https?|ftp)://" + base, 0.6),
        Pattern("www URL", r"(?i)(?<![\w.])www\d{0,3}\." + base, 0.6),
        Pattern("bare domain URL", r"(?i)" + bare, 0.5),
    ])
    dob = PatternRecognizer(supported_entity="DATE_OF_BIRTH", name="DateOfBirthRecognizer",
                            patterns=[Pattern("date after a birth word", _DOB_CONTEXT + _DATE, 0.6)])
    phone = PhoneRecognizer(supported_regions=PHONE_REGIONS, leniency=PHONE_LENIENCY)
    recognizers = [OfflineEmailRecognizer(), phone,
                   CreditCardRecognizer(), IbanRecognizer(), UsSsnRecognizer(), IpRecognizer(), url,
                   CryptoRecognizer(), dob]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    engine.load()
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"],
                          default_score_threshold=MIN_SCORE)


def scanned_length(text: str) -> int:
    """How many leading characters of ``text`` are analysed: all when it has at most
    :data:`MAX_CHARS`, else up to the last white space of the final 256 characters before the limit
    (so that no value is cut in two), else exactly :data:`MAX_CHARS`.

    >>> scanned_length("a" * 10), scanned_length("word " * 5_000)
    (10, 9999)
    """
    if len(text) <= MAX_CHARS:
        return len(text)
    cut = max(text.rfind(ws, MAX_CHARS - 256, MAX_CHARS + 1) for ws in (" ", "\n", "\t"))
    return cut if cut > 0 else MAX_CHARS


def _clean(text: str) -> tuple[str, list[int]]:
    """The scanned part of ``text`` without format characters, NUL and lone surrogates as spaces,
    and for each kept character its offset in ``text``."""
    kept: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text[:scanned_length(text)]):
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            ch = " "
        elif unicodedata.category(ch) == "Cf":
            continue
        kept.append(ch)
        where.append(i)
    return "".join(kept), where


_URL_TRAILING = ".,;:!?'\")]"
_SSN_SHAPE = re.compile(r"\d{3}([- .])\d{2}\1\d{4}")


def _plausible(entity_type: str, value: str) -> bool:
    """Rules on top of Presidio's: an SSN's area is never 9xx (ITINs; SSA); a "phone number" is
    not SSN-shaped (AAA-GG-SSSS) and not a bare run of digits (epoch times, IDs) unless it has "+"."""
    if entity_type == "US_SSN":
        return not value.startswith("9")
    if entity_type == "PHONE_NUMBER":
        return not _SSN_SHAPE.fullmatch(value) and not value.isdigit()
    return True


def _resolve(spans: list[PiiSpan]) -> list[PiiSpan]:
    """Non-overlapping spans: longest first, then highest score; sorted by position."""
    chosen: list[PiiSpan] = []
    for s in sorted(spans, key=lambda s: (-(s.end - s.start), -s.score, s.start, s.entity_type)):
        if all(s.end <= c.start or s.start >= c.end for c in chosen):
            chosen.append(s)
    return sorted(chosen)


def find_pii(text: str | None) -> list[PiiSpan]:
    """The PII spans of ``text`` (module docstring), non-overlapping, in order of position, with
    offsets into ``text`` itself. ``[]`` for ``None`` or an empty text.

    >>> [(s.entity_type, s.start, s.end) for s in find_pii("Mail jo.doe+ml@example.org now")]
    [('EMAIL_ADDRESS', 5, 26)]
    >>> find_pii("Card 4111 1111 1111 1112 fails Luhn; build 1.24.3-rc1") == []
    True
    """
    if not isinstance(text, str) or not text:
        return []
    clean, where = _clean(text)
    if not clean.strip():
        return []
    found = analyzer().analyze(clean, language="en")
    spans = []
    for r in found:
        start, end = r.start, r.end
        if r.entity_type == "URL":
            end = start + len(clean[start:end].rstrip(_URL_TRAILING))
        if end > start and _plausible(r.entity_type, clean[start:end]):
            spans.append(PiiSpan(where[start], where[end - 1] + 1, r.entity_type, float(r.score)))
    return _resolve(spans)


def entity_types(text: str | None) -> list[str]:
    """The sorted, distinct entity types found in ``text``.

    >>> entity_types("IBAN GB82 WEST 1234 5698 7654 32, server 10.0.0.12, or 10.0.0.13")
    ['IBAN_CODE', 'IP_ADDRESS']
    """
    return sorted({s.entity_type for s in find_pii(text)})


def redact(text: str | None) -> str | None:
    """``text`` with each PII span (:func:`find_pii`) replaced by ``<ENTITY_TYPE>``.

    Policy: every span of :data:`ENTITY_TYPES` is replaced whole (an e-mail becomes
    ``<EMAIL_ADDRESS>``, not a masked one); everything else, white space and format characters
    included, is kept as it was. Text past :data:`MAX_CHARS` (:func:`scanned_length`) is not
    scanned, so it is dropped and replaced by ``<TRUNCATED>`` (fail closed: nothing unscanned
    leaves). Irreversible: no mapping
    from placeholders back to the values is kept anywhere. ``None`` stays ``None``.

    >>> redact("Reach me at ana.lopez@correo.es or +34 612 345 678.")
    'Reach me at <EMAIL_ADDRESS> or <PHONE_NUMBER>.'
    >>> redact("Version 3.11.7, order #90817263, no PII here.")
    'Version 3.11.7, order #90817263, no PII here.'
    """
    if not isinstance(text, str):
        return None
    out, last = [], 0
    for s in find_pii(text):
        out += [text[last:s.start], f"<{s.entity_type}>"]
        last = s.end
    end = scanned_length(text)
    out.append(text[last:end])
    if end < len(text):
        out.append(TRUNCATED)
    return "".join(out)


def _sides(item: Any) -> tuple[str | None, str | None]:
    """(prompt, response) of a batch item: a plain string is a response; a mapping or an object
    gives its ``prompt`` and ``response``; anything not a string counts as absent."""
    if isinstance(item, str):
        return None, item
    if isinstance(item, Mapping):
        prompt, response = item.get("prompt"), item.get("response")
    else:
        prompt, response = getattr(item, "prompt", None), getattr(item, "response", None)
    return (prompt if isinstance(prompt, str) else None, response if isinstance(response, str) else None)


def pii_findings(batch: Sequence[Any]) -> list[PiiFindings]:
    """:class:`PiiFindings` per item of ``batch`` (items as :class:`PiiScorer` reads them).

    >>> (f,) = pii_findings([{"prompt": "My SSN is 536-22-1234", "response": "Noted."}])
    >>> f.types, [(s.entity_type, s.start, s.end) for s in f.prompt], f.response
    (['US_SSN'], [('US_SSN', 10, 21)], [])
    """
    out = []
    for item in batch:
        prompt, response = _sides(item)
        p = None if prompt is None else find_pii(prompt)
        r = None if response is None else find_pii(response)
        types = sorted({s.entity_type for s in (p or []) + (r or [])})
        out.append(PiiFindings(types, p, r))
    return out


class PiiScorer:
    """PII counts per request (Presidio pattern and checksum recognizers, module docstring) as a
    ``protocols.RequestScorer``: ``pii_count`` = |spans(prompt)| + |spans(response)|,
    ``pii_prompt_count`` and ``pii_response_count`` (whole numbers, as floats; ``None`` for a side
    the item does not have, and ``pii_count`` ``None`` only when it has neither).

    Items: a string (the response), or a mapping or object with ``prompt`` and/or ``response``.

    >>> PiiScorer().scores(["Write to a@b.com or c@d.org", {"prompt": "hi", "response": None}])
    [{'pii_count': 2.0, 'pii_prompt_count': None, 'pii_response_count': 2.0}, \
{'pii_count': 0.0, 'pii_prompt_count': 0.0, 'pii_response_count': None}]
    """

    score_names: tuple[str, ...] = ("pii_count", "pii_prompt_count", "pii_response_count")

    def scores(self, batch: Sequence[Any]) -> list[dict[str, float | None]]:
        """``{name: value}`` of :data:`score_names` per item of ``batch``."""
        out = []
        for f in pii_findings(batch):
            p = None if f.prompt is None else float(len(f.prompt))
            r = None if f.response is None else float(len(f.response))
            total = None if p is None and r is None else (p or 0.0) + (r or 0.0)
            out.append({"pii_count": total, "pii_prompt_count": p, "pii_response_count": r})
        return out

    @classmethod
    def _unit_test_batch(cls) -> list[dict[str, str | None]]:
        return [{"prompt": "My card is 4111 1111 1111 1111, call +1 415 555 2671",
                 "response": "I cannot store card numbers."},
                {"prompt": "What is 2 + 2?", "response": "4"},
                {"prompt": None, "response": "Write to support@example.com."}]
