"""The Parrotwatch ingestion API.

``create_app()`` builds it; ``python -m services.api`` serves it.
"""

from services.api.app import create_app

__all__ = ["create_app"]
