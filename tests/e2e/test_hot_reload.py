"""Hot reload of component files while the sidecar serves: adding, changing and removing a
manifest is applied without a restart, a broken file changes nothing, and calls to the other
components — and to the component being replaced — never fail meanwhile."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar
from tests.support.http_app import JsonHandler, serve

pytestmark = pytest.mark.timeout(120)


def manifest(name: str, type_name: str, **metadata: str) -> str:
    items = "".join(f"\n  - name: {key}\n    value: \"{value}\"" for key, value in metadata.items())
    return (f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
            f"spec:\n  type: {type_name}\n  version: v1\n  metadata:{items or ' []'}\n")


def eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached within {timeout}s: {what}")


def component_types(car: Sidecar) -> dict[str, str]:
    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=5) as answer:
        body = json.load(answer)
    return {c["name"]: c["type"] for c in body.get("components", [])}


class Load(threading.Thread):
    """Saves and reads keys of some stores without pause, counting failures per store."""

    def __init__(self, car: Sidecar, stores: list[str], check_values: set[str]) -> None:
        super().__init__(daemon=True)
        self.stub = car.stub()
        self.stores = stores
        self.check_values = check_values
        self.calls = dict.fromkeys(stores, 0)
        self.failures: list[str] = []
        self.running = True

    def run(self) -> None:
        n = 0
        while self.running:
            n += 1
            for store in self.stores:
                value = f"v{n}".encode()
                try:
                    self.stub.SaveState(runtime_pb2.SaveStateRequest(
                        store_name=store, states=[runtime_pb2.StateItem(key="k", value=value)]))
                    got = self.stub.GetState(runtime_pb2.GetStateRequest(store_name=store,
                                                                         key="k"))
                    if store in self.check_values and got.data != value:
                        self.failures.append(f"{store}: read {got.data!r} after {value!r}")
                except grpc.RpcError as exc:
                    self.failures.append(f"{store}: {exc.code().name} {exc.details()}")
                self.calls[store] += 1

    def stop(self) -> None:
        self.running = False
        self.join(10)


def test_component_files_reload_without_failing_calls(tmp_path: Path) -> None:
    folder = tmp_path / "resources"
    folder.mkdir()
    (folder / "untouched.yaml").write_text(manifest("untouched", "state.sqlite"))
    (folder / "changing.yaml").write_text(manifest("changing", "state.in-memory"))
    car = Sidecar(tmp_path / "car", components={}, app={"app_id": "shop"},
                  extra_args=["--resources-path", str(folder)])
    car.extra_config = {"hot_reload": {"interval_seconds": 0.2, "drain_seconds": 1}}
    car.start()
    load = Load(car, ["untouched", "changing"], check_values={"untouched"})
    load.start()
    try:
        assert component_types(car) == {"untouched": "state.sqlite",
                                        "changing": "state.in-memory"}
        # added
        (folder / "added.yaml").write_text(manifest("added", "state.sqlite",
                                                    tableName="added_state"))
        stub = car.stub()

        def added_serves() -> bool:
            try:
                stub.SaveState(runtime_pb2.SaveStateRequest(
                    store_name="added", states=[runtime_pb2.StateItem(key="a", value=b"1")]))
            except grpc.RpcError:
                return False
            return True

        eventually(added_serves, "the added store serves")
        # changed: another type under the same name, swapped in while the load runs
        (folder / "changing.yaml").write_text(manifest("changing", "state.sqlite",
                                                       tableName="changed_state"))
        eventually(lambda: component_types(car).get("changing") == "state.sqlite",
                   "the changed store is the new type")
        # broken: an unknown type changes nothing and is reported
        (folder / "broken.yaml").write_text(manifest("broken", "state.nosuchstore"))
        eventually(lambda: "state.nosuchstore" in car.logs(), "the broken file is reported")
        assert "broken" not in component_types(car)
        (folder / "broken.yaml").unlink()
        # removed
        (folder / "added.yaml").unlink()
        eventually(lambda: "added" not in component_types(car), "the removed store is gone")
        with pytest.raises(grpc.RpcError) as gone:
            stub.GetState(runtime_pb2.GetStateRequest(store_name="added", key="a"))
        assert "added is not found" in (gone.value.details() or "")
        time.sleep(1.5)  # past the drain time: the replaced stores are closed
    finally:
        load.stop()
    assert load.failures == []
    assert min(load.calls.values()) > 20, load.calls
    logs = car.logs()
    assert "hot reload: added state.added" in logs
    assert "hot reload: changed state.changing" in logs
    assert "hot reload: removed state.added" in logs
    assert car.stop() == 0


class App(JsonHandler):
    """A Dapr HTTP app subscribed to topic ``orders`` of pubsub ``bus``."""

    received: list[Any] = []

    def do_GET(self) -> None:
        self.reply([{"pubsubname": "bus", "topic": "orders", "route": "/orders"}])

    def do_POST(self) -> None:
        App.received.append(self.read_json())
        self.reply({"status": "SUCCESS"})


def test_a_reloaded_pubsub_keeps_delivering_to_the_app(tmp_path: Path) -> None:
    App.received = []
    server = serve(App)
    folder = tmp_path / "resources"
    folder.mkdir()
    (folder / "bus.yaml").write_text(manifest("bus", "pubsub.in-memory"))
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "orders", "port": server.server_address[1]},
                  extra_args=["--resources-path", str(folder)])
    car.extra_config = {"hot_reload": {"interval_seconds": 0.2, "drain_seconds": 0}}
    car.start()
    stub = car.stub()
    try:
        def publish(n: int) -> None:
            stub.PublishEvent(runtime_pb2.PublishEventRequest(
                pubsub_name="bus", topic="orders", data=json.dumps({"n": n}).encode(),
                data_content_type="application/json"))

        publish(1)
        eventually(lambda: [e["data"]["n"] for e in App.received] == [1], "event 1 delivered")
        (folder / "bus.yaml").write_text(manifest("bus", "pubsub.in-memory",
                                                  maxConcurrentHandlers="2"))
        eventually(lambda: "hot reload: changed pubsub.bus" in car.logs(), "bus reloaded")
        publish(2)
        eventually(lambda: [e["data"]["n"] for e in App.received] == [1, 2],
                   "event 2 delivered through the new pubsub")
    finally:
        car.stop()
        server.shutdown()
