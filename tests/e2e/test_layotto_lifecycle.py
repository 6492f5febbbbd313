"""Layotto's ``spec.proto.runtime.v1.Lifecycle.ApplyConfiguration`` against the real ``pylotto
run -c`` with a Layotto JSON config: a Redis state store moved to another Redis database while 8
clients save and read without pause (no call fails, the new database holds the writes after the
answer), bad configurations refused with Layotto's codes while the old store keeps serving, and
Layotto's own demo (helloworld's greeting changed)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis

from pylotto.proto.layotto import (
    lifecycle_pb2,
    lifecycle_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from tests.e2e.test_layotto_config_styles import _layotto_config
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

OLD_DB, NEW_DB = 0, 7
CLIENTS = 8


def eventually(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout}s: {what}")


def store_metadata(db: int, **more: str) -> dict[str, str]:
    return {"redisHost": "127.0.0.1:6379", "redisDB": str(db), "keyPrefix": "none", **more}


@dataclass
class Running:
    address: str
    proc: subprocess.Popen[bytes]
    log: Path
    channel: grpc.Channel
    config_path: Path

    @property
    def runtime(self) -> runtime_pb2_grpc.RuntimeStub:
        return runtime_pb2_grpc.RuntimeStub(self.channel)

    @property
    def lifecycle(self) -> lifecycle_pb2_grpc.LifecycleStub:
        return lifecycle_pb2_grpc.LifecycleStub(self.channel)


@contextlib.contextmanager
def launched(tmp_path: Path, *args: str) -> Iterator[Running]:
    """``pylotto run -c config.json`` (a Layotto JSON config) on a free port."""
    address = f"127.0.0.1:{free_port()}"
    config = _layotto_config(address, grpc_config={
        "hellos": {"quick_start_demo": {"type": "helloworld", "hello": "greeting"}},
        "state": {"redis_state": {"type": "redis", "metadata": store_metadata(OLD_DB)}},
    })
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    log = tmp_path / "sidecar.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pylotto", "run", "-c", str(path),
                                 "--data-dir", str(tmp_path / "data"), *args],
                                stdout=out, stderr=subprocess.STDOUT)
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield Running(address, proc, log, channel, path)
    finally:
        channel.close()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code == 0, log.read_text(errors="replace")


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[Running]:
    with launched(tmp_path) as running:
        yield running


def apply(car: Running, kind: str, name: str, metadata: dict[str, str]) -> None:
    car.lifecycle.ApplyConfiguration(lifecycle_pb2.DynamicConfiguration(
        component_config=lifecycle_pb2.ComponentConfig(kind=kind, name=name,
                                                       metadata=metadata)), timeout=60)


def refused(car: Running, kind: str, name: str, metadata: dict[str, str]) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as caught:
        apply(car, kind, name, metadata)
    assert isinstance(caught.value, grpc.Call)
    return caught.value


class Client(threading.Thread):
    """Saves then reads its own key without pause on its own connection; every RPC error is a
    failed call."""

    def __init__(self, address: str, key: str) -> None:
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(address)
        self.stub = runtime_pb2_grpc.RuntimeStub(self.channel)
        self.key = key
        self.calls = 0
        self.failures: list[str] = []
        self.running = True

    def run(self) -> None:
        n = 0
        while self.running:
            n += 1
            try:
                self.stub.SaveState(runtime_pb2.SaveStateRequest(
                    store_name="redis_state",
                    states=[runtime_pb2.StateItem(key=self.key, value=f"v{n}".encode())]),
                    timeout=30)
                self.calls += 1
                self.stub.GetState(runtime_pb2.GetStateRequest(store_name="redis_state",
                                                               key=self.key), timeout=30)
                self.calls += 1
            except grpc.RpcError as exc:
                self.failures.append(f"{exc.code().name} {exc.details()}")

    def stop(self) -> None:
        self.running = False
        self.join(30)
        self.channel.close()


@pytest.fixture
def dbs() -> Iterator[tuple[redis.Redis, redis.Redis]]:
    old, new = (redis.Redis(host="127.0.0.1", port=6379, db=db) for db in (OLD_DB, NEW_DB))
    try:
        yield old, new
    finally:
        old.close()
        new.close()


def test_apply_configuration_under_load_fails_no_call(
        sidecar: Running, dbs: tuple[redis.Redis, redis.Redis]) -> None:
    old_db, new_db = dbs
    run = uuid.uuid4().hex
    clients = [Client(sidecar.address, f"lifecycle-{run}-{i}") for i in range(CLIENTS)]
    keys = [c.key for c in clients]
    took: list[float] = []
    try:
        for client in clients:
            client.start()
        eventually(lambda: all(c.calls >= 20 for c in clients), "every client calling")
        assert all(old_db.exists(key) for key in keys)
        assert not any(new_db.exists(key) for key in keys)

        # swaps on the same database first (another pool size each time), calls never pausing
        for pool in (5, 6, 7, 8):
            before = [c.calls for c in clients]
            started = time.monotonic()
            apply(sidecar, "state", "redis_state", store_metadata(OLD_DB, poolSize=str(pool)))
            took.append(time.monotonic() - started)
            eventually(lambda before=before: all(
                c.calls >= n + 10 for c, n in zip(clients, before, strict=True)),
                f"every client calling on after poolSize {pool}")
        started = time.monotonic()
        apply(sidecar, "state", "redis_state", store_metadata(NEW_DB))
        took.append(time.monotonic() - started)
        # after the answer, a write lands in the new database and not in the old one
        probe = f"lifecycle-{run}-probe"
        sidecar.runtime.SaveState(runtime_pb2.SaveStateRequest(
            store_name="redis_state", states=[runtime_pb2.StateItem(key=probe, value=b"x")]))
        assert new_db.exists(probe) and not old_db.exists(probe)
        eventually(lambda: all(new_db.exists(key) for key in keys),
                   "every client writing to the new database")
        at_apply = [c.calls for c in clients]
        eventually(lambda: all(c.calls >= n + 20 for c, n in zip(clients, at_apply, strict=True)),
                   "every client calling on after the change")

        # bad configurations: refused, the store keeps serving from the new database
        bad_value = refused(sidecar, "state", "redis_state",
                            store_metadata(OLD_DB, redisDB="seven"))
        assert bad_value.code() == grpc.StatusCode.UNKNOWN
        assert "redisDB" in (bad_value.details() or "")
        unreachable = refused(sidecar, "state", "redis_state",
                              {**store_metadata(OLD_DB), "redisHost": f"127.0.0.1:{free_port()}"})
        assert unreachable.code() == grpc.StatusCode.UNKNOWN
        assert "failed to start" in (unreachable.details() or "")
        unknown_name = refused(sidecar, "state", "no_such_store", store_metadata(OLD_DB))
        assert unknown_name.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert unknown_name.details() == "component not found. kind: state , name: no_such_store"
        unknown_kind = refused(sidecar, "states", "redis_state", store_metadata(OLD_DB))
        assert unknown_kind.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (unknown_kind.details() or "").startswith(
            "component not found. kind: states , name: redis_state (unknown kind; kinds: ")
        no_metadata = refused(sidecar, "state", "redis_state", {})
        assert (no_metadata.code(), no_metadata.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, "field metadata is not configured")
        no_kind = refused(sidecar, "", "redis_state", store_metadata(OLD_DB))
        assert (no_kind.code(), no_kind.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, "field kind is not configured")

        probe2 = f"lifecycle-{run}-probe2"
        sidecar.runtime.SaveState(runtime_pb2.SaveStateRequest(
            store_name="redis_state", states=[runtime_pb2.StateItem(key=probe2, value=b"y")]))
        assert new_db.exists(probe2) and not old_db.exists(probe2)
        after_bad = [c.calls for c in clients]
        eventually(lambda: all(c.calls >= n + 20 for c, n in zip(clients, after_bad, strict=True)),
                   "every client calling on after the refusals")
    finally:
        for client in clients:
            client.stop()
        new_db.delete(*keys, f"lifecycle-{run}-probe", f"lifecycle-{run}-probe2")
        old_db.delete(*keys)
    failures = [f for c in clients for f in c.failures]
    total = sum(c.calls for c in clients)
    print(f"{total} calls by {CLIENTS} clients, {len(failures)} failed; {len(took)} swaps, "
          f"ApplyConfiguration answered in {min(took) * 1000:.0f}-{max(took) * 1000:.0f} ms")
    assert failures == []
    assert total > 0 and len(took) == 5


def test_layottos_demo_changes_the_greeting(sidecar: Running) -> None:
    """Layotto's demo/lifecycle client: SayHello, ApplyConfiguration hello=goodbye, SayHello."""

    def hello() -> str:
        reply: Any = sidecar.runtime.SayHello(runtime_pb2.SayHelloRequest(
            service_name="quick_start_demo", name="eva"), timeout=10)
        return str(reply.hello)

    assert hello() == "greeting, eva"
    apply(sidecar, "hellos", "quick_start_demo", {"hello": "goodbye"})
    assert hello() == "goodbye, eva"
    # the same configuration again: nothing to do, still answered OK
    apply(sidecar, "hellos", "quick_start_demo", {"hello": "goodbye"})
    assert hello() == "goodbye, eva"
    # an unknown key is warned about and ignored, as in a file
    apply(sidecar, "hellos", "quick_start_demo", {"hello": "bye", "helo": "x"})
    assert hello() == "bye, eva"
    eventually(lambda: "unknown metadata key 'helo' ignored; did you mean 'hello'?"
               in sidecar.log.read_text(errors="replace"), "the unknown key warned about")


def test_lifecycle_is_listed_by_reflection_and_health(sidecar: Running) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    service = "spec.proto.runtime.v1.Lifecycle"
    reply = health_pb2_grpc.HealthStub(sidecar.channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(sidecar.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [answer] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    assert service in {s.name for s in answer.list_services_response.service}


def test_a_changed_config_file_gives_the_files_components_again(sidecar: Running) -> None:
    """An applied configuration lasts until the component files change: the hot reload then
    makes the running components those of the files."""

    def hello(service: str = "quick_start_demo") -> str:
        try:
            reply: Any = sidecar.runtime.SayHello(runtime_pb2.SayHelloRequest(
                service_name=service, name="eva"), timeout=10)
        except grpc.RpcError as exc:
            return f"{exc.code().name}"
        return str(reply.hello)

    apply(sidecar, "hellos", "quick_start_demo", {"hello": "goodbye"})
    assert hello() == "goodbye, eva"
    config = json.loads(sidecar.config_path.read_text())
    grpc_config = config["servers"][0]["listeners"][0]["filter_chains"][0]["filters"][0][
        "config"]["grpc_config"]
    grpc_config["hellos"]["second"] = {"type": "helloworld", "hello": "hi"}
    sidecar.config_path.write_text(json.dumps(config))
    eventually(lambda: hello("second") == "hi, eva", "the file's new component served")
    assert hello() == "greeting, eva"


def test_refused_when_hot_reload_is_off(tmp_path: Path) -> None:
    with launched(tmp_path, "--no-hot-reload") as car:
        off = refused(car, "hellos", "quick_start_demo", {"hello": "goodbye"})
        assert off.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "hot reload is off" in (off.details() or "")
        reply = car.runtime.SayHello(runtime_pb2.SayHelloRequest(
            service_name="quick_start_demo", name="eva"), timeout=10)
        assert reply.hello == "greeting, eva"


def test_refused_under_workers(tmp_path: Path) -> None:
    with launched(tmp_path, "--workers", "2") as car:
        many = refused(car, "state", "redis_state", store_metadata(NEW_DB))
        assert many.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "one worker process" in (many.details() or "")
