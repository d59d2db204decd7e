"""A testbed for auditing differential privacy in one training run (Steinke, Nasr, Jagielski 2023,
"Privacy Auditing with One (1) Training Run", NeurIPS 2023): the tiny GPT-2 of
:mod:`parrotwatch.testbed`, trained with DP-SGD (Abadi et al. 2016) at a known (eps, delta), or without
privacy, on its members plus m audit canaries each included independently with probability 1/2.

Audit canaries: m distinct uniform random candidates of the testbed's space R
(``"my secret number is {}{}{}{}{}{}"``, |R| = 10**6), drawn under ``seed``; candidate i is in the training
set (``included``) with probability 1/2, independently, and, when in, ``repetitions`` times (1 for DP-SGD,
whose guarantee is per sequence). Their texts, indices in R and inclusion bits are kept in
``dp_testbed.json``: scoring all m with the trained model and guessing the bits gives the audit's lower
bound on eps (:mod:`parrotwatch.detectors.audits.dp_lower_bound`).

Training (one recipe, private or not): sequences ``BOS text EOS``; Poisson sampling, every sequence in a
step's batch independently with probability q = batch_size / N_expected, N_expected = n_members +
repetitions * m / 2 fixed before the draw (so q does not depend on the bits); loss per sequence the mean
token cross-entropy, averaged over the batch; AdamW with the testbed's warm-up and cosine decay;
``steps`` = ceil(epochs / q). DP-SGD (Opacus, per-sample gradients by ``torch.func``): each sequence's
gradient clipped to L2 norm ``max_grad_norm``, the sum noised with N(0, (sigma max_grad_norm)^2 I) and
divided by the expected batch size; sigma is the smallest noise multiplier whose accountant (RDP by
default, Mironov 2017; or PRV, Gopi et al. 2021) gives eps <= the target after ``steps`` steps of sample
rate q (Opacus ``get_noise_multiplier``, tolerance 0.01). Without privacy the batch gradient's global norm
is clipped to 1.0, as in :mod:`parrotwatch.testbed`.

Positions are passed explicitly (one row per sequence) so that every per-sample gradient, the position
embedding's included, belongs to its own sequence; the tied input / output embedding gets the sum of both
uses. The testbed's four Secret Sharer canaries are not inserted here.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from parrotwatch.detectors.audits.canaries import CanarySpace, canary_space
from parrotwatch.detectors.models.causal_lm import CausalLMSpec
from parrotwatch.testbed import (
    CANARY_ALPHABET,
    CANARY_TEMPLATE,
    PRESETS,
    Document,
    Preset,
    TestbedCorpus,
    _lr_factor,
    _secret,
    build_model,
    prepare_corpus,
    read_info,
    save_trained,
    write_info,
)

logger = logging.getLogger(__name__)

INFO_FILE = "dp_testbed.json"
Accountant = Literal["rdp", "prv"]


@dataclass(frozen=True)
class AuditCanary:
    """A candidate canary of the one-run audit: its ``text``, ``secret``, ``index`` in R and whether it was
    put in the training set (``included``)."""

    text: str
    secret: str
    index: int
    included: bool


@dataclass(frozen=True)
class DPTestbedInfo:
    """What ``dp_testbed.json`` holds, plus the directory ``path`` of model and tokenizer.

    ``target_epsilon`` is None for the non-private run (then ``noise_multiplier`` is 0,
    ``max_grad_norm`` None and ``epsilon`` None); ``epsilon`` is the accountant's eps after training at
    ``delta``; ``sample_rate`` q, ``steps`` and ``noise_multiplier`` sigma are what it was computed from.
    """

    __test__ = False  # not a pytest test class

    path: Path
    preset: str
    seed: int
    steps: int
    n_params: int
    members: tuple[Document, ...]
    audit_canaries: tuple[AuditCanary, ...]
    repetitions: int
    canary_template: str
    canary_alphabet: str
    target_epsilon: float | None
    delta: float
    epsilon: float | None
    noise_multiplier: float
    max_grad_norm: float | None
    sample_rate: float
    accountant: str
    n_train_sequences: int
    train_seconds: float
    final_loss: float

    @property
    def private(self) -> bool:
        return self.target_epsilon is not None

    @property
    def included(self) -> tuple[bool, ...]:
        """The inclusion bits of the audit canaries, in their order."""
        return tuple(c.included for c in self.audit_canaries)

    def canary_space(self) -> CanarySpace:
        return canary_space(self.canary_template, self.canary_alphabet)

    def spec(self, **options) -> CausalLMSpec:
        """A :class:`CausalLMSpec` for the trained model; ``options`` are the spec's other fields."""
        return CausalLMSpec(model=str(self.path), **options)


def make_audit_canaries(m: int, seed: int) -> tuple[AuditCanary, ...]:
    """``m`` distinct uniform candidates of R, each included with probability 1/2, independently; one
    ``numpy`` stream seeded by (seed, 2023), apart from the testbed's own split."""
    space = canary_space(CANARY_TEMPLATE, CANARY_ALPHABET)
    if not 1 <= m <= space.size:
        raise ValueError(f"m must be in [1, {space.size}], got {m}")
    rng = np.random.default_rng([seed, 2023])
    indices = rng.choice(space.size, size=m, replace=False)
    bits = rng.random(m) < 0.5
    return tuple(AuditCanary(space.canary(int(i)), _secret(space, int(i)), int(i), bool(b))
                 for i, b in zip(indices, bits, strict=True))


def _batch(sequences: list[list[int]], pad_id: int):
    """Right-padded ids, labels (-100 on padding) and attention mask of one batch."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), -100, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for r, s in enumerate(sequences):
        ids[r, :len(s)] = labels[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
    return ids, labels, mask


def sequence_losses(model, ids, labels, mask):
    """Per sequence, -(1/N) sum_t log p(x_t | x_<t) in nats over its N predicted tokens (a 1-D tensor)."""
    import torch

    positions = torch.arange(ids.shape[1]).expand(ids.shape[0], -1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    token_loss = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:],
                                                   ignore_index=-100, reduction="none")
    return token_loss.sum(1) / (labels[:, 1:] != -100).sum(1).clamp(min=1)


def _accountant_options(accountant: Accountant) -> dict:
    """RDP orders: Opacus' defaults (1.1 .. 63) plus larger ones, which few-step, low-noise runs need."""
    if accountant != "rdp":
        return {}
    from opacus.accountants import RDPAccountant

    return {"alphas": [*RDPAccountant.DEFAULT_ALPHAS, 80, 96, 128, 192, 256, 384, 512]}


def noise_multiplier_for(target_epsilon: float, delta: float, sample_rate: float, steps: int,
                         accountant: Accountant = "rdp") -> float:
    """The smallest sigma (to Opacus' 0.01 eps tolerance) with accountant eps <= ``target_epsilon``."""
    from opacus.accountants.utils import get_noise_multiplier

    return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta,
                                      sample_rate=sample_rate, steps=steps, accountant=accountant,
                                      **_accountant_options(accountant)))


def accountant_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                       accountant: Accountant = "rdp") -> float:
    """The accountant's eps at ``delta`` after ``steps`` Poisson-sampled Gaussian steps."""
    from opacus.accountants import create_accountant

    acc = create_accountant(accountant)
    for _ in range(steps):
        acc.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    return float(acc.get_epsilon(delta=delta, **_accountant_options(accountant)))


def _train(model, sequences: list[list[int]], *, lr: float, steps: int, sample_rate: float,
           expected_batch: int, pad_id: int, seed: int, dp: tuple[float, float] | None, progress: bool):
    """Poisson-sampled AdamW steps; ``dp`` = (sigma, max_grad_norm) for DP-SGD through Opacus, else plain
    (global clip 1.0). Returns the (possibly wrapped) model and the step losses."""
    import torch
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    if dp is not None:
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        sigma, clip = dp
        model = GradSampleModule(model, batch_first=True, loss_reduction="mean", force_functorch=True)
        base = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
        opt = DPOptimizer(base, noise_multiplier=sigma, max_grad_norm=clip,
                          expected_batch_size=expected_batch, loss_reduction="mean",
                          generator=torch.Generator().manual_seed(seed + 1))
    else:
        base = opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(base, lambda s: _lr_factor(s, steps))
    losses: list[float] = []
    model.train()
    bar = tqdm(range(steps), desc="dp testbed training" if dp else "testbed training", unit="step",
               disable=not progress)
    with warnings.catch_warnings():
        # Opacus' hooks on a model whose inputs need no gradient, and its functorch autocast on the CPU
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        warnings.filterwarnings("ignore", message="In CPU autocast", category=UserWarning)
        for _ in bar:
            picked = torch.nonzero(torch.rand(len(sequences), generator=gen) < sample_rate).flatten().tolist()
            opt.zero_grad(set_to_none=True)
            if picked:
                ids, labels, mask = _batch([sequences[i] for i in picked], pad_id)
                loss = sequence_losses(model, ids, labels, mask).mean()
                loss.backward()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
            elif dp is not None:  # an empty Poisson batch: DP-SGD still adds the noise
                for p in opt.params:
                    p.grad_sample = p.new_zeros((0, *p.shape))
            if dp is None and picked:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if dp is not None or picked:  # without privacy an empty batch is no step
                opt.step()
            sched.step()
    model.eval()
    return model, losses


def build_dp_testbed(out_dir: str | Path, *, epsilon: float | None, delta: float = 1e-5, m: int = 500,
                     repetitions: int = 1, epochs: float = 5.0, steps: int | None = None, seed: int = 0,
                     preset: Preset = "tiny", max_grad_norm: float = 1.0, accountant: Accountant = "rdp",
                     corpus: TestbedCorpus | None = None, progress: bool = True) -> DPTestbedInfo:
    """Train the one-run audit testbed and write model + tokenizer and ``dp_testbed.json`` to ``out_dir``.

    ``epsilon``: the DP-SGD target at ``delta`` (None: train without privacy). ``m`` audit canaries, each
    included with probability 1/2, ``repetitions`` times when included (only 1 with DP). ``steps``
    defaults to ceil(``epochs`` / q). ``corpus`` (from :func:`parrotwatch.testbed.prepare_corpus` with the
    same preset and seed) saves retraining the tokenizer across runs. Deterministic under ``seed`` for
    one torch build and thread count.
    """
    if epsilon is not None and repetitions != 1:
        raise ValueError("DP-SGD's guarantee is per sequence: a repeated canary needs repetitions=1 "
                         "(group privacy is not what the audit compares with)")
    if epsilon is not None and not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if repetitions < 1 or not 0 < delta < 1:
        raise ValueError(f"need repetitions >= 1 and 0 < delta < 1, got {repetitions}, {delta}")
    p = PRESETS[preset]
    corpus = prepare_corpus(preset, seed) if corpus is None else corpus
    if corpus.preset != p:
        raise ValueError(f"the corpus given is not of preset {preset!r}")
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    audit = make_audit_canaries(m, seed)
    sequences = corpus.member_sequences()
    for c in audit:
        if c.included:
            sequences += [corpus.sequence(c.text)] * repetitions
    expected_n = len(corpus.members) + repetitions * m / 2
    q = min(1.0, p.batch_size / expected_n)
    steps = math.ceil(epochs / q) if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    sigma = 0.0 if epsilon is None else noise_multiplier_for(epsilon, delta, q, steps, accountant)

    model = build_model(corpus, seed)
    n_params = sum(t.numel() for t in model.parameters())
    logger.info("dp testbed %s: eps %s, sigma %.4f, q %.4f, %d steps, %d sequences (%d of %d canaries in)",
                preset, epsilon, sigma, q, steps, len(sequences), sum(c.included for c in audit), m)
    trained, losses = _train(model, sequences, lr=p.lr, steps=steps, sample_rate=q,
                             expected_batch=p.batch_size, pad_id=corpus.eot, seed=seed, progress=progress,
                             dp=None if epsilon is None else (sigma, max_grad_norm))
    spent = None
    if epsilon is not None:
        spent = accountant_epsilon(sigma, q, steps, delta, accountant)
        trained.remove_hooks()  # Opacus' wrapper trained ``model``'s own parameters in place
    final_loss = save_trained(out, model, corpus.tokenizer, losses)
    info = DPTestbedInfo(out, preset, seed, steps, n_params, corpus.members, audit, repetitions,
                         CANARY_TEMPLATE, CANARY_ALPHABET, epsilon, delta, spent, sigma,
                         None if epsilon is None else max_grad_norm, q, accountant, len(sequences),
                         round(time.perf_counter() - started, 3), final_loss)
    return write_info(out, info, INFO_FILE)


def load_dp_testbed(path: str | Path) -> DPTestbedInfo:
    """The :class:`DPTestbedInfo` of a directory written by :func:`build_dp_testbed`."""
    path = Path(path)
    raw = read_info(path, INFO_FILE, "build_dp_testbed() writes it (the dp_lower_bound audit does)")
    raw["members"] = tuple(Document(**d) for d in raw["members"])
    raw["audit_canaries"] = tuple(AuditCanary(**c) for c in raw["audit_canaries"])
    return DPTestbedInfo(path=path, **raw)
