"""A Spark standalone cluster on this machine (a master and N workers, started through
``spark-class`` from the pyspark package), and ``spark-submit`` of the scoring job to it.

Used by the distributed-engine test and by anyone who wants the job on real executors
without Kubernetes: ``python -m parrotwatch.stack.spark_cluster --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from parrotwatch.stack.processes import ManagedProcess, free_ports, wait_until


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class StandaloneCluster:
    """``spark://127.0.0.1:<port>`` with ``workers`` workers of ``cores`` cores each."""

    def __init__(self, home: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g",
                 env: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        # master, its web UI, and each worker's web UI: distinct ports, free now
        self.port, self._master_ui, *self._worker_uis = free_ports(2 + workers)
        self.env = {**(env or os.environ), "SPARK_HOME": str(spark_home()),
                    "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
        run, logs = self.home / "run", self.home / "logs"
        self.master = ManagedProcess(f"spark-master-{self.port}", run, logs / "spark-master.log")
        self.workers = [ManagedProcess(f"spark-worker-{self.port}-{i}", run,
                                       logs / f"spark-worker-{i}.log") for i in range(workers)]
        self.cores, self.memory = cores, memory

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _class(self, *args: str) -> list[str]:
        return [str(spark_home() / "bin" / "spark-class"), *args]

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        self.master.start(self._class("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                      "--port", str(self.port), "--webui-port", str(self._master_ui)),
                          env=self.env)
        wait_until(lambda: "I have been elected leader" in _read(self.master.log_path),
                   timeout=timeout, proc=self.master, what="the Spark master was elected leader")
        for i, worker in enumerate(self.workers):
            work_dir = self.home / "spark-work" / str(i)
            work_dir.mkdir(parents=True, exist_ok=True)
            worker.start(self._class("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                     "--cores", str(self.cores), "--memory", self.memory,
                                     "--webui-port", str(self._worker_uis[i]), "--work-dir", str(work_dir),
                                     self.url), env=self.env)
        for worker in self.workers:
            wait_until(lambda w=worker: "Successfully registered with master" in _read(w.log_path),
                       timeout=timeout, proc=worker, what="the Spark worker registered")
        return self

    def submit_command(self, script: Path, jars: list[Path], executor_memory: str = "768m"
                       ) -> list[str]:
        """``spark-submit`` of ``script`` (client mode: the driver runs here) with ``jars`` (the
        Kafka connector: under spark-submit the JVM starts before the script can set them)."""
        return [str(spark_home() / "bin" / "spark-submit"), "--master", self.url,
                "--jars", ",".join(str(j) for j in jars),
                "--deploy-mode", "client", "--executor-memory", executor_memory,
                "--total-executor-cores", str(self.cores * len(self.workers)),
                "--conf", f"spark.pyspark.python={sys.executable}",
                "--conf", f"spark.pyspark.driver.python={sys.executable}", str(script)]

    def stop(self) -> None:
        for p in [*self.workers, self.master]:
            p.stop(timeout=20)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path.home() / ".parrotwatch" / "spark-cluster")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cores", type=int, default=1, help="cores per worker")
    args = ap.parse_args()
    cluster = StandaloneCluster(args.home, workers=args.workers, cores=args.cores).start()
    import pyspark

    from parrotwatch.settings import load_settings
    from parrotwatch.stack.jars import ensure_spark_kafka_jars

    settings = load_settings()
    jars = ensure_spark_kafka_jars(settings.jars_dir, settings.logs_dir / "maven.log",
                                   pyspark.__version__)
    submit = " ".join(cluster.submit_command(Path("streaming/job.py"), jars))
    print(f"Spark standalone master at {cluster.url}; submit with:\n  "
          f"PARROTWATCH_SPARK_MASTER={cluster.url} {submit}\nCtrl-C stops the cluster.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
