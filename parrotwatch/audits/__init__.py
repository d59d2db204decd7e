"""Audit jobs: a strict spec YAML, a runner that stores runs in PostgreSQL, an HTML report and a cron
scheduler. The audit math lives in :mod:`parrotwatch.detectors.audits`; this package only feeds it and
keeps results."""
