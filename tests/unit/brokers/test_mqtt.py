"""``mqtt`` pub/sub without a broker: its registry names and settings (the broker-backed tests:
tests/integration/brokers/test_mqtt.py; the contract: tests/conformance/pubsub)."""

from __future__ import annotations

import pytest

from pylotto.components.pubsub.mqtt import MQTTPubSub, MqttSettings
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve


def test_registered_under_dapr_names() -> None:
    assert resolve("pubsub", "mqtt") is MQTTPubSub
    assert resolve("pubsub", "pubsub.mqtt3") is MQTTPubSub


def test_settings() -> None:
    def settings(**meta: str) -> MqttSettings:
        return decode(MqttSettings, meta, component="pubsub.mqtt")

    default = settings()
    assert (default.qos, default.retain, default.clean_session) == (1, False, False)
    assert settings(cleanSession="true").clean_session
    assert settings(url="mqtt://user:pw@broker:1884").address() == {
        "hostname": "broker", "port": 1884, "username": "user", "password": "pw"}
    with pytest.raises(ConfigError, match="qos"):
        settings(qos="0")  # QoS 0 loses messages
    with pytest.raises(ConfigError, match="url"):
        settings(url="http://broker")

