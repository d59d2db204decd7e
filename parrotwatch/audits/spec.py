"""The audit spec: a strict YAML file naming the model, the data, the audits and their parameters, and
when to run them. Unknown keys are errors that name the valid keys (``extra="forbid"``).

See ``docs/audits.md`` for every key and ``examples/audit-testbed.yaml`` for a complete file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

MembershipMethod = Literal["loss", "zlib", "lowercase", "reference", "min_k", "min_k_plus_plus", "rmia"]


class SpecError(ValueError):
    """An audit spec that cannot be read or does not validate; one line per problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TestbedRef(_Strict):
    """The project's testbed (``parrotwatch.testbed``), built once under PARROTWATCH_HOME/testbeds."""

    __test__ = False

    preset: Literal["tiny", "small"] = "tiny"
    seed: int = 0
    steps: int | None = Field(default=None, ge=1, description="optimiser steps; default the preset's")


def _path_shorthand(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


class EndpointRef(_Strict):
    """A model behind an OpenAI-compatible completions endpoint that echoes prompt log-probabilities
    (vLLM, llama.cpp server, ``parrotwatch testbed serve``); see
    :mod:`parrotwatch.audits.endpoint_lm`.
    ``api_key_env`` names the environment variable holding the key, never the key."""

    url: str = Field(pattern=r"^https?://", description="the API base, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(min_length=1)
    api_key_env: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)


class ModelSource(_Strict):
    """A local causal LM directory (``path``), the testbed (``testbed``) or an OpenAI-compatible
    ``endpoint``, and how to run it (``device``, ``precision``, ``max_length``, ``stride``: local only)."""

    path: str | None = None
    testbed: TestbedRef | None = None
    endpoint: EndpointRef | None = None
    batch_size: int = Field(default=16, ge=1)
    device: str | None = None
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    max_length: int | None = Field(default=None, ge=2)
    stride: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> ModelSource:
        if sum(x is not None for x in (self.path, self.testbed, self.endpoint)) != 1:
            raise ValueError("give exactly one of 'path' (a local model directory), "
                             "'testbed: {preset, seed}' or 'endpoint: {url, model}'")
        return self


ModelField = Annotated[ModelSource, BeforeValidator(_path_shorthand)]


def _references_shorthand(value: Any) -> Any:
    """A list (or one path) of model sources stands for ``{models: [...]}``."""
    if isinstance(value, str):
        return {"models": [value]}
    return {"models": value} if isinstance(value, list) else value


class ReferenceModels(_Strict):
    """RMIA's reference models, every one OUT (trained without the audited members): ``models``, 1 to 4
    model sources (paths, testbeds or endpoints, as ``model``), or ``testbed_references: N``, N models the
    project trains on the testbed with the target's recipe and disjoint data
    (:mod:`parrotwatch.testbed_reference`; needs a testbed model)."""

    models: list[ModelField] = Field(default_factory=list, max_length=4)
    testbed_references: int | None = Field(default=None, ge=1, le=4)

    @model_validator(mode="after")
    def _one_kind(self) -> ReferenceModels:
        if bool(self.models) == (self.testbed_references is not None):
            raise ValueError("give either 'models' (a list of 1 to 4 model sources) or "
                             "'testbed_references: N' (1 to 4 models trained on the testbed)")
        return self


class CanaryFile(_Strict):
    """Inserted canaries: a JSONL file of ``{"text", "repetitions", "id"?}`` and their space R."""

    file: Path
    template: str = Field(description="the canary template with one '{}' per slot")
    alphabet: str | list[str] = "0123456789"


def _data_shorthand(value: Any) -> Any:
    return {"testbed": True} if value == "testbed" else value


class DataSource(_Strict):
    """``testbed`` (the testbed's own members, non-members and canaries; needs a testbed model) or files:
    ``members`` / ``non_members`` (files or directories, read by the document rule of
    :mod:`parrotwatch.corpus`: a .jsonl file holds one text per line, ``text`` with optional ``id`` and
    ``repetitions``; any other file is one text) and optional ``canaries``."""

    testbed: bool = False
    members: Path | None = None
    non_members: Path | None = None
    canaries: CanaryFile | None = None
    audit_canaries: Path | None = Field(default=None, description=(
        "candidate canaries of the one-run DP audit with their inclusion bits: a DP testbed "
        "directory (`parrotwatch/dp_testbed.py`) or a JSONL file of {text, included}"))
    population: Path | None = Field(default=None, description=(
        "RMIA's population z: texts of the members' distribution that neither the target nor the "
        "reference models were trained on (same document rule as members)"))

    @model_validator(mode="after")
    def _files_or_testbed(self) -> DataSource:
        files = (self.members, self.non_members, self.canaries, self.population)
        if self.testbed and any(f is not None for f in files):
            raise ValueError("data: 'testbed' takes no files; give either 'testbed' or members/non_members")
        if not self.testbed and (self.members is None or self.non_members is None):
            raise ValueError("data needs 'members' and 'non_members' files, or the string 'testbed'")
        return self


DataField = Annotated[DataSource, BeforeValidator(_data_shorthand)]


class CanaryExposureAudit(_Strict):
    """Secret Sharer exposure of the inserted canaries and of ``n_fresh`` never-inserted candidates.
    ``method``: exact (score all of R), extrapolate (skew-normal over ``n_sample`` candidates) or auto
    (exact when |R| <= ``exact_max``)."""

    method: Literal["auto", "exact", "extrapolate"] = "auto"
    exact_max: int = Field(default=100_000, ge=1)
    n_sample: int = Field(default=2000, ge=10)
    n_fresh: int = Field(default=100, ge=1)
    seed: int = 0
    # the one-run DP audit of data.audit_canaries (Steinke, Nasr & Jagielski 2023)
    dp_delta: float = Field(default=1e-5, gt=0, lt=1, description="delta of the epsilon lower bound")
    dp_beta: float = Field(default=0.05, gt=0, lt=1, description="1 - confidence of the bound")
    dp_guess_fractions: list[Annotated[float, Field(gt=0, le=0.5)]] = Field(
        default_factory=lambda: [0.05, 0.1, 0.25, 0.5], min_length=1,
        description="guess 'in' / 'out' for this share of the candidates at each end; the best "
        "bound over the fractions is kept (Bonferroni over them)")


def _switch(value: Any) -> Any:
    """``true`` = on with the defaults, ``false`` = off (None); a mapping sets the options."""
    if value is True:
        return {}
    return None if value is False else value


class BlindBaseline(_Strict):
    """Das et al. 2024: a text-only classifier (word / character n-grams, date tokens), ``folds``-fold
    cross-validated; its AUC within the best attack's CI fires the distribution-shift guard."""

    folds: int = Field(default=5, ge=2)
    seed: int = 0


class DatasetInference(_Strict):
    """Maini et al. 2024: were the members, as a set, trained on? Fit on one half, Welch t-test on the
    other; ``alpha`` is the level the verdict reads the p-value at."""

    alpha: float = Field(default=0.05, gt=0, lt=1)
    seed: int = 0


class RmiaOptions(_Strict):
    """RMIA, offline (Zarifzadeh et al. 2024; :mod:`parrotwatch.detectors.audits.rmia`): ``offline_a`` the a
    of Pr(x) = 1/2 ((1 + a) mean_ref Pr(x | ref) + 1 - a), ``gamma`` the threshold on the pairwise ratio
    LR(x, z), ``population`` the most population texts z used (the first ones)."""

    offline_a: float = Field(default=1.0, ge=0, le=1)  # not ML Privacy Meter's 0.3: docs/audits.md
    gamma: float = Field(default=1.0, gt=0)
    population: int = Field(default=1000, ge=1)


class MembershipAudit(_Strict):
    """Membership-inference ROC (AUC with a bootstrap CI, TPR at 0.1% and 1% FPR) per method, the blind
    baseline guard and dataset inference (each on by default; ``false`` turns it off), and the options of
    method ``rmia``."""

    methods: list[MembershipMethod] = Field(default_factory=lambda: ["loss", "zlib", "lowercase", "min_k",
                                                                      "min_k_plus_plus"], min_length=1)
    k: float = Field(default=0.2, gt=0, le=1)
    n_bootstrap: int = Field(default=1000, ge=1)
    seed: int = 0
    blind_baseline: Annotated[BlindBaseline | None, BeforeValidator(_switch)] = BlindBaseline()
    dataset_inference: Annotated[DatasetInference | None, BeforeValidator(_switch)] = DatasetInference()
    rmia: RmiaOptions = RmiaOptions()

    @field_validator("methods")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"methods repeat: {v}")
        return v


class SamplingAudit(_Strict):
    """Carlini et al. 2021: ``n_samples`` top-k sampled generations of ``tokens`` tokens from the BOS,
    ranked by each metric; the ``top_n`` of each checked for a verbatim overlap of >= ``min_overlap_tokens``
    word tokens with the training data."""

    n_samples: int = Field(default=200, ge=1)
    tokens: int = Field(default=64, ge=1)
    top_k: int = Field(default=40, ge=1)
    top_n: int = Field(default=20, ge=1)
    min_overlap_tokens: int = Field(default=50, ge=1)
    seed: int = 0


class ExtractionAudit(_Strict):
    """Carlini et al. 2023 k-extractable rate of the training sequences (members and canaries), per
    number of times each is in the training set, for greedy decoding and each beam width."""

    prefix_tokens: int = Field(default=32, ge=1, description="k, the prompt length in tokens (BOS included)")
    suffix_tokens: int = Field(default=50, ge=1)
    min_suffix_tokens: int | None = Field(default=None, ge=1)
    num_beams: list[int] = Field(default_factory=lambda: [1], min_length=1)
    max_sequences: int | None = Field(default=None, ge=1)
    sampling: SamplingAudit | None = None

    @model_validator(mode="after")
    def _check(self) -> ExtractionAudit:
        if self.min_suffix_tokens is not None and self.min_suffix_tokens > self.suffix_tokens:
            raise ValueError("min_suffix_tokens must be <= suffix_tokens")
        if any(b < 1 for b in self.num_beams) or len(set(self.num_beams)) != len(self.num_beams):
            raise ValueError(f"num_beams must be distinct widths >= 1 (1 = greedy), got {self.num_beams}")
        return self


class RegurgitationAudit(_Strict):
    """Scan logged outputs (JSONL: inference events v1 with ``response``, or ``{"id", "text"}``) for
    verbatim overlaps of >= ``min_tokens`` tokens with the corpus ``index`` (``parrotwatch index build``);
    without ``index``, an exact index of the members is built with n = ``min_tokens``."""

    outputs: Path
    index: Path | None = None
    min_tokens: int = Field(default=50, ge=1)
    top_documents: int = Field(default=10, ge=1)
    # near-verbatim copies (normalised, edit-distance verified; detectors/audits/near_verbatim.py)
    near_verbatim_n: int = Field(default=8, ge=1, description="n-gram size of the candidate search "
                                 "(capped at min_tokens)")
    near_verbatim_min_similarity: float = Field(default=0.8, gt=0, le=1)
    near_verbatim_max_gap: int = Field(default=16, ge=0, description="edited words allowed between "
                                       "matching runs")


PersonalType = Literal["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "CRYPTO",
                       "DATE_OF_BIRTH"]


class PiiLeakageAudit(_Strict):
    """PII extraction and reconstruction (Lukas et al. 2023; :mod:`parrotwatch.audits.pii_leakage_audit`)
    of the personal data found in the members' texts, grouped by how many times each text was trained on;
    the non-members' PII is the never-trained baseline. ``distractors``: a JSONL file of ``{entity_type,
    value}`` of the same kinds and distribution that no model was trained on (reconstruction's wrong
    candidates: chance is 1 / (k + 1) only then)."""

    distractors: Path
    entity_types: list[PersonalType] = Field(
        default_factory=lambda: ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN",
                                 "CRYPTO", "DATE_OF_BIRTH"], min_length=1)
    k: int = Field(default=9, ge=1, description="distractors per reconstruction candidate set")
    margin_tokens: int = Field(default=8, ge=0, description="tokens generated beyond the value's length")
    max_targets: int = Field(default=1000, ge=1, description="PII spans audited at most (a seeded sample)")
    seed: int = 0


class Audits(_Strict):
    """The audits to run; leave one out to skip it."""

    canary_exposure: CanaryExposureAudit | None = None
    membership: MembershipAudit | None = None
    extraction: ExtractionAudit | None = None
    regurgitation: RegurgitationAudit | None = None
    pii_leakage: PiiLeakageAudit | None = None


class Storage(_Strict):
    """Bounds on ``audit_samples``: at most ``max_samples_per_audit`` rows per run and audit (a seeded
    sample per label beyond that), kept for the newest ``sample_runs_kept`` runs of the spec."""

    max_samples_per_audit: int = Field(default=2000, ge=0, le=100_000)
    sample_runs_kept: int = Field(default=20, ge=1)


def _cron(value: Any) -> Any:
    from croniter import croniter

    if value is None:
        return value
    if not isinstance(value, str) or len(value.split()) not in (5, 6) or not croniter.is_valid(
            value, second_at_beginning=True):
        raise ValueError(f"schedule must be a cron string of 5 fields (minute hour day month weekday) or "
                         f"6 with seconds first, e.g. '0 3 * * *' or '*/30 * * * * *'; got {value!r}")
    return value


class AuditSpec(_Strict):
    """One audit spec file."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    model: ModelField
    reference_model: Annotated[ModelSource | None, BeforeValidator(_path_shorthand)] = None
    data: DataField
    audits: Audits
    schedule: Annotated[str | None, BeforeValidator(_cron)] = None
    storage: Storage = Storage()
    reference_models: Annotated[ReferenceModels | None, BeforeValidator(_references_shorthand)] = None

    @model_validator(mode="after")
    def _consistent(self) -> AuditSpec:
        a = self.audits
        if not any((a.canary_exposure, a.membership, a.extraction, a.regurgitation, a.pii_leakage)):
            raise ValueError(f"audits is empty: give one or more of {', '.join(Audits.model_fields)}")
        if self.data.testbed and self.model.testbed is None:
            raise ValueError("data 'testbed' needs the model 'testbed: {preset, seed}'")
        if a.membership and "reference" in a.membership.methods and self.reference_model is None:
            raise ValueError("membership method 'reference' needs 'reference_model'")
        if a.membership and "rmia" in a.membership.methods:
            if self.reference_models is None:
                raise ValueError("membership method 'rmia' needs 'reference_models': a list of 1 to 4 models "
                                 "trained without the members, or {testbed_references: N} to train N on the "
                                 "testbed")
            if not self.data.testbed and self.data.population is None:
                raise ValueError("membership method 'rmia' needs population texts that neither the target "
                                 "nor the reference models were trained on: 'data.population' (or data "
                                 "'testbed')")
        for ref in self.reference_models.models if self.reference_models is not None else ():
            if ref.testbed is not None:
                raise ValueError("reference_models: a testbed trains on documents the audited texts come "
                                 "from; use 'testbed_references: N', which trains on disjoint data")
            same_path = ref.path is not None and ref.path == self.model.path
            if same_path or ref.model_dump() == self.model.model_dump():
                raise ValueError("reference_models: the audited model itself is no reference (every ratio "
                                 "would be 1): give models trained without the members")
        if (self.reference_models is not None and self.reference_models.testbed_references is not None
                and self.model.testbed is None):
            raise ValueError("reference_models 'testbed_references' needs the model "
                             "'testbed: {preset, seed}'")
        if (a.canary_exposure and not self.data.testbed and self.data.canaries is None
                and self.data.audit_canaries is None):
            raise ValueError("canary_exposure needs canaries: data 'testbed', data.canaries or "
                             "data.audit_canaries")
        if self.model.endpoint is not None:
            if a.pii_leakage:
                raise ValueError("pii_leakage needs a local model ('path' or 'testbed'): its extraction "
                                 "attack decodes greedily in the model's own tokens, which an endpoint does "
                                 "not return")
            if a.extraction:
                raise ValueError("extraction needs a local model ('path' or 'testbed'): an endpoint returns "
                                 "no token ids, and the k-extractable test works in the model's own tokens")
            if a.membership and "min_k_plus_plus" in a.membership.methods:
                raise ValueError("membership method 'min_k_plus_plus' needs the whole next-token "
                                 "distribution, which an endpoint does not return: drop it from methods "
                                 "or use a local model")
        return self

    def spec_hash(self) -> str:
        """sha256 of the validated spec as canonical JSON (defaults filled in, keys sorted)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _model_at(top: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class found at ``loc`` inside ``top`` (unwrapping Optional / Annotated / list)."""
    def unwrap(t: Any) -> Any:
        while True:
            origin = get_origin(t)
            if origin is Annotated:
                t = get_args(t)[0]
            elif origin in (Union, types.UnionType):
                models = [a for a in get_args(t) if isinstance(a, type) and issubclass(a, BaseModel)]
                return models[0] if models else t
            else:
                return t

    t: Any = top
    for part in loc:
        t = unwrap(t)
        if isinstance(part, int) and get_origin(t) is list:
            t = get_args(t)[0]
        elif isinstance(t, type) and issubclass(t, BaseModel) and part in t.model_fields:
            t = t.model_fields[part].annotation
        else:
            return None
    t = unwrap(t)
    return t if isinstance(t, type) and issubclass(t, BaseModel) else None


def explain(error: ValidationError) -> list[str]:
    """One line per problem: where, what, and for unknown or missing keys the valid keys there."""
    lines = []
    for err in error.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        if err["type"] in ("extra_forbidden", "missing"):
            model = _model_at(AuditSpec, loc[:-1])
            keys = list(model.model_fields) if model else []
            if err["type"] == "extra_forbidden":
                close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                lines.append(f"{where}: unknown key {loc[-1]!r}{hint}; valid keys: {', '.join(keys)}")
            else:
                lines.append(f"{where}: missing required key {loc[-1]!r}; valid keys: {', '.join(keys)}")
            continue
        path = ".".join(str(p) for p in loc) or "spec"
        msg = str(err["msg"]).removeprefix("Value error, ")
        got = "" if err["type"] == "value_error" or not loc else f" (got {err['input']!r})"
        lines.append(f"{path}: {msg}{got}")
    return lines


def parse_spec(data: Any, origin: str = "spec") -> AuditSpec:
    """Validate an already parsed spec mapping; relative file paths stay as written."""
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: expected a mapping with name, model, data and audits, "
                        f"got {type(data).__name__}")
    try:
        return AuditSpec.model_validate(data)
    except ValidationError as exc:
        lines = explain(exc)
        raise SpecError(f"{origin}: {len(lines)} problem(s)\n  " + "\n  ".join(lines)) from None


def load_spec(path: str | Path) -> AuditSpec:
    """Read and validate a spec YAML; file paths inside it are taken relative to the spec's folder."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read the spec: {exc}") from None
    spec = parse_spec(data, str(path))
    return resolve_paths(spec, path.parent)


def resolve_paths(spec: AuditSpec, base: Path) -> AuditSpec:
    """The spec with its relative file paths made absolute against ``base`` (the spec file's folder)."""
    def fix(p: Path | str | None):
        if p is None:
            return None
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q).resolve()

    updates: dict[str, Any] = {}
    def fix_model(m: ModelSource) -> ModelSource:
        return m if m.path is None else m.model_copy(update={"path": str(fix(m.path))})

    for key in ("model", "reference_model"):
        m = getattr(spec, key)
        if m is not None and m.path is not None:
            updates[key] = fix_model(m)
    if spec.reference_models is not None and spec.reference_models.models:
        models = [fix_model(m) for m in spec.reference_models.models]
        updates["reference_models"] = spec.reference_models.model_copy(update={"models": models})
    d = spec.data
    if not d.testbed:
        canaries = d.canaries.model_copy(update={"file": fix(d.canaries.file)}) if d.canaries else None
        updates["data"] = d.model_copy(update={"members": fix(d.members), "non_members": fix(d.non_members),
                                               "canaries": canaries,
                                               "audit_canaries": fix(d.audit_canaries),
                                               "population": fix(d.population)})
    else:
        updates["data"] = d.model_copy(update={"audit_canaries": fix(d.audit_canaries)})
    audits: dict[str, Any] = {}
    if (r := spec.audits.regurgitation) is not None:
        audits["regurgitation"] = r.model_copy(update={"outputs": fix(r.outputs), "index": fix(r.index)})
    if (pii := spec.audits.pii_leakage) is not None:
        audits["pii_leakage"] = pii.model_copy(update={"distractors": fix(pii.distractors)})
    if audits:
        updates["audits"] = spec.audits.model_copy(update=audits)
    return spec.model_copy(update=updates)
