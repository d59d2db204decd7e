"""Opt-in PII redaction of the text the stream stores (``PARROTWATCH_REDACT_PII``, docs/pii.md).

Policy. With redaction on, every text the stream keeps about a request or a refused record goes
through :func:`parrotwatch.detectors.pii.redact` before it is stored or published: each span a
Presidio pattern or checksum recognizer finds (e-mail, phone, payment card, IBAN, US SSN, IP
address, URL, crypto wallet, date of birth) becomes ``<ENTITY_TYPE>``; text past the scanner's limit
is dropped for ``<TRUNCATED>``. That covers:

* the texts kept for human review (prompt, response, sources) and the drift drill-down's prompt
  excerpt (their source event is redacted before they are cut from it);
* the drill-down: unsupported response spans, the text an injection matched;
* a dead letter's payload head, stored in ``dead_letters`` and published on ``llm.dlq.v1``: it is
  replaced by the redacted text of its head (read as UTF-8, undecodable bytes replaced), while
  ``payload_bytes`` and ``payload_sha256`` stay those of the original record, so an operator who
  holds the source can still find it.

Scores are computed on the original text, before redaction. Redaction is irreversible: no mapping
from placeholders back to values is kept. Names and street addresses are not found (no NER model),
so they are not redacted. Kafka's own copy of each event (``llm.inference.v1``) is the producer's,
and its retention is the topic's; Parrotwatch cannot redact it.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import orjson

from parrotwatch.contracts.dead_letters import redacted_head
from parrotwatch.detectors.pii import redact


def _replace(obj: Any, **changes: Any) -> Any:
    if isinstance(obj, msgspec.Struct):  # a shallow copy: structs.replace would rerun __post_init__
        out = copy.copy(obj)
        for name, value in changes.items():
            setattr(out, name, value)
        return out
    return obj.model_copy(update=changes)


def _text(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def redact_event(event: Any) -> Any:
    """A copy of an inference event whose prompt, messages, response, sources and samples are
    redacted (for the text columns only: the scores come from the original)."""
    messages = event.messages
    if messages:
        messages = [_replace(m, content=_text(m.content) if isinstance(m.content, str) else
                             [({**p, "text": _text(p.get("text"))} if isinstance(p, dict) else p)
                              for p in m.content] if isinstance(m.content, list) else m.content)
                    for m in messages]
    return _replace(event, prompt=_text(event.prompt), messages=messages, response=_text(event.response),
                    sources=[_text(s) for s in event.sources] if event.sources else event.sources,
                    samples=[_text(s) for s in event.samples] if event.samples else event.samples)


def redact_drilldown(drilldown: str | None) -> str | None:
    """The drill-down JSON with its quoted texts redacted (unsupported spans, an injection's match)."""
    if not drilldown:
        return drilldown
    d = orjson.loads(drilldown)
    for span in d.get("unsupported_spans") or ():
        span["text"] = _text(span.get("text"))
    match = d.get("injection_match")
    if isinstance(match, dict):
        match["chunk"] = _text(match.get("chunk"))
    return orjson.dumps(d).decode()


redact_payload = redacted_head  # a dead letter's head as its redacted UTF-8 text
