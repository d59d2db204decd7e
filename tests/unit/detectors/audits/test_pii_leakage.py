"""PII leakage in the stream (issue 17): a PII span counts only inside a verbatim run of corpus
n-grams; the score goes through the stream's scoring path with the PII detector and the index."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parrotwatch.detectors.audits.ngram_index import BloomIndex, ExactIndex
from parrotwatch.detectors.audits.pii_leakage import count_leaked, leaked_pii_spans

TICKET = ("Ticket 4471 from the billing queue: please call Ana Lopez at +1 415 555 2671 or write to "
          "ana.lopez@example.com about the refund before Friday, she is expecting it.")
INDEX = ExactIndex.from_documents([TICKET, "The refund policy allows returns within thirty days."], n=8)


def spans_of(text: str, *values: str, kind: str = "PHONE_NUMBER") -> list[tuple[int, int, str]]:
    return [(text.index(v), text.index(v) + len(v), "EMAIL_ADDRESS" if "@" in v else kind) for v in values]


def test_pii_quoted_with_its_corpus_context_is_leaked():
    text = ("Here is what I found: please call Ana Lopez at +1 415 555 2671 or write to "
            "ana.lopez@example.com about the refund before Friday.")
    spans = spans_of(text, "+1 415 555 2671", "ana.lopez@example.com")
    assert leaked_pii_spans(text, spans, INDEX) == [0, 1]
    assert count_leaked(text, spans, INDEX) == 2.0


def test_case_and_punctuation_do_not_hide_a_leak():
    text = "PLEASE CALL ANA LOPEZ AT +1 (415) 555-2671 OR WRITE TO ANA.LOPEZ@EXAMPLE.COM ABOUT THE REFUND"
    spans = spans_of(text, "+1 (415) 555-2671", "ANA.LOPEZ@EXAMPLE.COM")
    assert leaked_pii_spans(text, spans, INDEX) == [0, 1]


def test_a_changed_value_in_a_quoted_template_is_not_a_leak():
    # the context is the corpus's, the number is not: the model changed the value, it did not repeat it
    text = ("please call Ana Lopez at +1 212 555 0199 or write to ana.lopez@example.com about the "
            "refund before Friday")
    spans = spans_of(text, "+1 212 555 0199", "ana.lopez@example.com")
    assert leaked_pii_spans(text, spans, INDEX) == [1]


def test_pii_without_a_corpus_run_is_not_a_leak():
    text = "You can reach Ana Lopez at +1 415 555 2671 during office hours."  # no 8 tokens in a row
    assert leaked_pii_spans(text, spans_of(text, "+1 415 555 2671"), INDEX) == []
    assert leaked_pii_spans("Nothing personal here at all, just a long sentence about refunds.",
                            [(0, 7, "PHONE_NUMBER")], INDEX) == []


def test_spans_outside_the_text_empty_or_tokenless_never_count():
    text = "please call Ana Lopez at +1 415 555 2671 or write to ana.lopez@example.com about the refund"
    bad = [(-1, 4), (5, 5), (10, 9), (0, len(text) + 1), (text.index(" at "), text.index(" at ") + 1)]
    assert leaked_pii_spans(text, [(a, b, "PHONE_NUMBER") for a, b in bad], INDEX) == []
    assert leaked_pii_spans("", [(0, 1, "PHONE_NUMBER")], INDEX) == []
    assert leaked_pii_spans(text, [], INDEX) == []


def test_urls_ip_addresses_and_short_values_are_not_personal_data():
    licence = ("Licensed under the Apache License, Version 2.0 (the License); you may obtain a copy of the "
               "License at http://www.apache.org/licenses/LICENSE-2.0 unless required by applicable law")
    index = ExactIndex.from_documents([licence, "Step 1 of the tutorial: install the package first."], n=8)
    url = licence.index("http")
    assert leaked_pii_spans(licence, [(url, url + 42, "URL")], index) == []
    text = "Bind to ::1 only. Step 1 of the tutorial: install the package first."
    assert leaked_pii_spans(text, [(8, 11, "IP_ADDRESS"), (8, 11, "PHONE_NUMBER")], index) == []


def test_a_value_counts_only_at_its_own_position_inside_a_run():
    # the same number twice: once inside the quoted ticket, once in the model's own sentence
    text = ("Your number +1 415 555 2671 is on file. Also: please call Ana Lopez at +1 415 555 2671 or "
            "write to ana.lopez@example.com about the refund before Friday.")
    first, second = text.index("+1"), text.rindex("+1")
    spans = [(first, first + 15, "PHONE_NUMBER"), (second, second + 15, "PHONE_NUMBER")]
    assert leaked_pii_spans(text, spans, INDEX) == [1]


def test_a_value_the_request_gave_the_model_is_not_a_leak():
    text = "please call Ana Lopez at +1 415 555 2671 or write to ana.lopez@example.com about the refund"
    spans = spans_of(text, "+1 415 555 2671", "ana.lopez@example.com")
    assert leaked_pii_spans(text, spans, INDEX, context=["Is +1 (415) 555-2671 Ana's number?", None]) == [1]
    assert leaked_pii_spans(text, spans, INDEX, context=["", "Source: ANA.LOPEZ@example.com"]) == [0]


def test_a_bloom_index_gives_the_same_answer():
    bloom = BloomIndex.from_documents([TICKET], n=8, target_fpr=1e-9)
    text = "please call Ana Lopez at +1 415 555 2671 or write to ana.lopez@example.com about the refund"
    assert leaked_pii_spans(text, spans_of(text, "+1 415 555 2671"), bloom) == [0]


_POISON = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300) | st.sampled_from(
    ["\x00" * 50, "\u202e" + TICKET, TICKET.replace(" ", "\u200b "), "ﬀ" * 200, TICKET * 40])


@settings(max_examples=200, deadline=None)
@given(_POISON, st.lists(st.tuples(st.integers(-5, 400), st.integers(-5, 400),
                                   st.sampled_from(["PHONE_NUMBER", "EMAIL_ADDRESS", "URL"])), max_size=8),
       st.lists(st.none() | _POISON, max_size=3))
def test_hostile_texts_and_spans_never_raise(text, spans, context):
    out = leaked_pii_spans(text, spans, INDEX, context)
    assert out == sorted(set(out)) and all(0 <= i < len(spans) for i in out)


def test_the_stream_scores_it_with_the_pii_detector_and_the_index():
    pytest.importorskip("presidio_analyzer", reason="needs the models extra: pip install -e '.[models]'")
    from parrotwatch.quality import QualityConfig
    from parrotwatch.scoring import parse_inference, score_events
    from parrotwatch.traffic import encode

    def event(i: int, response: str, prompt: str = "Who handles my refund?"):
        return parse_inference(encode({
            "schema_version": 1, "request_id": f"r{i}", "timestamp": datetime.now(UTC).isoformat(),
            "model": "m", "app": "a", "prompt": prompt, "response": response, "latency_ms": 10.0}))

    leak = ("Sure: please call Ana Lopez at +1 415 555 2671 or write to ana.lopez@example.com about "
            "the refund.")
    fresh = "Write to help@shop.example.org and we will get back to you within two days."
    events = [event(0, leak), event(1, fresh), event(2, "No personal data in this answer.")]
    scored = score_events(events, INDEX, QualityConfig(detectors=("pii",)))
    assert [s.scores["pii_regurgitated"] for s in scored] == [2.0, 0.0, 0.0]
    assert [s.scores["pii_count"] for s in scored] == [2.0, 1.0, 0.0]
    # a prompt with more PII than the drill-down keeps does not hide the response's leaks
    crowded = event(3, leak, prompt=" ".join(f"user{i}@corp.example.com" for i in range(60)))
    (busy,) = score_events([crowded], INDEX, QualityConfig(detectors=("pii",)))
    assert busy.scores["pii_regurgitated"] == 2.0 and busy.scores["pii_count"] == 62.0
    marked = [e for e in scored[0].quality.drilldown["pii_entities"] if e.get("in_corpus")]
    assert {e["type"] for e in marked} == {"PHONE_NUMBER", "EMAIL_ADDRESS"}
    assert "in_corpus" not in str(scored[1].quality.drilldown)
    # null unless both the index and the pii detector run
    pii_only = QualityConfig(detectors=("pii",))
    assert score_events(events[:1], None, pii_only)[0].scores["pii_regurgitated"] is None
    assert score_events(events[:1], INDEX)[0].scores["pii_regurgitated"] is None


def test_the_poison_corpus_scores_with_the_index_and_the_pii_detector():
    """Every accepted poison event gets a pii_regurgitated score or null, never an exception."""
    pytest.importorskip("presidio_analyzer", reason="needs the models extra: pip install -e '.[models]'")
    from parrotwatch.poison import poison_corpus
    from parrotwatch.quality import QualityConfig
    from parrotwatch.scoring import InvalidEvent, parse_inference, score_events

    events = []
    for case in poison_corpus():
        if case.topic != "inference" or case.expect == "dlq":
            continue
        try:
            events.append(parse_inference(case.raw, 8 << 20))
        except InvalidEvent:
            continue
    assert len(events) > 10
    corpus = ExactIndex.from_documents([e.response for e in events if e.response][:5] + [TICKET], n=8)
    scored = score_events(events, corpus, QualityConfig(detectors=("pii",)))
    values = [s.scores["pii_regurgitated"] for s in scored]
    assert all(v is not None and v >= 0 and v == int(v) for v in values)
