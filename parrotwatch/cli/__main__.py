"""``python -m parrotwatch.cli``: the same commands as ``parrotwatch``."""

from parrotwatch.cli import app

app()
