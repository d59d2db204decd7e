"""PII leakage in the stream: personal data that a response repeats verbatim from the training corpus.

Lukas et al. 2023 ("Analyzing Leakage of Personally Identifiable Information in Language Models",
IEEE S&P) show that what an LM trained on personal data leaks is the PII itself: names, e-mail
addresses and phone numbers reproduced with their context. A response that quotes the training
corpus (``regurgitation``) is a copyright or contamination question; a quoted stretch that holds
PII is a privacy incident.

Let t_1..t_L be the response's tokens under the index's tokenizer (``ngram_index``, ``norm-v1``:
NFKC, case-folded, punctuation dropped), R the verbatim runs of the regurgitation index
(``regurgitation.hit_chains`` with ``max_gap=None``: every n-gram of a run is in the corpus index,
so each run's tokens [a, b) occur in the corpus), and PII(r) the response's PII spans (Presidio,
``parrotwatch.detectors.pii``). With tok(s) the tokens of span s's text,

    leaked(r)          = { s in PII(r) : type(s) is personal, s is not in the request's prompt or
                                         sources, and tok(s) = t_j..t_{j+k-1} at s's own position j
                                         with [j, j + k) inside some run [a, b) in R }
    pii_regurgitated(r) = |leaked(r)|

A run is at least n tokens long (the index's n, 8 by default), so the PII value comes with at
least n - |tok(s)| tokens of the corpus around it ("call Ana Lopez at +1 415 555 2671" quoted from
a support ticket, not a phone number alone), or is itself n tokens or more of the corpus (an IBAN
or a postal address can be). Runs are verbatim on purpose: the live ``regurgitation`` score
bridges gaps of edited tokens, and a PII value in such a gap is a value the model changed,
not one it repeated. Only personal types count (e-mail addresses, phone numbers, payment cards,
IBANs, SSNs, crypto wallets, dates of birth: not URLs or IP addresses, which memorized licence
headers and documentation are full of), values of at least six letters and digits, and values the
request itself does not hold (its prompt and sources: a contact line quoted from a retrieved
document came from the context, not from memory). Caveats: with a Bloom index a false-positive
n-gram can make a run (rate ``index.false_positive_rate`` per n-gram); the n-grams of one run
need not come from one corpus document; and PII that the corpus holds as public contact data
("write to press@example.org") counts like any other.

>>> from parrotwatch.detectors.audits.ngram_index import ExactIndex
>>> corpus = ["Ticket 4471: please call Ana Lopez at +1 415 555 2671 about the refund before Friday."]
>>> index = ExactIndex.from_documents(corpus, n=6)
>>> text = "Sure. Please call Ana Lopez at +1 415 555 2671 about the refund."
>>> start = text.index("+1")
>>> leaked_pii_spans(text, [(start, start + 15, "PHONE_NUMBER")], index)
[0]
>>> leaked_pii_spans(text, [(start, start + 15, "PHONE_NUMBER")], index, context=["Is +1 415 555 2671 hers?"])
[]
>>> leaked_pii_spans("Call +1 415 555 2671 now.", [(5, 20, "PHONE_NUMBER")], index)  # no run: no leak
[]
"""

from __future__ import annotations

from collections.abc import Sequence

from parrotwatch.detectors.audits.ngram_index import NgramIndex
from parrotwatch.detectors.audits.regurgitation import hit_chains

MAX_TEXT_CHARS = 100_000  # the response's head that is checked (bounded work per request)
#: What counts: personal data. URLs and IP addresses are left out: a repeated licence header's URL or
#: a server's address in quoted documentation is memorized text, not a person's data.
PERSONAL_TYPES = frozenset({"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "CRYPTO",
                            "DATE_OF_BIRTH"})
MIN_VALUE_CHARS = 6  # letters and digits of a value: shorter ones match by chance


def _key(text: str) -> str:
    """Letters and digits of ``text``, case-folded: how a value is compared with the request's context."""
    return "".join(c for c in text.casefold() if c.isalnum())


def _position(tokens: list, head: str, start: int, needle: list, index: NgramIndex) -> int | None:
    """Where ``needle`` (the tokens of ``head[start:end]``) starts in ``tokens``: the tokens of
    ``head[:start]`` counted, then a search two tokens either side (normalisation can merge or split
    tokens at the edge); None when it is not there."""
    guess = len(index.tokens(head[:start]))
    k = len(needle)
    near = range(max(0, guess - 2), min(len(tokens) - k, guess + 2) + 1)
    for j in sorted(near, key=lambda j: abs(j - guess)):
        if tokens[j:j + k] == needle:
            return j
    return None


def leaked_pii_spans(text: str, spans: Sequence[tuple[int, int, str]], index: NgramIndex,
                     context: Sequence[str | None] = ()) -> list[int]:
    """Indices into ``spans`` (``(start, end, entity_type)``, character offsets of PII in ``text``) of
    the spans that ``text`` repeats from the corpus (module docstring), in input order. A span counts
    when its type is personal (:data:`PERSONAL_TYPES`), its value has at least
    :data:`MIN_VALUE_CHARS` letters and digits and is not in ``context`` (the request's prompt and
    sources: a value the model was given is not one it remembered), and its own tokens, at their own
    position, lie inside one verbatim run. Spans outside ``text`` or without a token never count."""
    head = text[:MAX_TEXT_CHARS]
    given = [_key(c) for c in context if c]
    todo = [(i, start, end) for i, (start, end, kind) in enumerate(spans)
            if kind in PERSONAL_TYPES and 0 <= start < end <= len(head)
            and len(value := _key(head[start:end])) >= MIN_VALUE_CHARS and not any(value in g for g in given)]
    if not todo:
        return []
    hashes, offsets = index.hashes([head])
    starts, ends, _ = hit_chains(index.contains_many(hashes), offsets, index.n, None)
    if not len(starts):
        return []
    runs = list(zip(starts.tolist(), ends.tolist(), strict=True))
    tokens = list(index.tokens(head))
    out = []
    for i, start, end in todo:
        needle = list(index.tokens(head[start:end]))
        j = _position(tokens, head, start, needle, index) if needle else None
        if j is not None and any(a <= j and j + len(needle) <= b for a, b in runs):
            out.append(i)
    return out


def count_leaked(text: str, spans: Sequence[tuple[int, int, str]], index: NgramIndex,
                 context: Sequence[str | None] = ()) -> float:
    """``pii_regurgitated`` of one response: how many of its PII ``spans`` it repeats from the corpus."""
    return float(len(leaked_pii_spans(text, spans, index, context)))
