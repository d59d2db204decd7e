"""deploy/k8s/otlp-bridge.yaml (issue 16): the bridge's Kafka user may touch exactly what the
bridge's code touches, observed by running the bridge's own code on the Deployment's environment
(not a second copy of the names); the image's ``otlp-bridge`` role runs the bridge module with
its arguments; replicas, rollout and grace period fit the consumer group, the topic's partitions
and the bridge's acknowledgement bound. The hardening, settings and network flows every
Deployment shares are checked in test_manifests.py and test_security.py."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from kafka.structs import TopicPartition

from parrotwatch.services.otlp_bridge import bridge as bridge_module
from parrotwatch.services.otlp_bridge.bridge import OtlpBridge
from parrotwatch.services.otlp_bridge.translate import MEDIA
from parrotwatch.settings import DLQ_TOPIC, INFERENCE_TOPIC
from parrotwatch.stack.kafka import TOPIC_PARTITIONS
from tests.unit.deploy.test_manifests import DEPLOY, _env_value, _settings_from, k8s_docs, pod_specs

ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
FIXTURE = (Path(__file__).parents[1] / "parrotwatch" / "contracts" / "otlp_fixtures"
           / "openai_v2.pb")
WHERE = "Deployment/otlp-bridge"


@pytest.fixture(scope="module")
def docs() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in k8s_docs(include_examples=False)}


@pytest.fixture(scope="module")
def container(docs) -> dict:
    ((_where, spec),) = [(w, s) for d in docs.values() for w, s in pod_specs(d) if w == WHERE]
    (container,) = spec["containers"]
    return container


def deployment_env(docs, container) -> dict[str, str]:
    """The container's PARROTWATCH_* environment, as Kubernetes assembles it (envFrom, then env)."""
    data = {(d["kind"], d["metadata"]["name"]): {**d.get("data", {}), **d.get("stringData", {})}
            for d in k8s_docs() if d["kind"] in ("ConfigMap", "Secret")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        env |= data[(kind, (source.get("configMapRef") or source.get("secretRef"))["name"])]
    env |= {e["name"]: _env_value(e, data) for e in container.get("env", [])}
    return {k: v for k, v in env.items() if k.startswith("PARROTWATCH_")}


class RecordingProducer:
    """Stands for the bridge's Kafka producer: which topics does it write, and what."""

    def __init__(self) -> None:
        self.written: dict[str, int] = {}

    def send_all(self, topic: str, records) -> None:
        self.written[topic] = self.written.get(topic, 0) + len(records)


def observed_access(settings, monkeypatch) -> set[tuple[str, str, frozenset[str]]]:
    """(resource type, name, operations) the bridge needs, watched while its code runs: the topic
    and group its consumer is created with, and the topics one batch is written to (a recorded
    OpenAI payload gives events, an undecodable record a dead letter)."""
    subscribed = {}

    def consumer_when_reachable(stop, topic, settings, log, **options):
        subscribed.update(topic=topic, group=options["group_id"])
        return None  # run() then returns at once

    monkeypatch.setattr(bridge_module, "consumer_when_reachable", consumer_when_reachable)
    bridge = OtlpBridge(settings, threading.Event())
    bridge.run()
    bridge.producer = RecordingProducer()
    records = [SimpleNamespace(topic=subscribed["topic"], partition=0, offset=offset,
                               timestamp=1_700_000_000_000, value=value)
               for offset, value in enumerate([FIXTURE.read_bytes(), b"\x0a\xff\xff\xff not OTLP"])]
    bridge.write({TopicPartition(subscribed["topic"], 0): records})
    assert bridge.counts.events >= 1 and bridge.counts.dead_letters == 1  # both outputs exercised
    read, write = frozenset({"Read", "Describe"}), frozenset({"Write", "Describe"})
    return ({("topic", subscribed["topic"], read), ("group", subscribed["group"], read)}
            | {("topic", topic, write) for topic in bridge.producer.written})


def test_the_bridges_kafka_user_allows_exactly_what_the_bridge_uses(docs, container, monkeypatch):
    settings = _settings_from(deployment_env(docs, container), monkeypatch)
    user = docs[("KafkaUser", settings.kafka_sasl_username)]
    granted = set()
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl["resource"]["patternType"] == "literal" and acl.get("type", "allow") == "allow"
        granted.add((acl["resource"]["type"], acl["resource"]["name"], frozenset(acl["operations"])))
    observed = observed_access(settings, monkeypatch)
    assert granted == observed
    # and they are the settings' own names: the exporter's topic, the two output topics
    assert {name for kind, name, _ in observed if kind == "topic"} == {
        settings.topic(settings.otlp_kafka_topic), settings.topic(INFERENCE_TOPIC),
        settings.topic(DLQ_TOPIC)}


def test_the_bridge_reads_the_exporter_topic_kafka_yaml_creates(docs, container, monkeypatch):
    settings = _settings_from(deployment_env(docs, container), monkeypatch)
    assert settings.otlp_kafka_encoding in MEDIA  # an encoding the bridge decodes
    (topic,) = [d for d in docs.values() if d["kind"] == "KafkaTopic"
                and d["spec"]["topicName"] == settings.topic(settings.otlp_kafka_topic)]
    assert topic["spec"]["partitions"] == TOPIC_PARTITIONS[settings.otlp_kafka_topic]


def test_replicas_rollout_and_grace_fit_the_group_and_the_bridge(docs, container, monkeypatch):
    """Every replica is a member of one consumer group: more pods than the topic's partitions,
    even during a rollout, would idle. SIGTERM lets the batch in hand finish: the grace period
    covers the bridge's acknowledgement bound plus closing its consumer and producer (5 s each)."""
    settings = _settings_from(deployment_env(docs, container), monkeypatch)
    partitions = next(d["spec"]["partitions"] for d in docs.values() if d["kind"] == "KafkaTopic"
                      and d["spec"]["topicName"] == settings.topic(settings.otlp_kafka_topic))
    spec = docs[("Deployment", "otlp-bridge")]["spec"]
    rolling = spec["strategy"]["rollingUpdate"]
    assert spec["replicas"] >= 2 and spec["replicas"] + rolling["maxSurge"] <= partitions
    assert rolling["maxUnavailable"] == 0
    budget = docs[("PodDisruptionBudget", "otlp-bridge")]["spec"]
    assert budget["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert 1 <= budget["minAvailable"] < spec["replicas"]  # a drain can proceed, one pod at a time
    ack_bound = OtlpBridge(settings, threading.Event()).producer.ack_timeout_s
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] >= ack_bound + 2 * 5


def test_the_bridge_gets_kafka_credentials_and_nothing_else(docs, container):
    """No port, no probe (nothing to probe: test_the_entrypoint_has_no_healthcheck_for_the_bridge),
    no Service; of the shared configuration only the ConfigMap: parrotwatch-secrets holds the
    database URL and the API keys, which the bridge never reads."""
    assert container["args"] == ["otlp-bridge"]
    assert container["envFrom"] == [{"configMapRef": {"name": "parrotwatch-config"}}]
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert secrets == {"parrotwatch-otlp-bridge"}
    assert "ports" not in container
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & set(container)
    labels = docs[("Deployment", "otlp-bridge")]["spec"]["template"]["metadata"]["labels"]
    assert not any(all(labels.get(k) == v for k, v in d["spec"]["selector"].items())
                   for d in docs.values() if d["kind"] == "Service")


def _shim(tmp_path: Path, body: str) -> dict[str, str]:
    """An environment whose `python` is a script with ``body``."""
    shim = tmp_path / "python"
    shim.write_text(f"#!/bin/sh\n{body}\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}


def test_the_entrypoint_role_execs_the_bridge_module_with_its_arguments(tmp_path):
    env = _shim(tmp_path, 'for a in "$@"; do echo "$a"; done')
    out = subprocess.run(["bash", str(ENTRYPOINT), "otlp-bridge", "--encoding", "otlp_json",
                          "--topic", "a b"], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["-m", "parrotwatch.services.otlp_bridge", "--encoding",
                                       "otlp_json", "--topic", "a b"]


def test_the_entrypoint_role_reaches_the_real_bridge(tmp_path):
    """With the real interpreter behind `python`: the role's module is the bridge's command line."""
    env = _shim(tmp_path, f'exec "{sys.executable}" "$@"')
    out = subprocess.run(["bash", str(ENTRYPOINT), "otlp-bridge", "--help"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: python -m parrotwatch.services.otlp_bridge")
    assert "--encoding {otlp_proto,otlp_json}" in out.stdout


def test_the_entrypoint_has_no_healthcheck_for_the_bridge(tmp_path):
    """The bridge serves no port and writes no status file: `healthcheck otlp-bridge` is refused
    rather than answering something it cannot know."""
    env = _shim(tmp_path, "exit 0")
    out = subprocess.run(["bash", str(ENTRYPOINT), "healthcheck", "otlp-bridge"], capture_output=True,
                         text=True, env=env, timeout=30)
    assert out.returncode == 2 and "unknown role 'otlp-bridge'" in out.stderr
