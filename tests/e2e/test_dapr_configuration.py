"""A Dapr Configuration, the way ``dapr run --config config.yaml --resources-path ./components``
takes it: secret scopes enforced on the SDK's get_secret / get_bulk_secret (gRPC and HTTP),
metrics turned off, access control on calls from other apps — without mTLS the global
default action (as in Dapr), with mTLS the caller's certified app id picks its policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from dapr.clients import DaprClient

from tests.e2e.sidecar import Sidecar, free_port

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SECRETS = {"db-password": "s3cret", "api-key": "k", "root-key": "r"}


class Who(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path,
                           "caller": self.headers.get("dapr-caller-app-id", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def app_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Who)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def configuration(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "dapr.io/v1alpha1", "kind": "Configuration",
            "metadata": {"name": "appconfig"}, "spec": spec}


class DaprRun(Sidecar):
    """A sidecar started with a Dapr Configuration as its only ``--config`` (the listeners the
    generated pylotto.yaml would give passed as flags)."""

    dapr_config: Path | None = None

    def start(self) -> Sidecar:
        if self.dapr_config is None:
            return super().start()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pylotto", "run", "--config", str(self.dapr_config),
             "--log-level", "debug", "--dapr-grpc-port", str(self.dapr_grpc_port),
             "--dapr-http-port", str(self.dapr_http_port), "--grpc-address",
             self.grpc_address, "--actuator-address", f"127.0.0.1:{self.actuator_port}",
             "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=self.workdir)
        log.close()
        self.wait_ready()
        return self


def dapr_sidecar(folder: Path, app_id: str, app_port: int, config: dict[str, Any] | None,
                 resources: list[dict[str, Any]], pylotto: dict[str, Any] | None = None
                 ) -> Sidecar:
    """A sidecar started as ``dapr run`` starts daprd: ``--config`` (a Dapr Configuration
    when ``config`` is given, else the test's pylotto.yaml with ``pylotto``) and
    ``--resources-path``."""
    components = folder / "components"
    components.mkdir(parents=True)
    (folder / "secrets.json").write_text(json.dumps(SECRETS))
    documents = [{"apiVersion": "dapr.io/v1alpha1", "kind": "Component",
                  "metadata": {"name": "vault"},
                  "spec": {"type": "secretstores.local.file", "version": "v1",
                           "metadata": [{"name": "secretsFile",
                                         "value": str(folder / "secrets.json")}]}},
                 *resources]
    (components / "resources.yaml").write_text(yaml.safe_dump_all(documents))
    car = DaprRun(folder / "sidecar", app={"app_id": app_id, "port": app_port})
    car.extra_config = pylotto or {}
    car.extra_args = ["--resources-path", str(components)]
    if config is not None:
        car.dapr_config = folder / "config.yaml"
        car.dapr_config.write_text(yaml.safe_dump(configuration(config)))
        car.extra_args += ["--app-id", app_id, "--app-port", str(app_port)]
    return car


@pytest.fixture
def started() -> Iterator[Callable[[Sidecar], Sidecar]]:
    cars: list[Sidecar] = []

    def start(car: Sidecar) -> Sidecar:
        cars.append(car)
        return car.start()

    yield start
    for car in cars:
        car.stop()


def use(monkeypatch: pytest.MonkeyPatch, car: Sidecar) -> None:
    """Through the environment: ``dapr.conf.settings`` reads it on each access."""
    monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")


def http(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as err:
        body = err.read()
        return err.code, json.loads(body) if body else None


def test_secret_scopes_metrics_and_default_access(
        tmp_path: Path, app_port: int, started: Callable[[Sidecar], Sidecar],
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"secrets": {"scopes": [{"storeName": "vault", "defaultAccess": "deny",
                                    "allowedSecrets": ["db-password", "api-key"]}]},
            "metric": {"enabled": False},
            "accessControl": {"defaultAction": "deny", "trustDomain": "public", "policies": [
                {"appId": "frontend", "defaultAction": "allow", "trustDomain": "public",
                 "namespace": "default"}]}}
    billing = started(dapr_sidecar(tmp_path / "billing", "billing", app_port, spec, []))
    use(monkeypatch, billing)
    with DaprClient() as client:
        assert client.get_secret("vault", "db-password").secret == {"db-password": "s3cret"}
        with pytest.raises(grpc.RpcError) as info:
            client.get_secret("vault", "root-key")
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert info.value.details() == 'access denied by policy to get "root-key" from "vault"'
        assert set(client.get_bulk_secret("vault").secrets) == {"db-password", "api-key"}
    assert http(f"{billing.dapr_http_url}/v1.0/secrets/vault/root-key") == (
        403, {"errorCode": "ERR_PERMISSION_DENIED",
              "message": 'access denied by policy to get "root-key" from "vault"'})
    status, body = http(f"{billing.dapr_http_url}/v1.0/secrets/vault/bulk")
    assert status == 200 and set(body) == {"db-password", "api-key"}
    assert http(f"{billing.actuator_url}/metrics")[0] == 404  # metric.enabled: false
    # its own app is not behind the access list; another app's call is — and without mTLS
    # no caller has an identity, so the global deny applies even to frontend (as in Dapr)
    assert http(f"{billing.dapr_http_url}/v1.0/invoke/billing/method/who")[0] == 200
    table = {"type": "static", "metadata": {"apps": {"billing": [billing.dapr_grpc_address]}}}
    frontend = started(dapr_sidecar(tmp_path / "frontend", "frontend", app_port, None, [],
                                    {"name_resolution": table}))
    status, body = http(f"{frontend.dapr_http_url}/v1.0/invoke/billing/method/who")
    assert status == 403
    assert "access control policy has denied access to id:  operation: /who verb: GET" in \
        body["message"]


def cert(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pylotto", "cert", *args], check=True,
                   capture_output=True)


def test_access_policies_follow_the_certified_app_id(
        tmp_path: Path, app_port: int, started: Callable[[Sidecar], Sidecar]) -> None:
    """The Configuration sits in billing's resources folder (no --config): recognised and
    applied. Over mTLS frontend's policy allows GET /who only; shop has no policy: deny."""
    certs = tmp_path / "certs"
    cert("ca", "--out", str(certs))
    for app_id in ("billing", "frontend", "shop"):
        cert("app", "--app-id", app_id, "--ca", str(certs), "--out", str(certs))

    def mtls(app_id: str) -> dict[str, str]:
        return {"ca_file": str(certs / "ca.crt"), "cert_file": str(certs / f"{app_id}.crt"),
                "key_file": str(certs / f"{app_id}.key")}

    internal = f"127.0.0.1:{free_port()}"
    table = {"type": "static", "metadata": {"apps": {"billing": [internal]}}}
    spec = {"accessControl": {"defaultAction": "deny", "trustDomain": "public", "policies": [
        {"appId": "frontend", "defaultAction": "deny", "trustDomain": "public",
         "namespace": "default",
         "operations": [{"name": "/who", "httpVerb": ["GET"], "action": "allow"}]}]}}
    billing = dapr_sidecar(tmp_path / "billing", "billing", app_port, None,
                           [configuration(spec)], {"mtls": mtls("billing")})
    billing.extra_listen = {"internal_grpc": internal}
    started(billing)
    callers = {}
    for app_id in ("frontend", "shop"):
        car = dapr_sidecar(tmp_path / app_id, app_id, app_port, None, [],
                           {"name_resolution": table, "mtls": mtls(app_id)})
        car.extra_listen = {"internal_grpc": f"127.0.0.1:{free_port()}"}
        callers[app_id] = started(car)
    base = f"{callers['frontend'].dapr_http_url}/v1.0/invoke/billing/method"
    assert http(f"{base}/who") == (200, {"path": "/who", "caller": "frontend"})
    status, body = http(f"{base}/admin")  # no rule: frontend's own default, deny
    assert status == 403 and "spiffe://public/ns/default/frontend operation: /admin" in \
        body["message"]
    status, body = http(f"{callers['shop'].dapr_http_url}/v1.0/invoke/billing/method/who")
    assert status == 403 and "spiffe://public/ns/default/shop" in body["message"]


def test_grpc_proxying_goes_through_the_access_list(
        tmp_path: Path, started: Callable[[Sidecar], Sidecar]) -> None:
    """A proxied call (``dapr-app-id``) from another app is checked with the full method name
    as the operation (Dapr's grpc_proxy); the app's own call through its sidecar is not."""
    from dapr.ext.grpc import App, InvokeMethodRequest
    from dapr.proto.common.v1 import common_pb2
    from dapr.proto.runtime.v1 import appcallback_pb2_grpc
    from google.protobuf import any_pb2

    app, port = App(), free_port()

    @app.method(name="echo")
    def echo(request: InvokeMethodRequest) -> str:
        return f"echo:{request.text()}"

    threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True).start()
    try:
        spec = {"accessControl": {"defaultAction": "deny", "trustDomain": "public"}}
        catalog = dapr_sidecar(tmp_path / "catalog", "catalog", port, spec, [])
        catalog.extra_args += ["--app-protocol", "grpc"]
        started(catalog)
        table = {"type": "static",
                 "metadata": {"apps": {"catalog": [catalog.dapr_grpc_address]}}}
        frontend = started(dapr_sidecar(tmp_path / "frontend", "frontend", port, None, [],
                                        {"name_resolution": table}))
        request = common_pb2.InvokeRequest(method="echo", data=any_pb2.Any(value=b"hi"))
        own = appcallback_pb2_grpc.AppCallbackStub(
            grpc.insecure_channel(catalog.dapr_grpc_address))
        assert own.OnInvoke(request, metadata=(("dapr-app-id", "catalog"),),
                            timeout=10).data.value == b"echo:hi"
        other = appcallback_pb2_grpc.AppCallbackStub(
            grpc.insecure_channel(frontend.dapr_grpc_address))
        with pytest.raises(grpc.RpcError) as info:
            other.OnInvoke(request, metadata=(("dapr-app-id", "catalog"),), timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "operation: /dapr.proto.runtime.v1.AppCallback/OnInvoke verb: NONE" in \
            str(info.value.details())
    finally:
        app.stop()


def test_api_allow_list(tmp_path: Path, app_port: int, started: Callable[[Sidecar], Sidecar],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only state is allowed, on both protocols: the SDK still starts (health is always
    allowed), state works, secrets are refused (gRPC UNIMPLEMENTED, HTTP 404), and Layotto's
    API on the same port offers no way around the list."""
    from pylotto.proto.layotto import runtime_pb2

    spec = {"api": {"allowed": [{"name": "state", "version": "v1", "protocol": "grpc"},
                                {"name": "state", "version": "v1.0", "protocol": "http"}]}}
    store = {"apiVersion": "dapr.io/v1alpha1", "kind": "Component",
             "metadata": {"name": "in-memory"}, "spec": {"type": "state.in-memory",
                                                         "version": "v1", "metadata": []}}
    car = started(dapr_sidecar(tmp_path / "shop", "shop", app_port, spec, [store]))
    use(monkeypatch, car)
    with DaprClient() as client:
        client.save_state("in-memory", "k", "v")
        assert client.get_state("in-memory", "k").data == b"v"
        with pytest.raises(grpc.RpcError) as info:
            client.get_secret("vault", "db-password")
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNIMPLEMENTED,
                                                          "Not Implemented")
    with pytest.raises(grpc.RpcError) as info:
        car.stub().GetState(runtime_pb2.GetStateRequest(store_name="in-memory", key="k"),
                            timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/state/in-memory/k",
                                timeout=5) as response:
        assert (response.status, response.read()) == (200, b"v")
    assert http(f"{car.dapr_http_url}/v1.0/secrets/vault/db-password")[0] == 404
