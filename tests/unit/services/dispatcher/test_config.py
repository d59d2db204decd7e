"""The receivers file: strict keys with helpful errors, secrets, match filters (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parrotwatch.contracts.events import AlertEventV1
from parrotwatch.services.dispatcher.config import (
    AlertmanagerReceiver,
    ConfigError,
    Match,
    SlackReceiver,
    WebhookReceiver,
    load_receivers,
    parse_receivers,
)

GOOD = """
receivers:
  - name: oncall
    kind: webhook
    url: https://hooks.example.com/pw
    secret_env: PW_TEST_SECRET
    match: {severity: [critical]}
  - {name: chat, kind: slack, url: "https://hooks.slack.com/services/T/B/X"}
  - {name: am, kind: alertmanager, url: "http://127.0.0.1:9093", firing_ttl_s: 3600}
delivery: {max_attempts: 7, backoff_cap_s: 2}
"""


def alert(**changes) -> AlertEventV1:
    base = dict(alert_id="fp1", rule="latency_p99", status="firing", severity="warning",
                labels={"model": "m1", "app": "checkout-eu", "metric": "latency_p99"},
                starts_at=datetime(2026, 1, 1, tzinfo=UTC), summary="p99 latency is 3x its baseline")
    return AlertEventV1(**(base | changes))


def test_good_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PW_TEST_SECRET", "abc")
    path = tmp_path / "receivers.yaml"
    path.write_text(GOOD)
    config = load_receivers(path)
    oncall, chat, am = config.receivers
    assert isinstance(oncall, WebhookReceiver) and oncall.secret_value() == "abc"
    assert isinstance(chat, SlackReceiver) and isinstance(am, AlertmanagerReceiver)
    assert am.firing_ttl_s == 3600 and config.delivery.max_attempts == 7
    assert config.delivery.backoff_base_s == 1.0  # defaults fill the rest
    assert "abc" not in repr(config)  # an inline or resolved secret never shows in logs


@pytest.mark.parametrize(("yaml_text", "bad", "valid"), [
    ("receivers:\n  - {name: a, kind: slack, url: 'http://x', timout_s: 3}\n",
     "receivers[0] (slack): unknown key 'timout_s'", "connect_timeout_s, kind, match, name, timeout_s, url"),
    ("receivers:\n  - {name: a, kind: slack, url: 'http://x', match: {sevrity: [info]}}\n",
     "receivers[0] (slack).match: unknown key 'sevrity'", "labels, rules, severity, status"),
    ("receivers:\n  - {name: a, kind: slack, url: 'http://x'}\ndelivery: {max_attempt: 3}\n",
     "delivery: unknown key 'max_attempt'", "auto_offset_reset, backoff_base_s, backoff_cap_s"),
    ("receiver:\n  - {name: a, kind: slack, url: 'http://x'}\n",
     "(top level): unknown key 'receiver'", "delivery, receivers"),
    ("receivers:\n  - {name: a, kind: alertmanager, url: 'http://x', secret: z}\n",
     "receivers[0] (alertmanager): unknown key 'secret'", "firing_ttl_s, generator_url"),
])
def test_typo_names_the_bad_key_and_the_valid_ones(tmp_path, yaml_text, bad, valid):
    path = tmp_path / "r.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_receivers(path)
    message = str(info.value)
    assert str(path) in message and bad in message and valid in message, message


def test_other_errors_are_explained(monkeypatch):
    monkeypatch.delenv("PW_MISSING_SECRET", raising=False)
    cases = {
        "'kind' must be one of webhook, slack, alertmanager":
            {"receivers": [{"name": "a", "kind": "pagerduty", "url": "http://x"}]},
        "exactly one of 'secret' or 'secret_env'":
            {"receivers": [{"name": "a", "kind": "webhook", "url": "http://x"}]},
        "PW_MISSING_SECRET (secret_env) is unset":
            {"receivers": [{"name": "a", "kind": "webhook", "url": "http://x",
                            "secret_env": "PW_MISSING_SECRET"}]},
        "repeated: ['a']":
            {"receivers": [{"name": "a", "kind": "slack", "url": "http://x"}] * 2},
        "receivers[0] (slack).url":
            {"receivers": [{"name": "a", "kind": "slack", "url": "not a url"}]},
    }
    for expected, data in cases.items():
        with pytest.raises(ConfigError, match="invalid receivers file") as info:
            parse_receivers(data)
        assert expected in str(info.value), str(info.value)


def test_unreadable_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("receivers: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read receivers file"):
        load_receivers(path)


def test_match_filters():
    assert Match().matches(alert())
    assert Match(severity=["warning", "critical"]).matches(alert())
    assert not Match(severity=["critical"]).matches(alert())
    assert Match(labels={"app": "checkout-*"}).matches(alert())
    assert not Match(labels={"app": "search"}).matches(alert())
    assert not Match(labels={"team": "*x*"}).matches(alert())  # absent label: only "*" matches
    assert Match(rules=["latency_*"], status=["firing"]).matches(alert())
    assert not Match(status=["resolved"]).matches(alert())


def test_shipped_example_parses(monkeypatch):
    from pathlib import Path

    import parrotwatch.services.dispatcher

    monkeypatch.setenv("ONCALL_WEBHOOK_SECRET", "x")
    config = load_receivers(Path(parrotwatch.services.dispatcher.__file__).parent / "receivers.example.yaml")
    assert [r.kind for r in config.receivers] == ["webhook", "slack", "alertmanager"]
    assert config.delivery == type(config.delivery)()  # the file documents the defaults


def test_per_receiver_concurrency_and_retention():
    config = parse_receivers({
        "receivers": [{"name": "a", "kind": "slack", "url": "http://x/1", "concurrency": 1},
                      {"name": "b", "kind": "slack", "url": "http://x/2"}],
        "delivery": {"workers": 3},
        "retention": {"outbox_days": 7, "dead_letters_days": 0}})
    assert [r.max_in_flight(config.delivery) for r in config.receivers] == [1, 3]
    assert (config.retention.outbox_days, config.retention.delivery_log_days,
            config.retention.dead_letters_days) == (7, 30, 0)
    with pytest.raises(ConfigError, match="unknown key 'days'; valid keys: batch_rows, "
                                          "dead_letters_days, delivery_log_days, interval_s"):
        parse_receivers({"receivers": [{"name": "a", "kind": "slack", "url": "http://x"}],
                         "retention": {"days": 3}})
