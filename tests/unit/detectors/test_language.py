"""Language identification and per-detector language support (detectors/language.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("py3langid", reason="needs the models extra: pip install -e '.[models]'")

from parrotwatch.detectors.language import (  # noqa: E402
    MAX_CHARS,
    UNDETERMINED,
    LanguageSupport,
    identify,
    identify_many,
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("The deployment finished without errors and the dashboards are green.", "en"),
        ("Shut it, dumbass.", "en"),  # Latin for the bare model: the prior keeps it English
        ("I am Nigerian.", "en"),  # Nigerian Pidgin is read as English
        ("Le serveur a planté cette nuit, il faut relancer le service.", "fr"),
        ("ta gueule", "fr"),
        ("Das ist wirklich eine schlechte Idee.", "de"),
        ("Questo è un disastro completo.", "it"),
        ("Это очень плохая идея.", "ru"),
        ("这是一个非常糟糕的主意。", "zh"),
        ("", UNDETERMINED),
        ("42", UNDETERMINED),
        ("lol", UNDETERMINED),
        ("Gracias por todo", UNDETERMINED),  # Spanish, but too short to be sure
    ],
)
def test_identify(text, code):
    assert identify(text).code == code


def test_confidence_is_a_probability_and_many_keeps_order():
    got = identify_many(["Hello there, how are you today?", "Bonjour, comment allez-vous ?"])
    assert [g.code for g in got] == ["en", "fr"]
    assert all(0.0 <= g.confidence <= 1.0 for g in got)


def test_only_a_prefix_is_read():
    assert identify("Das ist wirklich eine schlechte Idee. " * 100 + "x" * 10 * MAX_CHARS).code == "de"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_a_code(text):
    got = identify(text)
    assert isinstance(got.code, str) and 2 <= len(got.code) <= 3
    assert 0.0 <= got.confidence <= 1.0


@pytest.mark.parametrize(
    "text", ["\x00" * 5_000, "\ud800\udfff\ud800", "\U0001f99c" * 10_000, "\u202e" * 3_000, "a" * 1_000_000]
)
def test_hostile_inputs(text):
    assert identify(text).code


def test_support_reads_its_languages_and_undetermined_text():
    s = LanguageSupport("toxicity", ("en", "fr"))
    assert s.reads("en") and s.reads("fr") and s.reads(UNDETERMINED) and not s.reads("de")
    assert s.reason("en") is None
    assert s.reason("de") == "toxicity reads en, fr; this text is in 'de'"
