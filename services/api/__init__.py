"""The Parrotwatch ingestion API.

``create_app()`` builds it; ``python -m parrotwatch.services.api`` serves it.
"""

from parrotwatch.services.api.app import create_app

__all__ = ["create_app"]
