"""A single-node KRaft Kafka broker on 127.0.0.1, its storage formatted once, logs to a file."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from parrotwatch.settings import (
    ALERTS_TOPIC,
    DLQ_TOPIC,
    FEEDBACK_TOPIC,
    INFERENCE_TOPIC,
    OTLP_SPANS_TOPIC,
    SCORES_TOPIC,
    Settings,
)
from parrotwatch.stack.errors import StackError
from parrotwatch.stack.jars import ensure_kafka_jars
from parrotwatch.stack.processes import ManagedProcess, port_in_use, wait_until

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
SINK_MARKERS_TOPIC = "parrotwatch.sink-markers"
TOPIC_PARTITIONS = {
    INFERENCE_TOPIC: 3,
    FEEDBACK_TOPIC: 3,
    SCORES_TOPIC: 3,
    ALERTS_TOPIC: 1,
    DLQ_TOPIC: 1,
    SINK_MARKERS_TOPIC: 1,
    OTLP_SPANS_TOPIC: 3,  # read by the OTLP bridge
}

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes={max_bytes}
replica.fetch.max.bytes={max_bytes}
log.retention.hours=168
"""

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
"""


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64, redrawn while it starts with '-'.

    Kafka's own ``Uuid.randomUuid`` redraws the same way, because its command-line tools take an
    id that starts with '-' for an option (1 draw in 64: CI hit it once).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaBroker:
    """The embedded broker of ``parrotwatch up`` (only when PARROTWATCH_KAFKA_BOOTSTRAP is unset)."""

    def __init__(self, settings: Settings, name: str = "kafka") -> None:
        self.settings = settings
        self.dir = settings.home / name
        self.log_file = settings.logs_dir / f"{name}.log"
        self.process = ManagedProcess(name, settings.run_dir, settings.logs_dir / f"{name}.out")

    def _write_config(self) -> Path:
        s = self.settings
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        props = self.dir / "server.properties"
        props.write_text(SERVER_PROPERTIES.format(
            port=s.kafka_port, controller_port=s.kafka_controller_port,
            data_dir=self.dir / "data", max_bytes=MAX_MESSAGE_BYTES))
        (self.dir / "log4j2.properties").write_text(LOG4J2.format(log_file=self.log_file))
        return props

    def _java(self, classpath: Path) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise StackError("Java not found on PATH: Kafka needs a JRE 17+ "
                             "(Debian: apt-get install openjdk-17-jre-headless)")
        return [java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.settings.logs_dir}", "-cp", f"{classpath}/*"]

    def _format_storage(self, java: list[str], props: Path,
                        cluster_id: str | None = None) -> None:
        if (self.dir / "data" / "meta.properties").exists():
            return
        # "--cluster-id=ID", not "-t ID": argparse reads an id that starts with '-' as an option.
        out = subprocess.run([*java, "kafka.tools.StorageTool", "format",
                              f"--cluster-id={cluster_id or new_cluster_id()}",
                              "-c", str(props), "--ignore-formatted"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise StackError(f"Kafka storage format failed:\n{out.stdout}\n{out.stderr}")

    def start(self, timeout: float = 90.0) -> None:
        if self.process.alive():
            self.wait_ready(timeout)
            return
        s = self.settings
        for port in (s.kafka_port, s.kafka_controller_port):
            if port_in_use(port):
                raise StackError(f"port {port} on 127.0.0.1 is taken by another process; free it or "
                                 "set PARROTWATCH_KAFKA_PORT / PARROTWATCH_KAFKA_CONTROLLER_PORT")
        jars = ensure_kafka_jars(s.jars_dir, s.logs_dir / "maven.log")
        props = self._write_config()
        java = self._java(jars)
        self._format_storage(java, props)
        self.process.start([*java, "kafka.Kafka", str(props)])
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        def ready() -> bool:
            admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap,
                                     request_timeout_ms=5000, client_id="parrotwatch-probe")
            try:
                return bool(admin.describe_cluster()["brokers"])
            finally:
                admin.close()

        wait_until(ready, timeout=timeout, proc=self.process, what="broker metadata")

    def stop(self) -> None:
        self.process.stop(timeout=30)


def produce(bootstrap: str, topic: str, payloads: Iterable[tuple[bytes | None, bytes]], *,
            rate: float | None = None) -> float:
    """Send ``(key, value)`` records with acks=all, optionally paced at ``rate`` per second;
    returns once all are acknowledged, with the seconds it took."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             batch_size=256 * 1024, max_request_size=MAX_MESSAGE_BYTES)
    start = time.perf_counter()
    try:
        for i, (key, value) in enumerate(payloads):
            if rate is not None and (delay := start + i / rate - time.perf_counter()) > 0:
                time.sleep(delay)
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()
    return time.perf_counter() - start


def create_topics(bootstrap: str, prefix: str = "") -> list[str]:
    """Create the contract topics explicitly (idempotent); returns the names created now."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="parrotwatch-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(f"{prefix}{name}", num_partitions=parts, replication_factor=1,
                     topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)})
            for name, parts in TOPIC_PARTITIONS.items()
            if f"{prefix}{name}" not in existing
        ]
        created = []
        for topic in wanted:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()
