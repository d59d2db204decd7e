"""Reference models of the testbed, for calibrated membership attacks (RMIA, Zarifzadeh et al. 2024,
:mod:`parrotwatch.detectors.audits.rmia`): k GPT-2 models trained by the recipe of
:mod:`parrotwatch.testbed` on data that holds none of the target's members (all OUT).

**The split.** The testbed's corpus (``pydoc_data.topics`` cut into documents, those that fit the
context) has far more documents than the target uses: the tiny preset keeps 1,787, of which 64 are
members (trained on) and 64 non-members (held out). The other documents, the *rest*, come from the same
seeded permutation of the same corpus, so from the same distribution, and neither set touches them.
The rest (each text once: the corpus repeats some paragraphs under several topics, and a text equal
to a member's or non-member's is left out) is permuted again under the seed
(``numpy.random.default_rng([seed, 1])``) and cut in two:

- the **reference pool**, its first max(n_members, len(rest) // 2) documents: each reference model i
  trains on its own seeded draw of n_members of them (``default_rng([seed, 2, i])``, without
  replacement; the draws of two references may overlap);
- the **population**, the remaining documents (675 for the tiny preset, seed 0; 59 for the small
  preset, whose pool is its 256 members' worth): the z of RMIA, trained on by
  neither the target nor any reference.

The target's 64 non-members are *not* used for training references: the audit evaluates all of them,
like the other membership methods, so every method is scored on the same texts. (Splitting the
non-members in halves, one half training the references, would leave only 32 non-members to evaluate,
and a non-member some reference trained on would look less member-like to RMIA than it should.)
:func:`build_reference` checks, by document id and by text, that no member, non-member or population
text is in a reference's training data, and refuses to train otherwise.

**The recipe** is the target's: the same tokenizer (checked against the target's saved one), model
configuration, optimiser, schedule and number of steps, and the same training sequences with the
members swapped for the reference's n_members documents (the testbed's canaries are kept, with their
repetitions, so a reference sees as many sequences as the target). Reference i is initialised and
ordered under its own seed, ``SeedSequence([seed, 2, i])``: deterministic under ``seed`` for one torch
build and thread count, and different from the target and from the other references.

**The cache.** Reference i of the testbed at ``<dir>`` is kept in ``<dir>-ref<i>`` (model, tokenizer and
``reference.json``), built once under a file lock and reused; references 0..k-1 are shared by every
k, so asking for 4 after 2 trains 2 more.
"""

from __future__ import annotations

import fcntl
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parrotwatch.detectors.models.causal_lm import CausalLMSpec
from parrotwatch.testbed import (
    PRESETS,
    Document,
    TestbedCorpus,
    TestbedInfo,
    _train,
    build_model,
    corpus_documents,
    prepare_corpus,
    read_info,
    save_trained,
    write_info,
)

logger = logging.getLogger(__name__)

REFERENCE_FILE = "reference.json"
MAX_REFERENCES = 4
_SPLIT_STREAM, _REFERENCE_STREAM = 1, 2


@dataclass(frozen=True)
class ReferenceSplit:
    """The corpus documents outside the target's members and non-members: ``pool`` (references train on
    draws from it) and ``population`` (RMIA's z, trained on by no model)."""

    pool: tuple[Document, ...]
    population: tuple[Document, ...]


@dataclass(frozen=True)
class ReferenceInfo:
    """What ``reference.json`` holds, plus the directory ``path`` of model and tokenizer."""

    path: Path
    target: str
    preset: str
    seed: int
    index: int
    train_seed: int
    steps: int
    n_params: int
    train_ids: tuple[str, ...]
    train_seconds: float
    final_loss: float

    def spec(self, **options) -> CausalLMSpec:
        """A :class:`CausalLMSpec` for the reference model; ``options`` are the spec's other fields."""
        return CausalLMSpec(model=str(self.path), **options)


def reference_split(corpus: TestbedCorpus, seed: int) -> ReferenceSplit:
    """The reference pool and the population of ``corpus`` (see the module docstring); deterministic."""
    p = corpus.preset
    taken = corpus.members + corpus.non_members
    taken_ids, taken_texts = {d.id for d in taken}, {d.text for d in taken}
    rest, seen = [], set(taken_texts)
    for d in corpus_documents(p.doc_chars):  # the corpus repeats some texts under several topics: once each
        if len(corpus.encoded[d.id]) + 2 <= p.n_positions and d.id not in taken_ids and d.text not in seen:
            rest.append(d)
            seen.add(d.text)
    rng = np.random.default_rng([seed, _SPLIT_STREAM])
    rest = [rest[i] for i in rng.permutation(len(rest))]
    n_pool = max(p.n_members, len(rest) // 2)
    if len(rest) <= n_pool:
        raise ValueError(f"only {len(rest)} documents lie outside the target's members and non-members: "
                         f"too few for a reference pool of {p.n_members} and a population")
    return ReferenceSplit(tuple(rest[:n_pool]), tuple(rest[n_pool:]))


def reference_seed(seed: int, index: int) -> int:
    """The init / data-order seed of reference ``index`` of the testbed of ``seed``."""
    return int(np.random.SeedSequence([seed, _REFERENCE_STREAM, index]).generate_state(1)[0])


def reference_documents(corpus: TestbedCorpus, split: ReferenceSplit, seed: int, index: int
                        ) -> tuple[Document, ...]:
    """The documents reference ``index`` trains on: n_members drawn from the pool without replacement."""
    rng = np.random.default_rng([seed, _REFERENCE_STREAM, index])
    picks = rng.choice(len(split.pool), size=corpus.preset.n_members, replace=False)
    return tuple(split.pool[int(i)] for i in picks)


def assert_out(train: tuple[Document, ...], corpus: TestbedCorpus, split: ReferenceSplit) -> None:
    """Raise AssertionError when a member, non-member or population text (by id or by text) is among a
    reference's training documents ``train``: each reference must be OUT for every audited text."""
    ids, texts = {d.id for d in train}, {d.text for d in train}
    for name, docs in (("member", corpus.members), ("non-member", corpus.non_members),
                       ("population", split.population)):
        inside = [d.id for d in docs if d.id in ids or d.text in texts]
        if inside:
            raise AssertionError(f"a reference model would train on {len(inside)} {name} text(s) of the "
                                 f"target, e.g. {inside[0]!r}; it must be OUT for them")


def _check_target(target: TestbedInfo, corpus: TestbedCorpus) -> None:
    """The target was built from this corpus: the same member / non-member split and the same tokenizer."""
    from transformers import PreTrainedTokenizerFast

    if ([d.id for d in corpus.members] != [d.id for d in target.members]
            or [d.id for d in corpus.non_members] != [d.id for d in target.non_members]):
        raise ValueError(f"the testbed at {target.path} does not have the split of preset {target.preset!r}, "
                         f"seed {target.seed}: cannot train references for it")
    saved = PreTrainedTokenizerFast.from_pretrained(str(target.path))
    if saved.get_vocab() != corpus.tokenizer.get_vocab():
        raise ValueError(f"the tokenizer at {target.path} differs from the one preset {target.preset!r}, "
                         f"seed {target.seed} trains: cannot train references with the same recipe")


def build_reference(out_dir: str | Path, target: TestbedInfo, index: int, *, progress: bool = True,
                    corpus: TestbedCorpus | None = None) -> ReferenceInfo:
    """Train reference ``index`` of ``target`` (see the module docstring) and write model, tokenizer and
    ``reference.json`` to ``out_dir``. ``corpus``: the target's :func:`prepare_corpus`, when at hand."""
    if not 0 <= index < MAX_REFERENCES:
        raise ValueError(f"reference index must be in 0..{MAX_REFERENCES - 1}, got {index}")
    started = time.perf_counter()
    corpus = prepare_corpus(target.preset, target.seed) if corpus is None else corpus
    _check_target(target, corpus)
    split = reference_split(corpus, target.seed)
    train = reference_documents(corpus, split, target.seed, index)
    assert_out(train, corpus, split)
    sequences = [[corpus.eot, *corpus.encoded[d.id], corpus.eot] for d in train]
    for c in corpus.canaries:
        sequences += [corpus.sequence(c.text) for _ in range(c.repetitions)]

    train_seed = reference_seed(target.seed, index)
    model = build_model(corpus, train_seed)
    logger.info("reference %d of %s: %d training sequences, seed %d", index, target.path, len(sequences),
                train_seed)
    losses = _train(model, sequences, corpus.preset, target.steps, train_seed, corpus.eot, progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final_loss = save_trained(out, model, corpus.tokenizer, losses)
    info = ReferenceInfo(out, str(target.path), target.preset, target.seed, index, train_seed, target.steps,
                         sum(t.numel() for t in model.parameters()), tuple(d.id for d in train),
                         round(time.perf_counter() - started, 3), final_loss)
    return write_info(out, info, REFERENCE_FILE)


def load_reference(path: str | Path) -> ReferenceInfo:
    """The :class:`ReferenceInfo` of a directory written by :func:`build_reference`."""
    path = Path(path)
    raw = read_info(path, REFERENCE_FILE, "ensure_reference_models() writes it (an rmia audit does)")
    raw["train_ids"] = tuple(raw["train_ids"])
    return ReferenceInfo(path=path, **raw)


def training_texts(references: tuple[ReferenceInfo, ...]) -> set[str]:
    """The texts of the corpus documents ``references`` (of one testbed) trained on, canaries left aside."""
    if not references:
        return set()
    ids = {i for r in references for i in r.train_ids}
    return {d.text for d in corpus_documents(PRESETS[references[0].preset].doc_chars) if d.id in ids}


def reference_dir(target: TestbedInfo, index: int) -> Path:
    """Where reference ``index`` of ``target`` is cached: ``<target dir>-ref<index>``."""
    return target.path.parent / f"{target.path.name}-ref{index}"


def ensure_reference_models(target: TestbedInfo, k: int, progress: bool = True) -> tuple[ReferenceInfo, ...]:
    """References 0..k-1 of ``target`` (1 <= k <= 4), each trained once under a file lock and reused."""
    if not 1 <= k <= MAX_REFERENCES:
        raise ValueError(f"k must be in 1..{MAX_REFERENCES}, got {k}")
    out, corpus = [], None
    for i in range(k):
        path = reference_dir(target, i)
        with open(path.parent / f".{path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait, then load
            if not (path / REFERENCE_FILE).is_file():
                corpus = prepare_corpus(target.preset, target.seed) if corpus is None else corpus
                build_reference(path, target, i, progress=progress, corpus=corpus)
        out.append(load_reference(path))
    return tuple(out)


def testbed_population(target: TestbedInfo, corpus: TestbedCorpus | None = None) -> tuple[Document, ...]:
    """RMIA's population of ``target``: corpus documents trained on by neither the target nor any of its
    references (:func:`reference_split`)."""
    corpus = prepare_corpus(target.preset, target.seed) if corpus is None else corpus
    _check_target(target, corpus)
    return reference_split(corpus, target.seed).population
