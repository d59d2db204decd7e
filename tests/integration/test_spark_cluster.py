"""The scoring job on a real distributed engine: a Spark standalone cluster (a master and two
workers started through ``spark-class``), the job submitted with ``spark-submit``, a topic of
several partitions. Its results equal ``parrotwatch score``'s, which test_pipeline proves equal
to local mode's."""

from __future__ import annotations

import math
import sys

import orjson
import pyspark
import pytest

from parrotwatch.detectors.metrics import SCORE_NAMES
from parrotwatch.offline import score_file
from parrotwatch.stack.jars import ensure_spark_kafka_jars
from parrotwatch.stack.local import REPO_ROOT, settings_env
from parrotwatch.stack.processes import ManagedProcess
from parrotwatch.stack.spark_cluster import StandaloneCluster
from parrotwatch.traffic import encode, generate_inference_events, malformed_records
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_the_job_on_a_standalone_cluster_matches_local_scoring(namespace, tmp_path):
    events = generate_inference_events(600, seed=21, id_prefix="cluster")
    bad = malformed_records(20, seed=21, max_event_bytes=namespace.settings.max_event_bytes)
    namespace.produce_events(events)
    from parrotwatch.stack.kafka import produce

    produce(namespace.settings.bootstrap, namespace.topic("llm.inference.v1"),
            [(None, raw) for raw, _ in bad])

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=namespace.settings.bootstrap)
    assert len(consumer.partitions_for_topic(namespace.topic("llm.inference.v1"))) >= 3
    consumer.close()

    cluster = StandaloneCluster(tmp_path / "cluster", workers=2, cores=1,
                                env=settings_env(namespace.settings)).start()
    settings = namespace.settings.model_copy(update={"spark_master": cluster.url})
    job = ManagedProcess("spark-submit", tmp_path / "run", tmp_path / "spark-submit.log")
    jars = ensure_spark_kafka_jars(settings.jars_dir, settings.logs_dir / "maven.log",
                                   pyspark.__version__)

    def done() -> bool:
        assert job.alive(), f"spark-submit exited; log {job.log_path}"
        return (namespace.scalar("SELECT count(*) FROM inference_scores") >= len(events)
                and namespace.scalar("SELECT count(*) FROM dead_letters") >= len(bad))

    try:
        job.start(cluster.submit_command(REPO_ROOT / "streaming" / "job.py", jars),
                  env=settings_env(settings), cwd=REPO_ROOT)
        wait_for(done, timeout=400, what=f"{len(events)} rows from the cluster (log {job.log_path})")
        # the work ran on the workers' executors, not in the driver
        executor_logs = list((tmp_path / "cluster" / "spark-work").rglob("stderr"))
        assert len({p.parts[-4] for p in executor_logs}) == 2, executor_logs
    finally:
        job.stop(timeout=60)
        cluster.stop()

    assert namespace.scalar("SELECT count(*) FROM inference_scores") == len(events)
    assert namespace.scalar("SELECT count(*) FROM dead_letters") == len(bad)
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"\n".join(encode(e) for e in events) + b"\n")
    score_file(jsonl, tmp_path / "scores.jsonl", progress=False)
    expected = {r["request_id"]: r for r in map(orjson.loads,
                                                 (tmp_path / "scores.jsonl").read_bytes().splitlines())}
    names = ", ".join(SCORE_NAMES)
    for row in namespace.sql(f"SELECT request_id, {names} FROM inference_scores"):
        want = expected[row[0]]
        for name, got in zip(SCORE_NAMES, row[1:], strict=True):
            if want[name] is None:
                assert got is None, (row[0], name)
            else:
                assert math.isclose(got, want[name], rel_tol=1e-12, abs_tol=1e-12), (row[0], name)
    print(f"standalone cluster: {len(events)} events scored by 2 workers; python {sys.version.split()[0]}")
