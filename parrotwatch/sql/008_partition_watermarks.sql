-- Per-partition event-time watermarks. The stream's watermark (stream_watermarks.max_event_time) is
-- the least of the partitions' largest event times, over the partitions that received data within the
-- idleness timeout, as Flink's Kafka source does (per-partition watermarks, "withIdleness"). Taking the
-- largest event time over all partitions closed windows too early whenever the partitions were read
-- unevenly in event time: catching up a backlog, maxOffsetsPerTrigger splits each micro-batch by
-- offsets, and one partition could run 20 s of event time ahead of another.
CREATE TABLE stream_partition_watermarks (
    sink              text NOT NULL,
    kafka_partition   integer NOT NULL,
    max_event_time    timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (sink, kafka_partition)
);
