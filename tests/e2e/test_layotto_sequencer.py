"""Sequencer API through the real sidecar (embedded ``in-memory`` and ``sqlite``)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar

STORES = ["in-memory", "sqlite"]
WEAK = runtime_pb2.SequencerOptions.WEAK
STRONG = runtime_pb2.SequencerOptions.STRONG
Stub = runtime_pb2_grpc.RuntimeStub


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def error_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def next_id(stub: Stub, store: str, key: str, increment: int | None = None) -> int:
    request = runtime_pb2.GetNextIdRequest(store_name=store, key=key, metadata={"m": "1"})
    if increment is not None:
        request.options.increment = increment  # type: ignore[assignment]
    reply = stub.GetNextId(request, timeout=10)
    return int(reply.next_id)


@pytest.mark.parametrize("store", STORES)
def test_strong_ids_are_consecutive(sidecar: Sidecar, store: str) -> None:
    stub, key = sidecar.stub(), fresh("order")
    assert [next_id(stub, store, key, STRONG) for _ in range(5)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("store", STORES)
def test_weak_ids_strictly_increase(sidecar: Sidecar, store: str) -> None:
    stub, key = sidecar.stub(), fresh("weak")
    ids = [next_id(stub, store, key, WEAK if i % 2 else None) for i in range(50)]
    ids.append(next_id(stub, store, key, STRONG))
    ids.append(next_id(stub, store, key))
    assert all(a < b for a, b in itertools.pairwise(ids)), ids
    assert ids[0] == 1


def test_bad_requests(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    bad = grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(lambda: next_id(stub, "in-memory", "")) == (
        bad, "Key is empty in sequencer store in-memory")
    assert error_of(lambda: next_id(stub, "nope", "k")) == (
        bad, "Sequencer store nope not found")
    assert error_of(lambda: next_id(stub, "in-memory", "k", 7)) == (
        bad, "options.Increment is illegal")
    code, message = error_of(lambda: next_id(stub, "in-memory", "a||b"))
    assert code == bad and "can't contain '||'" in message


def test_no_sequencer_configured(start_sidecar: Callable[..., Sidecar]) -> None:
    stub = start_sidecar(components={"hello": {"h": {"type": "helloworld"}}}).stub()
    assert error_of(lambda: next_id(stub, "in-memory", "k")) == (
        grpc.StatusCode.FAILED_PRECONDITION, "Sequencer store is not configured")


def test_sqlite_ids_grow_across_restarts(start_sidecar: Callable[..., Sidecar]) -> None:
    components = {"sequencer": {
        "db": {"type": "sqlite", "metadata": {"segmentSize": "20"}},
        "floor": {"type": "sqlite", "metadata": {"biggerThan": {"order": 5000}}},
    }}
    car = start_sidecar(components=components, app={"id": "shop"})
    stub = car.stub()
    before = [next_id(stub, "db", "k") for _ in range(5)] + [next_id(stub, "db", "k", STRONG)]
    assert next_id(stub, "floor", "order", STRONG) == 5001
    car.restart()
    stub = car.stub()
    after = [next_id(stub, "db", "k") for _ in range(5)] + [next_id(stub, "db", "k", STRONG)]
    assert min(after) > max(before)
    assert all(a < b for a, b in itertools.pairwise(after))
    assert next_id(stub, "floor", "order", STRONG) == 5002
    assert any(car.data_dir.glob("sequencer-db.db"))
