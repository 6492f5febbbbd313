"""Lock API through the real sidecar (embedded ``in-memory`` lock store)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar

STORE = "in-memory"
Stub = runtime_pb2_grpc.RuntimeStub
UNLOCK = runtime_pb2.UnlockResponse
KEEP = runtime_pb2.LockKeepAliveResponse


def fresh(name: str) -> str:
    """A resource no other test of the module uses (the sidecar is shared)."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def error_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def try_lock(stub: Stub, resource: str, owner: str, expire: int = 10,
             store: str = STORE) -> bool:
    reply = stub.TryLock(runtime_pb2.TryLockRequest(
        store_name=store, resource_id=resource, lock_owner=owner, expire=expire), timeout=10)
    return bool(reply.success)


def unlock(stub: Stub, resource: str, owner: str, store: str = STORE) -> int:
    reply = stub.Unlock(runtime_pb2.UnlockRequest(
        store_name=store, resource_id=resource, lock_owner=owner), timeout=10)
    return int(reply.status)


def keep_alive(stub: Stub, resource: str, owner: str, expire: int = 10,
               store: str = STORE) -> int:
    reply = stub.LockKeepAlive(runtime_pb2.LockKeepAliveRequest(
        store_name=store, resource_id=resource, lock_owner=owner, expire=expire), timeout=10)
    return int(reply.status)


def test_lock_unlock_cycle(sidecar: Sidecar) -> None:
    stub, res = sidecar.stub(), fresh("order")
    assert unlock(stub, res, "alice") == UNLOCK.LOCK_UNEXIST
    assert try_lock(stub, res, "alice") is True
    assert try_lock(stub, res, "bob") is False
    assert try_lock(stub, res, "alice") is False  # not reentrant
    assert unlock(stub, res, "bob") == UNLOCK.LOCK_BELONG_TO_OTHERS
    assert unlock(stub, res, "alice") == UNLOCK.SUCCESS
    assert try_lock(stub, res, "bob") is True


def test_fifty_concurrent_clients_one_winner(sidecar: Sidecar) -> None:
    res = fresh("hot")
    stubs = [sidecar.stub() for _ in range(5)]
    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(lambda i: try_lock(stubs[i % 5], res, f"owner{i}"), range(50)))
    assert results.count(True) == 1
    assert unlock(stubs[0], res, f"owner{results.index(True)}") == UNLOCK.SUCCESS


def test_expiry_and_keep_alive(sidecar: Sidecar) -> None:
    stub, res, held = sidecar.stub(), fresh("lease"), fresh("kept")
    assert try_lock(stub, res, "alice", expire=1)
    assert try_lock(stub, held, "alice", expire=1)
    assert keep_alive(stub, held, "bob", 3) == KEEP.LOCK_BELONG_TO_OTHERS
    time.sleep(0.5)
    assert keep_alive(stub, held, "alice", 3) == KEEP.SUCCESS
    time.sleep(0.8)
    # res expired and is free; held was extended past its first second
    assert try_lock(stub, res, "bob", expire=5) is True
    assert try_lock(stub, held, "bob", expire=5) is False
    assert keep_alive(stub, res, "alice", 3) == KEEP.LOCK_BELONG_TO_OTHERS
    assert keep_alive(stub, fresh("never"), "alice", 3) == KEEP.LOCK_UNEXIST
    assert unlock(stub, held, "alice") == UNLOCK.SUCCESS


def test_bad_requests(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    bad = grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(lambda: try_lock(stub, "", "o")) == (
        bad, f"ResourceId is empty in lock store {STORE}")
    assert error_of(lambda: try_lock(stub, "r", "")) == (
        bad, f"LockOwner is empty in lock store {STORE}")
    assert error_of(lambda: try_lock(stub, "r", "o", expire=0)) == (
        bad, f"Expire is not positive in lock store {STORE}")
    assert error_of(lambda: try_lock(stub, "r", "o", store="nope")) == (
        bad, "lock store nope not found")  # Layotto's messages.ErrLockStoreNotFound
    code, message = error_of(lambda: try_lock(stub, "a||b", "o"))
    assert code == bad and "can't contain '||'" in message
    assert error_of(lambda: unlock(stub, "", "o"))[0] == bad
    assert error_of(lambda: unlock(stub, "r", "o", store="nope"))[0] == bad
    assert error_of(lambda: keep_alive(stub, "r", "o", expire=-1)) == (
        bad, f"Expire is not positive in lock store {STORE}")
    assert error_of(lambda: keep_alive(stub, "r", "", expire=1))[0] == bad


def test_no_lock_store_configured(start_sidecar: Callable[..., Sidecar]) -> None:
    stub = start_sidecar(components={"hello": {"h": {"type": "helloworld"}}}).stub()
    for call in (lambda: try_lock(stub, "", ""), lambda: unlock(stub, "r", "o"),
                 lambda: keep_alive(stub, "r", "o")):
        assert error_of(call) == (grpc.StatusCode.FAILED_PRECONDITION,
                                  "lock store is not configured")


def test_key_prefix_keeps_apps_apart(start_sidecar: Callable[..., Sidecar]) -> None:
    components = {"lock": {"shared": {"type": "in-memory", "metadata": {"keyPrefix": "none"}},
                           "mine": {"type": "in-memory"}}}
    stub = start_sidecar(components=components, app={"id": "app1"}).stub()
    assert try_lock(stub, "r", "o", store="shared") and try_lock(stub, "r", "o", store="mine")
    assert not try_lock(stub, "r", "x", store="mine")
