"""mTLS between sidecars: certificates from `pylotto cert`, calls over the internal port, the
caller's identity taken from its certificate, strangers refused."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest

from pylotto.proto.extensions import invoke_pb2, invoke_pb2_grpc
from tests.e2e.sidecar import Sidecar, free_port


class Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"caller": self.headers.get("dapr-caller-app-id", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def cert(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pylotto", "cert", *args], check=True,
                   capture_output=True)


def mtls(folder: Path, app_id: str) -> dict[str, str]:
    return {"ca_file": str(folder / "ca.crt"), "cert_file": str(folder / f"{app_id}.crt"),
            "key_file": str(folder / f"{app_id}.key")}


def call(car: Sidecar, app_id: str) -> tuple[int, Any]:
    url = f"{car.dapr_http_url}/v1.0/invoke/{app_id}/method/who"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_sidecars_call_each_other_over_mtls(tmp_path: Path) -> None:
    good, other = tmp_path / "good", tmp_path / "other"
    cert("ca", "--out", str(good))
    cert("ca", "--out", str(other))
    for app_id in ("frontend", "billing"):
        cert("app", "--app-id", app_id, "--ca", str(good), "--out", str(good))
    cert("app", "--app-id", "frontend", "--ca", str(other), "--out", str(other))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    internal = f"127.0.0.1:{free_port()}"
    table = {"type": "static", "metadata": {"apps": {"billing": [internal]}}}
    billing = Sidecar(tmp_path / "billing", app={"app_id": "billing",
                                                 "port": server.server_address[1]})
    billing.extra_config = {"name_resolution": table, "mtls": mtls(good, "billing")}
    billing.extra_listen = {"internal_grpc": internal}
    cars = [billing]
    try:
        billing.start()
        frontend = Sidecar(tmp_path / "frontend", app={"app_id": "frontend"})
        frontend.extra_config = {"name_resolution": table, "mtls": mtls(good, "frontend")}
        stranger = Sidecar(tmp_path / "stranger", app={"app_id": "frontend"})
        stranger.extra_config = {"name_resolution": table, "mtls": mtls(other, "frontend")}
        impostor = Sidecar(tmp_path / "impostor", app={"app_id": "admin"})
        impostor.extra_config = {"name_resolution": table, "mtls": mtls(good, "frontend")}
        for car in (frontend, stranger, impostor):
            car.extra_listen = {"internal_grpc": f"127.0.0.1:{free_port()}"}
            cars.append(car.start())
        assert call(frontend, "billing") == (200, {"caller": "frontend"})
        status, body = call(stranger, "billing")  # a certificate from another CA
        assert status == 500 and body["errorCode"] == "ERR_DIRECT_INVOKE"  # daprd's answer
        assert "billing" in body["message"]
        status, body = call(impostor, "billing")  # says "admin", its certificate says not
        assert status == 403 and "certificate names 'frontend'" in body["message"]
        plain = invoke_pb2_grpc.SidecarInvokeStub(grpc.insecure_channel(internal))
        with pytest.raises(grpc.RpcError):  # no TLS at all: refused
            plain.InvokeApp(invoke_pb2.AppCall(caller_app_id="x", target_app_id="billing",
                                               method="who"), timeout=5)
        api = invoke_pb2_grpc.SidecarInvokeStub(grpc.insecure_channel(billing.dapr_grpc_address))
        with pytest.raises(grpc.RpcError) as info:  # not served on the API port under mTLS
            api.InvokeApp(invoke_pb2.AppCall(caller_app_id="x", target_app_id="billing",
                                             method="who"), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with urllib.request.urlopen(f"{billing.actuator_url}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert 'dapr_runtime_mtls_init_total{app_id="billing"} 1.0' in metrics
    finally:
        for car in cars:
            car.stop()
        server.shutdown()
