"""Shared by ``bench/api_*.py``: an API process on a broker (started here unless ``--bootstrap``
names one), a /healthz prober, an RSS sampler and percentiles."""

from __future__ import annotations

import math
import multiprocessing
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.settings import Settings  # noqa: E402
from parrotwatch.stack.kafka import KafkaBroker, create_topics  # noqa: E402
from parrotwatch.stack.local import REPO_ROOT, settings_env  # noqa: E402
from parrotwatch.stack.processes import ManagedProcess, stack_ports, wait_until  # noqa: E402


@dataclass
class ApiUnderTest:
    settings: Settings
    process: ManagedProcess
    key: str

    @property
    def url(self) -> str:
        return self.settings.api_url

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    def rss_bytes(self) -> int:
        pid = self.process.pid()
        return psutil.Process(pid).memory_info().rss if pid else 0


@contextmanager
def api_under_test(bootstrap: str | None, prefix: str, **overrides) -> Iterator[ApiUnderTest]:
    """A fresh ``python -m parrotwatch.services.api`` with its own key, topics under ``prefix``, ready."""
    home = Path(tempfile.mkdtemp(prefix="pw-bench-api-"))
    key = secrets.token_urlsafe(24)
    settings = Settings(home=home, **stack_ports(), kafka_bootstrap=bootstrap, topic_prefix=prefix,
                        api_keys=[SecretStr(key)], **overrides)
    broker = None
    if bootstrap is None:
        broker = KafkaBroker(settings)
        print(f"kafka: starting on {settings.bootstrap}", file=sys.stderr)
        broker.start()
    process = ManagedProcess("bench-api", settings.run_dir, settings.logs_dir / "bench-api.log")
    try:
        create_topics(settings.bootstrap, prefix)
        process.start([sys.executable, "-m", "parrotwatch.services.api"], env=settings_env(settings),
                      cwd=REPO_ROOT)
        wait_until(lambda: httpx.get(f"{settings.api_url}/readyz", timeout=2).status_code == 200,
                   timeout=60, proc=process, what="/readyz")
        yield ApiUnderTest(settings, process, key)
    finally:
        process.stop()
        if broker is not None:
            broker.stop()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _probe_loop(url: str, interval: float, stop, out) -> None:
    """In a child process (so the load generator's GIL does not delay the probes): GET /healthz
    every ``interval`` s until ``stop`` is set, then send ``(latencies, failures)`` on ``out``."""
    latencies, failures = [], 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            failures += not ok
            stop.wait(interval)
    out.send((latencies, failures))


@dataclass
class Prober:
    """GET /healthz every ``interval`` s from a child process; the latencies (s) of the answers,
    the failures, and the API's largest RSS seen meanwhile (sampled every 20 ms)."""

    api: ApiUnderTest
    interval: float = 0.01
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    peak_rss: int = 0

    def __post_init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._stop = threading.Event()
        self._child_stop = context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._child = context.Process(target=_probe_loop, daemon=True,
                                      args=(self.api.url, self.interval, self._child_stop, send))
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            with suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, self.api.rss_bytes())
            self._stop.wait(0.02)

    def __enter__(self) -> Prober:
        self._child.start()
        self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        self._child_stop.set()
        self._stop.set()
        self.latencies, self.failures = self._receive.recv()
        self._child.join()
        self._sampler.join()

    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000


def machine() -> str:
    import platform

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")
