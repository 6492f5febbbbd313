"""State API through the real sidecar, on the embedded ``in-memory`` and ``sqlite`` stores."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar

STORES = ["in-memory", "sqlite"]
UNSPECIFIED = runtime_pb2.StateOptions.CONCURRENCY_UNSPECIFIED
FIRST_WRITE = runtime_pb2.StateOptions.CONCURRENCY_FIRST_WRITE
LAST_WRITE = runtime_pb2.StateOptions.CONCURRENCY_LAST_WRITE
STRONG = runtime_pb2.StateOptions.CONSISTENCY_STRONG

Stub = runtime_pb2_grpc.RuntimeStub


def fresh(name: str) -> str:
    """A key no other test of the module uses (the sidecar is shared)."""
    return f"{name}-{uuid.uuid4().hex[:10]}"


def error_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def item(key: str, value: bytes = b"", etag: str | None = None,
         concurrency: runtime_pb2.StateOptions.StateConcurrency.ValueType = UNSPECIFIED,
         metadata: dict[str, str] | None = None) -> runtime_pb2.StateItem:
    msg = runtime_pb2.StateItem(key=key, value=value, metadata=metadata or {},
                                options=runtime_pb2.StateOptions(concurrency=concurrency))
    if etag is not None:
        msg.etag.value = etag
    return msg


def save(stub: Stub, store: str, *items: runtime_pb2.StateItem) -> None:
    stub.SaveState(runtime_pb2.SaveStateRequest(store_name=store, states=list(items)), timeout=10)


def get(stub: Stub, store: str, key: str) -> runtime_pb2.GetStateResponse:
    response: runtime_pb2.GetStateResponse = stub.GetState(
        runtime_pb2.GetStateRequest(store_name=store, key=key), timeout=10)
    return response


def delete(stub: Stub, store: str, key: str, etag: str | None = None) -> None:
    request = runtime_pb2.DeleteStateRequest(store_name=store, key=key)
    if etag is not None:
        request.etag.value = etag
    stub.DeleteState(request, timeout=10)


def transact(stub: Stub, store: str,
             *operations: tuple[str, runtime_pb2.StateItem | None]) -> None:
    ops = []
    for kind, request in operations:
        op = runtime_pb2.TransactionalStateOperation(operationType=kind)
        if request is not None:
            op.request.CopyFrom(request)
        ops.append(op)
    stub.ExecuteStateTransaction(
        runtime_pb2.ExecuteStateTransactionRequest(storeName=store, operations=ops,
                                                   metadata={"m": "1"}),
        timeout=10,
    )


# ---- every RPC on both embedded stores ----------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_save_get_delete_with_etags(sidecar: Sidecar, store: str) -> None:
    stub = sidecar.stub()
    key = fresh("k")
    missing = get(stub, store, key)
    assert (missing.data, missing.etag) == (b"", "")

    save(stub, store, item(key, b"v1"))
    first = stub.GetState(runtime_pb2.GetStateRequest(store_name=store, key=key,
                                                      consistency=STRONG), timeout=10)
    assert first.data == b"v1"
    assert first.etag
    save(stub, store, item(key, b"v2", etag=first.etag))
    second = get(stub, store, key)
    assert second.data == b"v2"
    assert second.etag != first.etag

    code, details = error_of(lambda: save(stub, store, item(key, b"stale", etag=first.etag)))
    assert code == grpc.StatusCode.ABORTED
    assert f"failed saving state in state store {store}" in details
    assert error_of(lambda: delete(stub, store, key, first.etag))[0] == grpc.StatusCode.ABORTED
    code, details = error_of(lambda: save(stub, store, item(key, b"x", etag="not-a-version")))
    assert code == grpc.StatusCode.ABORTED  # both stores compare etags as text, as contrib's
    assert "etag mismatch" in details
    assert error_of(lambda: delete(stub, store, key, "nope"))[0] == grpc.StatusCode.ABORTED
    assert get(stub, store, key).data == b"v2"

    # an empty etag is no etag
    save(stub, store, item(key, b"v3", etag=""))
    delete(stub, store, key, etag=get(stub, store, key).etag)
    assert get(stub, store, key).etag == ""
    delete(stub, store, key)  # absent key, no etag: fine
    assert error_of(lambda: delete(stub, store, key, "1"))[0] == grpc.StatusCode.ABORTED


@pytest.mark.parametrize("store", STORES)
def test_first_and_last_write(sidecar: Sidecar, store: str) -> None:
    stub = sidecar.stub()
    key = fresh("fw")
    save(stub, store, item(key, b"first", concurrency=FIRST_WRITE))
    code, details = error_of(lambda: save(stub, store, item(key, b"second",
                                                            concurrency=FIRST_WRITE)))
    assert code == grpc.StatusCode.ABORTED
    assert "first-write" in details
    save(stub, store, item(key, b"third", concurrency=LAST_WRITE))
    assert get(stub, store, key).data == b"third"


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("size", [1, 1024 * 1024])
def test_values_from_one_byte_to_one_mib(sidecar: Sidecar, store: str, size: int) -> None:
    stub = sidecar.stub()
    key = fresh("big")
    value = (bytes(range(256)) * (size // 256 + 1))[:size]
    save(stub, store, item(key, value))
    assert get(stub, store, key).data == value


@pytest.mark.parametrize("store", STORES)
def test_bulk_get_and_bulk_delete(sidecar: Sidecar, store: str) -> None:
    stub = sidecar.stub()
    a, b, c = fresh("a"), fresh("b"), fresh("c")
    empty = stub.GetBulkState(runtime_pb2.GetBulkStateRequest(store_name=store), timeout=10)
    assert list(empty.items) == []
    save(stub, store, item(a, b"1"), item(c, b"3"))
    reply = stub.GetBulkState(
        runtime_pb2.GetBulkStateRequest(store_name=store, keys=[a, b, c], parallelism=4),
        timeout=10,
    )
    assert [(i.key, i.data, i.error) for i in reply.items] == [(a, b"1", ""), (b, b"", ""),
                                                                (c, b"3", "")]
    assert reply.items[0].etag == get(stub, store, a).etag
    assert reply.items[1].etag == ""

    stale = runtime_pb2.DeleteBulkStateRequest(store_name=store,
                                               states=[item(a), item(c, etag="999999999")])
    assert error_of(lambda: stub.DeleteBulkState(stale, timeout=10))[0] == \
        grpc.StatusCode.ABORTED
    assert get(stub, store, a).data == b"1"
    stub.DeleteBulkState(runtime_pb2.DeleteBulkStateRequest(
        store_name=store, states=[item(a), item(c, etag=get(stub, store, c).etag)]), timeout=10)
    assert (get(stub, store, a).data, get(stub, store, c).data) == (b"", b"")


@pytest.mark.parametrize("store", STORES)
def test_transactions(sidecar: Sidecar, store: str) -> None:
    stub = sidecar.stub()
    kept, gone, new = fresh("kept"), fresh("gone"), fresh("new")
    save(stub, store, item(kept, b"k"), item(gone, b"g"))
    etag = get(stub, store, kept).etag
    transact(stub, store, ("upsert", item(new, b"n")), ("delete", item(gone)),
             ("upsert", item(kept, b"k2", etag=etag)), ("upsert", None))
    assert [get(stub, store, k).data for k in (new, gone, kept)] == [b"n", b"", b"k2"]

    # one stale etag: nothing of the transaction is written
    other = fresh("other")
    code, details = error_of(lambda: transact(
        stub, store, ("upsert", item(other, b"o")), ("delete", item(new)),
        ("upsert", item(kept, b"k3", etag=etag))))
    assert code == grpc.StatusCode.ABORTED
    assert "error while executing state transaction" in details
    assert [get(stub, store, k).data for k in (other, new, kept)] == [b"", b"n", b"k2"]

    code, details = error_of(lambda: transact(stub, store, ("upsert", item(other, b"o")),
                                              ("merge", item(other, b"o"))))
    assert (code, details) == (grpc.StatusCode.UNIMPLEMENTED, "operation type merge not supported")
    assert get(stub, store, other).data == b""


@pytest.mark.parametrize("store", STORES)
def test_ttl_in_seconds(sidecar: Sidecar, store: str) -> None:
    stub = sidecar.stub()
    short, forever = fresh("short"), fresh("forever")
    save(stub, store, item(short, b"s", metadata={"ttlInSeconds": "1"}),
         item(forever, b"f", metadata={"ttlInSeconds": "-1"}))
    got = get(stub, store, short)
    assert got.data == b"s"
    assert got.metadata["ttlExpireTime"].endswith("Z")
    time.sleep(1.5)
    assert get(stub, store, short).data == b""
    assert get(stub, store, forever).data == b"f"
    code, details = error_of(lambda: save(stub, store, item(short, b"s",
                                                            metadata={"ttlInSeconds": "soon"})))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "ttlInSeconds" in details


def test_keys_with_separator_are_refused(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    calls: list[Callable[[], object]] = [
        lambda: get(stub, "sqlite", "a||b"),
        lambda: save(stub, "sqlite", item("a||b", b"v")),
        lambda: delete(stub, "sqlite", "a||b"),
        lambda: stub.GetBulkState(runtime_pb2.GetBulkStateRequest(store_name="sqlite",
                                                                  keys=["ok", "a||b"])),
        lambda: stub.DeleteBulkState(runtime_pb2.DeleteBulkStateRequest(
            store_name="sqlite", states=[item("a||b")])),
        lambda: transact(stub, "sqlite", ("upsert", item("a||b", b"v"))),
    ]
    for call in calls:
        assert error_of(call) == (grpc.StatusCode.INVALID_ARGUMENT,
                                  "input key/keyPrefix 'a||b' can't contain '||'")


def every_rpc(stub: Stub, store: str) -> list[Callable[[], object]]:
    return [
        lambda: get(stub, store, "k"),
        lambda: stub.GetBulkState(runtime_pb2.GetBulkStateRequest(store_name=store, keys=["k"])),
        lambda: save(stub, store, item("k", b"v")),
        lambda: delete(stub, store, "k"),
        lambda: stub.DeleteBulkState(runtime_pb2.DeleteBulkStateRequest(store_name=store,
                                                                        states=[item("k")])),
        lambda: transact(stub, store, ("upsert", item("k", b"v"))),
    ]


def test_store_names_are_checked(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    for call in every_rpc(stub, ""):  # Layotto: no name is a name it does not find
        assert error_of(call) == (grpc.StatusCode.INVALID_ARGUMENT, "state store  is not found")
    for call in every_rpc(stub, "nope"):
        assert error_of(call) == (grpc.StatusCode.INVALID_ARGUMENT,
                                  "state store nope is not found")


def test_no_state_store_configured(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(components={"hello": {"h": {"type": "helloworld"}}})
    for call in every_rpc(car.stub(), "any"):
        assert error_of(call) == (grpc.StatusCode.FAILED_PRECONDITION,
                                  "state store is not configured")


# ---- persistence and key prefixes ---------------------------------------------------------------


def test_sqlite_data_survives_a_restart(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(components={"state": {"db": {"type": "sqlite"}}})
    stub = car.stub()
    save(stub, "db", item("k", b"kept"), item("t", b"ttl", metadata={"ttlInSeconds": "600"}))
    before = get(stub, "db", "k")
    assert (car.data_dir / "state-db.db").is_file()

    car.restart()
    stub = car.stub()
    after = get(stub, "db", "k")
    assert (after.data, after.etag) == (b"kept", before.etag)
    assert get(stub, "db", "t").data == b"ttl"
    save(stub, "db", item("k", b"updated", etag=before.etag))
    assert get(stub, "db", "k").data == b"updated"


def test_appid_prefix_isolates_apps_sharing_a_file(
    start_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    shared = tmp_path / "shared-state.db"

    def components() -> dict[str, object]:
        return {"state": {"shared": {"type": "sqlite", "metadata": {
            "keyPrefix": "appid", "connectionString": str(shared)}}}}

    one = start_sidecar(components=components(), app={"id": "app-one"}).stub()
    two = start_sidecar(components=components(), app={"id": "app-two"}).stub()
    save(one, "shared", item("greeting", b"from one"))
    save(two, "shared", item("greeting", b"from two"))
    assert get(one, "shared", "greeting").data == b"from one"
    assert get(two, "shared", "greeting").data == b"from two"
    [bulk] = two.GetBulkState(runtime_pb2.GetBulkStateRequest(store_name="shared",
                                                              keys=["greeting"])).items
    assert (bulk.key, bulk.data) == ("greeting", b"from two")
    delete(one, "shared", "greeting")
    assert get(one, "shared", "greeting").data == b""
    assert get(two, "shared", "greeting").data == b"from two"
    with sqlite3.connect(shared) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM state ORDER BY key")]
    assert keys == ["app-two||greeting"]


# ---- the Layotto dialect's etag rule (issue 15 items 6 and 8) -----------------------------------


@pytest.mark.parametrize("store", STORES)
def test_etag_zero_and_last_write_are_no_etag_for_layotto_only(sidecar: Sidecar,
                                                                store: str) -> None:
    """Layotto's SDKs send ``Etag{value: "0"}`` when the caller gives none: through the Layotto
    service it is no etag (a missing key is written, an existing one overwritten, deleted),
    and a last-write save drops its etag. Through the Dapr service the same ``"0"`` is an etag
    like any other, as in Dapr."""
    from dapr.proto.common.v1 import common_pb2
    from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2

    stub = sidecar.stub()
    key = fresh("zero")
    save(stub, store, item(key, b"a", etag="0"))
    save(stub, store, item(key, b"b", etag="0"))
    assert get(stub, store, key).data == b"b"
    stale = get(stub, store, key).etag
    save(stub, store, item(key, b"c"))
    assert error_of(lambda: save(stub, store, item(key, b"x", etag=stale)))[0] == \
        grpc.StatusCode.ABORTED
    save(stub, store, item(key, b"last", etag=stale, concurrency=LAST_WRITE))
    assert get(stub, store, key).data == b"last"
    transact(stub, store, ("upsert", item(f"{key}-t", b"t", etag="0")),
             ("delete", item(key, etag="0")))
    assert get(stub, store, key).data == b"" and get(stub, store, f"{key}-t").data == b"t"
    delete(stub, store, f"{key}-t", etag="0")
    assert get(stub, store, f"{key}-t").data == b""

    request = state_pb2.SaveStateRequest(store_name=store, states=[
        common_pb2.StateItem(key=key, value=b"d", etag=common_pb2.Etag(value="0"))])
    with grpc.insecure_channel(sidecar.dapr_grpc_address) as channel, \
            pytest.raises(grpc.RpcError) as info:
        dapr_pb2_grpc.DaprStub(channel).SaveState(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.ABORTED
    assert get(stub, store, key).data == b""
