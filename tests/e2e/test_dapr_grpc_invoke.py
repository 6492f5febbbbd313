"""A gRPC app written for Dapr (``dapr.ext.grpc.App``) invoked with protobuf data, the way
Dapr's ``invoke-custom-data`` and ``w3c-tracing`` examples do: HTTP→gRPC (the SDK's default
``invoke_method``) and gRPC→gRPC (``DAPR_API_METHOD_INVOCATION_PROTOCOL=grpc``), on the app's
own sidecar and from another app's sidecar. The app's protobuf reply reaches the caller so
that ``resp.unpack`` works; the caller's trace id reaches the app (invocation and pub/sub)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.sdk.event import v1
from dapr.clients import DaprClient
from dapr.clients.http.dapr_invocation_http_client import DaprInvocationHttpClient
from dapr.ext.grpc import App, InvokeMethodRequest, InvokeMethodResponse
from dapr.proto.common.v1 import common_pb2

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.http_app import JsonHandler, serve

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

RECEIVER = "invoke-receiver"
CALLER = "invoke-caller"
PUBSUB = "in-memory"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def wait_for(check: Callable[[], Any], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class Receiver:
    """The receiver of Dapr's examples: a protobuf reply, and the trace id it was called
    with."""

    def __init__(self) -> None:
        self.port = free_port()
        self.app = App()
        self.requests: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.http_port = 0
        app = self.app

        @app.method(name="my_method")
        def my_method(request: InvokeMethodRequest) -> common_pb2.StateItem:
            asked = common_pb2.StateItem()
            if request.is_proto():
                request.unpack(asked)
            else:
                asked.ParseFromString(request.data)
            self.requests.append({"proto": request.is_proto(), "key": asked.key,
                                  "content_type": request.content_type,
                                  "metadata": dict(request.metadata)})
            return common_pb2.StateItem(key=f"reply-to-{asked.key}", value=b"Hello World")

        @app.method(name="saytrace")
        def saytrace(request: InvokeMethodRequest) -> InvokeMethodResponse:
            return InvokeMethodResponse(json.dumps(trace_ids(dict(request.metadata))),
                                        "application/json; charset=UTF-8")

        @app.method(name="forward")
        def forward(request: InvokeMethodRequest) -> InvokeMethodResponse:
            # as the example: call saytrace again over HTTP (the example's DaprClient
            # default, whatever protocol this test's caller uses), with the context it got
            received = first(dict(request.metadata), "traceparent")
            client = DaprInvocationHttpClient(headers_callback=lambda: {"traceparent": received})
            reply = client.invoke_method(RECEIVER, "saytrace", data="")
            return InvokeMethodResponse(reply.text(), "application/json; charset=UTF-8")

        @app.subscribe(pubsub_name=PUBSUB, topic="traced")
        def traced(event: v1.Event) -> None:
            extensions = event.Extensions()
            self.events.append(trace_ids({k.removeprefix("_metadata_"): v
                                          for k, v in extensions.items()
                                          if k.startswith("_metadata_")}))

        self.thread = threading.Thread(target=app.run, args=(self.port, "127.0.0.1"),
                                       daemon=True)


def first(metadata: dict[str, Any], key: str) -> Any:
    """A metadata value: the SDK gives invocation metadata as lists, event metadata bare."""
    value = metadata.get(key, "")
    return value[0] if isinstance(value, list) and value else value


def trace_ids(metadata: dict[str, Any]) -> dict[str, str]:
    """The trace id of the ``traceparent`` in gRPC metadata. (The sidecar sends
    ``grpc-trace-bin`` too, as Dapr does, but grpcio's C core keeps that key from Python
    handlers, so a Python app cannot show it.)"""
    parent = str(first(metadata, "traceparent"))
    return {"traceparent": parent.split("-")[1] if parent.count("-") == 3 else ""}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sidecar, Sidecar,
                                                                    Receiver]]:
    receiver = Receiver()
    receiver.thread.start()
    tmp = tmp_path_factory.mktemp("grpc-invoke")
    own = Sidecar(tmp / "receiver", app={"app_id": RECEIVER, "port": receiver.port,
                                         "protocol": "grpc"})
    caller = Sidecar(tmp / "caller", app={"app_id": CALLER})
    table = {"type": "static", "metadata": {"apps": {RECEIVER: [own.dapr_grpc_address]}}}
    own.extra_config = caller.extra_config = {"name_resolution": table}
    own.start()
    caller.start()
    yield own, caller, receiver
    caller.stop()
    own.stop()
    receiver.app.stop()


def point_at(monkeypatch: pytest.MonkeyPatch, car: Sidecar, protocol: str) -> None:
    """The SDK's settings, through the environment (``dapr.conf.settings`` reads it on each
    access; an attribute set on it would outlive the test)."""
    monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
    monkeypatch.setenv("DAPR_API_METHOD_INVOCATION_PROTOCOL", protocol)
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")


@pytest.mark.parametrize("via", ["own-sidecar", "caller-sidecar"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_protobuf_reply_unpacks(mesh: tuple[Sidecar, Sidecar, Receiver], protocol: str,
                                via: str, monkeypatch: pytest.MonkeyPatch) -> None:
    own, caller, receiver = mesh
    point_at(monkeypatch, own if via == "own-sidecar" else caller, protocol)
    key = f"{protocol}-{via}"
    with DaprClient() as client:
        reply = client.invoke_method(RECEIVER, "my_method",
                                     data=common_pb2.StateItem(key=key, value=b"x"))
    answer = common_pb2.StateItem()
    reply.unpack(answer)  # Dapr's example: raises "invalid type" when the type is lost
    assert (answer.key, answer.value) == (f"reply-to-{key}", b"Hello World")
    asked = next(r for r in receiver.requests if r["key"] == key)
    if protocol == "grpc":  # the caller's Any arrives with its type: the app unpacks it
        assert asked["proto"] is True
        assert reply.proto.type_url == "type.googleapis.com/dapr.proto.common.v1.StateItem"
        # as the app sent it: the SDK's App labels a returned message JSON, Dapr passes it on
        assert reply.content_type == "application/json; charset=utf-8"
    else:  # HTTP carries bytes; Dapr answers application/x-protobuf, which the SDK parses
        assert asked["proto"] is False
        assert reply.content_type == "application/x-protobuf"


@pytest.mark.parametrize("via", ["own-sidecar", "caller-sidecar"])
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_trace_id_reaches_grpc_app(mesh: tuple[Sidecar, Sidecar, Receiver], protocol: str,
                                   via: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dapr's w3c-tracing example: saytrace's trace id is the caller's, and still the same
    after ``forward`` (the app calls saytrace again with the context it received)."""
    own, caller, _ = mesh
    point_at(monkeypatch, own if via == "own-sidecar" else caller, protocol)
    if protocol == "grpc":
        metadata = (("traceparent", TRACEPARENT),)
        with DaprClient() as client:
            seen = json.loads(client.invoke_method(RECEIVER, "saytrace", data="",
                                                   metadata=metadata).text())
            forwarded = json.loads(client.invoke_method(RECEIVER, "forward", data="",
                                                        metadata=metadata).text())
    else:
        with DaprClient(headers_callback=lambda: {"traceparent": TRACEPARENT}) as client:
            seen = json.loads(client.invoke_method(RECEIVER, "saytrace", data="").text())
            forwarded = json.loads(client.invoke_method(RECEIVER, "forward", data="").text())
    assert seen == {"traceparent": TRACE_ID}
    assert forwarded == seen, "Trace ID does not match after forwarding"


def test_trace_id_reaches_grpc_subscriber(mesh: tuple[Sidecar, Sidecar, Receiver]) -> None:
    own, _, receiver = mesh
    wait_for(lambda: _subscribed(own))
    request = urllib.request.Request(
        f"{own.dapr_http_url}/v1.0/publish/{PUBSUB}/traced", data=b'{"n": 1}', method="POST",
        headers={"Content-Type": "application/json", "traceparent": TRACEPARENT})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 204
    wait_for(lambda: receiver.events)
    assert receiver.events == [{"traceparent": TRACE_ID}]


def _subscribed(car: Sidecar) -> bool:
    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=5) as response:
        return any(s["topic"] == "traced" for s in json.loads(response.read())["subscriptions"])


def test_trace_id_reaches_http_subscriber_as_a_header(tmp_path: Path) -> None:
    """The HTTP app channel sends the delivery's trace context as headers, as Dapr's does."""
    seen: list[str] = []

    class Subscriber(JsonHandler):
        def do_GET(self) -> None:  # /dapr/subscribe
            self.reply([{"pubsubname": PUBSUB, "topic": "traced", "route": "/traced"}])

        def do_POST(self) -> None:
            self.read_json()
            seen.append(self.headers.get("traceparent", ""))
            self.reply({"status": "SUCCESS"})

    server = serve(Subscriber)
    car = Sidecar(tmp_path, app={"app_id": "http-subscriber", "port": server.server_address[1]})
    try:
        car.start()
        wait_for(lambda: _subscribed(car))
        request = urllib.request.Request(
            f"{car.dapr_http_url}/v1.0/publish/{PUBSUB}/traced", data=b'{"n": 1}',
            method="POST",
            headers={"Content-Type": "application/json", "traceparent": TRACEPARENT})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 204
        wait_for(lambda: seen)
        assert seen[0].split("-")[1] == TRACE_ID
    finally:
        car.stop()
        server.shutdown()


def test_grpc_app_error_status_reaches_the_caller(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An app answering OnInvoke with an error status: a gRPC caller gets its code and
    message (as Dapr passes them); an HTTP caller, directly or through another sidecar, what
    daprd answers (pkg/api/http/directmessaging.go): the code's HTTP status and the status
    as protojson with its details, no Content-Type of daprd's own (net/http sniffs
    text/plain)."""
    from concurrent import futures

    import grpc
    from dapr.proto.runtime.v1 import appcallback_pb2_grpc
    from google.protobuf import any_pb2
    from google.rpc import error_details_pb2, status_pb2
    from grpc_status import rpc_status

    class Refusing(appcallback_pb2_grpc.AppCallbackServicer):
        def OnInvoke(self, request: Any, context: Any) -> Any:
            if request.method == "detailed":
                detail = any_pb2.Any()
                detail.Pack(error_details_pb2.ErrorInfo(reason="OUT_OF_STOCK", domain="shop"))
                context.abort_with_status(rpc_status.to_status(status_pb2.Status(
                    code=grpc.StatusCode.FAILED_PRECONDITION.value[0], message="no stock",
                    details=[detail])))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad order {request.method}")

    server = grpc.server(futures.ThreadPoolExecutor(2))
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(Refusing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    car = Sidecar(tmp_path / "refusing",
                  app={"app_id": "refusing", "port": port, "protocol": "grpc"})
    caller = Sidecar(tmp_path / "caller", app={"app_id": "caller"})
    table = {"type": "static", "metadata": {"apps": {"refusing": [car.dapr_grpc_address]}}}
    car.extra_config = caller.extra_config = {"name_resolution": table}
    try:
        car.start()
        caller.start()
        point_at(monkeypatch, car, "grpc")
        with DaprClient() as client, pytest.raises(grpc.RpcError) as info:
            client.invoke_method("refusing", "orders", data="x")
        assert (info.value.code(), info.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, "bad order orders")

        def http_error(through: Sidecar, method: str) -> tuple[int, str, Any]:
            request = urllib.request.Request(
                f"{through.dapr_http_url}/v1.0/invoke/refusing/method/{method}", data=b"x",
                method="POST")
            with pytest.raises(urllib.error.HTTPError) as http_info:
                urllib.request.urlopen(request, timeout=10)
            return (http_info.value.code, http_info.value.headers.get("Content-Type"),
                    json.loads(http_info.value.read()))

        for through in (car, caller):  # the whole status, as daprd's ErrorFromInternalStatus
            point_at(monkeypatch, through, "grpc")
            with DaprClient() as client, pytest.raises(grpc.RpcError) as info:
                client.invoke_method("refusing", "detailed", data="x")
            status = rpc_status.from_call(info.value)
            assert status is not None and (status.code, status.message) == (9, "no stock")
            reason = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(reason) and reason.reason == "OUT_OF_STOCK"
            assert http_error(through, "orders") == (
                400, "text/plain; charset=utf-8", {"code": 3, "message": "bad order orders"})
            assert http_error(through, "detailed") == (400, "text/plain; charset=utf-8", {
                "code": 9, "message": "no stock", "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "OUT_OF_STOCK", "domain": "shop"}]})
    finally:
        caller.stop()
        car.stop()
        server.stop(0)


def test_caller_token_is_not_forwarded_to_a_grpc_app(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar's API token stays with the sidecar: the gRPC app gets its own token."""
    app, port = App(), free_port()

    @app.method(name="tokens")
    def tokens(request: InvokeMethodRequest) -> str:
        return json.dumps(dict(request.metadata).get("dapr-api-token", []))

    threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True).start()
    car = Sidecar(tmp_path, app={"app_id": "tokened", "port": port, "protocol": "grpc"},
                  extra_args=["--api-token", "sidecar-secret", "--app-api-token", "app-secret"])
    try:
        car.start()
        point_at(monkeypatch, car, "grpc")
        monkeypatch.setenv("DAPR_API_TOKEN", "sidecar-secret")
        with DaprClient() as client:
            seen = json.loads(client.invoke_method("tokened", "tokens", data="").text())
        assert seen == ["app-secret"]
    finally:
        car.stop()
        app.stop()


def test_a_dapr_ext_grpc_apps_error_reaches_an_http_caller_as_daprd_answers(
        tmp_path: Path) -> None:
    """A ``dapr.ext.grpc.App`` whose method raises (grpcio: ``UNKNOWN``, "Exception calling
    application: ...") or that has no such method (``UNIMPLEMENTED``): an HTTP caller gets
    daprd's answer, the code's HTTP status and ``{"code", "message"}`` (protojson of the app's
    status, pkg/api/http/directmessaging.go), not an error body of pylotto's own."""
    app, port = App(), free_port()

    @app.method(name="reserve")
    def reserve(request: InvokeMethodRequest) -> str:
        raise ValueError(f"out of stock: {request.text()}")

    thread = threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True)
    thread.start()
    car = Sidecar(tmp_path / "shop", app={"app_id": "shop", "port": port, "protocol": "grpc"})
    try:
        car.start()

        def refused(method: str) -> tuple[int, str | None, Any]:
            request = urllib.request.Request(
                f"{car.dapr_http_url}/v1.0/invoke/shop/method/{method}", data=b"apples",
                method="POST")
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(request, timeout=10)
            return (info.value.code, info.value.headers.get("Content-Type"),
                    json.loads(info.value.read()))

        assert refused("reserve") == (500, "text/plain; charset=utf-8", {
            "code": 2, "message": "Exception calling application: out of stock: apples"})
        status, content_type, body = refused("missing")
        assert (status, content_type, body["code"]) == (501, "text/plain; charset=utf-8", 12)
        assert set(body) == {"code", "message"} and "missing" in body["message"]
    finally:
        car.stop()
        app.stop()
