"""Pure ``DataFrame -> DataFrame`` steps of the scoring job."""

from __future__ import annotations

from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from parrotwatch.detectors.calibration.sampling import PoolDesign
from parrotwatch.quality import QualityConfig
from parrotwatch.settings import Settings
from parrotwatch.stack.kafka_auth import spark_options
from parrotwatch.streaming.records import (
    FEEDBACK_SCHEMA,
    INFERENCE_SCHEMA,
    BatchFn,
    feedback_rows,
    inference_rows,
    process_batches,
)


def read_kafka(spark: SparkSession, settings: Settings, topic: str) -> DataFrame:
    """Spark's own Kafka source, from the earliest offset on first start (checkpoint after)."""
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_options(settings))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", settings.events_per_batch)
        .option("kafka.max.partition.fetch.bytes", str(16 * 1024 * 1024))
        .option("maxRecordsPerPartition", str(settings.max_records_per_task))
        .option("failOnDataLoss", "true")
    )
    if settings.min_partitions:
        reader = reader.option("minPartitions", str(settings.min_partitions))
    return reader.load()


def _apply(df: DataFrame, batch_fn: BatchFn, schema, max_bytes: int) -> DataFrame:
    fn = partial(process_batches, batch_fn=batch_fn, schema=schema, max_bytes=max_bytes)
    return df.select("key", "value", "topic", "partition", "offset", "timestamp").mapInArrow(
        fn, from_arrow_schema(schema)
    )


def score_inference(df: DataFrame, max_bytes: int, index_path: str | None = None,
                    quality: QualityConfig | None = None,
                    pool: PoolDesign | None = None, redact_pii: bool = False) -> DataFrame:
    """Kafka rows -> one row per record: its scores, or its dead-letter reason; with ``pool``,
    the texts of the requests it keeps for human review.

    With model-based detectors the rows are first spread round-robin over one partition per task slot:
    the Kafka source makes one task per topic partition (3 here), and on 2 slots the third would run
    alone while a core idles, a third of every micro-batch. The shuffle costs milliseconds against
    seconds of model time; the model-free path keeps the Kafka partitions (there the shuffle would cost).
    """
    if quality is not None and quality.enabled:
        df = df.repartition(df.sparkSession.sparkContext.defaultParallelism)
    batch_fn = partial(inference_rows, index_path=index_path, quality=quality, pool=pool,
                       redact_pii=redact_pii)
    return _apply(df, batch_fn, INFERENCE_SCHEMA, max_bytes)


def parse_feedback_rows(df: DataFrame, max_bytes: int) -> DataFrame:
    """Kafka rows -> one row per record: its feedback columns, or its dead-letter reason."""
    return _apply(df, feedback_rows, FEEDBACK_SCHEMA, max_bytes)
