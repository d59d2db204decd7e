"""PII detector (parrotwatch.detectors.pii): golden cases per type, hard negatives, redaction, hostile
inputs, and floors on the shipped evaluation set's test split (bench/data/pii_eval.jsonl)."""

from __future__ import annotations

import importlib.util
import json
import math
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from parrotwatch.detectors.pii import (
    ENTITY_TYPES,
    MAX_CHARS,
    TRUNCATED,
    PiiScorer,
    analyzer,
    entity_types,
    find_pii,
    pii_findings,
    redact,
)

ROOT = Path(__file__).resolve().parents[3]
EVAL = ROOT / "bench" / "data" / "pii_eval.jsonl"


def found(text: str) -> list[tuple[str, str]]:
    return [(s.entity_type, text[s.start:s.end]) for s in find_pii(text)]


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    analyzer()  # the ~4 s of imports once for the whole file


# ------------------------------------------------------------------------------------ golden cases

GOLDEN = [
    ("Email me at jane.o.doe+invoices@mail.example.co.uk today", "EMAIL_ADDRESS",
     "jane.o.doe+invoices@mail.example.co.uk"),
    ("Email me at J_Smith99@corp-example.net", "EMAIL_ADDRESS", "J_Smith99@corp-example.net"),
    ("Call (415) 555-2671 after 5", "PHONE_NUMBER", "(415) 555-2671"),
    ("Ring +44 20 7946 0958 please", "PHONE_NUMBER", "+44 20 7946 0958"),
    ("Mobile: +49 151 23456789", "PHONE_NUMBER", "+49 151 23456789"),
    ("Appelle le 01 42 68 53 00 demain", "PHONE_NUMBER", "01 42 68 53 00"),
    ("WhatsApp +91 98765 43210", "PHONE_NUMBER", "+91 98765 43210"),
    ("Card 4111 1111 1111 1111 exp 08/27", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("Amex 3782-822463-10005 on file", "CREDIT_CARD", "3782-822463-10005"),
    ("Mastercard 5555555555554444 declined", "CREDIT_CARD", "5555555555554444"),
    ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
    ("Pay GB82WEST12345698765432 now", "IBAN_CODE", "GB82WEST12345698765432"),
    ("Konto FR14 2004 1010 0505 0001 3M02 606", "IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606"),
    ("My SSN is 536-22-1234.", "US_SSN", "536-22-1234"),
    ("Server 192.168.10.24 is down", "IP_ADDRESS", "192.168.10.24"),
    ("Host 2001:db8:85a3::8a2e:370:7334 answers", "IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334"),
    ("See https://www.example.com/reset?token=ab12.", "URL", "https://www.example.com/reset?token=ab12"),
    ("Open portal.example.org/login now", "URL", "portal.example.org/login"),
    ("Send to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT now", "CRYPTO", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
    ("Send to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq now", "CRYPTO",
     "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ("Patient born on March 14, 1985 in Lyon", "DATE_OF_BIRTH", "March 14, 1985"),
    ("DOB: 03/14/1985", "DATE_OF_BIRTH", "03/14/1985"),
    ("Date of birth is 1985-03-14.", "DATE_OF_BIRTH", "1985-03-14"),
]


@pytest.mark.parametrize(("text", "kind", "value"), GOLDEN, ids=[f"{k}:{v}" for _, k, v in GOLDEN])
def test_golden_value_is_found_whole_with_its_type(text, kind, value):
    assert found(text) == [(kind, value)]


def test_every_reported_type_has_a_golden_case():
    assert {k for _, k, _ in GOLDEN} == set(ENTITY_TYPES)


HARD_NEGATIVES = [
    "Your order #4581129345 has shipped.",
    "Upgrade to v2.13.1 or numpy==1.26.4; Windows build 10.0.22631.3296.",
    "The job ran at 2024-03-15 14:22:05 and at 14:22:05.123.",
    "Revert commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (sha256 e3b0c44298fc1c149afbf4c8996fb924).",
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2 are out of print.",
    "Test card 4111 1111 1111 1112 should be rejected.",   # fails Luhn
    "The IBAN DE88 3704 0044 0532 0130 00 fails its check digits.",
    "Placeholder SSNs 000-12-3456, 666-12-3456 and 912-34-5678 are never issued.",
    "Edit setup.py and README.md, then main.rs.",
    "The library was released on March 14, 2023.",       # a date, not a date of birth
    "Screen 1920x1080, port 8080, pi 3.14159265.",
    "Request id 123e4567-e89b-12d3-a456-426614174000 failed.",
    "Send to 1BoatSLRHtKNngkdXEeobR76b53LETtpyX now",       # Base58Check checksum broken
]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negative_has_no_pii(text):
    assert found(text) == []


def test_overlaps_keep_the_longest_span():
    # the bare domain inside the e-mail and the IP inside the URL are not reported apart
    assert found("Write to ops@example.com or http://203.0.113.7.example.net/admin") == [
        ("EMAIL_ADDRESS", "ops@example.com"), ("URL", "http://203.0.113.7.example.net/admin")]
    # an URL needs a domain name: an IP with a scheme is an IP
    assert found("Open http://10.0.0.7/admin") == [("IP_ADDRESS", "10.0.0.7")]
    # the same span as phone (score 0.4) and SSN (0.5): the SSN
    assert found("SSN 536 22 1234") == [("US_SSN", "536 22 1234")]


def test_entity_types_are_sorted_and_distinct():
    text = "a@example.com, b@example.org, +44 20 7946 0958, 10.1.2.3"
    assert entity_types(text) == ["EMAIL_ADDRESS", "IP_ADDRESS", "PHONE_NUMBER"]


# --------------------------------------------------------------------------------------- redaction


def test_redact_replaces_each_span_by_its_typed_placeholder():
    text = "Hi, I'm Ana: ana.lopez@correo.es, +34 612 345 678, card 4111-1111-1111-1111."
    assert redact(text) == "Hi, I'm Ana: <EMAIL_ADDRESS>, <PHONE_NUMBER>, card <CREDIT_CARD>."


def test_redact_keeps_text_without_pii_byte_for_byte():
    text = "Version 3.11.7\n\torder #90817263 \u200f done \U0001F600"
    assert redact(text) == text


def test_redact_is_idempotent_and_leaves_no_value():
    text = "SSN 536-22-1234, IBAN GB82 WEST 1234 5698 7654 32, wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
    once = redact(text)
    assert once == "SSN <US_SSN>, IBAN <IBAN_CODE>, wallet <CRYPTO>"
    assert redact(once) == once and find_pii(once) == []


def test_redact_of_none_is_none():
    assert redact(None) is None


# ----------------------------------------------------------------------------------- hostile input


def test_nul_characters_neither_crash_nor_shift_offsets():
    text = "\x00\x00mail a@example.com\x00 now"
    (span,) = find_pii(text)
    assert (span.entity_type, text[span.start:span.end]) == ("EMAIL_ADDRESS", "a@example.com")
    assert redact(text) == "\x00\x00mail <EMAIL_ADDRESS>\x00 now"


def test_lone_surrogates_are_tolerated():
    text = "bad \ud800 half \udfff then a@example.com"
    assert found(text) == [("EMAIL_ADDRESS", "a@example.com")]


def test_zero_width_and_bidi_marks_cannot_hide_pii():
    text = "mail jo\u200b.doe@exa\u200dmple.com or \u202e+44 20 7946 0958\u202c"
    spans = find_pii(text)
    assert [s.entity_type for s in spans] == ["EMAIL_ADDRESS", "PHONE_NUMBER"]
    assert text[spans[0].start:spans[0].end] == "jo\u200b.doe@exa\u200dmple.com"  # original offsets
    assert redact(text) == "mail <EMAIL_ADDRESS> or \u202e<PHONE_NUMBER>\u202c"


def test_rtl_and_emoji_text():
    text = ("\u05e9\u05dc\u05d5\u05dd \U0001F44B\U0001F3FD \u0645\u0631\u062d\u0628\u0627 "
            "ops@example.com \U0001F680")
    assert found(text) == [("EMAIL_ADDRESS", "ops@example.com")]


def test_a_megabyte_is_truncated_in_bounded_time():
    # digit groups are the slowest input found (libphonenumber tries each one in every region)
    for text in ("1234567890 " * 100_000, "x" * 1_000_000, "a@example.com " * 80_000):
        start = time.perf_counter()
        spans = find_pii(text)
        assert time.perf_counter() - start < 8.0
        assert all(s.end <= MAX_CHARS for s in spans)
    out = redact("a@example.com " * 80_000)
    assert out.endswith(TRUNCATED) and out.count("<EMAIL_ADDRESS>") == MAX_CHARS // 14
    assert "@" not in out  # nothing unscanned is returned, not even a value cut at the limit


# ------------------------------------------------------------------------------------------ scorer


@dataclass(frozen=True)
class Request:
    prompt: str | None
    response: str | None


def test_scorer_counts_each_side_and_handles_missing_fields():
    batch = [{"prompt": "My card is 4111 1111 1111 1111, call +1 415 555 2671", "response": "Not stored."},
             Request(None, "Write to a@example.com"), "plain response", {"prompt": None, "response": None},
             {"prompt": 42, "response": b"a@example.com"}]
    assert PiiScorer().scores(batch) == [
        {"pii_count": 2.0, "pii_prompt_count": 2.0, "pii_response_count": 0.0},
        {"pii_count": 1.0, "pii_prompt_count": None, "pii_response_count": 1.0},
        {"pii_count": 0.0, "pii_prompt_count": None, "pii_response_count": 0.0},
        {"pii_count": None, "pii_prompt_count": None, "pii_response_count": None},
        {"pii_count": None, "pii_prompt_count": None, "pii_response_count": None},
    ]
    assert PiiScorer().scores([]) == []


def test_scorer_follows_the_request_scorer_contract():
    scorer = PiiScorer()
    batch = PiiScorer._unit_test_batch()
    out = scorer.scores(batch)
    assert len(out) == len(batch)
    for row in out:
        assert tuple(row) == scorer.score_names
        assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in row.values())
    assert [scorer.scores([item])[0] for item in batch] == out
    assert pickle.loads(pickle.dumps(scorer)).scores(batch) == out


def test_findings_give_sorted_types_and_spans_per_side():
    (f,) = pii_findings([{"prompt": "IBAN DE89370400440532013000 and 10.0.0.1",
                          "response": "I sent it to bob@example.com"}])
    assert f.types == ["EMAIL_ADDRESS", "IBAN_CODE", "IP_ADDRESS"]
    assert [(s.entity_type, s.start, s.end) for s in f.prompt] == [("IBAN_CODE", 5, 27),
                                                                    ("IP_ADDRESS", 32, 40)]
    assert [(s.entity_type, s.start, s.end) for s in f.response] == [("EMAIL_ADDRESS", 13, 28)]


# ------------------------------------------------------------------------ floors on the shipped set


def _pii_eval():
    spec = importlib.util.spec_from_file_location("pii_eval", ROOT / "bench" / "pii_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_set_is_large_and_labelled_consistently():
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 300 and {r["split"] for r in rows} == {"dev", "test"}
    assert sum(r["kind"] == "hard_negative" for r in rows) >= 100
    for r in rows:
        assert all(r["text"][s["start"]:s["end"]].strip() == r["text"][s["start"]:s["end"]] != ""
                   for s in r["spans"])
        assert {s["type"] for s in r["spans"]} <= set(ENTITY_TYPES)


def test_test_split_precision_and_recall_stay_above_floors():
    """Measured on the test split (docs/pii.md): exact P 0.977, R 1.000; overlap the same; the
    lowest per-type exact precision is PHONE_NUMBER's 0.828. Floors leave margin."""
    bench = _pii_eval()
    rows = bench.load(EVAL, "test")
    preds = [[(s.start, s.end, s.entity_type) for s in find_pii(r["text"])] for r in rows]
    report = bench.evaluate(rows, preds)
    for mode in ("exact", "overlap"):
        assert report[mode]["ALL"]["precision"] >= 0.93, report[mode]["ALL"]
        assert report[mode]["ALL"]["recall"] >= 0.95, report[mode]["ALL"]
        for kind in ENTITY_TYPES:
            assert report[mode][kind]["recall"] >= 0.85, (mode, kind, report[mode][kind])
            assert report[mode][kind]["precision"] >= 0.70, (mode, kind, report[mode][kind])
    hard = [p for r, p in zip(rows, preds, strict=True) if r["kind"] == "hard_negative"]
    assert sum(bool(p) for p in hard) / len(hard) <= 0.12  # measured 6 / 81


def test_evaluation_counts_exact_and_overlap_matches():
    bench = _pii_eval()
    rows = [{"spans": [{"start": 0, "end": 10, "type": "URL"}, {"start": 20, "end": 25, "type": "US_SSN"}]}]
    report = bench.evaluate(rows, [[(0, 11, "URL"), (20, 25, "PHONE_NUMBER")]])
    assert (report["exact"]["ALL"]["tp"], report["overlap"]["ALL"]["tp"]) == (0, 1)
    assert report["overlap"]["URL"]["precision"] == 1.0 and report["overlap"]["US_SSN"]["recall"] == 0.0
    low, high = report["overlap"]["ALL"]["recall_ci"]
    # Wilson interval of 1 success in 2: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    assert low == pytest.approx(0.0945, abs=1e-3) and high == pytest.approx(0.9055, abs=1e-3)
