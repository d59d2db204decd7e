"""The review label schema (``parrotwatch/data/review_labels.yaml``) and the labels a reviewer
submits against it.

A schema is a list of labels, each a ``boolean`` (yes / no) or a ``scale`` (integers from ``min``
to ``max``). ``calibrates`` names the detector score (metric registry) a boolean label measures,
a yes counting as a bad answer; ``shortcut`` is the review page's key for yes (Shift + key for
no). Every label is required unless it says ``required: false``. A deployment points
``PARROTWATCH_REVIEW_LABELS`` at its own copy; :func:`load_label_schema` refuses a schema that
the review page or the calibration could misread, naming the file, the label and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from parrotwatch.detectors.metrics import SCORE_NAMES

#: The most characters a reviewer's free comment may have.
COMMENT_MAX_CHARS = 4_000
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
KINDS = ("boolean", "scale")
#: keys the review page keeps for itself: s = skip; digits set a scale
RESERVED_SHORTCUTS = frozenset("s")
_FIELDS = frozenset({"key", "kind", "question", "calibrates", "shortcut", "min", "max",
                     "required"})
_ECHO = 60  # characters of a submitted key quoted back in an error


class LabelSchemaError(ValueError):
    """The schema file is unreadable or breaks a rule; the message names the file and the fix."""


class LabelError(ValueError):
    """Submitted labels do not fit the schema; ``problems`` lists what to fix, one per entry."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class LabelSpec:
    """One question a reviewer answers."""

    key: str
    kind: Literal["boolean", "scale"]
    question: str
    calibrates: str | None = None
    shortcut: str | None = None
    min: int | None = None
    max: int | None = None
    required: bool = True

    def public(self) -> dict[str, Any]:
        spec = {"key": self.key, "kind": self.kind, "question": self.question,
                "required": self.required, "calibrates": self.calibrates,
                "shortcut": self.shortcut}
        if self.kind == "scale":
            spec |= {"min": self.min, "max": self.max}
        return spec

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this label, or ``None`` when it fits."""
        if self.kind == "boolean":
            if isinstance(value, bool):
                return None
            return f"label {self.key!r} is yes/no: send true or false, not {_show(value)}"
        if isinstance(value, bool) or not isinstance(value, int):
            return (f"label {self.key!r} is a scale: send an integer from {self.min} to "
                    f"{self.max}, not {_show(value)}")
        if not self.min <= value <= self.max:
            return f"label {self.key!r} must be from {self.min} to {self.max}, not {value}"
        return None


@dataclass(frozen=True)
class LabelSchema:
    """The labels of a review, in the order the page shows them, and the file they came from."""

    labels: tuple[LabelSpec, ...]
    source: str

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(spec.key for spec in self.labels)

    def public(self) -> dict[str, Any]:
        """The schema as ``GET /v1/review/schema`` answers it."""
        return {"labels": [spec.public() for spec in self.labels],
                "comment": {"required": False, "max_chars": COMMENT_MAX_CHARS}}

    def validate(self, submitted: Mapping[str, Any]) -> dict[str, bool | int]:
        """``submitted`` checked against the schema: the labels to store (optional labels left
        out or null are dropped). Raises :class:`LabelError` listing every problem: unknown
        keys (with the valid ones), wrong types, values out of range, missing labels."""
        by_key = {spec.key: spec for spec in self.labels}
        problems, clean = [], {}
        unknown = [key for key in submitted if key not in by_key]
        if unknown:
            shown = ", ".join(repr(key[:_ECHO]) for key in unknown[:5])
            problems.append(f"unknown label(s) {shown}; this schema's labels are "
                            f"{', '.join(self.keys)}")
        for spec in self.labels:
            value = submitted.get(spec.key)
            if value is None:
                if spec.required:
                    problems.append(f"label {spec.key!r} is missing: {spec.question}")
                continue
            problem = spec.problem(value)
            if problem:
                problems.append(problem)
            else:
                clean[spec.key] = value
        if problems:
            raise LabelError(problems)
        return clean


def default_schema_path() -> Path:
    return Path(str(resources.files("parrotwatch") / "data" / "review_labels.yaml"))


def load_label_schema(path: Path | str | None = None) -> LabelSchema:
    """The schema in ``path`` (``settings.review_labels``; ``None`` = the shipped default),
    checked: kinds, lower-case unique keys, known ``calibrates`` scores (one label each), unique
    single-letter shortcuts. Raises :class:`LabelSchemaError` saying where and what to fix."""
    path = Path(path) if path is not None else default_schema_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabelSchemaError(f"cannot read the label schema {path}: {exc.strerror}; set "
                               "PARROTWATCH_REVIEW_LABELS to an existing YAML file") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LabelSchemaError(f"label schema {path} is not valid YAML: {exc}") from exc
    entries = document.get("labels") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise LabelSchemaError(f"label schema {path}: expected a mapping with a non-empty list "
                               "'labels:' of entries (key, kind, question, ...)")
    specs = [_spec(path, i, entry) for i, entry in enumerate(entries)]
    _check_unique(path, specs)
    return LabelSchema(tuple(specs), str(path))


def calibration_labels(schema: LabelSchema) -> dict[str, str]:
    """``{detector score: label key}`` of the labels that calibrate a detector."""
    return {spec.calibrates: spec.key for spec in schema.labels if spec.calibrates}


def _spec(path: Path, index: int, entry: object) -> LabelSpec:
    where = f"label schema {path}, label #{index + 1}"
    if not isinstance(entry, dict):
        raise LabelSchemaError(f"{where}: expected a mapping (key: ..., kind: ...), got "
                               f"{_show(entry)}")
    key = entry.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise LabelSchemaError(f"{where}: key {_show(key)} must be a lower-case identifier "
                               "(a letter, then letters, digits or _; 40 characters at most)")
    where = f"label schema {path}, label {key!r}"
    extra = sorted(set(entry) - _FIELDS, key=str)
    if extra:
        raise LabelSchemaError(f"{where}: unknown field(s) {extra}; valid: {sorted(_FIELDS)}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise LabelSchemaError(f"{where}: kind {_show(kind)} must be one of {', '.join(KINDS)}")
    question = entry.get("question")
    if not isinstance(question, str) or not question.strip():
        raise LabelSchemaError(f"{where}: add a 'question' (the text the reviewer answers)")
    required = entry.get("required", True)
    if not isinstance(required, bool):
        raise LabelSchemaError(f"{where}: required must be true or false")
    low, high = _bounds(where, kind, entry)
    return LabelSpec(key=key, kind=kind, question=question.strip(),
                     calibrates=_calibrates(where, kind, entry.get("calibrates")),
                     shortcut=_shortcut(where, kind, entry.get("shortcut")),
                     min=low, max=high, required=required)


def _bounds(where: str, kind: str, entry: dict) -> tuple[int | None, int | None]:
    low, high = entry.get("min"), entry.get("max")
    if kind == "boolean":
        if low is not None or high is not None:
            raise LabelSchemaError(f"{where}: min and max belong to scale labels; remove them "
                                   "or make it kind: scale")
        return None, None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise LabelSchemaError(f"{where}: a scale needs integer min and max (e.g. min: 1, "
                               f"max: 5), got min {_show(low)}, max {_show(high)}")
    if low >= high:
        raise LabelSchemaError(f"{where}: min ({low}) must be below max ({high})")
    return low, high


def _calibrates(where: str, kind: str, name: object) -> str | None:
    if name is None:
        return None
    if name not in SCORE_NAMES:
        raise LabelSchemaError(f"{where}: calibrates {_show(name)} is not a score of the metric "
                               f"registry; use one of {', '.join(SCORE_NAMES)}")
    if kind != "boolean":
        raise LabelSchemaError(f"{where}: only a yes/no label can calibrate a detector (a yes "
                               "counts as a bad answer); make it kind: boolean or remove "
                               "calibrates")
    return name


def _shortcut(where: str, kind: str, key: object) -> str | None:
    if key is None:
        return None
    if kind != "boolean":
        raise LabelSchemaError(f"{where}: a scale is set with the digit keys; remove its "
                               "shortcut")
    if not isinstance(key, str) or not re.fullmatch(r"[a-z]", key):
        raise LabelSchemaError(f"{where}: shortcut {_show(key)} must be one lower-case letter "
                               "(Shift + the letter answers no)")
    if key in RESERVED_SHORTCUTS:
        raise LabelSchemaError(f"{where}: shortcut {key!r} is the review page's skip key; "
                               "choose another letter")
    return key


def _check_unique(path: Path, specs: list[LabelSpec]) -> None:
    for field, what in (("key", "key"), ("shortcut", "shortcut"),
                        ("calibrates", "detector to calibrate")):
        seen: set[str] = set()
        for spec in specs:
            value = getattr(spec, field)
            if value is None:
                continue
            if value in seen:
                raise LabelSchemaError(f"label schema {path}, label {spec.key!r}: {what} "
                                       f"{value!r} is used by another label; each must be "
                                       "unique")
            seen.add(value)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _ECHO else text[:_ECHO] + "..."
