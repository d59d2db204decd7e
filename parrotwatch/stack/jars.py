"""Fetch the Kafka broker and Spark's Kafka connector from Maven Central with the project's poms."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from parrotwatch.stack.errors import StackError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "maven"
SPARK_CONNECTOR_JARS = (
    "spark-sql-kafka-0-10_2.13",
    "spark-token-provider-kafka-0-10_2.13",
    "kafka-clients",
    "commons-pool2",
)


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"'{tool}' not found on PATH: {hint}")
    return path


def _copy_dependencies(pom: Path, out: Path, log: Path, extra: list[str]) -> None:
    mvn = _require("mvn", "install Maven (Debian: apt-get install maven), or set PARROTWATCH_HOME "
                   "to a home whose jars/ was filled elsewhere")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp}", "-DincludeScope=runtime", *extra]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise StackError(f"Maven could not fetch the jars of {pom} (is Maven Central reachable?); "
                         f"log: {log}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def ensure_kafka_jars(jars_dir: Path, log: Path) -> Path:
    out = jars_dir / "kafka"
    if not any(out.glob("kafka_2.13-*.jar")):
        _copy_dependencies(DEPLOY / "kafka" / "pom.xml", out, log, [])
    return out


def ensure_spark_kafka_jars(jars_dir: Path, log: Path, spark_version: str) -> list[Path]:
    """The four connector jars at exactly ``spark_version`` (for ``spark.jars``)."""
    out = jars_dir / f"spark-{spark_version}"
    if not any(out.glob(f"spark-sql-kafka-0-10_2.13-{spark_version}.jar")):
        _copy_dependencies(
            DEPLOY / "spark-kafka" / "pom.xml", out, log,
            [f"-Dspark.version={spark_version}",
             "-DincludeArtifactIds=" + ",".join(SPARK_CONNECTOR_JARS)],
        )
    jars = sorted(out.glob("*.jar"))
    if len(jars) != len(SPARK_CONNECTOR_JARS):
        raise StackError(f"expected {len(SPARK_CONNECTOR_JARS)} connector jars in {out}, found "
                         f"{[j.name for j in jars]}; delete {out} and retry")
    return jars
