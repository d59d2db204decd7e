"""``parrotwatch report`` on the database the real pipeline filled (tests/integration/filled_db.py),
checked in headless Chromium (Debian's package, scripts/install_chromium.sh) through the DevTools
protocol: the page loads without console errors or exceptions, every plot carries data points
and its image decodes, the alert and worst-request tables have rows, the drill-downs are linked,
the Calibration section draws its reliability diagram, agreement and rates from the records."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from parrotwatch.cli.report import report
from parrotwatch.dashboards import DASHBOARDS
from parrotwatch.dashboards.calibration import CALIBRATION, RELIABILITY, RELIABILITY_BINS
from tests.integration.chromium import browser, chromium_fixture  # noqa: F401 (the chromium fixture)
from tests.integration.filled_db import FilledDb, filled_database

pytestmark = pytest.mark.integration
INSPECT = """JSON.stringify({
  plots: [...document.querySelectorAll('figure.plot')].map(f => ({
    panel: f.dataset.panel, points: +f.dataset.points, series: +f.dataset.series,
    images: [...f.querySelectorAll('img')].map(i => [i.complete, i.naturalWidth])})),
  tables: [...document.querySelectorAll('section.panel')].filter(s => s.querySelector('table'))
    .map(s => ({panel: s.querySelector('h4').textContent,
                rows: s.querySelectorAll('tbody tr').length})),
  dashboards: [...document.querySelectorAll('section.dashboard')].map(s => s.id),
  drilldown_links: [...document.querySelectorAll('a[href^="#req-"]')].map(a => a.getAttribute('href')),
  failed: document.querySelectorAll('section.failed').length})"""


@pytest.fixture(scope="module")
def filled(stack, base_settings, tmp_path_factory) -> FilledDb:
    return filled_database(stack, base_settings, tmp_path_factory.mktemp("filled"))


def load_in_chromium(chromium: str, page: Path, timeout: float = 60) -> tuple[dict, list[str]]:
    """Open ``page`` in headless Chromium; the DOM summary (INSPECT) and every console error,
    uncaught exception and error log entry."""
    with browser(chromium, timeout=timeout) as open_page:
        tab = open_page(page.resolve().as_uri())
        tab.wait_loaded()
        tab.settle(0.5)  # late console messages, if any
        return json.loads(tab.js(INSPECT)), tab.problems


def test_the_checker_sees_console_errors_and_broken_plots(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<figure class="plot" data-points="0" data-series="0">'
                    '<img src="data:image/png;base64,AAAA"></figure>'
                    '<script>console.error("boom"); undefinedFunction();</script></body></html>')
    dom, problems = load_in_chromium(chromium, page)
    assert any("boom" in p for p in problems) and any("undefinedFunction" in p for p in problems)
    assert dom["plots"] == [{"points": 0, "series": 0, "images": [[True, 0]]}]  # broken image


def test_report_renders_every_panel_with_data(filled, chromium, tmp_path, monkeypatch):
    monkeypatch.setenv("PARROTWATCH_DATABASE_URL", filled.url)
    monkeypatch.setenv("PARROTWATCH_HOME", str(filled.settings.home))
    app = typer.Typer()
    app.command()(report)
    app.command("noop")(lambda: None)  # a multi-command app, as under `parrotwatch`
    out = tmp_path / "report.html"
    tr = filled.time_range
    args = ["report", "--from", tr.start.isoformat(), "--to", tr.end.isoformat(), "-o", str(out)]
    started = time.monotonic()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    print(f"report rendered in {time.monotonic() - started:.1f} s, {out.stat().st_size} bytes")
    assert "0 panels without data" in result.output, result.output
    expected = [d for d in DASHBOARDS if d.uid != "parrotwatch-drilldown"]
    n = len(expected)
    assert f"[{n + 1}/" not in result.output and f"[{n}/{n}] {expected[-1].title}" in result.output

    dom, problems = load_in_chromium(chromium, out)
    assert problems == []
    assert dom["failed"] == 0
    assert dom["dashboards"][:len(expected)] == [d.uid for d in expected]
    plots = [p for d in expected for p in d.panels()
             if p.kind in ("timeseries", "piechart", "xychart")]
    assert len(dom["plots"]) == len(plots) > 20
    for plot in dom["plots"]:
        assert plot["points"] > 0 and plot["series"] > 0, plot
        assert plot["images"] and all(ok and width > 0 for ok, width in plot["images"]), plot
    tables = {t["panel"]: t["rows"] for t in dom["tables"]}
    assert tables["Alerts"] > 0 and tables["Worst requests by toxicity"] > 0
    check_calibration_section(dom, tables)
    drill = sorted(set(dom["drilldown_links"]))
    assert len(drill) == 5
    assert {f"#{d}" for d in dom["dashboards"] if d.startswith("req-")} == set(drill)
    text = re.sub(r"<[^>]*>", " ", out.read_text())  # the visible text, without the inlined PNGs
    decimals = re.findall(r"\d+\.\d+", text)
    significant = [len(d.replace(".", "").lstrip("0")) for d in decimals]
    raw = [d for d, n in zip(decimals, significant, strict=True) if n > 4]
    assert decimals and not raw, raw[:5]  # numbers come to 4 significant digits, not raw floats


def check_calibration_section(dom: dict, tables: dict[str, int]) -> None:
    """The Calibration section: one reliability curve per detector over every segment (and per
    model/app), agreement and corrected-vs-raw rates per detector, applied thresholds listed."""
    assert CALIBRATION.uid in dom["dashboards"]
    plots = {p["panel"]: p for p in dom["plots"]}
    detectors = 3
    assert plots[RELIABILITY.title]["series"] >= detectors
    assert plots[RELIABILITY.title]["points"] >= detectors * 2  # several bins per curve
    assert tables[RELIABILITY_BINS.title] >= plots[RELIABILITY.title]["points"]
    for title in ("Cohen's kappa: detector vs reviewers", "Corrected vs raw rate"):
        assert plots[title]["series"] >= detectors * 2, plots[title]  # values and their CI
    assert plots["Krippendorff's alpha between reviewers"]["points"] > 0
    assert tables["Applied thresholds"] == 2  # the revoked one and the live one
    assert tables["Latest calibration per detector and segment"] >= detectors


def test_report_help_and_bad_range():
    app = typer.Typer()
    app.command()(report)
    app.command("noop")(lambda: None)
    helped = CliRunner().invoke(app, ["report", "--help"])
    assert helped.exit_code == 0 and "--from" in helped.output and "Grafana" in helped.output
    bad = CliRunner().invoke(app, ["report", "--from", "now", "--to", "now-1h", "-o", "x.html"])
    assert bad.exit_code == 2 and "must be after" in bad.output
