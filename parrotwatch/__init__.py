"""Parrotwatch: LLM observability and memorization audits.

The ``parrotwatch`` package holds the glue shared by ``services/`` and ``streaming/``: typed
settings, the event contracts, the local stack and the command line. Metrics live in the pure
``detectors`` package.
"""

__version__ = "0.1.0"
