"""``python -m parrotwatch.services.api``: serve the API with uvicorn on ``api_host``:``api_port``."""

from __future__ import annotations

import logging
import sys

import uvicorn

from parrotwatch.services.api.app import MissingApiKeys, create_app
from parrotwatch.settings import load_settings

log = logging.getLogger("parrotwatch.services.api")
SWITCH_INTERVAL_S = 0.001


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    # Parsing runs in worker threads; with the default 5 ms GIL switch interval the event loop
    # waits up to 5 ms per hand-over behind them, several times per probe. 1 ms keeps /healthz
    # answering in a few ms while a large body is parsed (bench/api_abuse.py).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        app = create_app(settings)
    except MissingApiKeys as exc:
        log.error("%s", exc)
        sys.exit(2)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info")


if __name__ == "__main__":
    main()
