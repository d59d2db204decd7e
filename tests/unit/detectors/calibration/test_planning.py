"""The planner's analytic CI half-widths against the spread of the estimators in simulation."""

from __future__ import annotations

import numpy as np
import pytest

from parrotwatch.detectors.calibration.estimators import hajek_ratio, rogan_gladen
from parrotwatch.detectors.calibration.planning import (
    DEFAULT,
    LABELS,
    Scenario,
    half_widths,
    main,
    markdown_table,
    plan,
    variances,
)


def _spread(s: Scenario, n: int, reps: int = 400, population: int = 200_000) -> dict[str, float]:
    """Empirical SDs of the corrected rate, precision and recall over ``reps`` samples of a
    population with exactly the scenario's rates, flagged and unflagged requests sampled
    (Poisson) so that a share ``s.share`` of the n expected labels is flagged."""
    bad = np.arange(population) < round(population * s.prevalence)
    n_bad = bad.sum()
    flags = np.where(bad, np.arange(population) < round(n_bad * s.sensitivity),
                     np.arange(population) >= population - round((population - n_bad) * (1 - s.specificity)))
    r = flags.mean()
    pi = np.where(flags, n * s.share / (population * r), n * (1 - s.share) / (population * (1 - r)))
    rng = np.random.default_rng(0)
    values = {"corrected": [], "precision": [], "sensitivity": []}
    for _ in range(reps):
        i = np.flatnonzero(rng.random(population) < pi)
        f, y, p = flags[i].astype(float), bad[i].astype(float), pi[i]
        values["corrected"].append(rogan_gladen(r, f, y, p).corrected.value)
        values["precision"].append(hajek_ratio(f * y, f, p).value)
        values["sensitivity"].append(hajek_ratio(f * y, y, p).value)
    return {k: float(np.nanstd(v)) for k, v in values.items()}


@pytest.mark.parametrize("scenario", [DEFAULT, Scenario(0.1, 0.75, 0.9, flagged_share=None)],
                         ids=["default-oversampled", "uniform"])
@pytest.mark.parametrize("n", [400, 1600])
def test_the_analytic_width_matches_simulation(scenario, n):
    empirical = _spread(scenario, n)
    analytic = variances(scenario, n)
    for name in ("corrected", "precision", "sensitivity"):
        assert np.sqrt(analytic[name]) == pytest.approx(empirical[name], rel=0.15), name


def test_the_width_shrinks_as_one_over_root_n():
    rows = plan(DEFAULT, (100, 400))
    assert rows[1]["corrected"] == pytest.approx(rows[0]["corrected"] / 2)
    assert half_widths(DEFAULT, 400)["corrected"] == pytest.approx(rows[1]["corrected"])


def test_oversampling_flagged_sharpens_precision_and_blurs_recall():
    uniform = half_widths(Scenario(flagged_share=None), 400)
    oversampled = half_widths(DEFAULT, 400)
    assert oversampled["precision"] < uniform["precision"]
    assert oversampled["sensitivity"] > uniform["sensitivity"]


def test_the_table_lists_every_count(capsys):
    table = markdown_table()
    assert [line.split("|")[1].strip() for line in table.splitlines()[4:]] == [str(n) for n in LABELS]
    main(["--uniform"])
    assert "8.8% of the labels are flagged" in capsys.readouterr().out


def test_a_detector_no_better_than_chance_is_refused():
    with pytest.raises(ValueError, match="beat chance"):
        variances(Scenario(0.1, 0.5, 0.5), 100)


def test_the_docs_show_the_table_this_module_prints():
    """docs/review.md's "how many labels" table is this module's output, not a stale copy."""
    import re
    from pathlib import Path

    from parrotwatch.detectors.calibration.planning import markdown_table

    text = (Path(__file__).resolve().parents[4] / "docs" / "review.md").read_text()
    shown = re.search(r"<!-- planning-table:start -->\n(.*?)\n<!-- planning-table:end -->", text, re.S)
    assert shown, "docs/review.md has lost its planning-table markers"
    assert shown.group(1).strip() == markdown_table().strip(), (
        "regenerate the table: python -m parrotwatch.detectors.calibration.planning")
