"""Pluggable components through the real sidecar: component servers in Python and Node.js on
Unix sockets in the configured folder, discovered by reflection and used as ``state.<socket>``,
``lock.<socket>`` and ``sequencer.<socket>`` through the Layotto API and the Dapr SDK."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from dapr.clients import DaprClient

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar
from tests.support.pluggable import ComponentServer

T = TypeVar("T")


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A socket folder served by a Python (memstore.sock) and a Node.js (nodestore.sock)
    component server; short path, as Unix socket paths are limited to 107 bytes."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="pyl-sock-"))
    yield path
    for sock in path.glob("*.sock"):
        sock.unlink(missing_ok=True)
    path.rmdir()


@pytest.fixture
def python_server(folder: Path) -> Iterator[ComponentServer]:
    server = ComponentServer("python", folder / "memstore.sock").start()
    yield server
    server.stop()


@pytest.fixture
def node_server(folder: Path) -> Iterator[ComponentServer]:
    server = ComponentServer("node", folder / "nodestore.sock").start()
    yield server
    server.stop()


@pytest.fixture
def sidecar(tmp_path: Path, folder: Path, python_server: ComponentServer,
            node_server: ComponentServer) -> Iterator[Sidecar]:
    car = Sidecar(tmp_path / "car", components={
        "state": {"mem": {"type": "state.memstore"}, "node": {"type": "state.nodestore"}},
        "lock": {"mem": {"type": "lock.memstore"}},
        "bindings": {"echo": {"type": "bindings.memstore"}},
        "sequencer": {"mem": {"type": "sequencer.memstore"},
                      "node": {"type": "sequencer.nodestore"}},
    }, app={"id": "plug"}, extra_config={"pluggable": {"socket_folder": str(folder)}})
    car.start()
    yield car
    car.stop()


def until_ok(call: Callable[[], T], within: float = 30) -> T:
    """``call()`` retried while it fails with UNAVAILABLE (a restarted component server)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_discovered_types_are_logged(sidecar: Sidecar) -> None:
    logs = sidecar.logs()
    for name in ("state.memstore", "pubsub.memstore", "bindings.memstore", "lock.memstore",
                 "sequencer.memstore", "state.nodestore", "sequencer.nodestore"):
        assert f"pluggable component type {name}" in logs


@pytest.mark.parametrize("store", ["mem", "node"])
def test_state_via_layotto_api(sidecar: Sidecar, store: str) -> None:
    stub = sidecar.stub()
    key = f"k-{uuid.uuid4().hex[:8]}"
    stub.SaveState(runtime_pb2.SaveStateRequest(store_name=store, states=[
        runtime_pb2.StateItem(key=key, value=b"v1")]), timeout=10)
    got = stub.GetState(runtime_pb2.GetStateRequest(store_name=store, key=key), timeout=10)
    assert got.data == b"v1" and got.etag
    stale = runtime_pb2.StateItem(key=key, value=b"v2", etag=runtime_pb2.Etag(value="999"))
    with pytest.raises(grpc.RpcError) as info:
        stub.SaveState(runtime_pb2.SaveStateRequest(store_name=store, states=[stale]),
                       timeout=10)
    assert info.value.code() is grpc.StatusCode.ABORTED


def test_state_via_dapr_sdk(sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_GRPC_PORT", str(sidecar.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HTTP_PORT", str(sidecar.dapr_http_port))
    with DaprClient() as dapr:
        dapr.save_state("node", "sdk-key", "from the SDK")
        assert dapr.get_state("node", "sdk-key").data == b"from the SDK"
        dapr.save_state("mem", "sdk-key", "python side")
        assert dapr.get_state("mem", "sdk-key").data == b"python side"


def test_lock_and_sequencer(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    got = stub.TryLock(runtime_pb2.TryLockRequest(
        store_name="mem", resource_id="r1", lock_owner="a", expire=10), timeout=10)
    assert got.success
    again = stub.TryLock(runtime_pb2.TryLockRequest(
        store_name="mem", resource_id="r1", lock_owner="b", expire=10), timeout=10)
    assert not again.success
    for store in ("mem", "node"):
        first = stub.GetNextId(runtime_pb2.GetNextIdRequest(store_name=store, key="ids"),
                               timeout=10).next_id
        second = stub.GetNextId(runtime_pb2.GetNextIdRequest(store_name=store, key="ids"),
                                timeout=10).next_id
        assert second > first


def test_output_binding(sidecar: Sidecar) -> None:
    reply = sidecar.stub().InvokeBinding(runtime_pb2.InvokeBindingRequest(
        name="echo", operation="echo", data=b"ping"), timeout=10)
    assert reply.data == b"ping" and reply.metadata["echoed"] == "true"
    with pytest.raises(grpc.RpcError):  # not among ListOperations
        sidecar.stub().InvokeBinding(runtime_pb2.InvokeBindingRequest(
            name="echo", operation="delete"), timeout=10)


def test_component_killed_is_unavailable_then_restarted_works(
        sidecar: Sidecar, python_server: ComponentServer) -> None:
    stub = sidecar.stub()
    save = runtime_pb2.SaveStateRequest(store_name="mem", states=[
        runtime_pb2.StateItem(key="outage", value=b"before")])
    stub.SaveState(save, timeout=10)
    python_server.kill()
    with pytest.raises(grpc.RpcError) as info:
        stub.GetState(runtime_pb2.GetStateRequest(store_name="mem", key="outage"), timeout=10)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    python_server.start()
    after = runtime_pb2.SaveStateRequest(store_name="mem", states=[
        runtime_pb2.StateItem(key="outage", value=b"after")])
    until_ok(lambda: stub.SaveState(after, timeout=10))
    got = stub.GetState(runtime_pb2.GetStateRequest(store_name="mem", key="outage"), timeout=10)
    assert got.data == b"after"
