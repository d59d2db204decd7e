"""Parrotwatch services: the ingestion API, the alert dispatcher and the audit scheduler."""
