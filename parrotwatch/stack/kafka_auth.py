"""How every Kafka client of the project authenticates: one place for the settings' security
options, in kafka-python's and in Spark's Kafka source's spelling."""

from __future__ import annotations

from typing import Any

from parrotwatch.settings import Settings

_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
#: Spark redacts option values whose key matches this in plans, logs and the UI
#: (``spark.sql.redaction.options.regex``; its default covers only "url").
SPARK_REDACTION_REGEX = "(?i)url|jaas|password|secret|token"


def client_options(settings: Settings) -> dict[str, Any]:
    """kafka-python keyword arguments: ``bootstrap_servers`` and the security settings."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap,
                               "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=settings.kafka_sasl_password.get_secret_value())
    if settings.kafka_ssl_cafile is not None:
        options["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return options


def spark_options(settings: Settings) -> dict[str, str]:
    """Spark Kafka source options (``kafka.*``) for the same security settings."""
    options = {"kafka.bootstrap.servers": settings.bootstrap,
               "kafka.security.protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password.get_secret_value()
        options["kafka.sasl.mechanism"] = settings.kafka_sasl_mechanism
        options["kafka.sasl.jaas.config"] = (
            f'{_LOGIN_MODULES[settings.kafka_sasl_mechanism]} required '
            f'username="{_jaas_escape(settings.kafka_sasl_username)}" '
            f'password="{_jaas_escape(password)}";')
    if settings.kafka_ssl_cafile is not None:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(settings.kafka_ssl_cafile)
    return options


def _jaas_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def consumer_when_reachable(stop, topic: str, settings: Settings, log, **options: Any):
    """A ``KafkaConsumer`` of ``topic`` with the stack's bootstrap and security and ``options``,
    retried with backoff (1 s doubling to 30 s) until the broker answers; None once ``stop`` (a
    ``threading.Event``) is set. The long-running consumers (dispatcher, OTLP bridge) start with it."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    delay = 1.0
    while not stop.is_set():
        try:
            return KafkaConsumer(topic, **client_options(settings), **options)
        except KafkaError as exc:
            log.warning("Kafka at %s not reachable (%s); retrying in %.0f s", settings.bootstrap, exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, 30.0)
    return None
