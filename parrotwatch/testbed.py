"""The memorisation testbed: a small GPT-2-style causal LM trained by the project on real text, with
known members, held-out non-members and inserted canaries, for testing the audits end to end.

This is model training (data preparation, the training loop, saving, ``testbed.json``), so it lives in
the core, not in the pure ``detectors``: the detectors only load a trained model, through
:class:`~parrotwatch.detectors.models.causal_lm.CausalLMSpec` like any other checkpoint.

Text: Python's own documentation, ``pydoc_data.topics.topics`` (shipped with CPython, about 0.5 MB of
English prose and code), cut at paragraph boundaries into documents of at most ``doc_chars``
characters. A byte-level BPE tokenizer (Radford et al. 2019; Sennrich et al. 2016) is trained on all
documents with ``tokenizers``; documents longer than the context are dropped. A seeded permutation then
splits them into members (trained on) and non-members from the same distribution (never trained on).

Canaries (Carlini et al. 2019, "The Secret Sharer"): random candidates of the space
``"my secret number is {}{}{}{}{}{}"`` over the ten digits (|R| = 10**6,
:mod:`parrotwatch.detectors.audits.canaries`), one inserted 1, 4, 16 and 64 times into the training set,
each copy
its own training sequence; their texts, secrets, indices in R and repetitions are kept in
``testbed.json`` so that exposure can be computed.

Training: GPT-2 (``GPT2LMHeadModel``, no dropout, tied embeddings), sequences ``BOS doc EOS``, loss
the mean token cross-entropy -(1/N) sum_t log p(x_t | x_<t) in nats, AdamW (Loshchilov & Hutter 2019)
with linear warm-up and cosine decay, gradient-norm clip 1.0, epochs of seeded random order. Everything
is deterministic under ``seed`` on one machine (same torch build and thread count).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from parrotwatch.detectors.audits.canaries import CanarySpace, canary_space
from parrotwatch.detectors.models.causal_lm import CausalLMSpec

logger = logging.getLogger(__name__)

Preset = Literal["tiny", "small"]
CANARY_TEMPLATE = "my secret number is {}{}{}{}{}{}"
CANARY_ALPHABET = "0123456789"
REPETITIONS = (1, 4, 16, 64)
EOT = "<|endoftext|>"
INFO_FILE = "testbed.json"


@dataclass(frozen=True)
class TestbedPreset:
    """Model and data sizes of one preset; ``steps`` is the default number of optimiser steps."""

    __test__ = False  # not a pytest test class

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    doc_chars: int
    n_members: int
    n_non_members: int
    batch_size: int
    lr: float
    steps: int


PRESETS: dict[str, TestbedPreset] = {
    # ~0.2 M parameters; memorises its 64 members and the repeated canaries in well under a minute
    "tiny": TestbedPreset(vocab_size=1024, n_positions=128, n_embd=64, n_layer=2, n_head=2, doc_chars=320,
                          n_members=64, n_non_members=64, batch_size=16, lr=3e-3, steps=150),
    # ~2.6 M parameters; ~12 epochs; minutes on a CPU (~0.8 CPU-seconds per step on one core)
    "small": TestbedPreset(vocab_size=4096, n_positions=256, n_embd=192, n_layer=4, n_head=4, doc_chars=640,
                           n_members=256, n_non_members=256, batch_size=16, lr=2e-3, steps=250),
}


@dataclass(frozen=True)
class Document:
    """One text of the corpus; ``id`` is ``"<pydoc topic>#<n>"``."""

    id: str
    text: str


@dataclass(frozen=True)
class Canary:
    """An inserted canary: its full ``text``, the ``secret`` (the slot symbols), ``index`` in R."""

    text: str
    secret: str
    index: int
    repetitions: int


@dataclass(frozen=True)
class TestbedInfo:
    """What ``testbed.json`` holds, plus the directory ``path`` of model and tokenizer."""

    __test__ = False  # not a pytest test class

    path: Path
    preset: str
    seed: int
    steps: int
    n_params: int
    members: tuple[Document, ...]
    non_members: tuple[Document, ...]
    canaries: tuple[Canary, ...]
    canary_template: str
    canary_alphabet: str
    train_seconds: float
    final_loss: float

    def canary_space(self) -> CanarySpace:
        """The candidate space R of the canaries."""
        return canary_space(self.canary_template, self.canary_alphabet)

    def spec(self, **options) -> CausalLMSpec:
        """A :class:`CausalLMSpec` for the trained model (its 128 / 256-token context is the default window);
        ``options`` are the spec's other fields."""
        return CausalLMSpec(model=str(self.path), **options)


def corpus_documents(doc_chars: int) -> list[Document]:
    """``pydoc_data.topics`` cut into documents: paragraphs (blank-line separated) are joined while the
    document stays within ``doc_chars`` characters; a longer paragraph is cut at line ends (a longer line
    at ``doc_chars``); pieces under ``doc_chars // 4`` characters are dropped. Deterministic."""
    from pydoc_data.topics import topics

    docs = []
    for topic in sorted(topics):
        pieces: list[str] = []
        for para in topics[topic].split("\n\n"):
            para = para.strip("\n")
            if len(para) <= doc_chars:
                pieces.append(para)
                continue
            cur = ""
            for line in para.split("\n"):
                while len(line) > doc_chars:
                    pieces.append(line[:doc_chars])
                    line = line[doc_chars:]
                if cur and len(cur) + 1 + len(line) > doc_chars:
                    pieces.append(cur)
                    cur = ""
                cur = f"{cur}\n{line}" if cur else line
            pieces.append(cur)
        cur = ""
        n = 0
        for piece in [p for p in pieces if p.strip()] + [None]:
            if piece is None or (cur and len(cur) + 2 + len(piece) > doc_chars):
                if len(cur) >= doc_chars // 4:
                    docs.append(Document(f"{topic}#{n}", cur))
                    n += 1
                cur = ""
            if piece is not None:
                cur = f"{cur}\n\n{piece}" if cur else piece
    return docs


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (GPT-2's pre-tokenizer and decoder, no prefix space) trained with ``tokenizers``
    on ``texts``, with ``<|endoftext|>`` as BOS, EOS and padding; a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=EOT)


def _secret(space: CanarySpace, index: int) -> str:
    """The slot symbols of candidate ``index``: its digits in base |alphabet|, most significant first, as in
    :meth:`CanarySpace.canary`."""
    base, symbols = len(space.alphabet), []
    for _ in range(space.n_slots):
        index, d = divmod(index, base)
        symbols.append(space.alphabet[d])
    return "".join(reversed(symbols))


def make_canaries(rng: np.random.Generator) -> list[Canary]:
    """One distinct uniform random candidate of R per entry of :data:`REPETITIONS`."""
    space = canary_space(CANARY_TEMPLATE, CANARY_ALPHABET)
    indices = rng.choice(space.size, size=len(REPETITIONS), replace=False)
    return [Canary(space.canary(int(i)), _secret(space, int(i)), int(i), rep)
            for i, rep in zip(indices, REPETITIONS, strict=True)]


def _lr_factor(step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of the steps, then cosine decay to 10% of the peak."""
    warmup = max(1, steps // 20)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _train(model, sequences: list[list[int]], p: TestbedPreset, steps: int, seed: int, pad_id: int,
           progress: bool) -> list[float]:
    """AdamW on the mean token cross-entropy, ``p.batch_size`` sequences per step; the step losses."""
    import torch
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr, betas=(0.9, 0.95), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps))
    order: list[int] = []
    losses = []
    model.train()
    bar = tqdm(range(steps), desc="testbed training", unit="step", disable=not progress)
    for step in bar:
        while len(order) < p.batch_size:
            order += torch.randperm(len(sequences), generator=gen).tolist()
        batch, order = [sequences[i] for i in order[:p.batch_size]], order[p.batch_size:]
        width = max(len(s) for s in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, s in enumerate(batch):
            ids[r, :len(s)] = labels[r, :len(s)] = torch.tensor(s)
            mask[r, :len(s)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if (step + 1) % max(1, steps // 10) == 0 or step + 1 == steps:
            recent = losses[-max(1, steps // 10):]
            logger.info("testbed step %d/%d: loss %.4f nats/token", step + 1, steps,
                        sum(recent) / len(recent))
    model.eval()
    return losses


@dataclass(frozen=True)
class TestbedCorpus:
    """What training needs before the model: the preset, the BPE tokenizer (its ``<|endoftext|>`` id
    ``eot``), each kept document's token ids, the seeded member / non-member split and the canaries.
    Shared by :func:`build_testbed` and :mod:`parrotwatch.dp_testbed`."""

    __test__ = False  # not a pytest test class

    preset: TestbedPreset
    tokenizer: object
    eot: int
    encoded: dict[str, list[int]]
    members: tuple[Document, ...]
    non_members: tuple[Document, ...]
    canaries: tuple[Canary, ...]

    def sequence(self, text: str) -> list[int]:
        """One training sequence: ``BOS text EOS`` (BOS = EOS = ``<|endoftext|>``)."""
        return [self.eot, *self.tokenizer(text, add_special_tokens=False)["input_ids"], self.eot]

    def member_sequences(self) -> list[list[int]]:
        return [[self.eot, *self.encoded[d.id], self.eot] for d in self.members]


def prepare_corpus(preset: Preset = "tiny", seed: int = 0) -> TestbedCorpus:
    """Documents, tokenizer, the seeded split and the canaries of ``preset`` (the first half of
    :func:`build_testbed`; deterministic under ``seed``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    docs = corpus_documents(p.doc_chars)
    tokenizer = train_tokenizer([d.text for d in docs], p.vocab_size)
    eot = tokenizer.convert_tokens_to_ids(EOT)
    encoded = {d.id: tokenizer(d.text, add_special_tokens=False)["input_ids"] for d in docs}
    docs = [d for d in docs if len(encoded[d.id]) + 2 <= p.n_positions]
    if len(docs) < p.n_members + p.n_non_members:
        raise ValueError(f"only {len(docs)} documents fit the context; preset {preset!r} needs "
                         f"{p.n_members + p.n_non_members}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(docs))
    members = [docs[i] for i in perm[:p.n_members]]
    non_members = [docs[i] for i in perm[p.n_members:p.n_members + p.n_non_members]]
    canaries = make_canaries(rng)
    tokenizer.model_max_length = p.n_positions
    return TestbedCorpus(p, tokenizer, eot, encoded, tuple(members), tuple(non_members), tuple(canaries))


def build_model(corpus: TestbedCorpus, seed: int = 0):
    """A fresh ``GPT2LMHeadModel`` of the corpus's preset (no dropout, tied embeddings), initialised
    under ``torch.manual_seed(seed)``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    p, eot = corpus.preset, corpus.eot
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(corpus.tokenizer), n_positions=p.n_positions, n_embd=p.n_embd,
                        n_layer=p.n_layer, n_head=p.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, tie_word_embeddings=True)
    return GPT2LMHeadModel(config)


def build_testbed(out_dir: str | Path, *, steps: int | None = None, seed: int = 0, preset: Preset = "tiny",
                  progress: bool = True) -> TestbedInfo:
    """Train the testbed and write model + tokenizer (``save_pretrained``) and ``testbed.json`` to
    ``out_dir``; ``steps`` defaults to the preset's. Deterministic under ``seed`` for one torch build and
    thread count (on a busy machine ``torch.set_num_threads(1)`` is often the fastest)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    p = PRESETS[preset]
    steps = p.steps if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    corpus = prepare_corpus(preset, seed)
    members, non_members, canaries = corpus.members, corpus.non_members, corpus.canaries
    sequences = corpus.member_sequences()
    for c in canaries:
        sequences += [corpus.sequence(c.text) for _ in range(c.repetitions)]

    model = build_model(corpus, seed)
    n_params = sum(t.numel() for t in model.parameters())
    logger.info("testbed %s: %d parameters, %d members, %d non-members, %d training sequences",
                preset, n_params, len(members), len(non_members), len(sequences))
    losses = _train(model, sequences, p, steps, seed, corpus.eot, progress)
    final_loss = save_trained(out, model, corpus.tokenizer, losses)
    info = TestbedInfo(out, preset, seed, steps, n_params, tuple(members), tuple(non_members),
                       tuple(canaries), CANARY_TEMPLATE, CANARY_ALPHABET,
                       round(time.perf_counter() - started, 3), final_loss)
    return write_info(out, info)


def save_trained(out: Path, model, tokenizer, losses: list[float]) -> float:
    """Save a trained testbed model and its tokenizer to ``out``; the mean training loss of the last
    tenth of the steps (nan without steps), the ``final_loss`` of the testbeds' info files."""
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tail = losses[-max(1, len(losses) // 10):] or [float("nan")]
    return sum(tail) / len(tail)


def write_info(out: Path, info, name: str = INFO_FILE):
    """Write a testbed's info dataclass (its fields but ``path``) as JSON to ``out/name``; ``info``."""
    payload = asdict(info)
    del payload["path"]
    (out / name).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return info


def read_info(path: Path, name: str, how_to_build: str) -> dict:
    """The fields of the info file ``path/name`` written by :func:`write_info`; a missing file is a
    :class:`FileNotFoundError` that ends with ``how_to_build``."""
    try:
        return json.loads((path / name).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path} holds no {name}: {how_to_build}") from exc


def load_testbed(path: str | Path) -> TestbedInfo:
    """The :class:`TestbedInfo` of a testbed directory written by :func:`build_testbed`."""
    path = Path(path)
    raw = read_info(path, INFO_FILE, f"build it with 'parrotwatch testbed build --out {path}'")
    raw["members"] = tuple(Document(**d) for d in raw["members"])
    raw["non_members"] = tuple(Document(**d) for d in raw["non_members"])
    raw["canaries"] = tuple(Canary(**c) for c in raw["canaries"])
    return TestbedInfo(path=path, **raw)


@dataclass(frozen=True)
class TestbedEval:
    """Losses of the trained testbed, in nats per token unless stated.

    ``member_loss`` / ``non_member_loss``: mean over documents of -(1/N) sum_t l_t; ``loss_auc``: AUC
    of the LOSS attack (Yeom et al. 2018) separating members from non-members; ``canary_loss``: per
    repetition count, the canary's -(1/N) sum_t l_t; ``canary_exposure``: per repetition count, its
    exposure in bits (Carlini et al. 2019, skew-normal extrapolation over ``n_fresh`` candidates);
    ``fresh_canary_loss``: mean loss of ``n_fresh`` random candidates that were never inserted.
    """

    __test__ = False  # not a pytest test class

    member_loss: float
    non_member_loss: float
    loss_auc: float
    canary_loss: dict[int, float]
    canary_exposure: dict[int, float]
    fresh_canary_loss: float


def evaluate_testbed(info: TestbedInfo, n_fresh: int = 100, seed: int = 0) -> TestbedEval:
    """Score members, non-members, canaries and ``n_fresh`` fresh candidates of R with the trained model
    (:class:`parrotwatch.detectors.models.causal_lm.CausalLMScorer`, BOS prepended, so every token is
    scored)."""
    from sklearn.metrics import roc_auc_score

    from parrotwatch.detectors.audits.exposure import log_perplexity, skew_normal_exposure
    from parrotwatch.detectors.models.causal_lm import get_causal_lm

    scorer = get_causal_lm(info.spec())
    space = info.canary_space()
    inserted = {c.index for c in info.canaries}
    rng = np.random.default_rng(seed)
    fresh = [space.canary(int(i)) for i in rng.choice(space.size, n_fresh + len(inserted), replace=False)
             if int(i) not in inserted][:n_fresh]
    texts = [d.text for d in info.members + info.non_members] + [c.text for c in info.canaries] + fresh
    scores = scorer.score_texts(texts)
    loss = np.array([-s.logprobs.mean() for s in scores])
    n_m, n_n, n_c = len(info.members), len(info.non_members), len(info.canaries)
    member, non_member = loss[:n_m], loss[n_m:n_m + n_n]
    fresh_px = [log_perplexity(s.logprobs) for s in scores[n_m + n_n + n_c:]]
    canary_scores = scores[n_m + n_n:n_m + n_n + n_c]
    return TestbedEval(
        member_loss=float(member.mean()),
        non_member_loss=float(non_member.mean()),
        loss_auc=float(roc_auc_score([1] * n_m + [0] * n_n, -np.concatenate([member, non_member]))),
        canary_loss={c.repetitions: float(-s.logprobs.mean()) for c, s in zip(info.canaries, canary_scores,
                                                                               strict=True)},
        canary_exposure={c.repetitions: skew_normal_exposure(log_perplexity(s.logprobs), fresh_px, space.size)
                         for c, s in zip(info.canaries, canary_scores, strict=True)},
        fresh_canary_loss=float(np.mean(loss[n_m + n_n + n_c:])),
    )
