"""Layotto JSON config styles run by the real ``pylotto run``: a unix-socket listener with
Layotto's ``flowControlFilter`` (5 SayHello calls a second, as ``configs/runtime_config.json``
and the flow-control quickstart), and each config warning printed once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc


def _layotto_config(address: str, *, network: str = "", filters: list[Any] | None = None,
                    grpc_config: dict[str, Any]) -> dict[str, Any]:
    listener: dict[str, Any] = {"name": "grpc", "address": address, "bind_port": True,
                                "filter_chains": [{"filters": [{"type": "grpc", "config": {
                                    "server_name": "runtime", "grpc_config": grpc_config}}]}]}
    if network:
        listener["network"] = network
    if filters:
        listener["stream_filters"] = filters
    return {"servers": [{"default_log_path": "stdout", "routers": [{"router_config_name":
                                                                    "actuator_dont_need_router"}],
                         "listeners": [listener]}]}


def _start(tmp_path: Path, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen([sys.executable, "-m", "pylotto", "run", "-c", str(path),
                             "--data-dir", str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, (out + err).decode(errors="replace")


@pytest.fixture
def uds_sidecar(tmp_path: Path) -> Iterator[str]:
    socket = tmp_path / "layotto.sock"
    config = _layotto_config(str(socket), network="unix", filters=[{
        "type": "flowControlFilter", "config": {
            "global_switch": True, "limit_key_type": "PATH", "rules": [{
                "resource": "/spec.proto.runtime.v1.Runtime/SayHello", "grade": 1,
                "threshold": 5}]}}],
        grpc_config={"hellos": {"quick_start_demo": {"type": "helloworld", "hello": "greetings"}}})
    proc = _start(tmp_path, config)
    try:
        yield f"unix:{socket}"
    finally:
        code, output = _stop(proc)
        assert code == 0, output


def test_flow_control_over_a_unix_socket(uds_sidecar: str) -> None:
    with grpc.insecure_channel(uds_sidecar) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = runtime_pb2_grpc.RuntimeStub(channel)
        time.sleep(1.1)  # a fresh one-second window, whatever the readiness probe used
        answers: list[str] = []
        for _ in range(10):
            try:
                reply = stub.SayHello(runtime_pb2.SayHelloRequest(
                    service_name="quick_start_demo", name="layotto"), timeout=5)
                answers.append(reply.hello)
            except grpc.RpcError as error:
                answers.append(f"{error.code().name} {error.details()}")
        # MOSN's refusal: a bare error grpc-go answers Unknown
        assert answers == (["greetings, layotto"] * 5
                           + ["UNKNOWN current request is limited"] * 5)
        time.sleep(1.1)  # the next second lets calls through again
        reply = stub.SayHello(runtime_pb2.SayHelloRequest(service_name="quick_start_demo"),
                              timeout=5)
        assert reply.hello.startswith("greetings")


def test_each_config_warning_is_printed_once(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    port = free_port()
    config = _layotto_config(f"127.0.0.1:{port}", grpc_config={
        "hellos": {"quick_start_demo": {"type": "helloworld", "helo": "typo"}},
        "state": {"s": {"type": "in-memory", "metadata": {"ttlInSecnds": "5"}}}})
    proc = _start(tmp_path, config)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
    code, output = _stop(proc)
    assert code == 0, output
    for typo, meant in (("helo", "hello"), ("ttlInSecnds", "ttlInSeconds")):
        lines = [line for line in output.splitlines() if f"'{typo}'" in line]
        assert len(lines) == 1, (typo, output)
        assert f"did you mean '{meant}'" in lines[0]


def test_secret_ref_injects_the_sub_key_and_skips_a_missing_one(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"greeting": {"word": "howdy"}}))
    port = free_port()
    config = _layotto_config(f"127.0.0.1:{port}", grpc_config={
        "secret_store": {"local": {"type": "local.file", "metadata": {
            "secretsFile": str(secrets), "multiValued": "true"}}},
        "hellos": {
            "injected": {"type": "helloworld", "secret_ref": [
                {"store_name": "local", "key": "greeting", "sub_key": "word",
                 "inject_as": "hello"}]},
            "absent": {"type": "helloworld", "hello": "plain", "secret_ref": [
                {"store_name": "local", "key": "greeting", "sub_key": "nope",
                 "inject_as": "hello"},
                {"store_name": "local", "key": "greeting", "inject_as": "hello"}]}}})
    proc = _start(tmp_path, config)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = runtime_pb2_grpc.RuntimeStub(channel)
            said = [stub.SayHello(runtime_pb2.SayHelloRequest(service_name=name, name="x"),
                                  timeout=5).hello for name in ("injected", "absent")]
            assert said == ["howdy, x", "plain, x"]
    finally:
        code, output = _stop(proc)
    assert code == 0, output
    assert "has no key 'nope'; nothing injected" in output
    assert "has no sub_key; nothing is injected" in output
