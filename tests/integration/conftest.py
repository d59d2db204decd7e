"""The real local stack for integration tests: one Kafka broker and one PostgreSQL server per
test session (started by the project's own stack code), a database and a topic prefix per test."""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from parrotwatch.settings import Settings
from parrotwatch.stack.kafka import create_topics, produce
from parrotwatch.stack.local import REPO_ROOT, LocalStack, settings_env
from parrotwatch.stack.processes import ManagedProcess, stack_ports
from parrotwatch.traffic import keyed

pytestmark = pytest.mark.integration
_counter = itertools.count()


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    # Not under pytest's own temp root: another pytest session on the machine resets that root
    # to mode 0700, which locks the PostgreSQL server (its own system user) out of its data.
    home = Path(tempfile.mkdtemp(prefix="parrotwatch-it-"))
    # Kept after the session (like pytest's own temp dirs): failures point into its logs.
    # model-free by default (quality tests turn the detectors on); no wall-clock evaluation of a
    # silent stream (its own test turns it on), so no test's alerts depend on how long it idles
    return Settings(home=home, **stack_ports(), trigger_seconds=0.5, quality_detectors=[],
                    silence_after_seconds=0)


@pytest.fixture(scope="session")
def stack(base_settings) -> Iterator[LocalStack]:
    local = LocalStack(base_settings, say=lambda m: print(m, file=sys.stderr))
    local.up(stream=False, api=False)
    yield local
    local.down()


@dataclass
class Namespace:
    """One test's private slice of the shared stack: its topics and its database."""

    settings: Settings
    database_url: str

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def sql(self, query: str, *params):
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def scalar(self, query: str, *params):
        return self.sql(query, *params)[0][0]

    def producer(self) -> KafkaProducer:
        return KafkaProducer(bootstrap_servers=self.settings.bootstrap, acks="all",
                             max_request_size=8 * 1024 * 1024)

    def produce_events(self, events: list[dict], topic: str = "llm.inference.v1") -> None:
        """Inference events v1 onto the namespace's topic, keyed by request id; flushed."""
        produce(self.settings.bootstrap, self.topic(topic), keyed(events))

    def read_topic(self, name: str, expected: int, timeout: float = 60.0) -> list:
        """Every committed record of a topic; waits for ``expected`` then drains a little more."""
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap,
                                 isolation_level="read_committed", enable_auto_commit=False,
                                 auto_offset_reset="earliest", consumer_timeout_ms=1000)
        topic = self.topic(name)
        consumer.assign([TopicPartition(topic, p)
                         for p in consumer.partitions_for_topic(topic) or [0]])
        records, deadline, quiet = [], time.monotonic() + timeout, 0
        while time.monotonic() < deadline and quiet < 3:
            batch = list(consumer)
            records += batch
            quiet = quiet + 1 if len(records) >= expected and not batch else 0
        consumer.close()
        return records


@pytest.fixture
def namespace(stack, base_settings, request) -> Namespace:
    n = next(_counter)
    name = f"t{n}_{request.node.name[:30]}".lower().replace("[", "_").replace("]", "")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    url = stack.postgres.fresh_database(name)
    settings = base_settings.model_copy(update={"topic_prefix": f"{name}.", "database_url": url})
    create_topics(settings.bootstrap, settings.topic_prefix)
    return Namespace(settings=settings, database_url=url)


class StreamJob:
    """The scoring job as its own OS process, so that tests can ``kill -9`` it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        prefix = settings.topic_prefix.strip(".")
        self.process = ManagedProcess(f"stream-{prefix}", settings.run_dir,
                                      settings.logs_dir / f"stream-{prefix}.log")

    def start(self) -> StreamJob:
        self.process.start([sys.executable, "-m", "parrotwatch.streaming.job"],
                           env=settings_env(self.settings), cwd=REPO_ROOT)
        return self

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop(timeout=60)


@pytest.fixture
def stream_job(namespace) -> Iterator[Callable[..., StreamJob]]:
    jobs: list[StreamJob] = []

    def make(**overrides) -> StreamJob:
        job = StreamJob(namespace.settings.model_copy(update=overrides))
        jobs.append(job)
        return job

    yield make
    for job in jobs:
        job.stop()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             job: StreamJob | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if job is not None and not job.process.alive():
            raise AssertionError(f"stream job died while waiting for {what}; log "
                                 f"{job.process.log_path}")
        time.sleep(0.5)
    log = f"; stream log {job.process.log_path}" if job else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{log}")
