"""How many labels are enough: the expected half-width of the 95% CIs as a function of the
number of labels n, before any label exists.

A scenario gives the true rate p of bad answers, the detector's sensitivity Se and specificity
Sp, and the share a of the labels drawn among flagged requests (the pool keeps flagged requests
more often; a = r, the flagged share of the traffic, is uniform sampling). With
r = p Se + (1 - p)(1 - Sp), the flagged stratum sampled with pi_f = n a / (N r) and the rest with
pi_u = n (1 - a) / (N (1 - r)), the linearisation variances of :mod:`.estimators` have
expectations (large N, so 1 - pi ~ 1; Särndal, Swensson & Wretman 1992, 5.5):

    V(Se) = Se (1 - Se) / (n p)       * [(1 - Se) r / a + Se (1 - r) / (1 - a)],
    V(Sp) = Sp (1 - Sp) / (n (1 - p)) * [Sp r / a + (1 - Sp) (1 - r) / (1 - a)],
    V(p^) = (p / J)^2 V(Se) + ((1 - p) / J)^2 V(Sp),   J = Se + Sp - 1   (Rogan & Gladen 1978),

and the precision P(bad | flag) = p Se / r, estimated from the n a flagged labels alone, has
V = prec (1 - prec) / (n a). The half-width is z V^(1/2), z = 1.96: it shrinks as 1/sqrt(n), so
halving it takes four times the labels. Kappa has no such closed form under this design; the
record carries its bootstrap CI instead.

Oversampling flagged requests sharpens precision and specificity but blurs recall: the missed bad
answers hide among the unflagged ones, which are then sampled thinly and weigh heavily. A
half-width above about 0.25 means the normal interval is no guide (it is clipped to [0, 1]).

The default scenario (``python -m parrotwatch.detectors.calibration.planning``): 5% of answers
bad, a detector with Se = 0.8 and Sp = 0.95 (it flags r = 8.75%), and the default pool rates
(review_pool_rate 0.05, review_pool_flagged_rate 0.5) that make about half the labels flagged
ones, a = 0.5.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

LABELS = (25, 50, 100, 200, 400, 800, 1600)


@dataclass(frozen=True)
class Scenario:
    """What the planner assumes; ``flagged_share`` None means uniform sampling (a = r)."""

    prevalence: float = 0.05
    sensitivity: float = 0.8
    specificity: float = 0.95
    flagged_share: float | None = 0.5
    level: float = 0.95

    @property
    def raw_rate(self) -> float:
        """r = p Se + (1 - p)(1 - Sp), the share the detector flags."""
        p = self.prevalence
        return p * self.sensitivity + (1 - p) * (1 - self.specificity)

    @property
    def share(self) -> float:
        return self.raw_rate if self.flagged_share is None else self.flagged_share


DEFAULT = Scenario()


def _check(s: Scenario) -> None:
    if not (0 < s.prevalence < 1 and 0 < s.sensitivity < 1 and 0 < s.specificity < 1):
        raise ValueError("prevalence, sensitivity and specificity must lie strictly in (0, 1)")
    if s.sensitivity + s.specificity <= 1:
        raise ValueError("the detector must beat chance (sensitivity + specificity > 1)")
    if not 0 < s.share < 1:
        raise ValueError(f"flagged_share must lie strictly in (0, 1), got {s.share}")


def variances(s: Scenario, n: float) -> dict[str, float]:
    """Expected variances of Se^, Sp^, the corrected rate p^ and the precision with n labels.

    >>> v = variances(Scenario(0.1, 0.8, 0.9, flagged_share=None), 100)  # uniform sampling
    >>> round(v["sensitivity"], 6), round(v["specificity"], 6)  # Se(1-Se)/(n p), Sp(1-Sp)/(n(1-p))
    (0.016, 0.001)
    """
    _check(s)
    p, se, sp, r, a = s.prevalence, s.sensitivity, s.specificity, s.raw_rate, s.share
    v_se = se * (1 - se) / (n * p) * ((1 - se) * r / a + se * (1 - r) / (1 - a))
    v_sp = sp * (1 - sp) / (n * (1 - p)) * (sp * r / a + (1 - sp) * (1 - r) / (1 - a))
    youden = se + sp - 1
    precision = p * se / r
    return {"sensitivity": v_se, "specificity": v_sp,
            "corrected": (p / youden) ** 2 * v_se + ((1 - p) / youden) ** 2 * v_sp,
            "precision": precision * (1 - precision) / (n * a)}


def half_widths(s: Scenario, n: float) -> dict[str, float]:
    """Expected CI half-widths z sqrt(V) with n labels (see the module).

    >>> round(half_widths(DEFAULT, 400)["corrected"], 4)
    0.0201
    """
    z = float(norm.ppf(0.5 + s.level / 2))
    return {name: z * float(np.sqrt(v)) for name, v in variances(s, n).items()}


def plan(s: Scenario = DEFAULT, labels=LABELS) -> list[dict[str, float]]:
    """One row per number of labels: the expected half-widths of the corrected rate, precision
    and recall (= sensitivity), and how many of the labels are expected to be bad answers."""
    p, se, r, a = s.prevalence, s.sensitivity, s.raw_rate, s.share
    bad_share = a * p * se / r + (1 - a) * p * (1 - se) / (1 - r)
    rows = []
    for n in labels:
        h = half_widths(s, n)
        rows.append({"labels": n, "bad_labels": n * bad_share, "corrected": h["corrected"],
                     "precision": h["precision"], "recall": h["sensitivity"]})
    return rows


def markdown_table(s: Scenario = DEFAULT, labels=LABELS) -> str:
    """:func:`plan` as a markdown table, with the scenario above it.

    >>> print(markdown_table(labels=(100,)).splitlines()[-1])
    | 100 | 23 | ± 4.0 pts | ± 13.8 pts | ± 42.9 pts |
    """
    lines = [f"Scenario: {s.prevalence:.0%} of answers bad; the detector has sensitivity "
             f"{s.sensitivity:.2f} and specificity {s.specificity:.2f}, so it flags "
             f"{s.raw_rate:.2%} of them; {s.share:.1%} of the labels are flagged requests. "
             f"Half-widths of the {s.level:.0%} CIs, in percentage points.", "",
             "| labels | of them bad | corrected rate | precision | recall |",
             "|---:|---:|---:|---:|---:|"]
    for row in plan(s, labels):
        lines.append(f"| {row['labels']} | {row['bad_labels']:.0f} | ± {100 * row['corrected']:.1f} "
                     f"pts | ± {100 * row['precision']:.1f} pts | ± {100 * row['recall']:.1f} pts |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the table for the default scenario, or for one given on the command line."""
    parser = argparse.ArgumentParser(description="Expected CI half-widths by number of labels.")
    parser.add_argument("--prevalence", type=float, default=DEFAULT.prevalence)
    parser.add_argument("--sensitivity", type=float, default=DEFAULT.sensitivity)
    parser.add_argument("--specificity", type=float, default=DEFAULT.specificity)
    parser.add_argument("--flagged-share", type=float, default=DEFAULT.flagged_share,
                        help="share of the labels drawn among flagged requests")
    parser.add_argument("--uniform", action="store_true", help="uniform sampling (a = r)")
    args = parser.parse_args(argv)
    print(markdown_table(Scenario(args.prevalence, args.sensitivity, args.specificity,
                                  None if args.uniform else args.flagged_share)))


if __name__ == "__main__":
    main()
