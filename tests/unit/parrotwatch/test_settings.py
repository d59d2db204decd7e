"""The micro-batch cap: explicit, or the default for the detectors that run, also from the
environment; reviewer keys that are checked before the API serves a label."""

from __future__ import annotations

import json
import secrets

import pydantic
import pytest

from parrotwatch.settings import MODEL_BATCH_EVENTS, MODEL_FREE_BATCH_EVENTS, ROW_BYTES_BOUND, Settings


@pytest.fixture(autouse=True)
def _no_parrotwatch_environment(monkeypatch):
    for name in ("PARROTWATCH_MAX_OFFSETS_PER_TRIGGER", "PARROTWATCH_QUALITY_DETECTORS",
                 "PARROTWATCH_MAX_BATCH_BYTES"):
        monkeypatch.delenv(name, raising=False)


def test_unset_cap_follows_the_detectors():
    assert Settings(quality_detectors=[]).events_per_batch == MODEL_FREE_BATCH_EVENTS == 50_000
    assert Settings(quality_detectors=["drift"]).events_per_batch == MODEL_BATCH_EVENTS == 2_000
    assert Settings().events_per_batch == MODEL_BATCH_EVENTS  # the default runs model detectors


def test_explicit_cap_wins_also_from_the_environment(monkeypatch):
    monkeypatch.setenv("PARROTWATCH_MAX_OFFSETS_PER_TRIGGER", "12345")
    assert Settings(quality_detectors=["toxicity"]).events_per_batch == 12345
    with pytest.raises(pydantic.ValidationError, match="greater than 0"):
        Settings(max_offsets_per_trigger=0)


def test_batches_are_bounded_in_bytes_too():
    assert Settings(quality_detectors=[], max_batch_bytes=256 * 1024**2).events_per_batch == 3_276
    assert Settings(max_offsets_per_trigger=50_000, max_batch_bytes=ROW_BYTES_BOUND * 10
                    ).events_per_batch == 10
    with pytest.raises(pydantic.ValidationError):
        Settings(max_batch_bytes=1024)


def test_no_row_reaching_the_driver_weighs_more_than_the_bound():
    """The byte bound rests on this: whatever the record (the poison corpus, 1 MiB events), its
    scored row or dead letter is at most ROW_BYTES_BOUND (text counted at 4 bytes a character)."""
    from parrotwatch.detectors.calibration.sampling import PoolDesign
    from parrotwatch.poison import poison_corpus
    from parrotwatch.streaming.records import feedback_rows, inference_rows
    from parrotwatch.traffic import encode, generate_inference_events

    def weight(row: dict) -> int:
        return sum(len(v) * (4 if isinstance(v, str) else 1) if isinstance(v, str | bytes) else 8
                   for v in row.values())

    big = generate_inference_events(1, seed=3)[0]
    big["response"] = "word " * 200_000  # 1 MB, over the default event limit: a dead letter
    raws = [encode(big)] + [c.raw for c in poison_corpus() if c.topic == "inference"]
    keep_all = PoolDesign(base=1.0, near_rate=1.0, flagged_rate=1.0, near=0.0)  # review texts too
    scored = inference_rows(raws, 1 << 20, pool=keep_all)
    rows = scored + feedback_rows(
        [c.raw for c in poison_corpus() if c.topic == "feedback"], 1 << 20)
    assert max(weight(r) for r in rows) <= ROW_BYTES_BOUND
    assert [r.get("review_text") is not None for r in scored] == [r["kind"] == "ok" for r in scored]


GOOD_KEY = "k" * 16


@pytest.mark.parametrize("name", ["alice", "a", "Bob_2", "carol.d-e", "x" * 64])
def test_reviewer_names_of_letters_digits_and_punctuation_pass(name):
    assert list(Settings(reviewer_keys={name: GOOD_KEY}).reviewer_keys) == [name]


@pytest.mark.parametrize("name", ["", "x" * 65, "al ice", "alice\n", "<b>", "bob@example.com", "é"])
def test_other_reviewer_names_are_refused_naming_the_rule(name):
    with pytest.raises(pydantic.ValidationError, match="1 to 64 letters, digits"):
        Settings(reviewer_keys={name: GOOD_KEY})


@pytest.mark.parametrize("key", ["", "k" * 15, "alice-key"])
def test_short_reviewer_keys_are_refused_with_how_to_make_one(key):
    with pytest.raises(pydantic.ValidationError, match=r"\['alice'\] are shorter than 16.*token_urlsafe"):
        Settings(reviewer_keys={"alice": key})


def test_a_key_of_sixteen_characters_passes():
    assert Settings(reviewer_keys={"alice": "k" * 16}).reviewer_keys["alice"].get_secret_value() == "k" * 16


def test_a_reviewer_key_with_a_nul_is_refused():
    with pytest.raises(pydantic.ValidationError, match="NUL"):
        Settings(reviewer_keys={"alice": GOOD_KEY + "\x00"})


def test_two_reviewers_with_one_key_are_refused_naming_both():
    key = secrets.token_urlsafe(32)
    with pytest.raises(pydantic.ValidationError, match=r"\['alice', 'carol'\] share a key") as error:
        Settings(reviewer_keys={"alice": key, "bob": secrets.token_urlsafe(32), "carol": key})
    assert key not in str(error.value)  # the message names reviewers, never their keys


def test_refused_reviewer_keys_never_appear_in_the_message():
    key = "secret-but-short"[:15]
    with pytest.raises(pydantic.ValidationError) as error:
        Settings(reviewer_keys={"alice": key})
    assert key not in str(error.value)  # what a log shows


def test_reviewer_keys_are_checked_from_the_environment_too(monkeypatch):
    monkeypatch.setenv("PARROTWATCH_REVIEWER_KEYS", json.dumps({"alice": "too-short"}))
    with pytest.raises(pydantic.ValidationError, match="shorter than 16"):
        Settings()
    good = {"alice": secrets.token_urlsafe(32), "bob": secrets.token_urlsafe(32)}
    monkeypatch.setenv("PARROTWATCH_REVIEWER_KEYS", json.dumps(good))
    assert {n: k.get_secret_value() for n, k in Settings().reviewer_keys.items()} == good


def test_the_detectors_own_variables_are_accepted_and_a_typo_is_not(monkeypatch, tmp_path):
    from parrotwatch.detectors import cost
    from parrotwatch.detectors.grounding import lexicon
    from parrotwatch.settings import OTHER_VARIABLES, load_settings

    assert {cost.ENV, lexicon.ENV} <= OTHER_VARIABLES
    monkeypatch.setenv(cost.ENV, str(tmp_path / "prices.yaml"))
    monkeypatch.setenv(lexicon.ENV, str(tmp_path))
    monkeypatch.setenv("PARROTWATCH_TEST_WORKERS", "2")
    assert load_settings().topic_prefix == Settings().topic_prefix  # loads: these names are known
    monkeypatch.setenv("PARROTWATCH_PRICE", "x")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['PARROTWATCH_PRICE'\]"):
        load_settings()


def test_every_variable_the_code_and_scripts_name_is_known():
    """A PARROTWATCH_* name used anywhere in the project but unknown to load_settings() would make
    every process refuse to start once a user sets it."""
    import re
    from pathlib import Path

    from parrotwatch.settings import OTHER_VARIABLES

    root = Path(__file__).resolve().parents[3]
    known = {f"PARROTWATCH_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    used = set()
    for folder in ("parrotwatch", "detectors", "streaming", "services", "dashboards", "scripts", "deploy"):
        for path in (root / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".sh", ".yaml", ".yml", ".env"}:
                text = path.read_text(encoding="utf-8", errors="replace")
                used |= set(re.findall(r"\bPARROTWATCH_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert len(used) > 30 and used - known == set()
