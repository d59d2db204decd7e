"""``cost_usd``: what one request cost at list prices, from its token counts and a dated price table.

For a request to model m with input tokens I (of which C read from the provider's prompt cache)
and output tokens O, with prices per million tokens p_in(m), p_cached(m), p_out(m):

    cost_usd = ((I - C) p_in(m) + C p_cached(m) + O p_out(m)) / 10^6

the billing formula of the OpenAI, Anthropic and Google APIs (https://openai.com/api/pricing,
https://www.anthropic.com/pricing, https://ai.google.dev/pricing, as of 2025: cached tokens are
part of the input count and billed at the cache-read price; cache writes, batch discounts and
long-context tiers are not modelled). Prices: ``detectors/data/model_prices.yaml`` (dated per
model), overridden by the file at ``PARROTWATCH_PRICES``. A model absent from the table gets
``None`` and is counted in :attr:`PriceTable.unknown` (a warning is logged once per model): never
a guessed number. A request without token counts gets ``None`` too.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

PRICES_PATH = Path(__file__).resolve().parent / "data" / "model_prices.yaml"
ENV = "PARROTWATCH_PRICES"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens, and when and where the prices were read."""

    input: float
    output: float
    cached_input: float | None = None  # None: cached tokens are billed as input
    as_of: str = ""
    source: str = ""


@dataclass(frozen=True)
class TokenCounts:
    """What the cost of one request needs (``parrotwatch.detectors.request.RequestInput`` has the
    same attributes)."""

    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None


@dataclass
class PriceTable:
    """Prices by model name (module docstring); ``unknown`` counts requests of unpriced models.
    A ``protocols.RequestScorer`` of ``cost_usd`` over items with :class:`TokenCounts`'s
    attributes (:meth:`scores`)."""

    score_names = ("cost_usd",)

    prices: dict[str, Price]
    unknown: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __getstate__(self) -> dict:
        with self._lock:
            return {"prices": self.prices, "unknown": Counter(self.unknown)}

    def __setstate__(self, state: dict) -> None:
        self.prices, self.unknown, self._lock = state["prices"], state["unknown"], threading.Lock()

    @classmethod
    def load(cls, *paths: str | Path) -> PriceTable:
        """The tables at ``paths`` merged in order (later entries replace earlier ones by name);
        a ``ValueError`` names the file and model of a bad entry."""
        prices: dict[str, Price] = {}
        for path in paths:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            models = data.get("models") if isinstance(data, dict) else None
            if not isinstance(models, dict):
                raise ValueError(f"{path}: expected a mapping 'models: {{name: {{input, output, ...}}}}'")
            for name, entry in models.items():
                prices[str(name)] = _price(path, name, entry)
        return cls(prices)

    def price(self, model: str) -> Price | None:
        """The price of ``model``: its exact name, else the longest priced name it extends with
        "-" or ":" (a dated snapshot or a tag)."""
        if model in self.prices:
            return self.prices[model]
        best = max((n for n in self.prices if model.startswith(n) and model[len(n):len(n) + 1] in ("-", ":")),
                   key=len, default=None)
        return self.prices[best] if best else None

    def cost(self, model: str, input_tokens: int | None, output_tokens: int | None,
             cached_input_tokens: int | None = None) -> float | None:
        """``cost_usd`` of one request (module docstring).

        >>> t = PriceTable({"gpt-4o-mini": Price(input=0.15, output=0.60, cached_input=0.075)})
        >>> round(t.cost("gpt-4o-mini-2024-07-18", 1_000, 500, cached_input_tokens=400), 8)
        0.00042
        >>> t.cost("llama-3-8b", 1_000, 500) is None, dict(t.unknown)
        (True, {'llama-3-8b': 1})
        """
        if input_tokens is None and output_tokens is None:
            return None
        p = self.price(model)
        if p is None:
            with self._lock:
                self.unknown[model] += 1
                first = self.unknown[model] == 1
            if first:
                log.warning("cost_usd: no price for model %r (left null); add it to %s or to the "
                            "file at %s", model[:200], PRICES_PATH.name, ENV)
            return None
        inp, out = input_tokens or 0, output_tokens or 0
        cached = min(max(cached_input_tokens or 0, 0), inp)
        cached_price = p.input if p.cached_input is None else p.cached_input
        return ((inp - cached) * p.input + cached * cached_price + out * p.output) / 1e6


    def scores(self, batch: Sequence[Any]) -> list[dict[str, float | None]]:
        """``{"cost_usd": ...}`` per item (``model``, ``input_tokens``, ``output_tokens``,
        ``cached_input_tokens`` attributes), as :meth:`cost`."""
        return [{"cost_usd": self.cost(r.model, r.input_tokens, r.output_tokens,
                                       getattr(r, "cached_input_tokens", None))} for r in batch]

    @classmethod
    def _unit_test_params(cls) -> dict:
        return {"prices": {"gpt-4o-mini": Price(input=0.15, output=0.60, cached_input=0.075)}}

    @classmethod
    def _unit_test_batch(cls) -> list[TokenCounts]:
        return [TokenCounts("gpt-4o-mini", 1_000, 200, 500), TokenCounts("gpt-4o-mini-2024-07-18", 10, 0),
                TokenCounts("llama-3-8b", 50, 50), TokenCounts("gpt-4o-mini")]


def _price(path, name, entry) -> Price:
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: model {name!r}: expected a mapping with input and output prices")
    unknown = set(entry) - {"input", "output", "cached_input", "as_of", "source"}
    if unknown:
        raise ValueError(f"{path}: model {name!r}: unknown keys {sorted(unknown)}")
    values = {}
    for key in ("input", "output", "cached_input"):
        v = entry.get(key)
        if v is None and key != "cached_input":
            raise ValueError(f"{path}: model {name!r}: '{key}' (US$ per 1M tokens) is required")
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e6):
            raise ValueError(f"{path}: model {name!r}: '{key}' must be a price >= 0, got {v!r}")
        values[key] = None if v is None else float(v)
    return Price(values["input"], values["output"], values["cached_input"], str(entry.get("as_of", "")),
                 str(entry.get("source", "")))


@functools.cache
def default_prices() -> PriceTable:
    """The shipped table, overridden by the file at ``PARROTWATCH_PRICES`` when set (one table
    per process: its ``unknown`` counter is the process's)."""
    extra = os.environ.get(ENV)
    return PriceTable.load(PRICES_PATH, *([extra] if extra else []))
