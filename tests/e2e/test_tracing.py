"""One trace across two sidecars, an invocation and a broker: app A → sidecar A → sidecar B →
app B, and app A → sidecar A → Redis Streams → sidecar B → app B. Spans are received by a real
OTLP gRPC receiver in the test and checked span by span."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.http_app import JsonHandler, serve
from tests.support.servers import require

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver keeping every span (service name, name, kind, ids)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        with self.lock:
            for resource_spans in request.resource_spans:
                service = next(a.value.string_value for a in resource_spans.resource.attributes
                               if a.key == "service.name")
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.spans.append({
                            "service": service, "name": span.name, "kind": span.kind,
                            "trace": span.trace_id.hex(), "id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": {a.key: _value(a.value) for a in span.attributes}})
        return trace_service_pb2.ExportTraceServiceResponse()

    def find(self, service: str, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.lock:
                for span in self.spans:
                    if span["service"] == service and span["name"] == name:
                        return span
            time.sleep(0.1)
        raise AssertionError(f"no span {name!r} from {service}: {self.spans}")


def _value(value: Any) -> str | int:
    return value.int_value if value.HasField("int_value") else value.string_value


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    collector = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield collector, port
    server.stop(0)


class App(JsonHandler):
    seen: dict[str, str] = {}

    def do_GET(self) -> None:
        if self.path == "/dapr/subscribe":
            self.reply([{"pubsubname": "bus", "topic": App.topic, "route": "/events"}])
        else:
            App.seen["invoke"] = self.headers.get("traceparent", "")
            self.reply({"ok": True})

    def do_POST(self) -> None:
        App.seen["event"] = self.read_json().get("traceparent", "")
        self.reply({"status": "SUCCESS"})

    topic = ""


def test_one_trace_across_two_sidecars_and_a_broker(
    tmp_path: Path, receiver: tuple[Receiver, int]
) -> None:
    require("redis")
    collector, port = receiver
    App.seen, App.topic = {}, f"traced-{free_port()}"
    server = serve(App)
    bus = {"pubsub": {"bus": {"type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}}}}
    billing = Sidecar(tmp_path / "b", bus, {"app_id": "billing",
                                            "port": server.server_address[1]})
    frontend = Sidecar(tmp_path / "a", bus, {"app_id": "frontend"})
    table = {"type": "static", "metadata": {"apps": {"billing": [billing.dapr_grpc_address]}}}
    tracing = {"sampling_rate": 1, "exporter": "otlp-grpc", "endpoint": f"127.0.0.1:{port}"}
    for car in (billing, frontend):
        car.extra_config = {"name_resolution": table, "tracing": tracing}
    billing.start()
    frontend.start()
    try:
        parent = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
        request = urllib.request.Request(
            f"{frontend.dapr_http_url}/v1.0/invoke/billing/method/pay",
            headers={"traceparent": parent})
        urllib.request.urlopen(request, timeout=10).read()
        a_server = collector.find("frontend", "GET InvokeService")
        a_client = collector.find("frontend", "invoke billing")
        b_server = collector.find("billing", "pylotto.v1.SidecarInvoke/InvokeApp")
        assert {a_server["trace"], a_client["trace"], b_server["trace"]} == {TRACE_ID}
        assert a_server["parent"] == CALLER_SPAN  # continues app A's trace
        assert a_client["parent"] == a_server["id"]
        assert b_server["parent"] == a_client["id"]  # sidecar B continues sidecar A
        assert App.seen["invoke"] == f"00-{TRACE_ID}-{b_server['id']}-01"  # and app B, B
        # OpenTelemetry's semantic conventions on each span
        assert a_server["attributes"] == {
            "http.request.method": "GET", "url.path": "/v1.0/invoke/billing/method/pay",
            "http.route": "InvokeService", "http.response.status_code": 200}
        assert a_client["attributes"] == {"rpc.system": "dapr", "peer.service": "billing",
                                          "rpc.method": "pay"}
        assert b_server["attributes"] == {"rpc.system": "grpc",
                                          "rpc.service": "pylotto.v1.SidecarInvoke",
                                          "rpc.method": "InvokeApp", "rpc.grpc.status_code": 0}

        second = "0af7651916cd43dd8448eb211c80319c"
        publish = urllib.request.Request(
            f"{frontend.dapr_http_url}/v1.0/publish/bus/{App.topic}", data=b'{"n": 1}',
            headers={"traceparent": f"00-{second}-b7ad6b7169203331-01",
                     "Content-Type": "application/json"})
        urllib.request.urlopen(publish, timeout=10).read()
        published = collector.find("frontend", "POST PublishEvent")
        delivered = collector.find("billing", f"deliver {App.topic}")
        assert published["trace"] == delivered["trace"] == second
        assert delivered["parent"] == published["id"]  # through the broker, in the CloudEvent
        assert delivered["attributes"]["messaging.destination.name"] == App.topic
        assert delivered["attributes"]["messaging.operation.type"] == "process"
        publish_call = collector.find("frontend", "pubsub bus")
        assert publish_call["attributes"] == {
            "messaging.system": "pubsub.redis", "messaging.operation.type": "publish",
            "messaging.client.id": "bus"}
        deadline = time.monotonic() + 10
        while "event" not in App.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert App.seen["event"] == f"00-{second}-{delivered['id']}-01"
    finally:
        frontend.stop()
        billing.stop()
        server.shutdown()
