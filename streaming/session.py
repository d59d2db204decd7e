"""The SparkSession of the scoring job: local[*] by default, Kafka connector from local jars."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from parrotwatch.settings import Settings
from parrotwatch.stack.jars import ensure_spark_kafka_jars
from parrotwatch.stack.kafka_auth import SPARK_REDACTION_REGEX


def build_session(settings: Settings, app_name: str = "parrotwatch-scoring") -> SparkSession:
    """Must run before any other SparkContext of the process: ``spark.jars`` is read at start.

    ``PARROTWATCH_SPARK_MASTER`` picks the master (default ``local[*]``); under ``spark-submit``
    set it to the cluster's master URL.
    """
    import sys

    import pyspark

    # Python workers must run the driver's interpreter (its venv has pyarrow and the detectors).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jars = ensure_spark_kafka_jars(settings.jars_dir, settings.logs_dir / "maven.log",
                                   pyspark.__version__)
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.redaction.options.regex", SPARK_REDACTION_REGEX)
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.python.worker.reuse", "true")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.local.dir", str(Path(settings.home) / "spark-tmp"))
    )
    master = settings.spark_master
    if master.startswith("local"):
        builder = (builder.master(master).config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
