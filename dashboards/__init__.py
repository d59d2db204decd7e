"""Grafana dashboards as code (Grafana 11.6, PostgreSQL datasource uid ``parrotwatch-pg``).

``DASHBOARDS`` holds every dashboard as data; :func:`build_all` emits their JSON models;
``parrotwatch dashboards build|push`` writes or uploads them (docs/dashboards.md).
"""

from __future__ import annotations

from typing import Any

from dashboards.alerts import ALERTS
from dashboards.drift import DRIFT
from dashboards.feedback import FEEDBACK
from dashboards.grafana import DATASOURCE_TYPE, DATASOURCE_UID, GRAFANA_VERSION, Dashboard, dashboard
from dashboards.memorization import MEMORIZATION
from dashboards.overview import OVERVIEW
from dashboards.pipeline import PIPELINE
from dashboards.quality import DRILLDOWN, QUALITY

DASHBOARDS: tuple[Dashboard, ...] = (OVERVIEW, QUALITY, DRILLDOWN, DRIFT, ALERTS, FEEDBACK,
                                     MEMORIZATION, PIPELINE)


def build_all() -> dict[str, dict[str, Any]]:
    """``{uid: dashboard JSON model}`` of every dashboard."""
    return {d.uid: dashboard(d) for d in DASHBOARDS}


__all__ = ["DASHBOARDS", "DATASOURCE_TYPE", "DATASOURCE_UID", "GRAFANA_VERSION", "Dashboard",
           "build_all"]
