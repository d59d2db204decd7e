"""deploy/k8s security: Kafka takes SCRAM users only (one per component, ACLs on its own topics,
credentials from the Secret the Strimzi user operator creates), and NetworkPolicies deny
everything in the namespace but the flows the components need. The schemas themselves are
checked by kubeconform in test_manifests.py; these are the checks no schema knows."""

from __future__ import annotations

import pytest

from parrotwatch.settings import DLQ_TOPIC, INFERENCE_TOPIC, OTLP_SPANS_TOPIC
from tests.unit.deploy.test_manifests import k8s_docs, pod_specs

COMPONENTS = {"api": "Deployment/api", "streaming": "SparkApplication/scoring.driver",
              "dispatcher": "Deployment/dispatcher", "review-scheduler": "Deployment/review-scheduler",
              "otlp-bridge": "Deployment/otlp-bridge"}
# (operation kind, topic) each component's user may touch: Read or Write, nothing else
TOPIC_ACCESS = {
    "api": {("Write", "llm.inference.v1"), ("Write", "llm.feedback.v1")},
    "streaming": {("Read", "llm.inference.v1"), ("Read", "llm.feedback.v1"),
                  ("Read", "parrotwatch.sink-markers"), ("Write", "llm.scores.v1"),
                  ("Write", "llm.dlq.v1"), ("Write", "llm.alerts.v1")},
    "dispatcher": {("Read", "llm.alerts.v1")},
    "review-scheduler": {("Write", "llm.alerts.v1")},  # calibration alerts
    # the exact topics and group the bridge's code uses: test_otlp_bridge_manifest.py
    "otlp-bridge": {("Read", OTLP_SPANS_TOPIC), ("Write", INFERENCE_TOPIC), ("Write", DLQ_TOPIC)},
}
DNS = {("dns", 53)}
KAFKA = {("kafka", 9092), ("kafka", 9093)}
EGRESS = {
    "api": DNS | KAFKA | {("any", 5432)},  # the review queue reads and writes PostgreSQL
    "dispatcher": DNS | KAFKA | {("any", 5432), ("any", 443), ("monitoring", 9093)},
    "grafana": DNS | {("any", 5432)},
    "review-scheduler": DNS | KAFKA | {("any", 5432)},
    "otlp-bridge": DNS | KAFKA,  # Kafka only: no PostgreSQL
    "scoring-executor": DNS | KAFKA | {("any", 5432), ("scoring", "any")},
    "scoring-driver": DNS | KAFKA | {("any", 5432), ("scoring", "any"), ("any", 443),
                                     ("any", 6443)},
}
INGRESS = {"api": {("any", 8088)}, "grafana": {("any", 3000)}, "dispatcher": set(),
           "review-scheduler": set(), "otlp-bridge": set(),
           "scoring-executor": {("scoring", "any")}, "scoring-driver": {("scoring", "any")}}


@pytest.fixture(scope="module")
def docs() -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in k8s_docs(include_examples=False)}


def test_every_kafka_listener_authenticates_and_acls_are_enforced(docs):
    kafka = docs[("Kafka", "events")]["spec"]
    assert kafka["kafka"]["authorization"] == {"type": "simple"}
    assert "superUsers" not in kafka["kafka"]["authorization"]
    listeners = kafka["kafka"]["listeners"]
    assert listeners and all(lst["authentication"] == {"type": "scram-sha-512"}
                             for lst in listeners)
    for lst in listeners:  # Strimzi's generated broker policy admits the components only
        (peer,) = lst["networkPolicyPeers"]
        (expr,) = peer["podSelector"]["matchExpressions"]
        assert sorted(expr["values"]) == ["api", "dispatcher", "otlp-bridge", "review-scheduler", "scoring"]
    assert "userOperator" in kafka["entityOperator"]


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_each_component_has_a_scram_user_with_acls_on_its_topics_only(docs, component):
    user = docs[("KafkaUser", f"parrotwatch-{component}")]
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == "events"
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    acls = user["spec"]["authorization"]["acls"]
    topics = {d["spec"]["topicName"] for d in docs.values() if d["kind"] == "KafkaTopic"}
    access = set()
    for acl in acls:
        assert acl.get("type", "allow") == "allow" and "All" not in acl["operations"]
        resource = acl["resource"]
        assert resource["type"] != "cluster" and "*" not in resource["name"]
        if resource["type"] == "topic":
            assert resource["patternType"] == "literal" and resource["name"] in topics
            assert set(acl["operations"]) - {"Describe"} in ({"Read"}, {"Write"})
            access |= {(op, resource["name"]) for op in acl["operations"] if op != "Describe"}
        else:
            assert set(acl["operations"]) <= {"Read", "Write", "Describe"}
    assert access == TOPIC_ACCESS[component]


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_each_component_logs_in_with_the_operators_secret(docs, component):
    where = COMPONENTS[component]
    (spec,) = [s for d in docs.values() for w, s in pod_specs(d) if w == where]
    (container,) = spec["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    user = f"parrotwatch-{component}"
    assert env["PARROTWATCH_KAFKA_SASL_USERNAME"]["value"] == user
    assert env["PARROTWATCH_KAFKA_SASL_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": user, "key": "password"}}
    config = docs[("ConfigMap", "parrotwatch-config")]["data"]
    assert {"configMapRef": {"name": "parrotwatch-config"}} in container["envFrom"]
    assert (config["PARROTWATCH_KAFKA_SECURITY_PROTOCOL"],
            config["PARROTWATCH_KAFKA_SASL_MECHANISM"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", expr
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _peer(peer: dict) -> str:
    """A symbolic name for a NetworkPolicy peer."""
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
    if namespace.get("kubernetes.io/metadata.name") == "kube-system":
        return "dns" if pods == {"k8s-app": "kube-dns"} else "kube-system"
    if namespace:
        return namespace["kubernetes.io/metadata.name"]
    if pods.get("strimzi.io/broker-role") == "true":
        return "kafka"
    if pods.get("app.kubernetes.io/component") == "scoring":
        return "scoring"
    return repr(peer)


def _flows(policies: list[dict], labels: dict[str, str], direction: str) -> set:
    key, peers_key = direction.lower(), "to" if direction == "Egress" else "from"
    flows = set()
    for p in policies:
        if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], labels):
            for rule in p["spec"].get(key, []):
                peers = [_peer(x) for x in rule.get(peers_key, [])] or ["any"]
                ports = [x["port"] for x in rule.get("ports", [])] or ["any"]
                flows |= {(peer, port) for peer in peers for port in ports}
    return flows


def _pod_labels(docs) -> dict[str, dict[str, str]]:
    app = docs[("SparkApplication", "scoring")]["spec"]
    deployments = ("api", "dispatcher", "grafana", "review-scheduler", "otlp-bridge")
    return {
        **{name: docs[("Deployment", name)]["spec"]["template"]["metadata"]["labels"]
           for name in deployments},
        # Spark adds spark-role to the labels it is given
        "scoring-driver": {**app["driver"]["labels"], "spark-role": "driver"},
        "scoring-executor": {**app["executor"]["labels"], "spark-role": "executor"},
    }


def test_the_namespace_denies_by_default(docs):
    deny = docs[("NetworkPolicy", "default-deny-all")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("pod", sorted(EGRESS))
def test_each_pod_is_allowed_exactly_its_flows(docs, pod):
    policies = [d for d in docs.values() if d["kind"] == "NetworkPolicy"]
    labels = _pod_labels(docs)[pod]
    assert _flows(policies, labels, "Egress") == EGRESS[pod]
    assert _flows(policies, labels, "Ingress") == INGRESS[pod]


def test_only_the_components_reach_the_brokers(docs):
    policies = [d for d in docs.values() if d["kind"] == "NetworkPolicy"]
    broker = {"strimzi.io/cluster": "events", "strimzi.io/broker-role": "true",
              "strimzi.io/kind": "Kafka"}
    rules = [r for p in policies if _selects(p["spec"]["podSelector"], broker)
             for r in p["spec"].get("ingress", [])]
    labels = _pod_labels(docs)
    for pod, pod_labels in labels.items():
        admitted = any(_selects(peer.get("podSelector", {}), pod_labels)
                       and "namespaceSelector" not in peer
                       for r in rules for peer in r.get("from", []))
        assert admitted == (pod != "grafana"), pod
    assert all(r.get("from") for r in rules), "no broker port is open to anywhere"


# Deployments that run the Parrotwatch image: each pod hardened the same way (Pod Security
# "restricted" and more: read-only root file system, resources, no service account token).
PARROTWATCH_DEPLOYMENTS = ["api", "dispatcher", "otlp-bridge", "review-scheduler"]


def test_the_parrotwatch_deployments_are_those_hardened_here(docs):
    names = sorted(name for (kind, name), d in docs.items() if kind == "Deployment"
                   and d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name")
                   == "parrotwatch")
    assert names == PARROTWATCH_DEPLOYMENTS


@pytest.mark.parametrize("name", PARROTWATCH_DEPLOYMENTS)
def test_each_deployment_is_hardened(docs, name):
    spec = docs[("Deployment", name)]["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    writable = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    for container in spec.get("initContainers", []) + spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"] == {"drop": ["ALL"]} and not ctx.get("privileged")
        assert container["image"].startswith("parrotwatch:")
    for container in spec["containers"]:
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts.get("/tmp") in writable, f"{name}: /tmp must be a writable emptyDir"


def test_the_review_scheduler_runs_once_without_a_port(docs):
    """One replica (two would be safe but calibrate twice), replaced with Recreate; it serves no
    port, so no HTTP probe, and no Service selects it."""
    deployment = docs[("Deployment", "review-scheduler")]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    (container,) = deployment["template"]["spec"]["containers"]
    assert container["args"][:3] == ["parrotwatch", "review", "schedule"]
    assert "ports" not in container
    assert not any("httpGet" in container.get(p, {}) for p in
                   ("startupProbe", "readinessProbe", "livenessProbe"))
    labels = deployment["template"]["metadata"]["labels"]
    services = [d for d in docs.values() if d["kind"] == "Service"]
    assert not any(_selects({"matchLabels": s["spec"]["selector"]}, labels) for s in services)
