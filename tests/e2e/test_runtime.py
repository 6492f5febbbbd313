"""The sidecar process itself: probes, health, reflection, config forms, CLI, shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar, free_port


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_actuator_probes_and_info(sidecar: Sidecar) -> None:
    status, body = _get(f"{sidecar.actuator_url}/actuator/health/liveness")
    assert status == 200 and body["status"] == "UP"
    status, body = _get(f"{sidecar.actuator_url}/actuator/health/readiness")
    assert status == 200 and body["status"] == "UP"
    assert body["components"]["state.sqlite"]["status"] == "UP"
    assert body["components"]["runtime_startup"]["status"] == "UP"
    status, body = _get(f"{sidecar.actuator_url}/actuator/info")
    assert status == 200 and body["app"]["name"] == "pylotto"
    assert {"capability": "state", "name": "in-memory", "type": "in-memory",
            "dapr_type": "state.in-memory", "version": "v1",
            "features": ["ACTOR", "ETAG", "QUERY_API", "TRANSACTIONAL", "TTL"]} in (
        body["components"])  # ACTOR: the embedded default runs actors (as daprd, on every
    # state store with etags and transactions)
    assert body["subscriptions"] == []
    status, _ = _get(f"{sidecar.actuator_url}/actuator/nothing")
    assert status == 404


def test_grpc_health_and_reflection(sidecar: Sidecar) -> None:
    channel = sidecar.channel()
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "spec.proto.runtime.v1.Runtime"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [reply] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in reply.list_services_response.service}
    assert "spec.proto.runtime.v1.Runtime" in names and "grpc.health.v1.Health" in names


def test_no_component_configured_answers_as_layotto(
    start_sidecar: Callable[..., Sidecar],
) -> None:
    stub = start_sidecar(components={}).stub()
    precondition, invalid = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT
    calls = [  # Layotto's answers (pkg/grpc/default_api, pkg/messages at f9681450)
        (lambda: stub.GetState(runtime_pb2.GetStateRequest(store_name="s", key="k")),
         precondition, "state store is not configured"),
        (lambda: stub.TryLock(runtime_pb2.TryLockRequest(
            store_name="l", resource_id="r", lock_owner="o", expire=5)),
         precondition, "lock store is not configured"),
        (lambda: stub.GetNextId(runtime_pb2.GetNextIdRequest(store_name="q", key="k")),
         precondition, "Sequencer store is not configured"),
        (lambda: stub.PublishEvent(runtime_pb2.PublishEventRequest(
            pubsub_name="p", topic="t", data=b"x")),
         invalid, "pubsub p not found"),  # Layotto has no "not configured" answer here
        (lambda: stub.GetSecret(runtime_pb2.GetSecretRequest(store_name="s", key="k")),
         precondition, "error when get secret but not find configured"),
    ]
    for call, code, text in calls:
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert (info.value.code(), info.value.details()) == (code, text)


def test_layotto_json_config_runs_as_is(tmp_path: Path) -> None:
    grpc_port, actuator_port = free_port(), free_port()
    config = {
        "servers": [{"listeners": [
            {"name": "grpc", "address": f"127.0.0.1:{grpc_port}", "filter_chains": [
                {"filters": [{"type": "grpc", "config": {
                    "server_name": "runtime",
                    "grpc_config": {
                        "hellos": {"quick_start_demo": {"type": "helloworld", "hello": "hi"}},
                        "state": {"state_demo": {"type": "in-memory", "metadata": {}}},
                    }}}]}]},
            {"name": "actuator", "address": f"127.0.0.1:{actuator_port}",
             "stream_filters": [{"type": "actuator_filter"}]},
        ]}]
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pylotto", "run", "-c", str(path), "--data-dir",
         str(tmp_path / "data")], stderr=subprocess.PIPE,
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = runtime_pb2_grpc.RuntimeStub(channel)
        reply = stub.SayHello(runtime_pb2.SayHelloRequest(service_name="quick_start_demo",
                                                          name="layotto"), timeout=5)
        assert reply.hello == "hi, layotto"
        stub.SaveState(runtime_pb2.SaveStateRequest(
            store_name="state_demo", states=[runtime_pb2.StateItem(key="k", value=b"v")]))
        got = stub.GetState(runtime_pb2.GetStateRequest(store_name="state_demo", key="k"))
        assert got.data == b"v"
        status, _ = _get(f"http://127.0.0.1:{actuator_port}/actuator/health/readiness")
        assert status == 200
        channel.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylotto", *args], capture_output=True,
                          text=True, timeout=60)


def test_check_config_accepts_a_good_file_and_explains_a_typo(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("app: {app_id: a}\ncomponents:\n  state:\n    db: {type: state.sqlite}\n")
    result = _cli("check-config", str(good))
    assert result.returncode == 0, result.stderr
    assert "db" in result.stdout and "state.sqlite" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("components:\n  lock:\n    l: {type: in-memroy}\n")
    result = _cli("check-config", str(bad))
    assert result.returncode == 1
    assert str(bad) in result.stderr and "lock.l" in result.stderr
    assert "did you mean 'in-memory'" in result.stderr


def test_run_refuses_a_bad_config_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("components:\n  state:\n    s: {type: sqlite, metadata: {ttlInSeconds: x}}\n")
    result = _cli("run", "-c", str(bad))
    assert result.returncode == 2
    assert "ttlInSeconds" in result.stderr and "state.s" in result.stderr


def test_sigterm_during_writes_loses_no_acknowledged_write(
    start_sidecar: Callable[..., Sidecar],
) -> None:
    car = start_sidecar(components={"state": {"db": {"type": "sqlite"}}})
    acked: list[str] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        # its own channel: the helper closes the ones it made when it stops the sidecar
        with grpc.insecure_channel(car.grpc_address) as channel:
            stub = runtime_pb2_grpc.RuntimeStub(channel)
            n = 0
            while not stop.is_set():
                key = f"w{worker}-{n}"
                try:
                    stub.SaveState(runtime_pb2.SaveStateRequest(
                        store_name="db",
                        states=[runtime_pb2.StateItem(key=key, value=key.encode())]), timeout=5)
                except grpc.RpcError:
                    return
                acked.append(key)
                n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    assert car.stop(signal.SIGTERM) == 0
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(acked) > 20
    car.start()
    stub = car.stub()
    reply = stub.GetBulkState(runtime_pb2.GetBulkStateRequest(store_name="db", keys=acked))
    found = {item.key for item in reply.items if item.data}
    assert found == set(acked)
