"""``nats`` / ``jetstream`` pub/sub without a server: registry names, settings and durable names
(the server-backed tests: tests/integration/brokers/test_nats.py; the contract:
tests/conformance/pubsub)."""

from __future__ import annotations

import pytest

from pylotto.components.pubsub.nats import NATSJetStreamPubSub, NatsSettings, durable_name
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve


def test_registered_under_dapr_names() -> None:
    assert resolve("pubsub", "nats") is NATSJetStreamPubSub
    assert resolve("pubsub", "pubsub.jetstream") is NATSJetStreamPubSub


def test_settings() -> None:
    def settings(**meta: str) -> NatsSettings:
        return decode(NatsSettings, meta, component="pubsub.nats")

    default = settings()
    assert (default.nats_url, default.stream_name, default.durable_name) == (
        "nats://127.0.0.1:4222", "pylotto", "")
    assert (default.ack_wait, default.max_deliver, default.max_ack_pending) == (30.0, -1, 10_000)
    assert settings(maxDeliver="5", ackWait="1m").max_deliver == 5
    for key, bad in (("maxDeliver", "0"), ("maxDeliver", "-2"), ("streamName", "a.b"),
                     ("durableName", "has space"), ("ackWait", "0s")):
        with pytest.raises(ConfigError, match=key):
            settings(**{key: bad})


def test_durable_names_are_valid_and_distinct() -> None:
    names = {durable_name("g", "orders.eu"), durable_name("g", "orders_eu"),
             durable_name("g.x", "orders"), durable_name("g", "orders", "prefix")}
    assert len(names) == 4
    assert all(" " not in n and "." not in n and "*" not in n and ">" not in n for n in names)
    assert durable_name("g", "orders", "prefix").startswith("prefix_")



class _Msg:
    def __init__(self, headers: dict[str, str] | None = None, data: bytes = b"x") -> None:
        self.headers = headers
        self.data = data


def test_pull_statuses_end_the_request_and_a_conflict_backs_off() -> None:
    """How the batched pull reads what arrives in its inbox (the pull itself against a real
    server: tests/integration/brokers/test_nats.py)."""
    from pylotto.components.pubsub.nats import _NatsSubscription
    from pylotto.core.errors import Unavailable

    sub = object.__new__(_NatsSubscription)
    sub.where = "pubsub bus topic t group g"
    sub._owed = 3
    message = _Msg()
    assert sub._processable(message) is message and sub._owed == 2
    assert sub._processable(_Msg({"Status": "100", "Description": "Idle Heartbeat"})) is None
    assert sub._owed == 2  # a heartbeat ends nothing
    for status in ("404", "408"):
        sub._owed = 2
        assert sub._processable(_Msg({"Status": status})) is None
        assert sub._owed == 0  # the request is over: the loop asks again
    sub._owed = 2
    with pytest.raises(Unavailable, match="409 Consumer Deleted"):
        sub._processable(_Msg({"Status": "409", "Description": "Consumer Deleted"}))
    assert sub._owed == 0
