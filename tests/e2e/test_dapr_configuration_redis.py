"""Dapr's configuration quickstart on pylotto: a ``configuration.redis`` component from a Dapr
manifest, items written with ``redis-cli SET key "value||version"``, read by the dapr 1.19
SDK's ``get_configuration``, watched by its ``subscribe_configuration`` and, over HTTP, by an
app subscribed with ``GET /v1.0/configuration/{store}/subscribe`` (updates POSTed to its
``/configuration/{store}/{key}``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dapr.clients import DaprClient
from dapr.clients.grpc._response import ConfigurationResponse

from tests.e2e.sidecar import Sidecar
from tests.support.http_app import JsonHandler, serve

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
              pytest.mark.timeout(120)]
STORE = "configstore"
COMPONENT = f"""\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: {STORE}}}
spec:
  type: configuration.redis
  version: v1
  metadata:
  - {{name: redisHost, value: "localhost:6379"}}
"""


def redis_cli(*args: str) -> str:
    cli = shutil.which("redis-cli")
    assert cli is not None, "redis-cli is part of the test set-up"
    done = subprocess.run([cli, *args], check=True, capture_output=True, text=True, timeout=10)
    return done.stdout.strip()


def wait_for(check: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def http(car: Sidecar, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{car.dapr_http_url}{path}", timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def keys() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:8]
    made = (f"orderId1-{tag}", f"orderId2-{tag}")
    yield made
    redis_cli("DEL", *made)


@pytest.fixture
def resources(tmp_path: Path) -> Path:
    folder = tmp_path / "resources"
    folder.mkdir()
    (folder / "configstore.yaml").write_text(COMPONENT)
    return folder


def test_items_written_with_redis_cli_reach_the_dapr_sdk(
    tmp_path: Path, resources: Path, keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = keys
    redis_cli("SET", first, "100||1")
    redis_cli("SET", second, "200||1")
    car = Sidecar(tmp_path / "car", components={},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        updates: list[tuple[str, dict[str, tuple[str, str]]]] = []

        def handler(subscription_id: str, response: ConfigurationResponse) -> None:
            updates.append((subscription_id, {k: (v.value, v.version)
                                              for k, v in response.items.items()}))

        with DaprClient() as client:
            got = client.get_configuration(STORE, [first, second, "absent-key"])
            assert {k: (v.value, v.version) for k, v in got.items.items()} == {
                first: ("100", "1"), second: ("200", "1")}
            subscription_id = client.subscribe_configuration(STORE, [first, second], handler)
            assert subscription_id
            redis_cli("SET", first, "101||2")
            wait_for(lambda: (subscription_id, {first: ("101", "2")}) in updates)
            redis_cli("DEL", second)
            wait_for(lambda: (subscription_id, {second: ("", "")}) in updates)
            assert client.unsubscribe_configuration(STORE, subscription_id)
            assert not client.unsubscribe_configuration(STORE, subscription_id)
        status, body = http(car, f"/v1.0/configuration/{STORE}?key={first}&key={second}")
        assert (status, body) == (200, {first: {"value": "101", "version": "2"}})
        assert http(car, f"/v1.0/configuration/{STORE}?key=absent-key")[0] == 204
    finally:
        car.stop()


def test_an_http_app_subscribes_and_gets_updates_on_its_route(
    tmp_path: Path, resources: Path, keys: tuple[str, str]
) -> None:
    first, _ = keys
    received: list[tuple[str, Any]] = []

    class App(JsonHandler):
        def do_GET(self) -> None:
            self.reply({}, 404)

        def do_POST(self) -> None:
            received.append((self.path, self.read_json()))
            self.reply({})

    server = serve(App)
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "configapp", "port": server.server_address[1]},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        for version in ("v1.0", "v1.0-alpha1"):
            received.clear()
            status, body = http(car, f"/{version}/configuration/{STORE}/subscribe?key={first}")
            assert status == 200 and body["id"]
            subscription_id = body["id"]
            redis_cli("SET", first, f"{version}||7")
            wait_for(lambda: bool(received))
            path, update = received[0]
            assert path == f"/configuration/{STORE}/{first}"
            assert update == {"id": subscription_id,
                              "items": {first: {"value": version, "version": "7"}}}
            status, body = http(
                car, f"/{version}/configuration/{STORE}/{subscription_id}/unsubscribe")
            assert (status, body) == (200, {"ok": True})
            received.clear()
            redis_cli("SET", first, "after||8")
            time.sleep(0.5)
            assert received == [], "no update after unsubscribing"
        status, body = http(car, f"/v1.0/configuration/{STORE}/nope/unsubscribe")
        assert status == 500 and body == {
            "ok": False, "message": "failed to unsubscribe to configuration request nope: "
                                    "subscription with id nope does not exist"}
    finally:
        car.stop()
        server.shutdown()


def test_subscribing_over_http_without_an_app_is_refused(
    tmp_path: Path, resources: Path
) -> None:
    car = Sidecar(tmp_path / "car", components={},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        status, body = http(car, f"/v1.0/configuration/{STORE}/subscribe")
        assert status == 500 and body["errorCode"] == "ERR_APP_CHANNEL_NIL"
    finally:
        car.stop()


def test_a_grpc_app_subscribed_over_http_gets_updates_through_on_invoke(
    tmp_path: Path, resources: Path, keys: tuple[str, str]
) -> None:
    """daprd's updateEventHandler sends each update over the app channel; to a gRPC app
    (dapr.ext.grpc.App) that is OnInvoke with method ``/configuration/{store}/{key}``, the
    update's JSON as data, content type application/json."""
    import threading

    from dapr.ext.grpc import App, InvokeMethodRequest

    from tests.e2e.sidecar import free_port

    first, _ = keys
    received: list[tuple[str, Any]] = []
    app, port = App(), free_port()

    @app.method(name=f"/configuration/{STORE}/{first}")
    def on_update(request: InvokeMethodRequest) -> str:
        received.append((request.content_type, json.loads(request.text())))
        return ""

    thread = threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True)
    thread.start()
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "grpcconfig", "port": port, "protocol": "grpc"},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        status, body = http(car, f"/v1.0/configuration/{STORE}/subscribe?key={first}")
        assert status == 200 and body["id"]
        redis_cli("SET", first, "grpc||3")
        wait_for(lambda: bool(received))
        assert received == [("application/json", {
            "id": body["id"], "items": {first: {"value": "grpc", "version": "3"}}})]
        status, _ = http(car, f"/v1.0/configuration/{STORE}/{body['id']}/unsubscribe")
        assert status == 200
    finally:
        car.stop()
        app.stop()


def test_an_update_the_app_refuses_is_sent_again_per_the_inbound_policy(
    tmp_path: Path, resources: Path, keys: tuple[str, str]
) -> None:
    first, _ = keys
    (resources / "resiliency.yaml").write_text(f"""\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {{name: inbound}}
spec:
  policies:
    retries:
      twice: {{policy: constant, duration: 50ms, maxRetries: 2}}
  targets:
    components:
      {STORE}:
        inbound: {{retry: twice}}
""")
    posts: list[Any] = []

    class App(JsonHandler):
        def do_GET(self) -> None:
            self.reply({}, 404)

        def do_POST(self) -> None:
            posts.append(self.read_json())
            self.reply({}, 500 if len(posts) == 1 else 200)

    server = serve(App)
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "configretry", "port": server.server_address[1]},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        assert http(car, f"/v1.0/configuration/{STORE}/subscribe?key={first}")[0] == 200
        redis_cli("SET", first, "v||1")
        wait_for(lambda: len(posts) == 2)
        time.sleep(0.3)
        assert len(posts) == 2 and posts[0] == posts[1], "refused once, then accepted"
    finally:
        car.stop()
        server.shutdown()
