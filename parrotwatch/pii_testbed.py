"""A PII testbed for the extraction and reconstruction audits of Lukas et al. 2023 ("Analyzing Leakage of
Personally Identifiable Information in Language Models", IEEE S&P): the tiny GPT-2 of
:mod:`parrotwatch.testbed`, trained without privacy on its members plus synthetic person records, each
inserted 0 (never: the baseline), 1, 4 or 16 times.

Records: ``"Please contact {name} at {email} or {phone} about invoice {invoice}."``, drawn with one
``numpy`` stream seeded by (seed, 17): a name from :data:`FIRST_NAMES` x :data:`LAST_NAMES`; an e-mail
address whose local part is another, independent first and last name plus two digits (so the name does
not predict it); a US number ``+1 AAA EEE LLLL`` (area code from :data:`AREA_CODES`, exchange 200-999
without N11 and 555); an invoice number 1000-99999. Names, e-mails and phones are distinct over all
records. ``n_per_group`` records per repetition count, in blocks of the draw order (the draw is
random, so the blocks are exchangeable). A further ``n_distractors`` records are drawn from the same
stream and never trained on: their e-mails and phones are the distractors of the reconstruction audit
(:func:`parrotwatch.detectors.audits.pii_extraction.draw_candidates`), so that a record never inserted
is exactly at chance.

Why not Faker: it is in the ``bench`` extra only and its output changes between versions; the lists here
keep the testbed a function of the seed alone. The tokenizer is the testbed's (BPE trained on the pydoc
corpus only), so the records, never-inserted ones included, leave no trace in the vocabulary.

Training: :func:`parrotwatch.dp_testbed._train` without privacy (Poisson sampling at q = batch_size / N,
AdamW with the testbed's warm-up and cosine decay, global gradient-norm clip 1.0), ``steps`` =
ceil(``epochs`` / q) over the N = n_members + n_per_group * sum(repetitions) sequences ``BOS text EOS``.
Deterministic under ``seed`` for one torch build and thread count. :func:`pii_testbed` caches: it loads
the directory when ``pii_testbed.json`` there was written with the same parameters, else it builds.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parrotwatch.dp_testbed import _train
from parrotwatch.testbed import (
    PRESETS,
    Document,
    Preset,
    TestbedCorpus,
    build_model,
    prepare_corpus,
    read_info,
    save_trained,
    write_info,
)

logger = logging.getLogger(__name__)

INFO_FILE = "pii_testbed.json"
RECORD_TEMPLATE = "Please contact {name} at {email} or {phone} about invoice {invoice}."
REPETITIONS = (0, 1, 4, 16)
FIRST_NAMES = ("Ana", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko",
               "Liam", "Maya", "Nora", "Omar", "Paula", "Quinn", "Rosa", "Samuel", "Tara", "Umar", "Vera",
               "Walter", "Xenia", "Yusuf", "Zoe", "Amir", "Bianca", "Carlos", "Dana", "Emil", "Fatima",
               "Georg", "Hana", "Ivan", "Julia", "Karim", "Lena", "Marco", "Nadia")
LAST_NAMES = ("Lopez", "Smith", "Novak", "Okafor", "Schmidt", "Rossi", "Tanaka", "Dubois", "Silva",
              "Kowalski", "Jensen", "Murphy", "Haddad", "Ivanova", "Nguyen", "Petrov", "Costa", "Meyer",
              "Fischer", "Moreau", "Garcia", "Kim", "Singh", "Brown", "Weber", "Romano", "Santos", "Berg",
              "Horvat", "Yilmaz", "Andersen", "Ortiz", "Sato", "Kaur", "Walsh", "Ferreira", "Lindqvist",
              "Bauer", "Mensah", "Cohen")
DOMAINS = ("example.com", "example.org", "mailbox.net", "post.de", "inbox.com")
AREA_CODES = (212, 213, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 206, 303, 615, 704, 808, 919)


@dataclass(frozen=True)
class PersonRecord:
    """One synthetic record: its fields, full ``text`` and how many times it is in the training set."""

    name: str
    email: str
    phone: str
    invoice: int
    text: str
    repetitions: int


@dataclass(frozen=True)
class PiiTestbedInfo:
    """What ``pii_testbed.json`` holds, plus the directory ``path`` of model and tokenizer. ``params`` are
    the build's arguments (the cache key); ``distractors`` the never-trained records."""

    __test__ = False  # not a pytest test class

    path: Path
    params: dict
    preset: str
    seed: int
    steps: int
    n_params: int
    members: tuple[Document, ...]
    records: tuple[PersonRecord, ...]
    distractors: tuple[PersonRecord, ...]
    n_train_sequences: int
    train_seconds: float
    final_loss: float

    def spec(self, **options):
        """A :class:`~parrotwatch.detectors.models.causal_lm.CausalLMSpec` for the trained model."""
        from parrotwatch.detectors.models.causal_lm import CausalLMSpec

        return CausalLMSpec(model=str(self.path), **options)


def _draw_fields(rng: np.random.Generator) -> tuple[str, str, str, int]:
    def name() -> tuple[str, str]:
        return FIRST_NAMES[rng.integers(len(FIRST_NAMES))], LAST_NAMES[rng.integers(len(LAST_NAMES))]

    first, last = name()
    e_first, e_last = name()
    email = f"{e_first.lower()}.{e_last.lower()}{rng.integers(10, 100)}@{DOMAINS[rng.integers(len(DOMAINS))]}"
    exchange = int(rng.integers(200, 1000))
    while exchange % 100 == 11 or exchange == 555:
        exchange = int(rng.integers(200, 1000))
    phone = f"+1 {AREA_CODES[rng.integers(len(AREA_CODES))]} {exchange} {int(rng.integers(10_000)):04d}"
    return f"{first} {last}", email, phone, int(rng.integers(1000, 100_000))


def make_person_records(n_per_group: int, seed: int, repetitions: tuple[int, ...] = REPETITIONS,
                        n_distractors: int = 200
                        ) -> tuple[tuple[PersonRecord, ...], tuple[PersonRecord, ...]]:
    """(records, distractors): ``n_per_group`` records per entry of ``repetitions`` (in blocks, that
    order) and ``n_distractors`` never-trained ones; names, e-mails and phones distinct over all.
    Deterministic under ``seed``."""
    if n_per_group < 1 or n_distractors < 0 or not repetitions or min(repetitions) < 0:
        raise ValueError(f"need n_per_group >= 1, n_distractors >= 0 and repetitions >= 0, got "
                         f"{n_per_group}, {n_distractors}, {repetitions}")
    total = n_per_group * len(repetitions) + n_distractors
    if total > len(FIRST_NAMES) * len(LAST_NAMES) // 2:
        raise ValueError(f"{total} records would exhaust the name space; ask for fewer")
    rng = np.random.default_rng([seed, 17])
    seen: set[str] = set()
    fields = []
    while len(fields) < total:
        name, email, phone, invoice = _draw_fields(rng)
        if seen.isdisjoint((name, email, phone)):
            seen.update((name, email, phone))
            fields.append((name, email, phone, invoice))
    cut = n_per_group * len(repetitions)
    reps = [repetitions[i // n_per_group] for i in range(cut)] + [0] * n_distractors
    out = [PersonRecord(name, email, phone, invoice,
                        RECORD_TEMPLATE.format(name=name, email=email, phone=phone, invoice=invoice), r)
           for (name, email, phone, invoice), r in zip(fields, reps, strict=True)]
    return tuple(out[:cut]), tuple(out[cut:])


def training_sequences(corpus: TestbedCorpus, records: tuple[PersonRecord, ...]) -> list[list[int]]:
    """The members' sequences, then each record's ``BOS text EOS`` as many times as its repetitions."""
    sequences = corpus.member_sequences()
    for r in records:
        sequences += [corpus.sequence(r.text)] * r.repetitions
    return sequences


def build_pii_testbed(out_dir: str | Path, *, n_per_group: int = 32,
                      repetitions: tuple[int, ...] = REPETITIONS, n_distractors: int = 200,
                      epochs: float = 10.0, steps: int | None = None, seed: int = 0,
                      preset: Preset = "tiny", corpus: TestbedCorpus | None = None,
                      progress: bool = True) -> PiiTestbedInfo:
    """Train the PII testbed and write model, tokenizer and ``pii_testbed.json`` to ``out_dir``.
    ``steps`` defaults to ceil(``epochs`` / q); ``corpus`` (from :func:`prepare_corpus` with the same
    preset and seed) saves retraining the tokenizer."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    corpus = prepare_corpus(preset, seed) if corpus is None else corpus
    if corpus.preset != p:
        raise ValueError(f"the corpus given is not of preset {preset!r}")
    params = {"n_per_group": n_per_group, "repetitions": list(repetitions), "n_distractors": n_distractors,
              "epochs": epochs, "steps": steps, "seed": seed, "preset": preset}
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records, distractors = make_person_records(n_per_group, seed, tuple(repetitions), n_distractors)
    sequences = training_sequences(corpus, records)
    longest = max(len(s) for s in sequences)
    if longest > p.n_positions:
        raise ValueError(f"a training sequence of {longest} tokens exceeds the context of {p.n_positions}")
    q = min(1.0, p.batch_size / len(sequences))
    n_steps = math.ceil(epochs / q) if steps is None else steps
    if n_steps < 1:
        raise ValueError(f"steps must be >= 1, got {n_steps}")
    model = build_model(corpus, seed)
    n_params = sum(t.numel() for t in model.parameters())
    logger.info("pii testbed %s: %d records x %s, %d sequences, %d steps at q %.4f", preset, len(records),
                repetitions, len(sequences), n_steps, q)
    model, losses = _train(model, sequences, lr=p.lr, steps=n_steps, sample_rate=q,
                           expected_batch=p.batch_size, pad_id=corpus.eot, seed=seed, dp=None,
                           progress=progress)
    final_loss = save_trained(out, model, corpus.tokenizer, losses)
    info = PiiTestbedInfo(out, params, preset, seed, n_steps, n_params, corpus.members, records, distractors,
                          len(sequences), round(time.perf_counter() - started, 3), final_loss)
    return write_info(out, info, INFO_FILE)


def load_pii_testbed(path: str | Path) -> PiiTestbedInfo:
    """The :class:`PiiTestbedInfo` of a directory written by :func:`build_pii_testbed`."""
    path = Path(path)
    raw = read_info(path, INFO_FILE, "build_pii_testbed() writes it (the pii_leakage audit does)")
    raw["members"] = tuple(Document(**d) for d in raw["members"])
    raw["records"] = tuple(PersonRecord(**r) for r in raw["records"])
    raw["distractors"] = tuple(PersonRecord(**r) for r in raw["distractors"])
    return PiiTestbedInfo(path=path, **raw)


def pii_testbed(out_dir: str | Path, **params) -> PiiTestbedInfo:
    """The testbed in ``out_dir``: loaded when its ``pii_testbed.json`` was built with these ``params``
    (:func:`build_pii_testbed`'s keyword arguments, defaults filled in) and its weights are there, else
    built (and overwritten)."""
    wanted = {"n_per_group": 32, "repetitions": list(REPETITIONS), "n_distractors": 200, "epochs": 10.0,
              "steps": None, "seed": 0, "preset": "tiny"}
    unknown = set(params) - set(wanted) - {"corpus", "progress"}
    if unknown:
        raise TypeError(f"unknown parameters {sorted(unknown)}; valid: {sorted(wanted)}")
    key = {**wanted, **{k: (list(v) if k == "repetitions" else v) for k, v in params.items() if k in wanted}}
    path = Path(out_dir)
    if (path / INFO_FILE).is_file() and (path / "config.json").is_file():
        info = load_pii_testbed(path)
        if info.params == key:
            return info
        logger.info("pii testbed at %s was built with %s; rebuilding with %s", path, info.params, key)
    return build_pii_testbed(path, **params)


def write_audit_files(info: PiiTestbedInfo, out_dir: str | Path) -> dict[str, Path]:
    """The PII testbed as the audit spec's data files, in ``out_dir``: ``members.jsonl`` (the inserted
    records, each with its ``repetitions``), ``non_members.jsonl`` (the records never trained on) and
    ``distractors.jsonl`` (``{entity_type, value}`` of the distractor records' e-mails and phones), so
    that ``model: {path: <testbed>}``, ``data: {members, non_members}`` and ``audits: {pii_leakage:
    {distractors}}`` audit it (docs/audits.md)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def lines(rows) -> str:
        return "".join(json.dumps(r) + "\n" for r in rows)

    paths = {name: out / f"{name}.jsonl" for name in ("members", "non_members", "distractors")}
    paths["members"].write_text(lines({"id": f"record-{i}", "text": r.text, "repetitions": r.repetitions}
                                      for i, r in enumerate(info.records) if r.repetitions), encoding="utf-8")
    paths["non_members"].write_text(lines({"id": f"record-{i}", "text": r.text}
                                          for i, r in enumerate(info.records) if not r.repetitions),
                                    encoding="utf-8")
    paths["distractors"].write_text(lines(
        row for r in info.distractors for row in ({"entity_type": "EMAIL_ADDRESS", "value": r.email},
                                                  {"entity_type": "PHONE_NUMBER", "value": r.phone})),
        encoding="utf-8")
    return paths
