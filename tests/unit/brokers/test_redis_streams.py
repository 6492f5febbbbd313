"""``redis`` pub/sub (Redis Streams) without a server: registry names and settings (the
server-backed tests: tests/integration/brokers/test_redis_streams.py; the contract:
tests/conformance/pubsub)."""

from __future__ import annotations

import logging

import pytest

from pylotto.components.pubsub.redis import RedisPubSubSettings, RedisStreamsPubSub
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve

HOST = "127.0.0.1:6379"


def test_registered_under_dapr_names() -> None:
    assert resolve("pubsub", "redis") is RedisStreamsPubSub
    assert resolve("pubsub", "pubsub.redis") is RedisStreamsPubSub


def test_dapr_concurrency_stands_for_max_concurrent_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def settings(**meta: str) -> RedisPubSubSettings:
        return decode(RedisPubSubSettings, {"redisHost": HOST, **meta}, component="pubsub.r")

    with caplog.at_level(logging.WARNING, logger="pylotto.metadata"):
        assert settings(concurrency="5", queueDepth="100").max_concurrent_handlers == 5
    assert not caplog.records  # both keys known
    assert settings(concurrency="5", maxConcurrentHandlers="7").max_concurrent_handlers == 7
    assert settings().max_concurrent_handlers == 16

