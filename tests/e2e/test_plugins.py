"""Plugin packages end to end: examples/plugins/pylotto-example installed the way a user would
(``pip install --no-deps --target``), then the real sidecar run with ``PYTHONPATH`` on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.clients import DaprClient

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar
from tests.support import example_plugin

pytestmark = pytest.mark.e2e

PLUGIN_PATH = example_plugin.activate()  # also lets this process import the generated stubs
from pylotto_example.v1 import counter_pb2, counter_pb2_grpc  # noqa: E402

WITH_PLUGIN = {"PYTHONPATH": os.pathsep.join(
    p for p in (str(PLUGIN_PATH), os.environ.get("PYTHONPATH", "")) if p)}
EXTRA = {
    "state": {"notes": {"type": "state.json-file", "metadata": {"fileName": "notes.json"}}},
}


def _components(extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from pylotto.config.model import embedded_default

    components: dict[str, Any] = {}
    for spec in embedded_default().components:
        components.setdefault(spec.capability, {})[spec.name] = {
            "type": spec.type, "metadata": spec.metadata}
    for capability, entries in extra.items():
        components.setdefault(capability, {}).update(entries)
    return components


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    sidecar = Sidecar(tmp_path_factory.mktemp("plugins"), _components(EXTRA),
                      app={"app_id": "plugged"}, env=WITH_PLUGIN)
    sidecar.start()
    yield sidecar
    sidecar.stop()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylotto", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "pylotto.yaml"
    path.write_text("app: {app_id: a}\ncomponents:\n  state:\n"
                    "    notes: {type: state.json-file, metadata: {fileName: n.json}}\n")
    return path


def test_check_config_knows_the_plugin_type_only_when_installed(tmp_path: Path) -> None:
    path = _config(tmp_path)
    result = _cli("check-config", str(path), env=WITH_PLUGIN)
    assert result.returncode == 0, result.stderr
    assert "notes" in result.stdout and "state.json-file" in result.stdout
    result = _cli("check-config", str(path))
    assert result.returncode == 1
    assert "unknown state component type 'state.json-file'" in result.stderr


def test_run_without_the_package_is_a_config_error(tmp_path: Path) -> None:
    result = _cli("run", "-c", str(_config(tmp_path)), "--dapr-grpc-port", "0",
                  "--dapr-http-port", "0")
    assert result.returncode == 2
    assert "state.json-file" in result.stderr


def test_plugins_command_lists_both_entry_points() -> None:
    result = _cli("plugins", env=WITH_PLUGIN)
    assert result.returncode == 0, result.stderr
    assert "state.json-file" in result.stdout
    assert "pylotto_example.counter:CounterPlugin" in result.stdout
    assert "pylotto-example 0.1.0" in result.stdout


def test_layotto_state_on_the_plugin_store_survives_a_restart(tmp_path: Path) -> None:
    sidecar = Sidecar(tmp_path / "car", _components(EXTRA), env=WITH_PLUGIN).start()
    try:
        stub = sidecar.stub()
        stub.SaveState(runtime_pb2.SaveStateRequest(store_name="notes", states=[
            runtime_pb2.StateItem(key="k", value=b"hello")]), timeout=10)
        got = stub.GetState(runtime_pb2.GetStateRequest(store_name="notes", key="k"), timeout=10)
        assert got.data == b"hello" and got.etag
        with pytest.raises(grpc.RpcError) as info:  # a stale etag is refused, as built-ins do
            stub.SaveState(runtime_pb2.SaveStateRequest(store_name="notes", states=[
                runtime_pb2.StateItem(key="k", value=b"x", etag=runtime_pb2.Etag(value="999"))]),
                timeout=10)
        assert info.value.code() == grpc.StatusCode.ABORTED
        assert (sidecar.data_dir / "notes.json").exists()
        sidecar.restart()
        got = sidecar.stub().GetState(runtime_pb2.GetStateRequest(store_name="notes", key="k"),
                                      timeout=10)
        assert got.data == b"hello"
    finally:
        sidecar.stop()


def test_dapr_sdk_state_on_the_plugin_store(car: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
    with DaprClient() as dapr:
        dapr.save_state("notes", "sdk-key", "sdk-value")
        got = dapr.get_state("notes", "sdk-key")
        assert got.data == b"sdk-value" and got.etag
        dapr.delete_state("notes", "sdk-key", etag=got.etag)
        assert dapr.get_state("notes", "sdk-key").data == b""
        extended = dapr.get_metadata().extended_metadata
        assert extended.get("pylotto.plugins") == "counter"


@pytest.mark.parametrize("port", ["layotto", "dapr"])
def test_counter_service_answers_on_every_grpc_port(car: Sidecar, port: str) -> None:
    address = car.grpc_address if port == "layotto" else car.dapr_grpc_address
    with grpc.insecure_channel(address) as channel:
        stub = counter_pb2_grpc.CounterStub(channel)
        key = f"orders-{port}"
        first = stub.Next(counter_pb2.NextRequest(store_name="in-memory", key=key), timeout=10)
        second = stub.Next(counter_pb2.NextRequest(store_name="in-memory", key=key), timeout=10)
        assert second.value == first.value + 1
        assert stub.Add(counter_pb2.AddRequest(store_name="notes", key=f"c-{port}", delta=5),
                        timeout=10).value == 5
        assert stub.Add(counter_pb2.AddRequest(store_name="notes", key=f"c-{port}", delta=-2),
                        timeout=10).value == 3


def test_counter_service_is_reported_serving(car: Sidecar) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(car.grpc_address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="pylotto_example.v1.Counter"), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_counter_errors_map_like_the_builtin_apis(car: Sidecar) -> None:
    with grpc.insecure_channel(car.grpc_address) as channel:
        stub = counter_pb2_grpc.CounterStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Add(counter_pb2.AddRequest(store_name="nope", key="k", delta=1), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # ComponentNotFound
        assert "nope" in (info.value.details() or "")
        with pytest.raises(grpc.RpcError) as info:
            stub.Add(counter_pb2.AddRequest(store_name="notes", key="", delta=1), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_counter_http_route_on_the_dapr_http_api(car: Sidecar) -> None:
    url = f"{car.dapr_http_url}/v1.0-plugins/counter/notes/http-key"
    for expected in (4, 8):
        request = urllib.request.Request(url, data=b"4", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {"value": expected}
    request = urllib.request.Request(url, data=b"four", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400


def test_a_plugin_that_fails_to_load_stops_start_up_naming_it(tmp_path: Path) -> None:
    """A broken installed package: its entry point names a module that does not import."""
    site = tmp_path / "site"
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pylotto.apis]\nbroken = broken_plugin:Plugin\n")
    (site / "broken_plugin.py").write_text("raise RuntimeError('missing setting X')\n")
    config = tmp_path / "pylotto.yaml"
    config.write_text("components:\n  state:\n    s: {type: in-memory}\n")
    result = _cli("run", "-c", str(config), "--dapr-grpc-port", "0", "--dapr-http-port", "0",
                  env={"PYTHONPATH": str(site)})
    assert result.returncode == 2, result.stderr
    assert "API plugin 'broken'" in result.stderr and "broken-plugin 1.0" in result.stderr
    assert "missing setting X" in result.stderr
