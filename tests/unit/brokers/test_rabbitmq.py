"""``rabbitmq`` pub/sub without a broker: registry names and the queue settings (the
broker-backed tests: tests/integration/brokers/test_rabbitmq.py; the contract:
tests/conformance/pubsub)."""

from __future__ import annotations

import pytest

from pylotto.components.pubsub.rabbitmq import RabbitMQPubSub, RabbitMQSettings
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve


def test_registered_under_dapr_names() -> None:
    assert resolve("pubsub", "rabbitmq") is RabbitMQPubSub
    assert resolve("pubsub", "pubsub.rabbitmq") is RabbitMQPubSub


def test_queue_settings() -> None:
    def settings(**meta: str) -> RabbitMQSettings:
        return decode(RabbitMQSettings, meta, component="pubsub.rabbit")

    default = settings()
    assert (default.durable, default.deleted_when_unused, default.queue_kind()) == (
        True, False, "quorum")
    assert default.prefetch() == 16
    assert settings(maxConcurrentHandlers="4").prefetch() == 4
    assert settings(prefetchCount="0").prefetch() == 0  # no limit
    assert settings(durable="false").queue_kind() == "classic"
    assert settings(deletedWhenUnused="true").queue_kind() == "classic"
    assert settings(queueType="classic").queue_kind() == "classic"
    with pytest.raises(ConfigError, match="queueType"):
        settings(durable="false", queueType="quorum")
    with pytest.raises(ConfigError, match="exchangeKind"):
        settings(exchangeKind="headers")

