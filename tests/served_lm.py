"""``parrotwatch testbed serve`` as a real server process for tests (the audits' endpoint backend,
the OpenTelemetry client test)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from parrotwatch.stack.processes import ManagedProcess, free_port, wait_until


@contextmanager
def served_testbed(model_dir: Path, run_dir: Path, name: str) -> Iterator[str]:
    """``http://127.0.0.1:PORT/v1`` of a server process serving ``model_dir`` as ``name``, until exit."""
    port = free_port()
    server = ManagedProcess("lm-server", run_dir, run_dir / "server.log")
    server.start([sys.executable, "-m", "parrotwatch.cli", "testbed", "serve", str(model_dir), "--name",
                  name, "--port", str(port), "--threads", "1"], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until(lambda: httpx.get(f"{url}/models", timeout=2).status_code == 200, timeout=120,
                   interval=0.3, proc=server, what="the LM server's /v1/models")
        yield url
    finally:
        server.stop()
