"""What an audit spec points at, loaded: the scorer(s), the member / non-member texts and the canaries,
and for membership method ``rmia`` the reference models and the population texts.

A ``testbed`` model is built once under ``PARROTWATCH_HOME/testbeds/<preset>-seed<seed>-steps<steps>``
(a file lock keeps two processes from building it at once) and reused by later runs; its
``testbed_references`` next to it, in ``...-steps<steps>-ref<i>`` (:mod:`parrotwatch.testbed_reference`).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from parrotwatch.audits.spec import AuditSpec, ModelSource, TestbedRef
from parrotwatch.corpus import is_jsonl, read_documents
from parrotwatch.detectors.audits.canaries import CanarySpace, canary_space

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Text:
    """One audited text: ``id``, ``text`` and how many times it is in the training set (0 = never)."""

    id: str
    text: str
    repetitions: int = 1


@dataclass(frozen=True)
class Canaries:
    """The inserted canaries (``repetitions`` >= 1) and their candidate space R."""

    items: tuple[Text, ...]
    space: CanarySpace


@dataclass(frozen=True)
class AuditInputs:
    lm: object  # CausalLMScorer, or OpenAICompletionsScorer for an endpoint
    reference_lm: object | None
    members: tuple[Text, ...]
    non_members: tuple[Text, ...]
    canaries: Canaries | None
    #: candidates of the one-run DP audit, each with ``text`` and ``included`` (trained on or not)
    audit_canaries: tuple = ()
    #: RMIA's reference models (scorers, all OUT) and population texts z (trained on by no model)
    rmia_reference_lms: tuple = ()
    population: tuple[Text, ...] = ()


def testbed_dir(home: Path, ref: TestbedRef) -> Path:
    from parrotwatch.testbed import PRESETS

    steps = ref.steps or PRESETS[ref.preset].steps
    return Path(home) / "testbeds" / f"{ref.preset}-seed{ref.seed}-steps{steps}"


def ensure_testbed(home: Path, ref: TestbedRef, progress: bool = True):
    """The :class:`~parrotwatch.testbed.TestbedInfo` of ``ref`` under ``home``, trained if
    absent."""
    from parrotwatch.testbed import INFO_FILE, build_testbed, load_testbed

    out = testbed_dir(home, ref)
    out.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait, then load
        if not (out / INFO_FILE).is_file():
            log.info("building testbed %s (preset %s, seed %d)", out, ref.preset, ref.seed)
            build_testbed(out, steps=ref.steps, seed=ref.seed, preset=ref.preset, progress=progress)
    return load_testbed(out)


def _scorer(source: ModelSource, home: Path, progress: bool):
    from parrotwatch.detectors.models.causal_lm import CausalLMSpec, get_causal_lm

    if source.endpoint is not None:
        from parrotwatch.audits.endpoint_lm import OpenAICompletionsScorer, OpenAICompletionsSpec

        e = source.endpoint
        return OpenAICompletionsScorer(OpenAICompletionsSpec(
            url=e.url, model=e.model, api_key_env=e.api_key_env, batch_size=source.batch_size,
            timeout_s=e.timeout_s))
    path = source.path if source.testbed is None else str(ensure_testbed(home, source.testbed, progress).path)
    return get_causal_lm(CausalLMSpec(model=path, device=source.device, precision=source.precision,
                                      batch_size=source.batch_size, max_length=source.max_length,
                                      stride=source.stride))


def read_texts(path: Path, default_repetitions: int = 1) -> tuple[Text, ...]:
    """The texts of a data file (or directory), by the one document rule of :mod:`parrotwatch.corpus`: a
    ``.jsonl`` file holds one text per line (``text``; optional ``id``, ``repetitions``; ids default to
    ``<path>:<line>``), any other file is one text (id: its path)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist")
    out = tuple(Text(d.id, d.text, int(d.record.get("repetitions", default_repetitions)))
                for d in read_documents([path]))
    if not out:
        raise ValueError(f"data file {path} holds no text")
    if len(out) == 1 and not is_jsonl(path) and "\n" in out[0].text.strip():
        log.warning("data file %s is one text of several lines (a text file is one document); for one "
                    "text per line, write a .jsonl file of {\"text\": ...} objects", path)
    return out


def load_inputs(spec: AuditSpec, home: Path, progress: bool = True) -> AuditInputs:
    """Load the scorer(s) and the texts of ``spec``."""
    lm = _scorer(spec.model, home, progress)
    reference = _scorer(spec.reference_model, home, progress) if spec.reference_model else None
    if spec.data.testbed:
        info = ensure_testbed(home, spec.model.testbed, progress)
        members = tuple(Text(d.id, d.text, 1) for d in info.members)
        non_members = tuple(Text(d.id, d.text, 0) for d in info.non_members)
        items = tuple(Text(f"canary-{c.repetitions}x-{c.index}", c.text, c.repetitions)
                      for c in info.canaries)
        canaries = Canaries(items, info.canary_space())
    else:
        members = read_texts(spec.data.members, 1)
        non_members = read_texts(spec.data.non_members, 0)
        canaries = None
        if spec.data.canaries is not None:
            c = spec.data.canaries
            space = canary_space(c.template, c.alphabet)
            canaries = Canaries(read_texts(c.file, 1), space)
    audit = read_audit_canaries(spec.data.audit_canaries) if spec.data.audit_canaries else ()
    rmia_lms, population = (), ()
    if spec.audits.membership is not None and "rmia" in spec.audits.membership.methods:
        rmia_lms, population = _rmia_inputs(spec, home, progress, members, non_members)
    return AuditInputs(lm, reference, members, non_members, canaries, audit, rmia_lms, population)


def _rmia_inputs(spec: AuditSpec, home: Path, progress: bool, members: tuple[Text, ...],
                 non_members: tuple[Text, ...]) -> tuple[tuple, tuple[Text, ...]]:
    """RMIA's reference scorers and population (at most ``rmia.population`` texts, the first ones).

    Testbed references are trained (once) with :mod:`parrotwatch.testbed_reference`; with file data, a
    member among their training texts is refused. The population is the file ``data.population``, or for
    ``data: testbed`` the corpus documents no model trained on. A population text equal to a member is
    refused (the population must be OUT of the target); one equal to a non-member is dropped (x would be
    compared with itself)."""
    refs = spec.reference_models
    target = ensure_testbed(home, spec.model.testbed, progress) if spec.model.testbed is not None else None
    if refs.testbed_references is not None:
        from parrotwatch.testbed_reference import ensure_reference_models

        infos = ensure_reference_models(target, refs.testbed_references, progress)
        if not spec.data.testbed:
            from parrotwatch.testbed_reference import training_texts

            texts = training_texts(infos)
            population = () if spec.data.population is None else read_texts(spec.data.population, 0)
            sets = (("member", members), ("non-member", non_members), ("population text", population))
            for what, items in sets:
                inside = [t.id for t in items if t.text in texts]
                if inside:
                    raise ValueError(f"{len(inside)} {what}(s) (e.g. {inside[0]!r}) are in the training data "
                                     f"of the testbed reference models: every audited and population text "
                                     f"must be OUT of them")
        lms = tuple(_scorer(spec.model.model_copy(update={"testbed": None, "path": str(info.path)}), home,
                            progress) for info in infos)
    else:
        lms = tuple(_scorer(m, home, progress) for m in refs.models)
    if spec.data.testbed:
        from parrotwatch.testbed_reference import testbed_population

        population = tuple(Text(d.id, d.text, 0) for d in testbed_population(target))
    else:
        population = read_texts(spec.data.population, 0)
    member_texts, non_member_texts = {t.text for t in members}, {t.text for t in non_members}
    inside = [t.id for t in population if t.text in member_texts]
    if inside:
        raise ValueError(f"{len(inside)} population text(s) (e.g. {inside[0]!r}) are also members: RMIA's "
                         f"population must hold texts the target was not trained on")
    kept = tuple(t for t in population if t.text not in non_member_texts)
    if len(kept) < len(population):
        log.warning("RMIA population: %d text(s) equal to a non-member left out", len(population) - len(kept))
    kept = kept[:spec.audits.membership.rmia.population]
    if not kept:
        raise ValueError("RMIA's population is empty")
    return lms, kept


@dataclass(frozen=True)
class AuditCandidate:
    text: str
    included: bool


def read_audit_canaries(path: Path) -> tuple:
    """The one-run DP audit's candidates: a DP testbed directory's (``dp_testbed.json``), or a JSONL
    file of ``{"text": str, "included": bool}``; a line that is neither is an error naming it."""
    import json

    path = Path(path)
    if path.is_dir():
        from parrotwatch.dp_testbed import load_dp_testbed

        return load_dp_testbed(path).audit_canaries
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not (isinstance(row, dict) and isinstance(row.get("text"), str)
                and isinstance(row.get("included"), bool)):
            raise ValueError(f"{path}:{n}: an audit canary is {{\"text\": str, \"included\": bool}}")
        out.append(AuditCandidate(row["text"], row["included"]))
    return tuple(out)


def score_texts(lm, texts: Sequence[str], with_distribution: bool = False, chunk: int = 256,
                advance: Callable[[int], object] | None = None):
    """``lm.score_texts`` in chunks of ``chunk`` texts, calling ``advance(n)`` after each (progress bars)."""
    out = []
    for start in range(0, len(texts), chunk):
        part = texts[start:start + chunk]
        out += lm.score_texts(part, with_distribution=with_distribution)
        if advance is not None:
            advance(len(part))
    return out
