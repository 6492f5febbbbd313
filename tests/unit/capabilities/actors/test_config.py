"""/dapr/config (and the gRPC initial_request) → per-type EntityConfig, as daprd reads it."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from dapr.actor.runtime.config import (
    ActorReentrancyConfig,
    ActorRuntimeConfig,
    ActorTypeConfig,
)
from dapr.serializers import DefaultJSONSerializer

from pylotto.capabilities.actors.api import EntityConfig, Reentrancy
from pylotto.capabilities.actors.config import parse_app_config


def test_no_config_hosts_nothing() -> None:
    assert parse_app_config(None) == {}
    assert parse_app_config({}) == {}
    assert parse_app_config({"entities": []}) == {}
    assert parse_app_config({"actorIdleTimeout": "1m"}) == {}


def test_defaults_as_daprd() -> None:
    assert parse_app_config({"entities": ["A"]}) == {"A": EntityConfig(
        idle_timeout=3600.0, drain_ongoing_call_timeout=2.0, drain_rebalanced_actors=False,
        reentrancy=Reentrancy(enabled=False, max_stack_depth=32))}


def test_the_python_sdk_config() -> None:
    """The JSON the official SDK's FastAPI extension answers (its own serializer, durations
    as ``0h0m5s0ms0μs``), with a per-type override that replaces the idle timeout and the
    reentrancy whole, as daprd does."""
    config = ActorRuntimeConfig(
        actor_idle_timeout=timedelta(seconds=5),
        drain_ongoing_call_timeout=timedelta(seconds=3), drain_rebalanced_actors=True,
        reentrancy=ActorReentrancyConfig(enabled=True, maxStackDepth=8),
        actor_type_configs=[ActorTypeConfig("B", actor_idle_timeout=timedelta(minutes=2),
                                            reentrancy=ActorReentrancyConfig(enabled=False))])
    config.update_entities(["A", "B"])
    raw = json.loads(DefaultJSONSerializer().serialize(config))
    assert "actorScanInterval" in raw  # sent by the SDK, unknown to daprd: ignored
    parsed = parse_app_config(raw)
    assert parsed["A"] == EntityConfig(idle_timeout=5.0, drain_ongoing_call_timeout=3.0,
                                       drain_rebalanced_actors=True,
                                       reentrancy=Reentrancy(True, 8))
    assert parsed["B"] == EntityConfig(idle_timeout=120.0, drain_ongoing_call_timeout=3.0,
                                       drain_rebalanced_actors=True,
                                       reentrancy=Reentrancy(False, 32))


def test_override_without_idle_timeout_gets_daprds_default() -> None:
    parsed = parse_app_config({
        "entities": ["A", "B"], "actorIdleTimeout": "30s",
        "reentrancy": {"enabled": True},
        "entitiesConfig": [{"entities": ["B"], "drainOngoingCallTimeout": "500ms",
                            "drainRebalancedActors": True}],
    })
    assert parsed["A"].idle_timeout == 30.0
    assert parsed["A"].reentrancy == Reentrancy(True, 32)
    assert parsed["B"] == EntityConfig(idle_timeout=3600.0, drain_ongoing_call_timeout=0.5,
                                       drain_rebalanced_actors=True,
                                       reentrancy=Reentrancy(False, 32))


def test_override_for_a_type_not_hosted_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "pylotto.actors"):
        parsed = parse_app_config({"entities": ["A"], "entitiesConfig": [
            {"entities": ["Z"], "actorIdleTimeout": "1s"}]})
    assert list(parsed) == ["A"]
    assert "non-hosted actor type: Z" in caplog.text


def test_invalid_durations_warn_once_and_use_defaults(
        caplog: pytest.LogCaptureFixture) -> None:
    raw = {"entities": ["A"], "actorIdleTimeout": "soon-ish",
           "drainOngoingCallTimeout": "1 fortnight", "remindersStoragePartitions": 7}
    with caplog.at_level(logging.WARNING, "pylotto.actors"):
        first = parse_app_config(raw)
        second = parse_app_config(raw)
    assert first == second == {"A": EntityConfig()}
    assert caplog.text.count("soon-ish") == 1
    assert caplog.text.count("1 fortnight") == 1


def test_initial_request_fields() -> None:
    """The gRPC stream's ``initial_request`` as a dict (snake_case, as protobuf's
    MessageToDict with preserving_proto_field_name gives it)."""
    parsed = parse_app_config({
        "entities": ["A", "B"], "actor_idle_timeout": "1m", "drain_ongoing_call_timeout": "4s",
        "drain_rebalanced_actors": True,
        "reentrancy": {"enabled": True, "max_stack_depth": 3},
        "entities_config": [{"entities": ["B"], "actor_idle_timeout": "2s",
                             "reentrancy": {"enabled": True, "max_stack_depth": 5}}],
    })
    assert parsed["A"] == EntityConfig(60.0, 4.0, True, Reentrancy(True, 3))
    assert parsed["B"] == EntityConfig(2.0, 4.0, True, Reentrancy(True, 5))


def test_initial_request_message() -> None:
    """A real ``SubscribeActorEventsRequestInitialAlpha1`` through protobuf's MessageToDict
    (durations as ``"300s"``/``"0.500s"``)."""
    from dapr.proto.runtime.v1 import actors_pb2
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.json_format import MessageToDict

    message = actors_pb2.SubscribeActorEventsRequestInitialAlpha1(
        entities=["A", "B"], actor_idle_timeout=Duration(seconds=300),
        drain_ongoing_call_timeout=Duration(nanos=500_000_000),
        reentrancy=actors_pb2.ActorReentrancyConfig(enabled=True, max_stack_depth=4),
        entities_config=[actors_pb2.ActorEntityConfig(
            entities=["B"], actor_idle_timeout=Duration(seconds=7))])
    for raw in (MessageToDict(message), MessageToDict(message,
                                                      preserving_proto_field_name=True)):
        parsed = parse_app_config(raw)
        assert parsed["A"] == EntityConfig(300.0, 0.5, False, Reentrancy(True, 4))
        assert parsed["B"] == EntityConfig(7.0, 0.5, False, Reentrancy(False, 32))
