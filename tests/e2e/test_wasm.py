"""WebAssembly functions through the real sidecar: an AssemblyScript function (compiled here
with the pinned ``assemblyscript`` from examples/wasm/assemblyscript) and WAT functions, called
with Layotto's InvokeService, Dapr's gRPC InvokeService and Dapr's HTTP invoke."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar
from tests.unit.wasm.wat import ECHO, module

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "wasm"
SPIN = module("(loop $forever (br $forever)) (i64.const 0)")
GROW = module("""
  (loop $more
    (br_if $more (i32.ge_s (memory.grow (i32.const 1)) (i32.const 0))))
  unreachable""")
COMPONENTS = {"state": {"in-memory": {"type": "in-memory"}},
              "pubsub": {"in-memory": {"type": "in-memory"}}}


@pytest.fixture(scope="session")
def greeter_wasm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/wasm/assemblyscript compiled by ``npm ci`` + ``asc`` into a temporary dir."""
    work = tmp_path_factory.mktemp("assemblyscript")
    source = EXAMPLE / "assemblyscript"
    for name in ("package.json", "package-lock.json"):
        shutil.copy(source / name, work / name)
    shutil.copytree(source / "assembly", work / "assembly")
    env = {**os.environ, "npm_config_audit": "false", "npm_config_fund": "false"}
    subprocess.run(["npm", "ci"], cwd=work, env=env, check=True, capture_output=True,
                   timeout=300)
    subprocess.run(["npx", "--no-install", "asc", "assembly/index.ts", "--outFile",
                    "build/greeter.wasm", "--optimize", "--runtime", "stub"],
                   cwd=work, env=env, check=True, capture_output=True, timeout=300)
    wasm = work / "build" / "greeter.wasm"
    assert wasm.read_bytes()[:4] == b"\0asm"
    return wasm


@pytest.fixture
def wasm_sidecar(tmp_path: Path, greeter_wasm: Path) -> Iterator[Callable[..., Sidecar]]:
    started: list[Sidecar] = []

    def start(functions: list[dict[str, Any]]) -> Sidecar:
        car = Sidecar(tmp_path / f"sidecar{len(started)}", COMPONENTS, {"id": "wasm-host"},
                      extra_config={"wasm": {"state_store": "in-memory",
                                             "pubsub": "in-memory", "functions": functions}})
        started.append(car)
        return car.start()

    yield start
    for car in started:
        car.stop()


def layotto_invoke(car: Sidecar, app_id: str, method: str, data: bytes) -> bytes:
    reply = car.stub().InvokeService(runtime_pb2.InvokeServiceRequest(
        id=app_id, message=runtime_pb2.CommonInvokeRequest(
            method=method, data=any_pb2.Any(value=data), content_type="text/plain")),
        timeout=10)
    return bytes(reply.data.value)


def http(car: Sidecar, path: str, data: bytes | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(car.dapr_http_url + path, data=data,
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("Content-Type", "")


def test_assemblyscript_function_through_layotto_and_dapr(
        wasm_sidecar: Callable[..., Sidecar], greeter_wasm: Path) -> None:
    car = wasm_sidecar([{"id": "greeter", "path": str(greeter_wasm)}])
    assert layotto_invoke(car, "greeter", "greet", b"Ada") == b"Hello, Ada! (visit 1)"
    status, body, content_type = http(car, "/v1.0/invoke/greeter/method/greet", b"Ada")
    assert (status, body) == (200, b"Hello, Ada! (visit 2)")
    assert content_type.startswith("text/plain")
    # state_set went to the real state store; state_get/method read it back
    status, body, _ = http(car, "/v1.0/state/in-memory/greetings%2FAda")
    assert (status, body) == (200, b"2")
    assert layotto_invoke(car, "greeter", "count", b"Ada") == b"2"
    assert "[greeter] greeted Ada (2)" in car.logs()


def test_assemblyscript_function_through_dapr_grpc(
        wasm_sidecar: Callable[..., Sidecar], greeter_wasm: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dapr.clients import DaprClient

    car = wasm_sidecar([{"id": "greeter", "path": str(greeter_wasm)}])
    monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
    monkeypatch.setenv("DAPR_API_METHOD_INVOCATION_PROTOCOL", "grpc")
    with DaprClient() as client:
        reply = client.invoke_method("greeter", "greet", data="Grace", http_verb="POST")
    assert reply.data == b"Hello, Grace! (visit 1)"


def test_wat_example_from_the_docs(wasm_sidecar: Callable[..., Sidecar]) -> None:
    car = wasm_sidecar([{"id": "hello", "path": str(EXAMPLE / "wat" / "hello.wat")}])
    assert http(car, "/v1.0/invoke/hello/method/greet", b"wasm")[:2] == (200, b"hello, wasm")
    assert layotto_invoke(car, "hello", "greet", b"grpc") == b"hello, grpc"


def test_runaway_functions_are_stopped_and_the_sidecar_keeps_serving(
        wasm_sidecar: Callable[..., Sidecar], greeter_wasm: Path) -> None:
    work = greeter_wasm.parent
    (work / "spin.wat").write_text(SPIN)
    (work / "grow.wat").write_text(GROW)
    car = wasm_sidecar([
        {"id": "fuel", "path": str(work / "spin.wat"), "fuel": 1_000_000},
        {"id": "slow", "path": str(work / "spin.wat"), "fuel": 10**15, "timeout": 0.3},
        {"id": "grow", "path": str(work / "grow.wat"), "memory_mb": 2},
        {"id": "greeter", "path": str(greeter_wasm), "memory_mb": 1},
    ])
    with pytest.raises(grpc.RpcError) as info:
        layotto_invoke(car, "fuel", "run", b"")
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "wasm function 'fuel' ran out of fuel" in (info.value.details() or "")
    status, body, _ = http(car, "/v1.0/invoke/slow/method/run", b"")
    assert status == 504
    assert "wasm function 'slow' ran past its time limit" in json.loads(body)["message"]
    status, body, _ = http(car, "/v1.0/invoke/grow/method/run", b"")
    assert status == 429
    assert "wasm function 'grow' reached its memory limit of 2 MiB" in \
        json.loads(body)["message"]
    with pytest.raises(grpc.RpcError) as info:  # a request bigger than the function's memory
        layotto_invoke(car, "greeter", "greet", b"x" * (2 * 1024 * 1024))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "does not fit its memory limit of 1 MiB" in (info.value.details() or "")
    assert layotto_invoke(car, "greeter", "greet", b"Ada") == b"Hello, Ada! (visit 1)"
    assert car.process is not None and car.process.poll() is None


def test_module_file_change_is_picked_up(wasm_sidecar: Callable[..., Sidecar],
                                         tmp_path: Path) -> None:
    path = tmp_path / "fn.wat"
    path.write_text(ECHO)
    car = wasm_sidecar([{"id": "fn", "path": str(path)}])
    assert layotto_invoke(car, "fn", "m", b"one") == b"one"
    path.write_text(module("(call $pack (i32.const 0) (i32.const 2))", "v2"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert layotto_invoke(car, "fn", "m", b"one") == b"v2"
    path.write_text("(module (func")  # broken: the previous module keeps serving
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 4_000_000_000))
    assert layotto_invoke(car, "fn", "m", b"one") == b"v2"
    assert "does not load" in car.logs()


def test_a_module_that_does_not_load_stops_the_start(
        wasm_sidecar: Callable[..., Sidecar], tmp_path: Path) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(b"\0asm not really")
    with pytest.raises(RuntimeError, match="wasm function 'bad': cannot load"):
        wasm_sidecar([{"id": "bad", "path": str(path)}])
