"""API tokens: DAPR_API_TOKEN guards every facade (health exempt), APP_API_TOKEN goes to the
app."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar
from tests.support.ports import free_port

TOKEN = "s3cret-token"
APP_TOKEN = "app-token"


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory, echo_port: int) -> Iterator[Sidecar]:
    sidecar = Sidecar(tmp_path_factory.mktemp("token"), app={"app_id": "tok", "port": echo_port},
                      env={"DAPR_API_TOKEN": TOKEN, "APP_API_TOKEN": APP_TOKEN})
    sidecar.start()
    yield sidecar
    sidecar.stop()


def status(url: str, headers: dict[str, str] | None = None, data: bytes | None = None,
           method: str | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {}, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_grpc_calls_need_the_token_on_both_dialects(car: Sidecar) -> None:
    layotto = car.stub()
    request = runtime_pb2.GetStateRequest(store_name="in-memory", key="k")
    with pytest.raises(grpc.RpcError) as info:
        layotto.GetState(request)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        layotto.GetState(request, metadata=(("dapr-api-token", "wrong"),))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    layotto.GetState(request, metadata=(("dapr-api-token", TOKEN),))
    dapr = dapr_pb2_grpc.DaprStub(grpc.insecure_channel(car.dapr_grpc_address))
    with pytest.raises(grpc.RpcError) as info:
        dapr.GetState(state_pb2.GetStateRequest(store_name="in-memory", key="k"))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    refusal = DaprGrpcError(info.value)  # as daprd: ErrorFromHTTPResponseCode(401, ...)
    assert (refusal.details(), refusal.error_code()) == ("Unauthorized", "Unauthorized")
    assert refusal.status_details().error_info["metadata"] == {
        "http.code": "401", "http.error_message": "missing api token in request metadata"}
    streaming = layotto.SubscribeConfiguration(iter([runtime_pb2.SubscribeConfigurationRequest(
        store_name="in-memory", keys=["k"])]))
    with pytest.raises(grpc.RpcError) as info:
        next(streaming)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(car.channel())
    assert health.Check(health_pb2.HealthCheckRequest()).status == \
        health_pb2.HealthCheckResponse.SERVING


def test_http_calls_need_the_token_but_health_checks(car: Sidecar) -> None:
    base = car.dapr_http_url
    assert status(f"{base}/v1.0/healthz") == 204
    assert status(f"{base}/v1.0/healthz/outbound") == 204
    assert status(f"{base}/v1.0/metadata") == 401
    request = urllib.request.Request(f"{base}/v1.0/metadata")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.read() == b"invalid api token\n"  # daprd's plain-text refusal
    assert status(f"{base}/v1.0/metadata", {"dapr-api-token": TOKEN}) == 200
    assert status(f"{car.actuator_url}/actuator/health/readiness") == 200


def test_the_actuator_needs_the_token_but_for_the_probes_and_metrics(car: Sidecar) -> None:
    """Issue 17: /actuator/info (config path, pid, components) and /actuator/loggers (which
    changes the log level) answered without the token; they are guarded as /v1.0/metadata."""
    base = car.actuator_url
    good, bad = {"dapr-api-token": TOKEN}, {"dapr-api-token": "wrong"}
    assert status(f"{base}/actuator/health/liveness") == 200
    assert status(f"{base}/actuator/health/readiness") == 200
    assert status(f"{base}/metrics") == 200
    level = json.dumps({"level": "warning"}).encode()
    guarded = [("GET", "/actuator/info", None), ("GET", "/actuator/loggers", None),
               ("POST", "/actuator/loggers", level), ("PUT", "/actuator/loggers", level),
               ("GET", "/actuator/nothing-here", None)]
    for method, path, body in guarded:
        for headers in ({}, bad):
            assert status(f"{base}{path}", headers, body, method) == 401, (method, path, headers)
    request = urllib.request.Request(f"{base}/actuator/loggers", headers=good)
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.load(resp) == {"level": "debug"}  # the refused POST/PUT changed nothing
    assert status(f"{base}/actuator/info", good) == 200
    assert status(f"{base}/actuator/nothing-here", good) == 404
    assert status(f"{base}/actuator/loggers", good, json.dumps({"level": "debug"}).encode(),
                  "POST") == 200
    refused = urllib.request.Request(f"{base}/actuator/info")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(refused, timeout=10)
    assert json.load(info.value) == {"errorCode": "ERR_UNAUTHENTICATED",
                                     "message": "missing api token in request metadata "
                                                "(dapr-api-token)"}


def test_metrics_can_need_the_token_too(tmp_path: Path) -> None:
    metrics_port = free_port()
    sidecar = Sidecar(tmp_path, env={"DAPR_API_TOKEN": TOKEN},
                      extra_config={"metrics_require_token": True},
                      extra_listen={"metrics": f"127.0.0.1:{metrics_port}"}).start()
    try:
        for url in (f"{sidecar.actuator_url}/metrics", f"http://127.0.0.1:{metrics_port}/metrics"):
            assert status(url) == 401
            assert status(url, {"dapr-api-token": TOKEN}) == 200
            assert status(url, {"Authorization": f"Bearer {TOKEN}"}) == 200  # Prometheus
            assert status(url, {"Authorization": f"Bearer {TOKEN}x"}) == 401
        assert status(f"{sidecar.actuator_url}/actuator/info",
                      {"Authorization": f"Bearer {TOKEN}"}) == 401  # only a scrape may
        assert status(f"{sidecar.actuator_url}/actuator/health/readiness") == 200
    finally:
        sidecar.stop()


def test_the_dapr_sdk_sends_the_token(car: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
    monkeypatch.setenv("DAPR_API_TOKEN", TOKEN)
    with DaprClient() as client:
        client.save_state("in-memory", "k", "v")
        assert client.get_state("in-memory", "k").data == b"v"


def test_the_app_gets_its_own_token_never_the_callers(car: Sidecar) -> None:
    request = urllib.request.Request(
        f"{car.dapr_http_url}/v1.0/invoke/tok/method/hello",
        headers={"dapr-api-token": TOKEN})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.headers["X-Echo-Token"] == APP_TOKEN
        assert json.load(resp)["path"] == "/hello"


def test_no_token_configured_means_no_check(tmp_path: Path) -> None:
    sidecar = Sidecar(tmp_path).start()
    try:
        assert status(f"{sidecar.dapr_http_url}/v1.0/metadata") == 200
    finally:
        sidecar.stop()
