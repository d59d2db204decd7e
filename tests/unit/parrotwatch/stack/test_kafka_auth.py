"""Kafka security settings, in kafka-python's and Spark's spelling, and their checks."""

from __future__ import annotations

import pydantic
import pytest

from parrotwatch.settings import Settings
from parrotwatch.stack.kafka_auth import client_options, spark_options
from parrotwatch.stack.local import settings_env


def test_plaintext_by_default():
    settings = Settings(kafka_bootstrap="k:9092")
    assert client_options(settings) == {"bootstrap_servers": "k:9092",
                                        "security_protocol": "PLAINTEXT"}
    assert spark_options(settings) == {"kafka.bootstrap.servers": "k:9092",
                                       "kafka.security.protocol": "PLAINTEXT"}


def test_scram_for_both_clients_with_a_password_that_needs_escaping(tmp_path):
    settings = Settings(kafka_bootstrap="k:9092", kafka_security_protocol="SASL_SSL",
                        kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="parrotwatch-api",
                        kafka_sasl_password='p"w\\d', kafka_ssl_cafile=tmp_path / "ca.crt")
    client = client_options(settings)
    assert client["sasl_mechanism"] == "SCRAM-SHA-512"
    assert client["sasl_plain_password"] == 'p"w\\d' and client["ssl_cafile"].endswith("ca.crt")
    jaas = spark_options(settings)["kafka.sasl.jaas.config"]
    assert jaas == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                    'username="parrotwatch-api" password="p\\"w\\\\d";')
    assert spark_options(settings)["kafka.ssl.truststore.type"] == "PEM"
    # a child process (the stream job, the API) sees the real password, not pydantic's mask
    assert settings_env(settings)["PARROTWATCH_KAFKA_SASL_PASSWORD"] == 'p"w\\d'


def test_sasl_without_credentials_says_what_is_missing():
    with pytest.raises(pydantic.ValidationError, match="PARROTWATCH_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN")
