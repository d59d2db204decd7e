"""Reading stored review labels for calibration, defensively.

``review_labels.labels`` is validated by the API when a reviewer submits it, but the calibration
job reads whatever the table holds (an older schema, a buggy client writing SQL directly): a
value that is not a yes/no answer is skipped with its reason, never trusted and never a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def calibrated_labels(path: Path | str | None = None) -> dict[str, str]:
    """``{detector score: label key}`` of the label schema in ``path`` (None: the shipped one)."""
    from parrotwatch.contracts.review_labels import calibration_labels, load_label_schema

    return calibration_labels(load_label_schema(path))


def yes_no(labels: Any, key: str) -> tuple[float | None, str | None]:
    """(1.0 for yes = a bad answer, 0.0 for no, None) of ``labels[key]``, with the reason when
    the stored value cannot be read as an answer; (None, None) when the label is simply absent.

    >>> yes_no({"toxic": True, "extra": [1]}, "toxic"), yes_no({"toxic": False}, "toxic")
    ((1.0, None), (0.0, None))
    >>> yes_no({"helpful": 3}, "toxic")
    (None, None)
    >>> yes_no({"toxic": "yes"}, "toxic")
    (None, "label 'toxic' is 'yes', not true or false")
    >>> yes_no(["toxic"], "toxic")
    (None, 'labels are a list, not an object')
    """
    if not isinstance(labels, dict):
        return None, f"labels are a {_kind(labels)}, not an object"
    if key not in labels or labels[key] is None:
        return None, None
    value = labels[key]
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    text = repr(value)
    return None, f"label {key!r} is {text if len(text) <= 40 else text[:40] + '...'}, not true or false"


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(
        type(value), type(value).__name__)
