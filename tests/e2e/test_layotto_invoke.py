"""InvokeService to the sidecar's own app, an HTTP server running in a thread."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import grpc
import pytest
from google.protobuf import any_pb2

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar, free_port

Verb = runtime_pb2.HTTPExtension.Verb


class App(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        url = urlsplit(self.path)
        if url.path == "/fail":
            status, reply = 503, b"app is sad"
        else:
            if url.path == "/slow":
                time.sleep(1.0)
            status, reply = 200, json.dumps({
                "method": self.command, "path": url.path, "query": url.query,
                "body": body.decode(), "content_type": self.headers.get("Content-Type"),
                "id": self.headers.get("id"), "tenant": self.headers.get("x-tenant"),
            }).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-App-Version", "1.2")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def app_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def call(app_id: str, method: str) -> runtime_pb2.InvokeServiceRequest:
    return runtime_pb2.InvokeServiceRequest(
        id=app_id, message=runtime_pb2.CommonInvokeRequest(method=method))


def test_invoke_carries_everything_both_ways(
    start_sidecar: Callable[..., Sidecar], app_port: int
) -> None:
    stub = start_sidecar(components={}, app={"id": "myapp", "port": app_port}).stub()
    request = runtime_pb2.InvokeServiceRequest(id="myapp", message=runtime_pb2.CommonInvokeRequest(
        method="orders/7", data=any_pb2.Any(value=b'{"qty": 2}'), content_type="application/json",
        http_extension=runtime_pb2.HTTPExtension(verb=Verb.POST, querystring="dry=1&x=y"),
    ))
    reply, rpc = stub.InvokeService.with_call(request, metadata=[("x-tenant", "acme")], timeout=10)
    sent = json.loads(reply.data.value)
    assert sent == {"method": "POST", "path": "/orders/7", "query": "dry=1&x=y",
                    "body": '{"qty": 2}', "content_type": "application/json", "id": "myapp",
                    "tenant": "acme"}
    assert reply.content_type == "application/json"
    assert ("x-app-version", "1.2") in [(m.key, m.value) for m in rpc.initial_metadata()]


def test_default_verb_is_get(start_sidecar: Callable[..., Sidecar], app_port: int) -> None:
    stub = start_sidecar(components={}, app={"id": "myapp", "port": app_port}).stub()
    reply = stub.InvokeService(call("myapp", "/hello"), timeout=10)
    assert json.loads(reply.data.value)["method"] == "GET"


def test_error_codes(start_sidecar: Callable[..., Sidecar], app_port: int) -> None:
    stub = start_sidecar(components={}, app={"id": "myapp", "port": app_port}).stub()
    cases = [
        (call("myapp", "fail"), [], grpc.StatusCode.UNAVAILABLE,
         "http response code 503, body: app is sad"),
        (call("billing", "x"), [], grpc.StatusCode.UNIMPLEMENTED, "name resolution"),
        (call("myapp", "slow"), [("rpc_request_timeout", "200")],
         grpc.StatusCode.DEADLINE_EXCEEDED, "no answer within 0.2s"),
        (call("", "x"), [], grpc.StatusCode.INVALID_ARGUMENT, "id (the target app id) is empty"),
    ]
    for request, metadata, code, message in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.InvokeService(request, metadata=metadata, timeout=10)
        assert info.value.code() == code
        assert message in (info.value.details() or "")


def test_app_missing_or_not_configured(start_sidecar: Callable[..., Sidecar]) -> None:
    request = call("myapp", "x")
    down = start_sidecar(components={}, app={"id": "myapp", "port": free_port()}).stub()
    with pytest.raises(grpc.RpcError) as info:
        down.InvokeService(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    no_port = start_sidecar(components={}, app={"id": "myapp"}).stub()
    with pytest.raises(grpc.RpcError) as info:
        no_port.InvokeService(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "app.port" in (info.value.details() or "")
