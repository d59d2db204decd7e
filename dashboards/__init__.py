"""Grafana dashboards as code (Grafana 11.6, PostgreSQL datasource uid ``parrotwatch-pg``).

``DASHBOARDS`` holds every dashboard as data; :func:`build_all` emits their JSON models;
``parrotwatch dashboards build|push`` writes or uploads them (docs/dashboards.md).
"""

from __future__ import annotations

from typing import Any

from parrotwatch.dashboards.alerts import ALERTS
from parrotwatch.dashboards.calibration import CALIBRATION
from parrotwatch.dashboards.drift import DRIFT
from parrotwatch.dashboards.feedback import FEEDBACK
from parrotwatch.dashboards.grafana import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    GRAFANA_VERSION,
    Dashboard,
    dashboard,
)
from parrotwatch.dashboards.memorization import MEMORIZATION
from parrotwatch.dashboards.overview import OVERVIEW
from parrotwatch.dashboards.pipeline import PIPELINE
from parrotwatch.dashboards.quality import DRILLDOWN, QUALITY

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, QUALITY, DRILLDOWN, DRIFT, ALERTS, FEEDBACK,
                                     MEMORIZATION, PIPELINE, CALIBRATION)


def build_all() -> dict[str, dict[str, Any]]:
    """``{uid: dashboard JSON model}`` of every dashboard."""
    return {d.uid: dashboard(d) for d in DASHBOARDS}


__all__ = ["DASHBOARDS", "DATASOURCE_TYPE", "DATASOURCE_UID", "GRAFANA_VERSION", "Dashboard",
           "build_all"]
