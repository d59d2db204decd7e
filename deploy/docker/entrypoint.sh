#!/usr/bin/env bash
# Entrypoint of the Parrotwatch image (Dockerfile at the repository root), run under tini.
# One image, several roles, picked by the first argument:
#   api                       python -m parrotwatch.services.api (PARROTWATCH_API_HOST/PORT)
#   dispatcher ARGS...        python -m parrotwatch.services.dispatcher ARGS (e.g. --receivers FILE)
#   otlp-bridge ARGS...       python -m parrotwatch.services.otlp_bridge ARGS (--topic, --encoding,
#                             --log-level): an OpenTelemetry Collector's kafka exporter topic
#                             (PARROTWATCH_OTLP_KAFKA_TOPIC) -> llm.inference.v1 and dead letters
#   stream [SPARK-SUBMIT-ARGS] spark-submit of the scoring job to PARROTWATCH_SPARK_MASTER
#   create-topics             create the contract topics on PARROTWATCH_KAFKA_BOOTSTRAP (idempotent)
#   migrate                   apply the PostgreSQL migrations to PARROTWATCH_DATABASE_URL
#   spark-master ARGS...      Spark standalone master (same Spark as the job: pyspark's jars)
#   spark-worker ARGS...      Spark standalone worker
#   driver | executor ...     Spark on Kubernetes (what spark-submit and the Spark operator run;
#                             the same contract as Apache Spark's own image entrypoint)
#   healthcheck ROLE          exit 0 when ROLE (api, stream, spark-master, spark-worker) is healthy;
#                             none for otlp-bridge: it serves no port and writes no status file,
#                             and a check that its process lives says nothing tini's exit does not
#   anything else             executed as is (parrotwatch ..., python ..., bash)
set -euo pipefail

# The installed module file itself: spark-submit needs a .py path. Its folder, first on sys.path
# when run this way, holds no module named like one a dependency imports (a unit test checks).
job=/usr/local/lib/python3.11/site-packages/parrotwatch/streaming/job.py

healthcheck() {
  case "$1" in
    api)
      exec python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
        "http://127.0.0.1:${PARROTWATCH_API_PORT:-8088}/healthz"
      ;;
    spark-master | spark-worker)
      # Master: ALIVE (not STANDBY or RECOVERING). Worker: registered, which its /json/ page
      # shows (masterurl) only once a master accepted it; the page itself is up before that.
      port=${SPARK_MASTER_WEBUI_PORT:-8080}
      [ "$1" = spark-worker ] && port=${SPARK_WORKER_WEBUI_PORT:-8081}
      exec python - "$1" "http://127.0.0.1:${port}/json/" <<'EOF'
import json, sys, urllib.request
state = json.load(urllib.request.urlopen(sys.argv[2], timeout=5))
ok = state.get("status") == "ALIVE" if sys.argv[1] == "spark-master" else bool(state.get("masterurl"))
sys.exit(0 if ok else 1)
EOF
      ;;
    stream)
      # The job rewrites run/stream-status.json every second while its queries are active.
      exec python - <<'EOF'
import json, sys, time
from parrotwatch.settings import load_settings
status = json.loads(load_settings().stream_status_file.read_text())
fresh = time.time() - status["updated_at"] < 30
sys.exit(0 if fresh and status["queries"] and all(q["active"] for q in status["queries"].values()) else 1)
EOF
      ;;
    *) echo "healthcheck: unknown role '$1' (api, stream, spark-master, spark-worker)" >&2; exit 2 ;;
  esac
}

case "${1:-}" in
  api)
    shift
    exec python -m parrotwatch.services.api "$@"
    ;;
  dispatcher)
    shift
    exec python -m parrotwatch.services.dispatcher "$@"
    ;;
  otlp-bridge)
    shift
    exec python -m parrotwatch.services.otlp_bridge "$@"
    ;;
  stream)
    shift
    # The Kafka connector jars are on the driver and executor class paths through
    # $SPARK_CONF_DIR/spark-defaults.conf (written at image build), so no --jars here.
    exec spark-submit --master "${PARROTWATCH_SPARK_MASTER:-local[*]}" \
      --name parrotwatch-scoring "$@" "$job"
    ;;
  create-topics)
    shift
    exec python -c '
from parrotwatch.settings import load_settings
from parrotwatch.stack.kafka import create_topics
s = load_settings()
print("created:", create_topics(s.bootstrap, s.topic_prefix) or "none (all exist)")'
    ;;
  migrate)
    shift
    exec python -c '
from parrotwatch.db import migrate
from parrotwatch.settings import load_settings
from parrotwatch.stack.urls import database_url
print("applied:", migrate(database_url(load_settings())) or "none (up to date)")'
    ;;
  spark-master)
    shift
    exec spark-class org.apache.spark.deploy.master.Master "$@"
    ;;
  spark-worker)
    shift
    exec spark-class org.apache.spark.deploy.worker.Worker "$@"
    ;;
  driver)
    # Spark on Kubernetes, cluster mode: the driver pod runs the application in client mode.
    shift
    # Spark points SPARK_CONF_DIR at its own mounted properties here, so the image's
    # spark-defaults.conf does not apply: the SparkApplication sets the connector class paths.
    exec spark-submit \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    java_opts=()
    for v in "${!SPARK_JAVA_OPT_@}"; do java_opts+=("${!v}"); done
    # SPARK_CLASSPATH carries spark.executor.extraClassPath (set by Spark's executor pod builder).
    exec java "${java_opts[@]}" -Xms"${SPARK_EXECUTOR_MEMORY}" -Xmx"${SPARK_EXECUTOR_MEMORY}" \
      -cp "${SPARK_CONF_DIR}:${SPARK_CLASSPATH:+$SPARK_CLASSPATH:}${SPARK_HOME}/jars/*:${PWD}" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL}" --executor-id "${SPARK_EXECUTOR_ID}" \
      --cores "${SPARK_EXECUTOR_CORES}" --app-id "${SPARK_APPLICATION_ID}" \
      --hostname "${SPARK_EXECUTOR_POD_IP}" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID}" \
      --podName "${SPARK_EXECUTOR_POD_NAME}"
    ;;
  healthcheck)
    healthcheck "${2:?healthcheck needs a role}"
    ;;
  "")
    echo "usage: api | dispatcher ARGS | otlp-bridge ARGS | stream | create-topics | migrate |" \
         "spark-master | spark-worker | healthcheck ROLE | COMMAND..." >&2
    exit 2
    ;;
  *)
    exec "$@"
    ;;
esac
