"""Spark Structured Streaming adapters: Kafka in, detectors applied, PostgreSQL and Kafka out.

Spark only adapts here: pure ``DataFrame -> DataFrame`` steps (``transforms``), per-record logic
in plain Python (``records``), and idempotent sinks (``sinks``) wired up in ``job.main``.
"""
