# syntax=docker/dockerfile:1
# Parrotwatch: one image for the streaming job (driver and executors), the Spark standalone master
# and worker, the ingestion API and the alert dispatcher; the role is the first argument
# (deploy/docker/entrypoint.sh). Python 3.11 + a Java 17 runtime + pyspark (Spark itself) + the
# project. Spark's Kafka connector comes from Maven Central through deploy/maven/spark-kafka, at
# exactly the pinned pyspark version, fetched by the project's own code (parrotwatch.stack.jars).
#
#   docker build -t parrotwatch:0.1.0 .
#   docker build --build-arg EXTRAS=models -t parrotwatch:0.1.0-models .   # + torch detectors
#
# Bookworm, not the default trixie: Debian 13 has no openjdk-17 package.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- Python 3.11 + JRE 17 + tini, shared by the build and runtime stages --------------------------
FROM ${PYTHON_IMAGE} AS base
# The man directory must exist for the JRE's update-alternatives on slim images.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openjdk-17-jre-headless tini procps \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /opt/java
ENV JAVA_HOME=/opt/java \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# --- Spark's Kafka connector jars, with the project's poms and fetch code -------------------------
FROM base AS connector
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends maven \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml ./
COPY deploy/maven deploy/maven
COPY parrotwatch/__init__.py parrotwatch/__init__.py
COPY parrotwatch/stack/__init__.py parrotwatch/stack/errors.py parrotwatch/stack/jars.py parrotwatch/stack/
RUN --mount=type=cache,target=/root/.m2 python - <<'EOF'
import re
import tomllib
from pathlib import Path

from parrotwatch.stack.jars import ensure_spark_kafka_jars

deps = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
version = next(m.group(1) for d in deps if (m := re.fullmatch(r"pyspark==([0-9][0-9.]*)", d.strip())))
jars = ensure_spark_kafka_jars(Path("/jars"), Path("/tmp/maven.log"), version)
print(f"Spark {version} Kafka connector:", *(j.name for j in jars))
EOF

# --- the project as a wheel, and the requirements it pins -----------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
ARG EXTRAS=""
WORKDIR /src
COPY pyproject.toml README.md ./
COPY parrotwatch parrotwatch
COPY detectors detectors
COPY streaming streaming
COPY services services
COPY dashboards dashboards
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && EXTRAS="${EXTRAS}" python - > /wheels/requirements.txt <<'EOF'
import os
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = [e for e in os.environ["EXTRAS"].split(",") if e]
print("\n".join(project["dependencies"]
                + [r for e in extras for r in project["optional-dependencies"][e]]))
EOF

# --- runtime --------------------------------------------------------------------------------------
FROM base AS runtime
ARG UID=10001
LABEL org.opencontainers.image.title="parrotwatch" \
      org.opencontainers.image.description="LLM observability: Kafka -> Spark Structured Streaming -> PostgreSQL" \
      org.opencontainers.image.licenses="Apache-2.0"
# Dependencies first (their layer survives code changes), then the project without dependencies.
COPY --from=wheel /wheels/requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY --from=wheel /wheels/*.whl /tmp/wheels/
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
ENV PARROTWATCH_HOME=/var/lib/parrotwatch \
    SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    SPARK_CONF_DIR=/opt/parrotwatch/spark-conf \
    PYSPARK_PYTHON=/usr/local/bin/python \
    PYSPARK_DRIVER_PYTHON=/usr/local/bin/python
# State lives under PARROTWATCH_HOME; mount volumes at its subdirectories (checkpoints, dashboards),
# not at the home itself, which holds the connector jars. Group 0 with group write lets an
# arbitrary UID (OpenShift) run the image too.
COPY --from=connector /jars /var/lib/parrotwatch/jars
COPY deploy/docker/entrypoint.sh /opt/parrotwatch/
COPY deploy/docker/spark-defaults.conf /opt/parrotwatch/spark-conf/spark-defaults.conf
RUN test -d "$SPARK_HOME/jars" \
 && ln -s "$(ls -d /var/lib/parrotwatch/jars/spark-*)" /opt/parrotwatch/spark-connector \
 && test "$(ls /opt/parrotwatch/spark-connector/*.jar | wc -l)" = 4 \
 && useradd --system --uid "${UID}" --gid 0 --home-dir /var/lib/parrotwatch --no-create-home \
      --shell /usr/sbin/nologin parrotwatch \
 && mkdir -p /var/lib/parrotwatch/checkpoints /var/lib/parrotwatch/dashboards \
      /var/lib/parrotwatch/logs /var/lib/parrotwatch/run /var/lib/parrotwatch/spark-tmp \
 && chown -R "${UID}:0" /var/lib/parrotwatch \
 && chmod -R g=u /var/lib/parrotwatch \
 && chmod 0755 /opt/parrotwatch/entrypoint.sh
USER ${UID}
WORKDIR /opt/parrotwatch
EXPOSE 8088
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/parrotwatch/entrypoint.sh"]
CMD ["api"]
