"""``python -m services.api``: serve the API with uvicorn on ``api_host``:``api_port``."""

from __future__ import annotations

import logging
import sys

import uvicorn

from parrotwatch.settings import load_settings
from services.api.app import MissingApiKeys, create_app

log = logging.getLogger("services.api")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    try:
        app = create_app(settings)
    except MissingApiKeys as exc:
        log.error("%s", exc)
        sys.exit(2)
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="info")


if __name__ == "__main__":
    main()
