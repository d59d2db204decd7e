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

    leaked(r)          = { s in PII(r) : tok(s) is non-empty and a contiguous subsequence of
                                         t_a..t_{b-1} for some run [a, b) in R }
    pii_regurgitated(r) = |leaked(r)|

A run is at least n tokens long (the index's n, 8 by default), so the PII value comes with at
least n - |tok(s)| tokens of the corpus around it ("call Ana Lopez at +1 415 555 2671" quoted from
a support ticket, not a phone number alone), or is itself n tokens or more of the corpus (an IBAN
or a postal address can be). Runs are verbatim on purpose: the live ``regurgitation``
score bridges gaps of edited tokens, and a PII value in such a gap is a value the model changed,
not one it repeated. Caveats: with a Bloom index a false-positive n-gram can make a run (rate
``index.false_positive_rate`` per n-gram); the n-grams of one run need not come from one corpus
document; and PII that the corpus holds as public contact data ("write to press@example.org")
counts like any other.

>>> from parrotwatch.detectors.audits.ngram_index import ExactIndex
>>> corpus = ["Ticket 4471: please call Ana Lopez at +1 415 555 2671 about the refund before Friday."]
>>> index = ExactIndex.from_documents(corpus, n=6)
>>> text = "Sure. Please call Ana Lopez at +1 415 555 2671 about the refund."
>>> start = text.index("+1")
>>> leaked_pii_spans(text, [(start, start + 15)], index)
[0]
>>> leaked_pii_spans("Call +1 415 555 2671 now.", [(5, 20)], index)  # the number alone is no run
[]
"""

from __future__ import annotations

from collections.abc import Sequence

from parrotwatch.detectors.audits.ngram_index import NgramIndex
from parrotwatch.detectors.audits.regurgitation import hit_chains

MAX_TEXT_CHARS = 100_000  # the response's head that is checked (bounded work per request)


def _contains(haystack: Sequence, needle: Sequence) -> bool:
    k = len(needle)
    return any(haystack[i:i + k] == needle for i in range(len(haystack) - k + 1))


def leaked_pii_spans(text: str, spans: Sequence[tuple[int, int]], index: NgramIndex) -> list[int]:
    """Indices into ``spans`` (``[start, end)`` character offsets of PII in ``text``) of the spans
    whose tokens lie inside a verbatim run of corpus n-grams of ``text`` (module docstring), in
    input order. Spans outside ``text``, empty or without a token never count."""
    head = text[:MAX_TEXT_CHARS]
    if not spans or not head:
        return []
    hashes, offsets = index.hashes([head])
    starts, ends, _ = hit_chains(index.contains_many(hashes), offsets, index.n, None)
    if not len(starts):
        return []
    tokens = list(index.tokens(head))
    runs = [tokens[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    out = []
    for i, (start, end) in enumerate(spans):
        if not (0 <= start < end <= len(head)):
            continue
        needle = list(index.tokens(head[start:end]))
        if needle and any(_contains(run, needle) for run in runs):
            out.append(i)
    return out


def count_leaked(text: str, spans: Sequence[tuple[int, int]], index: NgramIndex) -> float:
    """``pii_regurgitated`` of one response: how many of its PII ``spans`` it repeats from the corpus."""
    return float(len(leaked_pii_spans(text, spans, index)))
