"""The scoring stream's plan: how a micro-batch is cut into Spark tasks (both choices were measured in
docs/benchmarks.md; these tests keep them from silently going away)."""

from __future__ import annotations

import pytest

from parrotwatch.quality import QualityConfig
from parrotwatch.streaming.session import build_session
from parrotwatch.streaming.transforms import read_kafka, score_inference


@pytest.fixture(scope="module")
def spark(base_settings, stack):
    session = build_session(base_settings.model_copy(update={"spark_master": "local[2]"}),
                            app_name="plan-test")
    yield session
    session.stop()


def _plan(df) -> str:
    return df._jdf.queryExecution().analyzed().toString()


def _source_options(df) -> dict[str, str]:
    """The Kafka source's options, from the streaming relation at the leaf of the plan."""
    leaf = df._jdf.queryExecution().analyzed().collectLeaves().head()
    options = leaf.extraOptions().asCaseSensitiveMap()
    return {k: options.get(k) for k in options.keySet().toArray()}


def test_kafka_source_splits_backlog_batches_into_bounded_tasks(spark, base_settings):
    settings = base_settings.model_copy(update={"max_records_per_task": 1234})
    options = _source_options(read_kafka(spark, settings, "plan-test-topic"))
    assert options["maxRecordsPerPartition"] == "1234"
    assert "minPartitions" not in options  # unset by default: small live batches keep a task per partition
    options = _source_options(read_kafka(spark, settings.model_copy(update={"min_partitions": 6}), "t"))
    assert options["minPartitions"] == "6"


def test_model_detectors_spread_rows_over_every_task_slot_model_free_does_not(spark, base_settings):
    source = read_kafka(spark, base_settings, "plan-test-topic")
    with_models = _plan(score_inference(source, 1 << 20, quality=QualityConfig(detectors=("toxicity",))))
    model_free = _plan(score_inference(source, 1 << 20, quality=QualityConfig(detectors=())))
    slots = spark.sparkContext.defaultParallelism
    assert slots == 2
    assert f"Repartition {slots}, true" in with_models, with_models
    assert "Repartition" not in model_free, model_free


def test_micro_batches_are_capped_by_what_the_detectors_cost(spark, base_settings):
    """Unset, the cap follows the detectors: 50,000 events model-free (~10 s of scoring), 2,000 with the
    model detectors (~1 min at their ~40 events/s), so a backlog is stored and alerted on as it goes."""
    def cap(**update) -> str:
        return _source_options(read_kafka(spark, base_settings.model_copy(update=update), "t"))[
            "maxOffsetsPerTrigger"]

    assert cap(max_offsets_per_trigger=None, quality_detectors=[]) == "50000"
    assert cap(max_offsets_per_trigger=None, quality_detectors=["toxicity"]) == "2000"
    assert cap(max_offsets_per_trigger=777, quality_detectors=["toxicity"]) == "777"
