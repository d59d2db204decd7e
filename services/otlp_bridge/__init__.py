"""The OTLP bridge: OpenTelemetry traces that a Collector writes to Kafka, onto ``llm.inference.v1``.

An OpenTelemetry Collector with the ``kafka`` exporter (``encoding: otlp_proto``, the default, or
``otlp_json``) writes each batch of spans as one Kafka record: a protobuf (or OTLP/JSON)
``TracesData``, which is wire-compatible with the ``ExportTraceServiceRequest`` that
``POST /v1/traces`` reads. The bridge consumes that topic and treats every record as the API treats
a request body (:mod:`parrotwatch.contracts.otlp`): LLM spans become inference events v1 keyed by
their request id, spans that cannot be mapped and records that cannot be decoded become dead
letters with their reason, other spans are counted and skipped.
"""
