"""The OTLP-over-HTTP and Zipkin exporters: spans of a real sidecar reach a real HTTP receiver in
the test, in the exporter's wire format, continuing the caller's trace."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from tests.e2e.sidecar import Sidecar

TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4737"
CALLER_SPAN = "10f067aa0ba902b8"


def otlp_spans(body: bytes) -> list[dict[str, str]]:
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    return [{"name": span.name, "trace": span.trace_id.hex(),
             "parent": span.parent_span_id.hex()}
            for resource in request.resource_spans for scope in resource.scope_spans
            for span in scope.spans]


def zipkin_spans(body: bytes) -> list[dict[str, str]]:
    return [{"name": span.get("name", ""), "trace": span["traceId"],
             "parent": span.get("parentId", ""), "service":
                 span.get("localEndpoint", {}).get("serviceName", "")}
            for span in json.loads(body)]


class Receiver:
    """An HTTP server keeping the spans POSTed to ``path``."""

    def __init__(self, path: str, decode: Callable[[bytes], list[dict[str, str]]]) -> None:
        self.spans: list[dict[str, str]] = []
        self.content_types: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == path:
                    receiver.content_types.add(self.headers.get("Content-Type", ""))
                    receiver.spans.extend(decode(body))
                self.send_response(200 if self.path == path else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, name: str) -> dict[str, str]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for span in list(self.spans):
                if span["name"].lower() == name.lower():
                    return span
            time.sleep(0.1)
        raise AssertionError(f"no span {name!r} among {self.spans}")


@pytest.fixture(params=["otlp-http", "zipkin"])
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, Receiver]]:
    exporter: str = request.param
    found = (Receiver("/v1/traces", otlp_spans) if exporter == "otlp-http"
             else Receiver("/api/v2/spans", zipkin_spans))
    yield exporter, found
    found.server.shutdown()


def test_spans_reach_the_configured_exporter(tmp_path: Path,
                                             receiver: tuple[str, Receiver]) -> None:
    exporter, collector = receiver
    car = Sidecar(tmp_path, {"state": {"store": {"type": "in-memory"}}}, {"app_id": "shop"})
    car.extra_config = {"tracing": {"exporter": exporter, "endpoint": collector.url}}
    car.start()
    try:
        request = urllib.request.Request(
            f"{car.dapr_http_url}/v1.0/state/store", method="POST",
            data=json.dumps([{"key": "k", "value": "v"}]).encode(),
            headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01",
                     "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).read()
        server = collector.find("POST SaveState")
        client = collector.find("state store store")
        assert server["trace"] == client["trace"] == TRACE_ID
        assert server["parent"] == CALLER_SPAN
        if exporter == "zipkin":
            assert server["service"] == "shop"
        else:
            assert collector.content_types == {"application/x-protobuf"}
    finally:
        car.stop()
