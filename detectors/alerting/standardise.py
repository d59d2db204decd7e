"""What the baseline detectors share: the alarm direction and how a deviation is standardised."""

from __future__ import annotations

import math
from typing import Literal

#: The side that alarms: ``"up"`` (the metric rose), ``"down"`` or ``"both"``.
Direction = Literal["up", "down", "both"]


def check_direction(direction: str) -> None:
    """Raise ``ValueError`` unless ``direction`` is ``up``, ``down`` or ``both``."""
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be 'up', 'down' or 'both', not {direction!r}")


def scale(sigma: float, mu: float, min_sigma: float, min_rel_sigma: float) -> float:
    """The standard deviation used to standardise: ``max(sigma, min_sigma, min_rel_sigma*|mu|)``.

    >>> scale(0.01, 100.0, 0.0, 0.02)
    2.0
    """
    return max(sigma, min_sigma, min_rel_sigma * abs(mu))


def standardise(d: float, unit: float) -> float:
    """``d / unit``, with ``+-inf`` (or 0 for ``d == 0``) when the unit is 0.

    >>> standardise(3.0, 1.5), standardise(-1.0, 0.0), standardise(0.0, 0.0)
    (2.0, -inf, 0.0)
    """
    if unit > 0:
        return d / unit
    return 0.0 if d == 0 else math.copysign(math.inf, d)
