"""deploy/ checked with real tools: ``docker compose config`` (compose-spec schema, interpolation,
references), kubeconform against Kubernetes' and the operators' own schemas, ``kubectl kustomize``,
``amtool check-config``; plus what no schema knows: every PARROTWATCH_* variable is a settings
field whose value parses, the topics match the code, the Grafana copies match deploy/grafana.

The tools come from scripts/install_deploy_tools.sh (into .tools/). Without them these tests skip
locally and fail under CI=true, so CI cannot pass without validating.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from parrotwatch.services.dispatcher.config import load_receivers
from parrotwatch.settings import Settings, load_settings
from parrotwatch.stack.kafka import MAX_MESSAGE_BYTES, TOPIC_PARTITIONS

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
K8S = DEPLOY / "k8s"
SETTINGS_ENV = {f"PARROTWATCH_{name.upper()}" for name in Settings.model_fields}
VALID_ENV = SETTINGS_ENV
VERSIONS = dict(line.split("=", 1) for line in (DEPLOY / "validate" / "versions.env").read_text()
                .splitlines() if line.strip() and not line.lstrip().startswith("#"))
APP_IMAGE = re.compile(r"^(\$\{PW_IMAGE:-)?parrotwatch:")


def _unavailable(what: str) -> None:
    message = f"{what}: run scripts/install_deploy_tools.sh"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI requires the deploy validation tools; {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def tools() -> dict:
    path = ROOT / ".tools" / "deploy-tools.json"
    if not path.exists():
        _unavailable("deploy validation tools are not installed")
    info = json.loads(path.read_text())
    if info["versions"] != VERSIONS:
        _unavailable(f"installed tools are for {info['versions']}, versions.env wants {VERSIONS}")
    for key in ("docker_compose", "kubeconform", "dockerfile_lint"):
        if not os.access(info[key], os.X_OK):
            _unavailable(f"{info[key]} is missing")
    # The installer keys these by the files that shape them (same digests as its `sha256sum`).
    validate = DEPLOY / "validate"
    schemas = _digest(validate / "versions.env", validate / "build_schemas.py",
                      validate / "strimzi-crds" / "pom.xml")[:16]
    lint = _digest(*(validate / "dockerfile-lint" / f for f in ("go.mod", "go.sum", "main.go")))[:12]
    if Path(info["schemas"]).name != schemas or not info["dockerfile_lint"].endswith(lint):
        _unavailable("installed schemas or dockerfile-lint predate deploy/validate's sources")
    return info


def _digest(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def _which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        _unavailable(f"'{tool}' is not on PATH")
    return path


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, **kw)


def compose(tools: dict, *args: str, env_file: Path) -> subprocess.CompletedProcess:
    """`docker compose` as users type it (the plugin through the Docker CLI) when the CLI exists."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
           "DOCKER_CONFIG": tools["docker_config"]}  # no PW_*/POSTGRES_* leaking from the shell
    base = ["docker", "compose"] if shutil.which("docker") else [tools["docker_compose"]]
    return _run([*base, "-f", str(COMPOSE), "--env-file", str(env_file), *args], env=env)


@pytest.fixture(scope="module")
def compose_config(tools) -> dict:
    out = compose(tools, "config", "--format", "json", env_file=DEPLOY / "compose" / ".env.example")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def kubeconform(tools: dict, *targets: str, stdin: str | None = None) -> list[dict]:
    """kubeconform over offline schemas only (no remote default); returns its per-resource results."""
    schemas = tools["schemas"]
    out = _run([tools["kubeconform"], "-strict", "-verbose", "-output", "json",
                "-kubernetes-version", VERSIONS["K8S_VERSION"],
                "-schema-location", schemas + "/{{ .NormalizedKubernetesVersion }}-standalone"
                "{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json",
                "-schema-location", schemas + "/crds/{{ .Group }}/{{ .ResourceKind }}_"
                "{{ .ResourceAPIVersion }}.json",
                "-ignore-filename-pattern", r"kustomization\.yaml$",
                "-ignore-filename-pattern", "kustomizeconfig", *targets], input=stdin)
    assert out.stdout, out.stderr
    return json.loads(out.stdout)["resources"]


def k8s_docs(*, include_examples: bool = True) -> list[dict]:
    files = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    files = [p for p in files if include_examples or not p.name.endswith(".example.yaml")]
    return [d for p in files for d in yaml.safe_load_all(p.read_text()) if d]


def pod_specs(doc: dict) -> list[tuple[str, dict]]:
    """(where, pod spec) of a workload or a SparkApplication's driver/executor templates."""
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [(name, doc["spec"]["template"]["spec"])]
    if doc["kind"] == "SparkApplication":
        return [(f"{name}.{role}", doc["spec"][role]["template"]["spec"])
                for role in ("driver", "executor")]
    return []


def test_compose_config_is_valid_and_wired(compose_config):
    services = compose_config["services"]
    assert set(services) == {"kafka", "postgres", "topic-init", "spark-master", "spark-worker",
                             "stream", "api", "alertmanager", "dispatcher", "review-scheduler",
                             "dashboards", "grafana"}
    for name, svc in services.items():
        for dep, how in (svc.get("depends_on") or {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s missing healthcheck"
            if how["condition"] == "service_completed_successfully":
                assert services[dep]["restart"] == "no", f"{dep} is a one-shot for {name}"
        for vol in svc.get("volumes", []):
            if vol["type"] == "bind":
                assert Path(vol["source"]).exists(), f"{name} mounts missing {vol['source']}"
    assert services["stream"]["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
    assert services["stream"]["environment"]["PARROTWATCH_SPARK_MASTER"] == "spark://spark-master:7077"
    apps = {n for n, s in services.items() if APP_IMAGE.match(s["image"])}
    assert apps == {"topic-init", "spark-master", "spark-worker", "stream", "api", "dispatcher",
                    "review-scheduler", "dashboards"}
    scheduler = services["review-scheduler"]["depends_on"]
    assert {dep: how["condition"] for dep, how in scheduler.items()} == {
        "kafka": "service_healthy", "postgres": "service_healthy",
        "topic-init": "service_completed_successfully"}


def test_compose_refuses_to_start_without_secrets(tools, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = compose(tools, "config", "--quiet", env_file=empty)
    assert out.returncode != 0
    for secret in ("POSTGRES_PASSWORD", "GRAFANA_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "PW_API_KEY"):
        assert f"required variable {secret} is missing" in out.stderr


def _settings_from(env: dict[str, str], monkeypatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("PARROTWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings()  # raises on an unknown PARROTWATCH_* name or an unparsable value


def test_compose_settings_are_real_and_parse(compose_config, monkeypatch):
    seen = set()
    for name, svc in compose_config["services"].items():
        env = {k: v for k, v in (svc.get("environment") or {}).items() if k.startswith("PARROTWATCH_")}
        assert set(env) <= VALID_ENV, f"{name}: not settings fields: {set(env) - VALID_ENV}"
        seen |= set(env)
        if env:
            _settings_from(env, monkeypatch)
    for name in ("topic-init", "stream", "api", "dispatcher", "review-scheduler"):  # Kafka / PostgreSQL
        settings = _settings_from(compose_config["services"][name]["environment"], monkeypatch)
        assert settings.bootstrap == "kafka:9092", f"{name} would start its own broker"
        if name in ("stream", "api", "dispatcher", "review-scheduler"):
            assert settings.database_url.endswith("@postgres:5432/parrotwatch"), name
    api = _settings_from(compose_config["services"]["api"]["environment"], monkeypatch)
    assert (api.api_host, api.api_port, api.bootstrap) == ("0.0.0.0", 8088, "kafka:9092")
    assert [k.get_secret_value() for k in api.api_keys] == ["change-me-api-key"]
    assert api.reviewer_keys == {}  # the example ships no reviewer key: review starts off
    assert {"PARROTWATCH_KAFKA_BOOTSTRAP", "PARROTWATCH_DATABASE_URL"} <= seen


def test_compose_reviewer_keys_set_as_the_example_says_reach_the_api(tools, tmp_path, monkeypatch):
    """The example leaves PW_REVIEWER_KEYS commented out (no guessable key ships active; without
    it the stack starts with review off, checked above). Set as its comment shows, with keys made
    as it says, they reach the API and pass the settings' checks."""
    example = (DEPLOY / "compose" / ".env.example").read_text()
    assert not any(line.startswith("PW_REVIEWER_KEYS=") for line in example.splitlines())
    (shown,) = [line.removeprefix("# PW_REVIEWER_KEYS=") for line in example.splitlines()
                if line.startswith("# PW_REVIEWER_KEYS=")]
    command = re.search(r"python3 -c '(.*)'", example).group(1)
    keys = {name: subprocess.run([sys.executable, "-c", command], capture_output=True, text=True,
                                 check=True).stdout.strip() for name in json.loads(shown)}
    env = tmp_path / "reviewers.env"
    env.write_text(example + f"PW_REVIEWER_KEYS={json.dumps(keys, separators=(',', ':'))}\n")
    out = compose(tools, "config", "--format", "json", env_file=env)
    assert out.returncode == 0, out.stderr
    api = _settings_from(json.loads(out.stdout)["services"]["api"]["environment"], monkeypatch)
    assert {name: key.get_secret_value() for name, key in api.reviewer_keys.items()} == keys
    assert len(keys) == 2 and len(set(keys.values())) == 2


def _review_schedule_params(args: list[str]) -> dict:
    """The options ``parrotwatch review schedule ARGS`` parses to (typed, range-checked by click),
    without running it."""
    import click
    from typer.main import get_command

    from parrotwatch.cli import app

    assert args[:3] == ["parrotwatch", "review", "schedule"], args
    root = get_command(app)
    with click.Context(root) as ctx:
        group = root.get_command(ctx, "review")
        command = group.get_command(ctx, "schedule")
        return command.make_context("schedule", list(args[3:]), parent=ctx).params


def test_review_scheduler_runs_a_real_command_everywhere(compose_config):
    """compose and Kubernetes start `parrotwatch review schedule` with options it accepts, and the
    same schedule, which is a valid cron."""
    from parrotwatch.review.scheduler import check_cron

    (k8s,) = [c["args"] for d in k8s_docs() for w, spec in pod_specs(d)
              if w == "Deployment/review-scheduler" for c in spec["containers"]]
    compose_args = compose_config["services"]["review-scheduler"]["command"]
    params = [_review_schedule_params(args) for args in (compose_args, k8s)]
    assert params[0] == params[1]
    assert check_cron(params[0]["cron"]) and params[0]["days"] > 0


def test_k8s_settings_are_real_and_parse(monkeypatch):
    docs = k8s_docs()
    data = {(d["kind"], d["metadata"]["name"]): {**d.get("data", {}), **d.get("stringData", {})}
            for d in docs if d["kind"] in ("ConfigMap", "Secret")}
    checked = set()
    for doc in docs:
        for where, spec in pod_specs(doc):
            for container in spec.get("initContainers", []) + spec["containers"]:
                env = {e["name"]: _env_value(e, data) for e in container.get("env", [])}
                if doc["kind"] == "SparkApplication" and where.endswith("driver"):
                    env |= doc["spec"]["driver"].get("envVars", {})
                for source in container.get("envFrom", []):
                    ref = source.get("configMapRef") or source.get("secretRef")
                    kind = "ConfigMap" if "configMapRef" in source else "Secret"
                    env |= data[(kind, ref["name"])]
                env = {k: v for k, v in env.items() if k.startswith("PARROTWATCH_")}
                assert set(env) <= VALID_ENV, f"{where}: not settings fields: {set(env) - VALID_ENV}"
                if env:
                    settings = _settings_from(env, monkeypatch)
                    assert settings.bootstrap == "events-kafka-bootstrap:9092", where
                    # the OTLP bridge uses Kafka only, so it gets no database URL (no
                    # parrotwatch-secrets: test_otlp_bridge_manifest.py); the others need it
                    if where == "Deployment/otlp-bridge":
                        assert settings.database_url is None, where
                    else:
                        assert settings.database_url, where
                    # every component authenticates to Kafka (SCRAM users: kafka-users.yaml)
                    assert settings.kafka_security_protocol.startswith("SASL_"), where
                    if where.endswith(".driver"):  # build_session must leave the master to Spark
                        assert settings.spark_master.startswith("k8s://"), where
                    checked.add(where)
    assert checked == {"Deployment/api", "Deployment/dispatcher", "Deployment/review-scheduler",
                       "Deployment/otlp-bridge", "SparkApplication/scoring.driver"}
    for key in [k for d in docs if d["kind"] == "SparkApplication"
                for k in d["spec"].get("sparkConf", {}) if "PARROTWATCH_" in k]:
        assert key.rsplit(".", 1)[-1] in VALID_ENV, key


def _env_value(entry: dict, data: dict) -> str:
    """An env entry's value; a secretKeyRef's from secrets.example.yaml where it shows the key
    (so that its example must parse), else a placeholder."""
    if "valueFrom" not in entry:
        return entry.get("value", "")
    ref = entry["valueFrom"].get("secretKeyRef", {})
    return data.get(("Secret", ref.get("name")), {}).get(ref.get("key"), "from-a-secret")


def test_k8s_review_settings_are_shared_and_reviewer_keys_reach_the_api_only(monkeypatch):
    """The review and calibration settings sit in the shared ConfigMap (stream, scheduler and API
    must agree on the design), and the reviewers' keys come from their own optional Secret that
    only the API reads: without it the API starts with review off."""
    docs = k8s_docs()
    config = next(d for d in docs if d["metadata"]["name"] == "parrotwatch-config")["data"]
    shown = {k for k in config if k.startswith(("PARROTWATCH_REVIEW_", "PARROTWATCH_CALIBRATION_"))}
    assert {"PARROTWATCH_REVIEW_POOL_RATE", "PARROTWATCH_REVIEW_BUDGET",
            "PARROTWATCH_REVIEW_PERIOD_HOURS", "PARROTWATCH_CALIBRATION_APPLY_THRESHOLDS"} <= shown
    settings = _settings_from({k: config[k] for k in shown}, monkeypatch)
    assert all(getattr(settings, k.removeprefix("PARROTWATCH_").lower()) is not None for k in shown)
    readers = {}
    for doc in docs:
        for where, spec in pod_specs(doc):
            for container in spec.get("initContainers", []) + spec["containers"]:
                for e in container.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef", {})
                    if e["name"] == "PARROTWATCH_REVIEWER_KEYS" or ref.get("name") == "parrotwatch-reviewers":
                        readers[where] = (e["name"], ref)
    assert readers == {"Deployment/api": ("PARROTWATCH_REVIEWER_KEYS", {
        "name": "parrotwatch-reviewers", "key": "PARROTWATCH_REVIEWER_KEYS", "optional": True})}
    secrets = {d["metadata"]["name"]: d["stringData"] for d in docs if d["kind"] == "Secret"}
    assert "PARROTWATCH_REVIEWER_KEYS" not in secrets["parrotwatch-secrets"]  # envFrom of all pods
    assert _settings_from(secrets["parrotwatch-reviewers"], monkeypatch).reviewer_keys
    assert "PARROTWATCH_DATABASE_URL" in secrets["parrotwatch-secrets"]  # the API's review queue


def test_every_parrotwatch_variable_named_in_deploy_is_a_setting():
    """Backstop over raw text (shell scripts, comments, commands): no typo'd name anywhere."""
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in
             (".yml", ".yaml", ".sh", ".conf", ".py", ".example", "")] + [ROOT / "Dockerfile"]
    names = {m for p in files for m in re.findall(r"PARROTWATCH_[A-Z0-9_]*[A-Z0-9]", p.read_text())}
    assert names and names <= VALID_ENV, sorted(names - VALID_ENV)


def test_k8s_manifests_validate_against_their_schemas(tools):
    results = kubeconform(tools, str(K8S))
    bad = [r for r in results if r["status"] != "statusValid"]
    assert not bad, bad
    kinds = {r["kind"] for r in results}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim",
            "SparkApplication", "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser",
            "NetworkPolicy"} <= kinds


def test_kustomization_renders_every_manifest_and_validates(tools):
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    expected = sorted(p.name for p in K8S.glob("*.yaml")
                      if p.name != "kustomization.yaml" and not p.name.endswith(".example.yaml"))
    assert sorted(listed) == expected, "kustomization.yaml must list every manifest"
    out = _run([_which("kubectl"), "kustomize", str(K8S)])
    assert out.returncode == 0, out.stderr
    results = kubeconform(tools, "-", stdin=out.stdout)
    assert len(results) == len(k8s_docs(include_examples=False))
    assert all(r["status"] == "statusValid" for r in results), results
    images = {d["spec"]["image"] for d in yaml.safe_load_all(out.stdout) if d["kind"] == "SparkApplication"}
    assert images == {"parrotwatch:0.1.0"}  # kustomizeconfig lets `images:` retag it


def test_spark_pod_templates_are_valid_pod_specs(tools):
    """The CRD keeps templates schemaless (preserve-unknown-fields): check them as PodTemplates."""
    docs = [{"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": where.replace("/", "-")
             .replace(".", "-").lower()}, "template": {"spec": spec}}
            for d in k8s_docs() if d["kind"] == "SparkApplication" for where, spec in pod_specs(d)]
    results = kubeconform(tools, "-", stdin=yaml.safe_dump_all(docs))
    assert len(results) == 2 and all(r["status"] == "statusValid" for r in results), results


def test_kubeconform_rejects_misspelled_fields(tools):
    """Negative control: the schemas are strict and really loaded (not skipped as missing)."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in k8s_docs()}
    api = docs[("Deployment", "api")]
    api["spec"]["replica"] = api["spec"].pop("replicas")
    topic = docs[("KafkaTopic", "llm-inference-v1")]
    topic["spec"]["partitionz"] = topic["spec"].pop("partitions")
    app = docs[("SparkApplication", "scoring")]
    app["spec"]["driver"]["coresz"] = app["spec"]["driver"].pop("cores")
    pool = docs[("KafkaNodePool", "dual-role")]
    pool["metadata"]["lables"] = pool["metadata"].pop("labels")
    results = {r["kind"]: r for r in
               kubeconform(tools, "-", stdin=yaml.safe_dump_all([api, topic, app, pool]))}
    expected = {"Deployment": "replica", "KafkaTopic": "partitionz", "SparkApplication": "coresz",
                "KafkaNodePool": "lables"}
    assert set(results) == set(expected)
    for kind, word in expected.items():
        assert results[kind]["status"] == "statusInvalid", results[kind]
        assert f"'{word}' not allowed" in results[kind]["msg"], results[kind]


def test_spark_connector_class_path_is_the_same_everywhere():
    """The image's spark-defaults.conf (compose, local) and the SparkApplication (Kubernetes, where
    Spark mounts its own configuration directory) must put the same jars on the class paths."""
    defaults = dict(line.split(None, 1) for line in
                    (DEPLOY / "docker" / "spark-defaults.conf").read_text().splitlines()
                    if line.strip() and not line.startswith("#"))
    (app,) = (d for d in k8s_docs() if d["kind"] == "SparkApplication")
    keys = ("spark.driver.extraClassPath", "spark.executor.extraClassPath")
    assert {k: defaults[k].strip() for k in keys} == {k: app["spec"]["sparkConf"][k] for k in keys}
    assert "/opt/parrotwatch/spark-connector" in (ROOT / "Dockerfile").read_text()


def test_pods_get_no_service_link_variables():
    """Kubernetes injects <SERVICE>_PORT=tcp://... into pods; names starting with PARROTWATCH_
    would break (or silently retype) the strict settings."""
    docs = k8s_docs()
    for doc in docs:
        for where, spec in pod_specs(doc):
            assert spec.get("enableServiceLinks") is False, where
    for svc in (d for d in docs if d["kind"] == "Service"):
        assert not svc["metadata"]["name"].upper().replace("-", "_").startswith("PARROTWATCH")


def test_kafka_topics_match_the_code(compose_config):
    topics = {d["spec"]["topicName"]: d["spec"] for d in k8s_docs() if d["kind"] == "KafkaTopic"}
    assert {name: t["partitions"] for name, t in topics.items()} == TOPIC_PARTITIONS
    assert {t["config"]["max.message.bytes"] for t in topics.values()} == {MAX_MESSAGE_BYTES}
    kafka = compose_config["services"]["kafka"]["environment"]
    assert int(kafka["KAFKA_MESSAGE_MAX_BYTES"]) == MAX_MESSAGE_BYTES
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topic-init creates them


def test_grafana_provisioning_is_consistent(compose_config):
    prov = DEPLOY / "grafana" / "provisioning"
    ds_text = (prov / "datasources" / "parrotwatch.yaml").read_text()
    (ds,) = yaml.safe_load(ds_text)["datasources"]
    assert (ds["uid"], ds["type"]) == ("parrotwatch-pg", "grafana-postgresql-datasource")
    db_text = (prov / "dashboards" / "parrotwatch.yaml").read_text()
    (provider,) = yaml.safe_load(db_text)["providers"]
    path = provider["options"]["path"]
    copies = {d["metadata"]["name"]: d["data"]["parrotwatch.yaml"] for d in k8s_docs()
              if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("grafana-")
              and "parrotwatch.yaml" in d.get("data", {})}
    assert copies == {"grafana-datasources": ds_text, "grafana-dashboard-providers": db_text}
    services = compose_config["services"]
    mounts = {v["target"]: v["source"] for v in services["grafana"]["volumes"]}
    built = {v["source"]: v["target"] for v in services["dashboards"]["volumes"]}
    assert built[mounts[path]] in services["dashboards"]["command"]  # builder writes what Grafana reads
    (grafana,) = (d for d in k8s_docs() if d["kind"] == "Deployment" and d["metadata"]["name"] == "grafana")
    spec = grafana["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    target = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}["dashboards"]
    source = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}["dashboards"]
    assert target == path and source in init["args"]


def test_receivers_files_load(tmp_path):
    assert load_receivers(DEPLOY / "compose" / "receivers.yaml").receivers
    (cm,) = (d for d in k8s_docs() if d["metadata"]["name"] == "parrotwatch-receivers")
    path = tmp_path / "receivers.yaml"
    path.write_text(cm["data"]["receivers.yaml"])
    assert load_receivers(path).receivers


def test_alertmanager_config_is_valid():
    amtool = shutil.which("amtool")
    if amtool is None:
        _unavailable("'amtool' (Debian's prometheus-alertmanager, scripts/install_alertmanager.sh)")
    out = _run([amtool, "check-config", str(DEPLOY / "compose" / "alertmanager.yml")])
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_dockerfile_passes_buildkits_checks(tools, tmp_path):
    """BuildKit's own front end (parse, stages, `docker build --check` rules), no engine needed."""
    out = _run([tools["dockerfile_lint"], "-strict", str(ROOT / "Dockerfile")])
    assert out.returncode == 0, out.stdout + out.stderr
    bad = tmp_path / "Dockerfile"  # negative control: one rule violation
    bad.write_text((ROOT / "Dockerfile").read_text().replace("FROM base AS runtime", "FROM base as runtime"))
    out = _run([tools["dockerfile_lint"], "-strict", str(bad)])
    assert out.returncode == 1 and "FromAsCasing" in out.stdout, out.stdout + out.stderr


def test_image_files_and_roles_exist():
    """What the Dockerfile copies is in the build context, and every role the stacks start is one
    the entrypoint knows."""
    text = (ROOT / "Dockerfile").read_text()
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M):
        *sources, _dest = line.split()
        for src in sources:
            assert (ROOT / src).exists(), src
            assert any(src == a or src.startswith(a + "/") for a in allowed), f"{src} is .dockerignored"
    entry = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    assert _run(["bash", "-n", str(DEPLOY / "docker" / "entrypoint.sh")]).returncode == 0
    roles = set(re.findall(r"^  ([a-z-]+)\)$", entry, flags=re.M))
    compose_roles = {s["command"][0] for s in yaml.safe_load(COMPOSE.read_text())["services"].values()
                     if APP_IMAGE.match(s["image"])}
    k8s_roles = {c["args"][0] for d in k8s_docs() for _w, spec in pod_specs(d)
                 for c in spec.get("initContainers", []) + spec["containers"] if "args" in c}
    assert (compose_roles | k8s_roles) - {"parrotwatch"} <= roles
    assert {"driver", "executor"} <= roles  # Spark on Kubernetes' container contract


def test_spark_submit_runs_the_installed_job_module_everywhere():
    """The image's entrypoint and the SparkApplication submit the same file: the installed
    parrotwatch/streaming/job.py under the site-packages of the image's Python version."""
    entry = re.search(r"^job=(\S+)$", (DEPLOY / "docker" / "entrypoint.sh").read_text(), re.M).group(1)
    app = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "streaming.yaml").read_text())
               if d and d.get("kind") == "SparkApplication")
    assert app["spec"]["mainApplicationFile"] == f"local://{entry}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    version = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)-", dockerfile, re.M).group(1)
    assert entry == f"/usr/local/lib/python{version}/site-packages/parrotwatch/streaming/job.py"
    job = (ROOT / "streaming" / "job.py").read_text().rstrip()
    assert job.endswith('if __name__ == "__main__":\n    sys.exit(main())')  # runs when submitted as a file
