"""TLS on the API listeners: clients that trust the CA connect (gRPC and HTTP), others fail
the handshake; plaintext is refused."""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar


def cert(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pylotto", "cert", *args], check=True,
                   capture_output=True)


def test_api_listeners_serve_tls(tmp_path: Path) -> None:
    good, other = tmp_path / "good", tmp_path / "other"
    for folder in (good, other):
        cert("ca", "--out", str(folder))
    cert("app", "--app-id", "api", "--ca", str(good), "--out", str(good))
    car = Sidecar(tmp_path / "car")
    car.extra_config = {"tls": {"cert_file": str(good / "api.crt"),
                                "key_file": str(good / "api.key")}}
    car.start()
    try:
        request = runtime_pb2.SayHelloRequest(service_name="quick_start_demo", name="tls")
        trusted = grpc.secure_channel(
            car.grpc_address, grpc.ssl_channel_credentials((good / "ca.crt").read_bytes()),
            options=[("grpc.ssl_target_name_override", "localhost")])
        assert runtime_pb2_grpc.RuntimeStub(trusted).SayHello(request, timeout=5).hello
        stranger = grpc.secure_channel(
            car.grpc_address, grpc.ssl_channel_credentials((other / "ca.crt").read_bytes()),
            options=[("grpc.ssl_target_name_override", "localhost")])
        with pytest.raises(grpc.RpcError) as info:
            runtime_pb2_grpc.RuntimeStub(stranger).SayHello(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.RpcError):
            runtime_pb2_grpc.RuntimeStub(grpc.insecure_channel(car.grpc_address)).SayHello(
                request, timeout=5)
        https = car.dapr_http_url.replace("http://", "https://") + "/v1.0/healthz"
        context = ssl.create_default_context(cafile=str(good / "ca.crt"))
        with urllib.request.urlopen(https, context=context, timeout=5) as resp:
            assert resp.status == 204
        wrong = ssl.create_default_context(cafile=str(other / "ca.crt"))
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(https, context=wrong, timeout=5)
    finally:
        car.stop()
