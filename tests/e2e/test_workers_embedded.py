"""``pylotto run --workers 2`` with no file: the embedded default, shared by both workers.

Several client threads, each with its own connection (the kernel spreads connections over the
workers), hammer state, sequencer and lock components; the figures must be those of one
process: no lost update, no id twice, one lock holder at a time.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar

pytestmark = pytest.mark.timeout(180)

CLIENTS = 6
INCREMENTS = 15
"""Per client and store: every one needs a read and an etag-checked write that may lose."""
T = TypeVar("T")


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    sidecar = Sidecar(tmp_path_factory.mktemp("workers-embedded"), embedded=True,
                      extra_args=["--workers", "2", "--no-hot-reload"])
    sidecar.start()
    try:
        _worker_pids(sidecar)  # both workers are up before the hammering starts
        yield sidecar
    finally:
        sidecar.stop()


def _stub(car: Sidecar) -> tuple[grpc.Channel, runtime_pb2_grpc.RuntimeStub]:
    """A new connection of its own (so a client lands on either worker)."""
    channel = grpc.insecure_channel(car.grpc_address,
                                    options=[("grpc.use_local_subchannel_pool", 1)])
    return channel, runtime_pb2_grpc.RuntimeStub(channel)


def _each_client(work: Callable[[int, runtime_pb2_grpc.RuntimeStub], T], car: Sidecar
                 ) -> list[T]:
    start = threading.Barrier(CLIENTS)

    def run(index: int) -> T:
        channel, stub = _stub(car)
        try:
            grpc.channel_ready_future(channel).result(timeout=10)
            start.wait()
            return work(index, stub)
        finally:
            channel.close()

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(run, range(CLIENTS)))


def _actuator(car: Sidecar, *paths: str) -> list[bytes]:
    """GET ``paths`` over one connection: every answer comes from the same worker."""
    connection = http.client.HTTPConnection("127.0.0.1", car.actuator_port, timeout=5)
    try:
        bodies = []
        for path in paths:
            connection.request("GET", path)
            bodies.append(connection.getresponse().read())
        return bodies
    finally:
        connection.close()


def _worker_pids(car: Sidecar) -> set[int]:
    deadline = time.monotonic() + 30
    pids: set[int] = set()
    while len(pids) < 2 and time.monotonic() < deadline:
        try:
            pids.add(int(json.loads(_actuator(car, "/actuator/info")[0])["app"]["pid"]))
        except OSError as exc:  # the sidecar went away: why is in its log
            exited = car.process.poll() if car.process is not None else None
            pytest.fail(f"actuator of the ready sidecar: {exc!r} (exit code {exited}):\n"
                        f"{car.logs()[-6000:]}")
    assert len(pids) == 2, f"one worker only answered: {pids}"
    return pids


@pytest.mark.parametrize("store", ["in-memory", "sqlite"])
def test_etag_increments_from_many_writers_lose_nothing(car: Sidecar, store: str) -> None:
    key = f"counter-{uuid.uuid4().hex[:8]}"

    def increment(index: int, stub: runtime_pb2_grpc.RuntimeStub) -> int:
        conflicts = 0
        done = 0
        while done < INCREMENTS:
            got = stub.GetState(runtime_pb2.GetStateRequest(store_name=store, key=key),
                                timeout=10)
            value = int(got.data or b"0") + 1
            item = runtime_pb2.StateItem(key=key, value=b"%d" % value)
            if got.etag:
                item.etag.value = got.etag
            else:  # the first write: only if nobody made the key meanwhile
                item.options.concurrency = runtime_pb2.StateOptions.CONCURRENCY_FIRST_WRITE
            try:
                stub.SaveState(runtime_pb2.SaveStateRequest(store_name=store, states=[item]),
                               timeout=10)
                done += 1
            except grpc.RpcError as err:  # anything but a lost race fails the test
                assert err.code() is grpc.StatusCode.ABORTED, err.details()
                conflicts += 1
        return conflicts

    conflicts = _each_client(increment, car)
    _, stub = _stub(car)
    final = stub.GetState(runtime_pb2.GetStateRequest(store_name=store, key=key), timeout=10)
    assert int(final.data) == CLIENTS * INCREMENTS
    assert sum(conflicts) > 0  # the writers did race (else the check proved nothing)


def test_first_write_has_one_winner_across_workers(car: Sidecar) -> None:
    key = f"once-{uuid.uuid4().hex[:8]}"

    def create(index: int, stub: runtime_pb2_grpc.RuntimeStub) -> bool:
        item = runtime_pb2.StateItem(key=key, value=b"%d" % index)
        item.options.concurrency = runtime_pb2.StateOptions.CONCURRENCY_FIRST_WRITE
        try:
            stub.SaveState(runtime_pb2.SaveStateRequest(store_name="sqlite", states=[item]),
                           timeout=10)
            return True
        except grpc.RpcError as err:
            assert err.code() is grpc.StatusCode.ABORTED, err.details()
            return False

    assert _each_client(create, car).count(True) == 1


def test_transactions_stay_atomic_across_workers(car: Sidecar) -> None:
    """Clients move units between two keys in transactions guarded by etags: the sum holds."""
    keys = [f"account-{uuid.uuid4().hex[:8]}-{side}" for side in "ab"]
    _, stub = _stub(car)
    stub.SaveState(runtime_pb2.SaveStateRequest(store_name="sqlite", states=[
        runtime_pb2.StateItem(key=key, value=b"100") for key in keys]), timeout=10)

    def move(index: int, stub: runtime_pb2_grpc.RuntimeStub) -> int:
        moved = 0
        while moved < 5:
            got = stub.GetBulkState(runtime_pb2.GetBulkStateRequest(
                store_name="sqlite", keys=keys), timeout=10)
            items = {item.key: item for item in got.items}
            src, dst = (keys[0], keys[1]) if index % 2 else (keys[1], keys[0])
            ops = [runtime_pb2.TransactionalStateOperation(
                operationType="upsert", request=runtime_pb2.StateItem(
                    key=key, value=b"%d" % (int(items[key].data) + delta),
                    etag=runtime_pb2.Etag(value=items[key].etag)))
                for key, delta in ((src, -1), (dst, 1))]
            try:
                stub.ExecuteStateTransaction(runtime_pb2.ExecuteStateTransactionRequest(
                    storeName="sqlite", operations=ops), timeout=10)
                moved += 1
            except grpc.RpcError as err:
                assert err.code() is grpc.StatusCode.ABORTED, err.details()
        return moved

    assert sum(_each_client(move, car)) == CLIENTS * 5
    got = stub.GetBulkState(runtime_pb2.GetBulkStateRequest(store_name="sqlite", keys=keys),
                            timeout=10)
    assert sum(int(item.data) for item in got.items) == 200


@pytest.mark.parametrize("store", ["in-memory", "sqlite"])
@pytest.mark.parametrize("mode", ["STRONG", "WEAK"])
def test_sequencer_ids_are_unique_and_increasing_per_client(car: Sidecar, store: str,
                                                            mode: str) -> None:
    key = f"orders-{uuid.uuid4().hex[:8]}"
    increment = runtime_pb2.SequencerOptions.AutoIncrement.Value(mode)

    def ids(index: int, stub: runtime_pb2_grpc.RuntimeStub) -> list[int]:
        return [stub.GetNextId(runtime_pb2.GetNextIdRequest(
            store_name=store, key=key, options=runtime_pb2.SequencerOptions(
                increment=increment)), timeout=10).next_id for _ in range(40)]

    every = _each_client(ids, car)
    for one in every:  # one connection: one worker, whose ids only grow
        assert one == sorted(one) and len(set(one)) == len(one)
    flat = [i for one in every for i in one]
    assert len(set(flat)) == len(flat)
    if mode == "STRONG":  # one counter for both workers, moved one by one
        assert sorted(flat) == list(range(min(flat), min(flat) + len(flat)))
        _, stub = _stub(car)
        after = stub.GetNextId(runtime_pb2.GetNextIdRequest(
            store_name=store, key=key, options=runtime_pb2.SequencerOptions(
                increment=increment)), timeout=10).next_id
        assert after > max(flat)


def test_lock_excludes_across_workers(car: Sidecar) -> None:
    """Holders of the lock do an unguarded read-modify-write: with one holder at a time
    (whichever worker its connection reached), no increment is lost."""
    resource = f"res-{uuid.uuid4().hex[:8]}"
    key = f"guarded-{uuid.uuid4().hex[:8]}"
    rounds = 8

    def work(index: int, stub: runtime_pb2_grpc.RuntimeStub) -> int:
        owner = f"owner-{index}"
        for _ in range(rounds):
            while not stub.TryLock(runtime_pb2.TryLockRequest(
                    store_name="in-memory", resource_id=resource, lock_owner=owner, expire=30),
                    timeout=10).success:
                time.sleep(0.002)
            got = stub.GetState(runtime_pb2.GetStateRequest(store_name="sqlite", key=key),
                                timeout=10)
            stub.SaveState(runtime_pb2.SaveStateRequest(store_name="sqlite", states=[
                runtime_pb2.StateItem(key=key, value=b"%d" % (int(got.data or b"0") + 1))]),
                timeout=10)
            released = stub.Unlock(runtime_pb2.UnlockRequest(
                store_name="in-memory", resource_id=resource, lock_owner=owner), timeout=10)
            assert released.status == runtime_pb2.UnlockResponse.SUCCESS
        return rounds

    _each_client(work, car)
    _, stub = _stub(car)
    final = stub.GetState(runtime_pb2.GetStateRequest(store_name="sqlite", key=key), timeout=10)
    assert int(final.data) == CLIENTS * rounds


def test_both_workers_served_calls_and_what_was_left_out_is_named(car: Sidecar) -> None:
    served: dict[int, float] = {}
    deadline = time.monotonic() + 30
    while len(served) < 2 and time.monotonic() < deadline:
        info, metrics = _actuator(car, "/actuator/info", "/metrics")
        served[int(json.loads(info)["app"]["pid"])] = sum(
            float(line.rsplit(" ", 1)[1]) for line in metrics.decode().splitlines()
            if line.startswith("pylotto_api_requests_total{") and 'api="SaveState"' in line)
    assert len(served) == 2
    assert all(count > 0 for count in served.values()), served  # both took SaveState calls
    logs = car.logs()
    assert "pubsub.in-memory (in-memory) is left out" in logs
    assert "configuration.in-memory (in-memory) is left out" in logs
    _, stub = _stub(car)
    with pytest.raises(grpc.RpcError) as refused:
        stub.PublishEvent(runtime_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="t", data=b"x"), timeout=10)
    assert "in-memory" in (refused.value.details() or "")


def test_scratch_files_are_removed_when_the_sidecar_stops(tmp_path: Path) -> None:
    car = Sidecar(tmp_path, embedded=True, extra_args=["--workers", "2", "--no-hot-reload"])
    car.start()
    try:
        _worker_pids(car)
        shared = [line.rsplit(", ", 1)[1].split(" (removed")[0] for line in car.logs()
                  .splitlines() if "file shared by the workers" in line]
        assert shared and all(Path(path).exists() for path in shared)
    finally:
        assert car.stop() == 0
    assert not any(Path(path).parent.exists() for path in shared)
