"""``cost_usd`` (detectors/cost.py): the billing formula, model matching, the dated shipped table,
overrides, unknown models (null and counted, never guessed), bad price files and hostile inputs."""

from __future__ import annotations

import logging
import math
import pickle

import pytest

from parrotwatch.detectors.cost import PRICES_PATH, Price, PriceTable, TokenCounts, default_prices
from parrotwatch.detectors.request import RequestInput, score_requests


def table() -> PriceTable:
    return PriceTable(
        {"gpt-4o": Price(2.5, 10.0, 1.25), "gpt-4o-mini": Price(0.15, 0.60, 0.075), "flat": Price(1.0, 2.0)}
    )


def test_formula_with_cached_input():
    # 1,000 input of which 400 cached, 500 output: (600 x 0.15 + 400 x 0.075 + 500 x 0.60) / 1e6
    assert table().cost("gpt-4o-mini", 1_000, 500, 400) == pytest.approx(4.2e-4, rel=1e-12)
    assert table().cost("flat", 1_000, 0, 1_000) == pytest.approx(1e-3)  # no cached price: input price
    assert table().cost("gpt-4o", None, 1_000) == pytest.approx(0.01)
    assert table().cost("gpt-4o", None, None) is None  # no token counts: no cost
    assert table().cost("gpt-4o", 10, 10, 50) == pytest.approx(
        (10 * 1.25 + 10 * 10.0) / 1e6
    )  # cached <= input


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o:ft-acme", "gpt-4o"),
        ("gpt-4", None),
        ("gpt-4omni", None),
        ("GPT-4o", None),
        ("", None),
    ],
)
def test_model_matching_is_exact_or_a_dated_or_tagged_extension(model, priced_as):
    t = table()
    assert t.price(model) == (t.prices[priced_as] if priced_as else None)


def test_unknown_models_are_null_counted_and_warned_once(caplog):
    t = table()
    with caplog.at_level(logging.WARNING, logger="parrotwatch.detectors.cost"):
        assert [t.cost("llama-3-8b", 10, 10) for _ in range(3)] == [None] * 3
    assert t.unknown == {"llama-3-8b": 3}
    assert sum("llama-3-8b" in r.getMessage() for r in caplog.records) == 1


def test_shipped_table_is_dated_and_sourced():
    t = PriceTable.load(PRICES_PATH)
    assert len(t.prices) >= 10
    for name, p in t.prices.items():
        assert p.as_of and p.source, name
        assert 0 < p.input <= p.output, name  # output tokens cost more than input at every provider
        assert p.cached_input is None or p.cached_input < p.input, name


def test_override_file_replaces_and_extends(tmp_path):
    extra = tmp_path / "prices.yaml"
    extra.write_text(
        "models:\n  gpt-4o-mini: {input: 0.1, output: 0.2}\n  llama-3-8b: {input: 0.05, output: 0.05}\n"
    )
    t = PriceTable.load(PRICES_PATH, extra)
    assert t.price("gpt-4o-mini").input == 0.1 and t.price("llama-3-8b").output == 0.05
    assert t.price("gpt-4o") is not None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("models: [1, 2]", "expected a mapping"),
        ("models:\n  m: {input: 1}", "'output'"),
        ("models:\n  m: {input: -1, output: 1}", "price >= 0"),
        ("models:\n  m: {input: .nan, output: 1}", "price >= 0"),
        ("models:\n  m: {input: true, output: 1}", "price >= 0"),
        ("models:\n  m: {input: 1, output: 1, inptu: 2}", "unknown keys"),
        ("models:\n  m: 3", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_bad_price_files_name_the_file_and_model(tmp_path, text, complaint):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match=complaint) as info:
        PriceTable.load(bad)
    assert "bad.yaml" in str(info.value)


def test_extreme_counts_stay_finite_and_pickling_keeps_the_counter():
    t = table()
    big = 2**31 - 1
    assert math.isfinite(t.cost("gpt-4o-mini-\U0001f99c", big, big, big))
    t.cost("x" * 10_000 + "\x00", 1, 1)
    clone = pickle.loads(pickle.dumps(t))
    assert clone.unknown == t.unknown and clone.cost("gpt-4o", 1, 1) == t.cost("gpt-4o", 1, 1)


def test_request_scoring_fills_cost_usd_from_the_default_table():
    reqs = [
        RequestInput(response="hi", model="gpt-4o-mini", input_tokens=100, output_tokens=20),
        RequestInput(response="hi", model="mistral-7b", input_tokens=100, output_tokens=20),
        RequestInput(response="hi", model="gpt-4o-mini"),
    ]
    costs = [s.cost_usd for s in score_requests(reqs)]
    assert costs[0] == pytest.approx((100 * 0.15 + 20 * 0.60) / 1e6) and costs[1:] == [None, None]
    assert default_prices().scores([TokenCounts("gpt-4o-mini", 100, 20)]) == [{"cost_usd": costs[0]}]
