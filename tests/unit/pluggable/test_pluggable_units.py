"""Pluggable-component plumbing without a component process: error mapping, metadata
forwarding, type resolution from the socket folder, discovery skipping dead sockets, and the
wire shape of the protos (field numbers Dapr's SDK components rely on)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from pylotto.components.base import Component
from pylotto.components.pluggable import discovery
from pylotto.components.pluggable.channel import map_rpc_error
from pylotto.components.pluggable.state import PluggableStateSettings, PluggableStateStore
from pylotto.core import errors
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from pylotto.proto.components import pubsub_pb2, state_pb2


def rpc_error(code: grpc.StatusCode, details: str = "boom") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(("code", "expected"), [
    (grpc.StatusCode.UNAVAILABLE, errors.Unavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
    (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgument),
    (grpc.StatusCode.NOT_FOUND, errors.NotFound),
    (grpc.StatusCode.UNIMPLEMENTED, errors.Unsupported),
    (grpc.StatusCode.INTERNAL, errors.Internal),
    (grpc.StatusCode.UNKNOWN, errors.Internal),
])
def test_status_codes_map_to_pylotto_errors(code: grpc.StatusCode,
                                            expected: type[errors.PylottoError]) -> None:
    assert type(map_rpc_error(rpc_error(code), "state x")) is expected


def test_metadata_other_than_the_sidecars_goes_to_init() -> None:
    settings = decode(PluggableStateSettings, {
        "socketPath": "/tmp/x.sock", "timeout": "2s", "keyPrefix": "none", "table": "t1",
    }, component="state.x")
    assert settings.socket_path == "/tmp/x.sock" and settings.timeout == 2.0
    store = PluggableStateStore("x", settings, None)  # type: ignore[arg-type]
    assert store.forwarded_metadata() == {"table": "t1"}


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    discovery.use_socket_folder(tmp_path)
    yield tmp_path
    discovery.use_socket_folder(discovery.DEFAULT_SOCKET_FOLDER)


def test_a_socket_file_makes_a_type(folder: Path) -> None:
    (folder / "mystore.sock").touch()
    cls = resolve("state", "state.mystore")
    assert issubclass(cls, PluggableStateStore)
    assert cls.default_socket == str(folder / "mystore.sock")
    assert issubclass(resolve("lock", "mystore"), Component)
    with pytest.raises(ConfigError, match=r"unknown state component type .state\.other."):
        resolve("state", "state.other")


async def test_discovery_skips_a_socket_that_does_not_answer(folder: Path) -> None:
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(folder / "mute.sock"))  # accepts connections, never speaks gRPC
    listening.listen()
    try:
        assert await discovery.discover(folder, wait=0.5) == []
    finally:
        listening.close()
    assert await discovery.discover(folder / "missing") == []


def field_numbers(message: Any) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_wire_shape_matches_dapr() -> None:
    assert state_pb2.DESCRIPTOR.package == "dapr.proto.components.v1"
    assert field_numbers(state_pb2.SetRequest) == {
        "key": 1, "value": 2, "etag": 3, "metadata": 4, "options": 5, "content_type": 6}
    assert field_numbers(state_pb2.GetResponse) == {
        "data": 1, "etag": 2, "metadata": 3, "content_type": 4}
    assert field_numbers(pubsub_pb2.PullMessagesRequest) == {
        "topic": 1, "ack_message_id": 2, "ack_error": 3}
    assert field_numbers(pubsub_pb2.PullMessagesResponse) == {
        "data": 1, "topic_name": 2, "metadata": 3, "content_type": 4, "id": 5}
    methods = [m.name for m in state_pb2.DESCRIPTOR.services_by_name["StateStore"].methods]
    assert methods == ["Init", "Features", "Delete", "Get", "Set", "Ping", "BulkDelete",
                       "BulkGet", "BulkSet"]
