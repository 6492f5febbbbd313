"""Apps written for Dapr receive events and invocations from pylotto unchanged: a gRPC app on
the SDK's ``dapr.ext.grpc.App`` and a plain HTTP app with ``/dapr/subscribe``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudevents.sdk.event import v1
from dapr.clients import DaprClient
from dapr.clients.grpc._response import TopicEventResponse
from dapr.ext.grpc import App, InvokeMethodRequest, Rule

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.http_app import JsonHandler

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
PUBSUB = "in-memory"


def wait_for(check: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def cloud_event(event_type: str, data: dict[str, Any]) -> str:
    return json.dumps({"specversion": "1.0", "id": f"id-{time.monotonic_ns()}", "source": "test",
                       "type": event_type, "datacontenttype": "application/json", "data": data})


@pytest.fixture
def dapr_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Sidecar], None]:
    def point_at(car: Sidecar) -> None:
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")

    return point_at


# ---- a gRPC app on dapr.ext.grpc.App ----------------------------------------------------------


class GrpcApp:
    def __init__(self) -> None:
        self.port = free_port()
        self.app = App()
        self.received: dict[str, list[Any]] = {"orders": [], "big": [], "poison": [], "dead": []}
        app = self.app

        @app.subscribe(pubsub_name=PUBSUB, topic="orders")
        def orders(event: v1.Event) -> None:
            self.received["orders"].append(json.loads(event.Data()))

        @app.subscribe(pubsub_name=PUBSUB, topic="orders", rule=Rule('event.type == "big"', 1))
        def big(event: v1.Event) -> None:
            self.received["big"].append(json.loads(event.Data()))

        @app.subscribe(pubsub_name=PUBSUB, topic="poison", dead_letter_topic="dead")
        def poison(event: v1.Event) -> TopicEventResponse:
            self.received["poison"].append(event.Data())
            return TopicEventResponse("drop")

        @app.subscribe(pubsub_name=PUBSUB, topic="dead")
        def dead(event: v1.Event) -> None:
            self.received["dead"].append(event.Data())

        @app.method(name="echo")
        def echo(request: InvokeMethodRequest) -> str:
            return f"echo:{request.text()}"

        self.thread = threading.Thread(target=app.run, args=(self.port, "127.0.0.1"),
                                       daemon=True)


@pytest.fixture
def grpc_app() -> Iterator[GrpcApp]:
    app = GrpcApp()
    app.thread.start()
    yield app
    app.app.stop()


def test_grpc_app_gets_routed_events_dead_letters_and_invocations(
    grpc_app: GrpcApp, tmp_path: Path, dapr_env: Callable[[Sidecar], None]
) -> None:
    car = Sidecar(tmp_path, app={"app_id": "grpcapp", "port": grpc_app.port,
                                 "protocol": "grpc"}).start()
    try:
        dapr_env(car)
        with DaprClient() as client:
            wait_for(lambda: len(json.loads(_metadata(car))["subscriptions"]) == 3)
            client.publish_event(PUBSUB, "orders", json.dumps({"n": 1}),
                                 data_content_type="application/json")
            client.publish_event(PUBSUB, "orders", cloud_event("big", {"n": 2}),
                                 data_content_type="application/cloudevents+json")
            client.publish_event(PUBSUB, "poison", "bad", data_content_type="text/plain")
            wait_for(lambda: grpc_app.received["orders"] and grpc_app.received["big"]
                     and grpc_app.received["dead"])
            assert grpc_app.received["orders"] == [{"n": 1}]
            assert grpc_app.received["big"] == [{"n": 2}]
            assert grpc_app.received["poison"] == [b"bad"]
            assert grpc_app.received["dead"] == [b"bad"]
            reply = client.invoke_method("grpcapp", "echo", data="hi")
            assert reply.text() == "echo:hi"
    finally:
        car.stop()


def _metadata(car: Sidecar) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=5) as resp:
        return str(resp.read().decode())


# ---- a plain HTTP app ----------------------------------------------------------------------------

SUBSCRIPTIONS = [
    {"pubsubname": PUBSUB, "topic": "orders",
     "routes": {"rules": [{"match": 'event.data.kind == "vip"', "path": "/vip"}],
                "default": "/orders"}},
    {"pubsubname": PUBSUB, "topic": "flaky", "route": "/flaky"},
    {"pubsubname": PUBSUB, "topic": "bad", "route": "/bad", "deadLetterTopic": "dead"},
    {"pubsubname": PUBSUB, "topic": "dead", "route": "/dead"},
]


class HttpApp(JsonHandler):
    received: dict[str, list[Any]] = {}
    headers_of: dict[str, list[dict[str, str]]] = {}
    flaky_calls = 0

    def do_GET(self) -> None:
        if self.path == "/dapr/subscribe":
            self._reply(200, SUBSCRIPTIONS)
        else:
            self._reply(404, {})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.headers["Content-Type"] == "application/cloudevents+json"
        route = self.path.lstrip("/")
        HttpApp.received.setdefault(route, []).append(body)
        HttpApp.headers_of.setdefault(route, []).append(
            {k.lower(): v for k, v in self.headers.items()})
        if route == "flaky":
            HttpApp.flaky_calls += 1
            self._reply(500 if HttpApp.flaky_calls == 1 else 200, {})
        elif route == "bad":
            self._reply(200, {"status": "DROP"})
        else:
            self._reply(200, {"status": "SUCCESS"})

    def _reply(self, status: int, body: object) -> None:
        self.reply(body, status)


@pytest.fixture
def http_app() -> Iterator[int]:
    HttpApp.received = {}
    HttpApp.headers_of = {}
    HttpApp.flaky_calls = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), HttpApp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_http_app_gets_cloudevents_on_its_routes(
    http_app: int, tmp_path: Path, dapr_env: Callable[[Sidecar], None]
) -> None:
    components = {"pubsub": {PUBSUB: {"type": "in-memory", "metadata": {
        "backOffPolicy": "constant", "backOffDuration": "100ms"}}}}
    car = Sidecar(tmp_path, components=components,
                  app={"app_id": "httpapp", "port": http_app}).start()
    try:
        dapr_env(car)
        with DaprClient() as client:
            wait_for(lambda: len(json.loads(_metadata(car))["subscriptions"]) == 4)
            client.publish_event(PUBSUB, "orders", json.dumps({"kind": "vip", "n": 1}),
                                 data_content_type="application/json",
                                 publish_metadata={"tenant": "acme",
                                                   "dapr-api-token": "from-a-publisher"})
            client.publish_event(PUBSUB, "orders", json.dumps({"kind": "std", "n": 2}),
                                 data_content_type="application/json")
            client.publish_event(PUBSUB, "flaky", "again", data_content_type="text/plain")
            client.publish_event(PUBSUB, "bad", "poison", data_content_type="text/plain")
            received = HttpApp.received
            wait_for(lambda: all(received.get(r) for r in ("vip", "orders", "dead"))
                     and len(received.get("flaky", [])) == 2)
        assert [e["data"] for e in received["vip"]] == [{"kind": "vip", "n": 1}]
        assert [e["data"] for e in received["orders"]] == [{"kind": "std", "n": 2}]
        first, again = received["flaky"]
        assert first["id"] == again["id"] and again["data"] == "again"  # redelivered
        assert received["dead"][0]["data"] == "poison"
        event = received["vip"][0]
        assert event["topic"] == "orders" and event["pubsubname"] == PUBSUB
        assert event["specversion"] == "1.0" and event["source"] == "httpapp"
        assert event["type"] == "com.dapr.event.sent"
        # the message's metadata as headers, as daprd sends them (the sidecar's own left out)
        headers = HttpApp.headers_of["vip"][0]
        assert headers["tenant"] == "acme" and headers["pubsubname"] == PUBSUB
        assert "dapr-api-token" not in headers
    finally:
        car.stop()


DECLARATIVE = """\
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: declared}
spec:
  pubsubname: in-memory
  topic: declared
  routes:
    rules:
    - {match: 'event.data.kind == "vip"', path: /vip}
    default: /orders
"""


def test_declarative_subscriptions_reach_an_app_that_lists_none(
    http_app: int, tmp_path: Path, dapr_env: Callable[[Sidecar], None]
) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "subscription.yaml").write_text(DECLARATIVE)
    car = Sidecar(tmp_path / "car", app={"app_id": "declared", "port": http_app},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        dapr_env(car)
        with DaprClient() as client:
            kinds = {s["topic"]: s["type"] for s in json.loads(_metadata(car))["subscriptions"]}
            assert kinds["declared"] == "DECLARATIVE" and kinds["orders"] == "PROGRAMMATIC"
            client.publish_event(PUBSUB, "declared", json.dumps({"kind": "vip"}),
                                 data_content_type="application/json")
            client.publish_event(PUBSUB, "declared", json.dumps({"kind": "std"}),
                                 data_content_type="application/json")
            received = HttpApp.received
            wait_for(lambda: bool(received.get("vip")) and bool(received.get("orders")))
        assert [e["data"] for e in received["vip"]] == [{"kind": "vip"}]
        assert [e["data"] for e in received["orders"]] == [{"kind": "std"}]
    finally:
        car.stop()
