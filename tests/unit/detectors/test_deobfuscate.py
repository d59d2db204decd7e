"""Undoing spelling tricks before toxicity scoring (detectors/deobfuscate.py): each trick, texts
that must stay as they are, and hostile inputs (bounded, never raising)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parrotwatch.detectors.deobfuscate import deobfuscate, homoglyphs

pytest.importorskip("wordfreq", reason="needs the models extra: pip install -e '.[models]'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k i l l   t h e   j o b   a n d   r e t r y", "kill the job and retry"),
        ("You are a p a t h e t i c   i d i o t.", "You are a pathetic idiot."),
        ("you f.u.c.k.i.n.g m-o-r-o-n", "you fucking moron"),
        ("g*@*r*b*a*g*e", "garbage"),
        ("Y0u 4r3 a $tup1d 1d10t", "You are a stupid idiot"),
        ("I kn0w wh3r3 y0u l!v3", "I know where you live"),
        ("ｓｔｕｐｉｄ", "stupid"),
        ("id\u200bi\u2060ot\u00ad", "idiot"),
        ("уоu іdіоt", "you idiot"),  # Cyrillic у о і
        ("Κеep tаlkіng аnd I wιll brеаk yоυr neсκ.", "Keep talking and I will break your neck."),
        ("stuuuuupid loooooser yyyyou", "stupid loser you"),
        ("that is sooooo cooooool", "that is so cool"),
    ],
)
def test_each_trick_is_undone(text, expected):
    assert deobfuscate(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "kill -9 1234 && git reset --hard HEAD~1",
        "Upgrade to v1.2.3, then check the sha256 of the 2024-01-05 build.",
        "Je suis allé au café ; c'est très bien, l'équipe a fini à 3h.",
        "Straße und Müller sind nicht öffentlich.",
        "Это очень плохая идея, не делай этого.",
        "Ελληνικά κείμενα μένουν ως έχουν.",
        "这是一个非常糟糕的主意。",
        "e.g. the U.S. team said ok",
        "The cat sat on the mat.",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert deobfuscate(text) == text


def test_homoglyph_table_maps_only_non_ascii_letters_to_ascii_letters():
    table = homoglyphs()
    assert len(table) > 500
    assert all(
        chr(k).isalpha() and not chr(k).isascii() and v.isascii() and v.isalpha() for k, v in table.items()
    )
    assert table[ord("\u0430")] == "a" and table[ord("\u03ba")] == "k"  # Cyrillic a, Greek kappa
    assert ord("\u00e9") not in table  # accented letters are letters, not look-alikes


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_deobfuscates_without_error_and_stays_bounded(text):
    out = deobfuscate(text)
    assert isinstance(out, str)
    assert len(out) <= 3 * len(text) + 3  # NFKC may expand a ligature, never more
    assert deobfuscate(out) == deobfuscate(deobfuscate(out))  # a fixed point after one more pass


@pytest.mark.parametrize(
    "text",
    [
        "\x00" * 10_000,
        "\ud800 lone surrogate",
        "\u202e" * 5_000 + "evil",
        "a" * 200_000,
        "k " * 100_000,
        "aaabbbcccdddeeefff" * 5_000,
        "f.u" * 50_000,
        "1$" * 50_000,
        "\U0001f99c" * 50_000,
        "\u0430" * 100_000,
    ],
)
def test_hostile_inputs_are_handled(text):
    out = deobfuscate(text)
    assert isinstance(out, str) and len(out) <= 3 * len(text)
