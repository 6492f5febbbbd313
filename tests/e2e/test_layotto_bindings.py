"""InvokeBinding through the real sidecar, with the ``http`` binding against a local server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith("/api/missing"):
            status, reply = 404, b"nothing here"
        else:
            status, reply = 200, json.dumps({
                "method": self.command, "path": self.path, "body": body.decode(),
                "auth": self.headers.get("Authorization"),
            }).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Served-By", "e2e")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def car(start_sidecar: Callable[..., Sidecar]) -> Iterator[Sidecar]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        yield start_sidecar(components={"bindings": {
            "web": {"type": "http", "metadata": {"url": url, "responseTimeout": "5s"}}}})
    finally:
        server.shutdown()
        server.server_close()


def test_get_and_post(car: Sidecar) -> None:
    stub = car.stub()
    reply = stub.InvokeBinding(runtime_pb2.InvokeBindingRequest(
        name="web", operation="get", metadata={"path": "items/7", "Authorization": "Bearer t"}),
        timeout=10)
    sent = json.loads(reply.data)
    assert sent == {"method": "GET", "path": "/api/items/7", "body": "", "auth": "Bearer t"}
    assert reply.metadata["statusCode"] == "200"
    assert reply.metadata["X-Served-By"] == "e2e"
    reply = stub.InvokeBinding(runtime_pb2.InvokeBindingRequest(
        name="web", operation="create", data=b'{"k": 1}'), timeout=10)
    assert json.loads(reply.data)["method"] == "POST"
    assert json.loads(reply.data)["body"] == '{"k": 1}'


def test_error_codes(car: Sidecar) -> None:
    stub = car.stub()
    cases = [
        (runtime_pb2.InvokeBindingRequest(name="web", operation="get",
                                          metadata={"path": "missing"}),
         grpc.StatusCode.INTERNAL, "received status code 404: nothing here"),
        (runtime_pb2.InvokeBindingRequest(name="web", operation="fly"),
         grpc.StatusCode.INVALID_ARGUMENT, "supported operations: create, get"),
        (runtime_pb2.InvokeBindingRequest(name="web"),
         grpc.StatusCode.INVALID_ARGUMENT, "operation field is missing"),
        # Layotto's answer (pkg/grpc/dapr/dapr_api.go: ErrInvokeOutputBinding, Internal)
        (runtime_pb2.InvokeBindingRequest(name="other", operation="get"),
         grpc.StatusCode.INTERNAL,
         "error when invoke output binding other: couldn't find output binding other"),
    ]
    for request, code, message in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.InvokeBinding(request, timeout=10)
        assert info.value.code() == code
        assert message in (info.value.details() or "")
    reply = stub.InvokeBinding(runtime_pb2.InvokeBindingRequest(
        name="web", operation="get", metadata={"path": "missing", "errorIfNot2XX": "false"}))
    assert reply.metadata["statusCode"] == "404" and reply.data == b"nothing here"
