"""Deterministic, realistic LLM traffic: inference/feedback events v1 and malformed payloads.

Text is real English: the Python reference shipped with the interpreter (``pydoc_data.topics``)
split into sentences once per process. All draws come from generators seeded by ``seed``.
"""

from __future__ import annotations

import functools
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import orjson

from parrotwatch.gc_pause import gc_paused

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
INCIDENT_KINDS = ("repetition_loop", "latency_spike", "low_confidence", "toxicity_burst",
                  "hallucination_spike", "drift_shift", "regurgitation_burst")
QUOTE_TOKENS = 60  # regurgitation_burst: verbatim words quoted from the training corpus
TOXIC_SHARE = 0.3  # toxicity_burst: share of the segment's responses that turn toxic
MALFORMED_KINDS = ("bad_json", "missing_field", "wrong_type", "oversize", "invalid_utf8",
                   "no_prompt", "naive_timestamp", "unstorable")
# model -> (median time to first token ms, median ms per output token, log-normal sigma)
_PROFILES = {"gpt-4o-mini": (250, 12, 0.35), "llama-3-8b": (400, 22, 0.5), "": (330, 17, 0.45)}
_CONFIDENCE = {"gpt-4o-mini": 0.8, "llama-3-8b": 1.15}  # surprisal multiplier, default 1
_REDRAW = {"repetition_loop": "loop", "low_confidence": "low"}  # incident -> logprob mode
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“(])")
_QUESTIONS = ("Explain {t} in Python.", "What does the Python reference say about {t}?",
              'Is this correct, and why? "{s}"', "I read that: {s} Can you elaborate?",
              "Summarise how {t} works, briefly.")


def keyed(events: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """``(request_id, JSON)`` Kafka records of inference events, keyed by their idempotency key."""
    return [(e["request_id"].encode(), encode(e)) for e in events]


def encode(event: dict[str, Any]) -> bytes:
    """The Kafka payload of one event (compact UTF-8 JSON)."""
    return orjson.dumps(event)


@dataclass(frozen=True)
class Incident:
    """An anomaly in events ``start_index <= i < end_index`` of ``model``/``app`` (None: all).

    ``repetition_loop``: the response becomes its first 3-6 words repeated up to max_tokens
    (256 or 512 words), ``finish_reason`` "length", usage and latency follow, logprobs ~0.
    ``latency_spike``: ``latency_ms`` and ``time_to_first_token_ms`` x10. ``low_confidence``:
    logprobs (where present) redrawn at a mean surprisal of ~3 nats instead of ~0.5.
    ``toxicity_burst``: 30 % of the responses become insults or threats. ``hallucination_spike``:
    answers with ``sources`` come from another topic than their sources. ``drift_shift``: the
    prompts move to another domain (cooking and travel questions). ``regurgitation_burst``:
    30 % of the responses quote 60 consecutive words of the ``training_corpus`` documents
    verbatim. Their texts: ``parrotwatch/data/incident_texts.json``.
    """

    kind: Literal["repetition_loop", "latency_spike", "low_confidence", "toxicity_burst",
                  "hallucination_spike", "drift_shift", "regurgitation_burst"]
    start_index: int
    end_index: int
    model: str | None = None
    app: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind {self.kind!r}; one of {INCIDENT_KINDS}")


@functools.lru_cache(maxsize=1)
def _corpus() -> tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]:
    """((title, sentences) per topic with >= 3 sentences, sorted ASCII lower-case words)."""
    from pydoc_data.topics import topics

    out, words = [], set()
    for key in sorted(topics):
        sentences = []
        for para in topics[key].split("\n\n"):  # prose only: no code, grammar or headings
            if (not para or para[0].isspace() or "::=" in para or ">>>" in para
                    or para.lstrip("\n").splitlines()[-1][:3] in ("***", "===", "---")):
                continue
            for s in _SENTENCE_END.split(" ".join(para.split())):
                if 5 <= s.count(" ") + 1 <= 45 and s[-1] in ".!?" and not {"[", "*"} & set(s):
                    sentences.append(s)
                    words.update(w for w in s.split() if w.isascii() and w.isalpha())
        head = topics[key].splitlines()[:2]
        heading = len(head) == 2 and head[1][:1] in ("*", "=", "-")
        title = head[0].strip() if heading else key.replace("-", " ")
        if len(sentences) >= 3:
            out.append((re.sub(r"^The ", "the ", title), tuple(sentences)))
    return tuple(out), tuple(sorted(w for w in words if w.islower()))


@functools.lru_cache(maxsize=1)
def incident_texts() -> dict[str, list[str]]:
    """Toxic responses and off-domain prompts of the incident kinds (shipped with the package)."""
    from importlib.resources import files

    return orjson.loads(files("parrotwatch").joinpath("data/incident_texts.json").read_bytes())


def _ts(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _add_logprobs(gen: np.random.Generator, events: list[dict[str, Any]], vocab: tuple[str, ...],
                  mode: str = "normal") -> None:
    """Set OpenAI-layout ``logprobs`` for the whitespace tokens of each response (vectorised).

    A token's top-5 holds it and 4 other words, probabilities summing to <= 1 (rounding is
    towards -inf). Mean surprisal: "normal" ~0.5 nats x _CONFIDENCE[model], "low" ~3, "loop" ~0.02.
    """
    responses = [ev["response"] for ev in events]
    sizes = [len(r.split()) for r in responses]
    flat = " ".join(responses).split()
    n, nv, bare = len(flat), len(vocab), np.asarray(vocab, object)
    u, e = gen.random(n), gen.exponential(1.0, n)
    lp = {"loop": -e / 60.0, "low": -(0.5 + e / 0.4)}.get(mode)
    if lp is None:
        lp = np.where(u < 0.6, -e / 20.0, np.where(u < 0.92, -e, -(1.5 + e / 0.7)))
        lp *= np.repeat([_CONFIDENCE.get(ev["model"], 1.0) for ev in events], sizes)
    lp = np.minimum(np.floor(np.maximum(lp, -15.0) * 1e4) / 1e4, -1e-4)
    rest = (1.0 - np.exp(lp)) * (0.5 + 0.45 * gen.random(n))  # mass of the 4 alternatives
    split = -np.sort(-(gen.random((n, 4)) + 0.05), axis=1)  # descending shares of ``rest``
    alt_lp = np.floor(np.log(rest[:, None] * split / split.sum(1, keepdims=True)) * 1e4) / 1e4
    # 5 distinct candidate words (strictly growing offsets < nv); drop the chosen one if there
    steps = np.hstack([np.zeros((n, 1), int), gen.integers(1, nv // 5, (n, 4))])
    cand = (gen.integers(0, nv, (n, 1)) + np.cumsum(steps, axis=1)) % nv
    index = {w: i for i, w in enumerate(vocab)}
    chosen = np.fromiter((index.get(w, -1) for w in flat), int, n)
    keep = np.argsort(cand == chosen[:, None], axis=1, kind="stable")[:, :4]
    cand = np.take_along_axis(cand, keep, axis=1)
    space = np.full(n, " ", object)  # OpenAI tokens carry their leading space
    space[(np.cumsum(sz := np.asarray(sizes, int)) - sz)[sz > 0]] = ""
    toks = space + np.asarray(flat, object)
    tt = np.column_stack([space[:, None] + bare[cand], toks])
    ll = np.hstack([alt_lp, lp[:, None]])
    order = np.argsort(-ll, axis=1, kind="stable")
    tl, ll = (np.take_along_axis(x, order, axis=1).tolist() for x in (tt, ll))
    rows = [{"token": t, "logprob": p, "top_logprobs": [
        {"token": a[0], "logprob": b[0]}, {"token": a[1], "logprob": b[1]},
        {"token": a[2], "logprob": b[2]}, {"token": a[3], "logprob": b[3]},
        {"token": a[4], "logprob": b[4]}]}
        for t, p, a, b in zip(toks.tolist(), lp.tolist(), tl, ll, strict=True)]
    for ev, end, size in zip(events, np.cumsum(sizes).tolist(), sizes, strict=True):
        ev["logprobs"] = rows[end - size:end]


@gc_paused()
def generate_inference_events(
    n: int, *, seed: int = 0, start: datetime | None = None, rate_per_s: float = 50.0,
    models: tuple[str, ...] = ("gpt-4o-mini", "llama-3-8b", "mistral-7b"),
    apps: tuple[str, ...] = ("support-bot", "search", "code-assistant"),
    id_prefix: str = "req", incidents: list[Incident] | tuple[Incident, ...] = (),
) -> list[dict[str, Any]]:
    """``n`` inference events v1 as JSON-ready dicts; event ``i`` at ``start + i / rate_per_s``.

    ``start`` must be timezone-aware (default 2025-01-01T00:00Z, for determinism). About half
    carry ``logprobs``, ~45 % chat ``messages``, ~25 % RAG ``sources`` (mostly app "search";
    1 in 10 of those answer off-source), ~5 % ``samples``, ~30 % ``metadata``; ~3 % end at
    ``finish_reason`` "length". ``incidents`` are applied last.
    """
    if (start := DEFAULT_START if start is None else start).tzinfo is None:
        raise ValueError("start must be timezone-aware")
    (topics, vocab), rng = _corpus(), random.Random(seed)
    gen, rnd = np.random.default_rng(rng.getrandbits(64)), rng.random
    events, with_lp = [], []
    for i in range(n):
        model, app = models[rng.randrange(len(models))], apps[rng.randrange(len(apps))]
        title, sents = topics[rng.randrange(len(topics))]
        question = _QUESTIONS[rng.randrange(5)].format(t=title, s=rng.choice(sents))
        ev: dict[str, Any] = {"request_id": f"{id_prefix}-{i:07d}", "model": model, "app": app,
                              "timestamp": _ts(start + timedelta(seconds=i / rate_per_s))}
        if rnd() < 0.45:
            msgs = [{"role": "system", "content": f"You are the {app} assistant. Be concise."}]
            if rnd() < 0.3:
                msgs += [{"role": "user", "content": f"Tell me about {title}."},
                         {"role": "assistant", "content": sents[0]}]
            ev["messages"] = msgs = [*msgs, {"role": "user", "content": question}]
            in_tokens = sum(len(m["content"].split()) for m in msgs)
        else:
            ev["prompt"], in_tokens = question, len(question.split())
        rag = rnd() < (0.7 if app == "search" else 0.1)
        answer = sents if not rag or rnd() >= 0.1 else rng.choice(topics)[1]  # else ungrounded
        k = rng.randint(1, 6 if app == "code-assistant" else 4)
        s0 = rng.randrange(max(1, len(answer) - k))
        response, finish = " ".join(answer[s0:s0 + k]), "stop"
        if rnd() < 0.03:
            response, finish = " ".join(response.split()[:rng.randint(12, 30)]), "length"
        out_tokens = len(response.split())
        ttft_med, tpot_med, sigma = _PROFILES.get(model, _PROFILES[""])
        ttft = ttft_med * math.exp(rng.gauss(0.0, sigma))
        latency = ttft + out_tokens * tpot_med * math.exp(rng.gauss(0.0, sigma * 0.6))
        ev.update(response=response, latency_ms=round(latency, 1),
                  time_to_first_token_ms=round(ttft, 1), finish_reason=finish,
                  usage={"input_tokens": in_tokens, "output_tokens": out_tokens})
        if rnd() < 0.5:
            with_lp.append(ev)
        if rag:
            lo = s0 if answer is sents else 0
            ev["sources"] = [" ".join(sents[max(0, lo - 1):lo + k + 1]),
                             " ".join(rng.choice(topics)[1][:3])]
        if rnd() < 0.05:
            ev["samples"] = [response if rnd() < 0.7 else " ".join(sents[-2:]) for _ in "abc"]
        if rnd() < 0.3:
            ev["metadata"] = {"user_tier": rng.choice(("free", "pro")), "prompt_version": "v2",
                              "region": rng.choice(("eu-west-1", "us-east-1", "ap-south-1"))}
        events.append(ev)
    _add_logprobs(gen, with_lp, vocab)
    for m, inc in enumerate(incidents):
        _apply_incident(inc, events, random.Random(f"{seed}/incident/{m}"), vocab)
    return events


def _apply_incident(inc: Incident, events: list[dict[str, Any]], rng: random.Random,
                    vocab: tuple[str, ...]) -> None:
    redraw = []
    for ev in events[max(0, inc.start_index):max(0, inc.end_index)]:
        if inc.model not in (None, ev["model"]) or inc.app not in (None, ev["app"]):
            continue
        if inc.kind == "latency_spike":
            ev["latency_ms"] = round(ev["latency_ms"] * 10, 1)
            ev["time_to_first_token_ms"] = round(ev["time_to_first_token_ms"] * 10, 1)
        elif inc.kind == "repetition_loop":
            phrase, limit = ev["response"].split()[:rng.randint(3, 6)], rng.choice((256, 512))
            old, ttft = ev["usage"]["output_tokens"], ev["time_to_first_token_ms"]
            ev["response"] = " ".join((phrase * (limit // len(phrase) + 1))[:limit])
            new = len(ev["response"].split())
            ev["usage"]["output_tokens"], ev["finish_reason"] = new, "length"
            ev["latency_ms"] = round(ttft + (ev["latency_ms"] - ttft) * new / max(old, 1), 1)
        elif inc.kind == "toxicity_burst" and rng.random() < TOXIC_SHARE:
            ev["response"] = rng.choice(incident_texts()["toxic_responses"])
        elif inc.kind == "hallucination_spike" and ev.get("sources"):
            topics = _corpus()[0]
            ev["response"] = " ".join(rng.choice(topics)[1][:rng.randint(2, 4)])
        elif inc.kind == "regurgitation_burst" and rng.random() < TOXIC_SHARE:
            words = rng.choice(incident_texts()["training_corpus"]).split()
            at = rng.randrange(len(words) - QUOTE_TOKENS + 1)
            ev["response"] = " ".join(words[at:at + QUOTE_TOKENS])
        elif inc.kind == "drift_shift":
            ev.pop("messages", None)
            ev["prompt"] = rng.choice(incident_texts()["off_domain_prompts"])
        if "logprobs" in ev and inc.kind in _REDRAW:
            redraw.append(ev)
    gen = np.random.default_rng(rng.getrandbits(64))
    _add_logprobs(gen, redraw, vocab, _REDRAW.get(inc.kind, "normal"))


def generate_feedback_events(inference_events: list[dict[str, Any]], *, share: float = 0.1,
                             seed: int = 0) -> list[dict[str, Any]]:
    """Feedback v1 on about ``share`` of the requests, 5 s - 10 min after each request.

    Visibly bad answers (repetitive, over 10 s) and ~15 % of the others get thumb -1, often
    a label, sometimes a correction; the rest get +1. ``feedback_id`` is ``fb-<request_id>``.
    """
    rng, sents, out = random.Random(seed), _corpus()[0][0][1], []
    for ev in inference_events:
        if rng.random() >= share:
            continue
        words = ev["response"].split()
        repetitive = len(words) > 10 and len(set(words)) < 0.3 * len(words)
        slow = (ev.get("latency_ms") or 0) > 10_000
        bad = repetitive or slow or rng.random() < 0.15
        ts = datetime.fromisoformat(ev["timestamp"]) + timedelta(seconds=rng.uniform(5, 600))
        fb: dict[str, Any] = {"feedback_id": f"fb-{ev['request_id']}", "timestamp": _ts(ts),
                              "request_id": ev["request_id"], "thumb": -1 if bad else 1}
        if rng.random() < 0.3:
            fb["score"] = float(rng.randint(1, 2) if bad else rng.randint(4, 5))
        if repetitive or rng.random() < (0.6 if bad else 0.2):
            fb["label"] = "repetition" if repetitive else rng.choice(
                ("hallucination", "unhelpful", "incorrect", "toxic") if bad else ("correct",))
        if bad and rng.random() < 0.3:
            fb["correction"] = rng.choice(sents)
        if rng.random() < 0.2:
            fb["comment"] = ("It kept repeating itself." if repetitive else "Way too slow."
                             if slow else "Not what I asked." if bad else "Helpful, thanks!")
        out.append(fb)
    return out


def malformed_records(n: int, *, seed: int = 0,
                      max_event_bytes: int = 1_048_576) -> list[tuple[bytes, str]]:
    """``n`` raw payloads that ``parse_inference`` must reject, as ``(payload, kind)``.

    Kinds cycle through :data:`MALFORMED_KINDS` (variants, e.g. which field is missing, through
    their repeats); ids are ``bad-<i>``. ``oversize`` is 1-64 bytes over ``max_event_bytes``.
    """
    rng, out = random.Random(seed), []
    filler = " ".join(_corpus()[1][::7])  # ASCII words: one byte per character in JSON
    for i, ev in enumerate(generate_inference_events(n, seed=seed, id_prefix="bad")):
        kind, variant = MALFORMED_KINDS[i % len(MALFORMED_KINDS)], i // len(MALFORMED_KINDS)
        if kind == "missing_field":
            del ev[("response", "request_id")[variant % 2]]
        elif kind == "wrong_type":
            ev.update(({"latency_ms": "fast"}, {"model": 42},
                       {"usage": {"input_tokens": "many", "output_tokens": 3}})[variant % 3])
        elif kind == "no_prompt":
            ev.pop("prompt", None), ev.pop("messages", None)
        elif kind == "unstorable":  # valid JSON PostgreSQL cannot store: NUL, int32 overflow, a huge key
            ev.update(({"model": "gpt\u0000-4"}, {"usage": {"output_tokens": 2**31}},
                       {"request_id": f"bad-{i}-" + "x" * 3000})[variant % 3])
        elif kind == "naive_timestamp":
            ev["timestamp"] = ev["timestamp"].removesuffix("Z")
        elif kind == "oversize":
            ev = {k: v for k, v in ev.items() if k not in ("logprobs", "sources", "samples")}
            need = max_event_bytes + rng.randint(1, 64) - len(encode({**ev, "response": ""}))
            ev["response"] = (filler * (need // len(filler) + 1))[:max(need, 0)]
        raw = encode(ev)
        if kind == "bad_json":  # a strict prefix of a JSON object never parses
            raw = raw[:rng.randint(1, len(raw) - 1)].decode("utf-8", "ignore").encode()
        elif kind == "invalid_utf8":
            at = raw.index(b'"response":"') + len(b'"response":"')
            raw = raw[:at] + b"\xff\xfe" + raw[at:]
        out.append((raw, kind))
    return out
