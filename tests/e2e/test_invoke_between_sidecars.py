"""App A calls apps B and C by app id through its sidecar and theirs: name resolution (a static
table, and a Redis registry), round robin over B's two instances, a dead instance skipped, the
app's answer passed through unchanged, and the caller's app id told to the target app."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar
from tests.support.servers import require


def app_server(name: str) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            status = int(self.path.split("/")[2]) if self.path.startswith("/status/") else 200
            reply = json.dumps({"instance": name, "method": self.command, "path": self.path,
                                "body": body,
                                "caller": self.headers.get("dapr-caller-app-id", ""),
                                "traceparent": self.headers.get("traceparent", "")}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Served-By", name)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


class Mesh:
    """Sidecars for billing (two instances), catalog, and the calling app frontend."""

    def __init__(self, tmp: Path, resolution: Callable[[dict[str, list[Sidecar]]], dict[str, Any]]
                 ) -> None:
        self.servers = []
        self.sidecars: dict[str, list[Sidecar]] = {"billing": [], "catalog": []}
        for app_id, instances in (("billing", 2), ("catalog", 1)):
            for n in range(instances):
                server, port = app_server(f"{app_id}-{n}")
                self.servers.append(server)
                self.sidecars[app_id].append(
                    Sidecar(tmp / f"{app_id}{n}", app={"app_id": app_id, "port": port}))
        self.frontend = Sidecar(tmp / "frontend", app={"app_id": "frontend"})
        everyone = [*self.sidecars["billing"], *self.sidecars["catalog"], self.frontend]
        for car in everyone:
            car.extra_config = {"name_resolution": resolution(self.sidecars)}
        for car in everyone:
            car.start()

    def stop(self) -> None:
        for car in [*self.sidecars["billing"], *self.sidecars["catalog"], self.frontend]:
            car.stop()
        for server in self.servers:
            server.shutdown()


def static_table(sidecars: dict[str, list[Sidecar]]) -> dict[str, Any]:
    return {"type": "static", "metadata": {"apps": {
        app: [car.dapr_grpc_address for car in cars] for app, cars in sidecars.items()}}}


def redis_registry(sidecars: dict[str, list[Sidecar]]) -> dict[str, Any]:
    return {"type": "redis", "metadata": {"redisHost": "127.0.0.1:6379", "ttl": "3s"}}


@pytest.fixture(params=[static_table, redis_registry], ids=["static", "redis"])
def mesh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mesh]:
    if request.param is redis_registry:
        require("redis")
    built = Mesh(tmp_path, request.param)
    yield built
    built.stop()


def layotto_invoke(car: Sidecar, app_id: str, method: str, data: bytes = b"") -> dict[str, Any]:
    reply = car.stub().InvokeService(runtime_pb2.InvokeServiceRequest(
        id=app_id, message=runtime_pb2.CommonInvokeRequest(
            method=method, data=any_pb2.Any(value=data), content_type="text/plain",
            http_extension=runtime_pb2.HTTPExtension(verb=runtime_pb2.HTTPExtension.POST))),
        timeout=10)
    return dict(json.loads(reply.data.value))


def http_invoke(car: Sidecar, app_id: str, method: str) -> tuple[int, dict[str, str], Any]:
    url = f"{car.dapr_http_url}/v1.0/invoke/{app_id}/method/{method}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def test_calls_by_app_id_are_spread_and_survive_a_dead_instance(mesh: Mesh) -> None:
    served = Counter(layotto_invoke(mesh.frontend, "billing", "pay", b"x")["instance"]
                     for _ in range(20))
    assert served == {"billing-0": 10, "billing-1": 10}
    answer = layotto_invoke(mesh.frontend, "catalog", "items/3", b"hi")
    assert answer == {"instance": "catalog-0", "method": "POST", "path": "/items/3",
                      "body": "hi", "caller": "frontend", "traceparent": ""}
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced = urllib.request.Request(f"{mesh.frontend.dapr_http_url}/v1.0/invoke/catalog/method/t",
                                    headers={"traceparent": parent})
    with urllib.request.urlopen(traced, timeout=10) as resp:
        assert json.load(resp)["traceparent"] == parent  # W3C trace context carried on
    status, headers, body = http_invoke(mesh.frontend, "catalog", "items?page=2")
    assert (status, headers["X-Served-By"], body["path"]) == (200, "catalog-0", "/items?page=2")
    status, _, body = http_invoke(mesh.frontend, "billing", "status/409")
    assert status == 409 and body["instance"].startswith("billing")
    mesh.sidecars["billing"][0].stop()
    after = Counter(layotto_invoke(mesh.frontend, "billing", "pay")["instance"]
                    for _ in range(10))
    assert after == {"billing-1": 10}  # no failed call: the dead sidecar is skipped


def test_unknown_app_ids_are_unavailable(mesh: Mesh) -> None:
    with pytest.raises(grpc.RpcError) as info:
        layotto_invoke(mesh.frontend, "nobody", "x")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "no sidecar of app 'nobody'" in (info.value.details() or "")


def test_access_control_on_the_target_sidecar(tmp_path: Path) -> None:
    server, port = app_server("catalog-0")
    catalog = Sidecar(tmp_path / "catalog", app={"app_id": "catalog", "port": port})
    frontend = Sidecar(tmp_path / "frontend", app={"app_id": "frontend"})
    table = {"type": "static", "metadata": {"apps": {"catalog": [catalog.dapr_grpc_address]}}}
    catalog.extra_config = {"name_resolution": table, "access_control": {
        "default_action": "deny", "policies": [{"app_id": "frontend", "operations": [
            {"name": "/items/**", "verbs": ["GET"], "action": "allow"}]}]}}
    frontend.extra_config = {"name_resolution": table}
    catalog.start()
    frontend.start()
    try:
        status, _, body = http_invoke(frontend, "catalog", "items/7")
        assert status == 200 and body["caller"] == "frontend"
        status, _, body = http_invoke(frontend, "catalog", "admin/reset")
        assert status == 403 and body["errorCode"] == "ERR_DIRECT_INVOKE"  # as daprd
        assert "app 'frontend' may not call GET /admin/reset" in body["message"]
        with pytest.raises(grpc.RpcError) as info:
            layotto_invoke(frontend, "catalog", "items/7")  # POST: not allowed
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        frontend.stop()
        catalog.stop()
        server.shutdown()


def test_resiliency_retries_then_the_breaker_fails_fast(tmp_path: Path) -> None:
    from tests.e2e.sidecar import free_port

    gone = f"127.0.0.1:{free_port()}"  # no sidecar listens there
    frontend = Sidecar(tmp_path / "frontend", app={"app_id": "frontend"})
    frontend.extra_config = {
        "name_resolution": {"type": "static", "metadata": {"apps": {"billing": [gone]}}},
        "resiliency": {
            "policies": {"retries": {"twice": {"duration": "50ms", "maxRetries": 2}},
                         "circuitBreakers": {"cb": {"timeout": "30s",
                                                    "trip": "consecutiveFailures >= 3"}}},
            "targets": {"apps": {"billing": {"retry": "twice", "circuitBreaker": "cb"}}}}}
    frontend.start()
    try:
        status, _, body = http_invoke(frontend, "billing", "pay")
        # daprd: 500 ERR_DIRECT_INVOKE "failed to invoke, id: billing, err: ..."
        assert (status, body["errorCode"]) == (500, "ERR_DIRECT_INVOKE")
        assert body["message"].startswith("failed to invoke, id: billing, err: ")
        assert "connection refused" in body["message"].lower()
        status, _, body = http_invoke(frontend, "billing", "pay")  # the breaker is open now
        assert status == 500 and "circuit breaker cb (app billing) is open" in body["message"]
        assert frontend.logs().count("unavailable, trying the next") == 3  # 1 try + 2 retries
    finally:
        frontend.stop()


def test_rate_limits_refuse_the_excess_and_admit_the_rest(tmp_path: Path) -> None:
    server, port = app_server("catalog-0")
    catalog = Sidecar(tmp_path / "catalog", app={"app_id": "catalog", "port": port})
    frontend = Sidecar(tmp_path / "frontend", app={"app_id": "frontend"})
    table = {"type": "static", "metadata": {"apps": {"catalog": [catalog.dapr_grpc_address]}}}
    catalog.extra_config = {"name_resolution": table, "rate_limits": [
        {"api": "InvokeService", "caller": "frontend", "rate": 1, "burst": 3}]}
    frontend.extra_config = {"name_resolution": table,
                             "rate_limits": [{"api": "GetState", "rate": 1, "burst": 2}]}
    catalog.start()
    frontend.start()
    try:
        statuses = [http_invoke(frontend, "catalog", "items")[0] for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]  # the target limits calls from frontend
        stub = frontend.stub()
        request = runtime_pb2.GetStateRequest(store_name="in-memory", key="k")
        stub.GetState(request)
        stub.GetState(request)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetState(request)  # the app's own calls to its sidecar
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        url = f"{frontend.dapr_http_url}/v1.0/state/in-memory/k"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 429  # the same bucket over HTTP
    finally:
        frontend.stop()
        catalog.stop()
        server.shutdown()


def test_grpc_proxying_with_dapr_app_id(tmp_path: Path) -> None:
    from dapr.ext.grpc import App, InvokeMethodRequest
    from dapr.proto.common.v1 import common_pb2
    from dapr.proto.runtime.v1 import appcallback_pb2_grpc

    from tests.e2e.sidecar import free_port

    app, port = App(), free_port()

    @app.method(name="echo")
    def echo(request: InvokeMethodRequest) -> str:
        return f"echo:{request.text()}"

    threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True).start()
    catalog = Sidecar(tmp_path / "catalog",
                      app={"app_id": "catalog", "port": port, "protocol": "grpc"})
    frontend = Sidecar(tmp_path / "frontend", app={"app_id": "frontend"})
    table = {"type": "static", "metadata": {"apps": {"catalog": [catalog.dapr_grpc_address]}}}
    catalog.extra_config = frontend.extra_config = {"name_resolution": table}
    catalog.start()
    frontend.start()
    try:
        request = common_pb2.InvokeRequest(method="echo", data=any_pb2.Any(value=b"hi"))
        for car in (frontend, catalog):  # through two sidecars, and through the app's own
            stub = appcallback_pb2_grpc.AppCallbackStub(
                grpc.insecure_channel(car.dapr_grpc_address))
            reply = stub.OnInvoke(request, metadata=(("dapr-app-id", "catalog"),), timeout=10)
            assert reply.data.value == b"echo:hi"
        with pytest.raises(grpc.RpcError) as info:  # the target's own error passes through
            stub.OnInvoke(common_pb2.InvokeRequest(method="missing"),
                          metadata=(("dapr-app-id", "catalog"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        frontend.stop()
        catalog.stop()
        app.stop()


def test_killing_an_instance_mid_load_fails_no_call(tmp_path: Path) -> None:
    import signal
    from concurrent.futures import ThreadPoolExecutor

    mesh = Mesh(tmp_path, static_table)
    try:
        def call(n: int) -> str:
            return str(layotto_invoke(mesh.frontend, "billing", f"pay/{n}")["instance"])

        with ThreadPoolExecutor(8) as pool:
            first = [pool.submit(call, n) for n in range(100)]
            mesh.sidecars["billing"][0].stop(signal.SIGKILL)  # mid-load, no goodbye
            rest = [pool.submit(call, n) for n in range(100, 200)]
            served = Counter(f.result() for f in [*first, *rest])  # raises on any failure
        assert sum(served.values()) == 200
        assert served["billing-1"] >= 100
    finally:
        mesh.stop()
