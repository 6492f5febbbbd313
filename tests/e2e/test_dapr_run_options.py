"""``pylotto run`` with ``dapr run``'s flags (issue 16, item 12): short flags, log levels, the
flags refused by name, app protocols, app channel address, app health checks, max concurrency,
unix sockets, metrics port, API logging and max body size."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import yaml
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2_grpc, dapr_pb2_grpc, state_pb2
from google.protobuf import any_pb2

from tests.e2e.dapr_run import (
    APP,
    GRPC_APP,
    WAIT_SECONDS,
    Run,
    call,
    cli,
    pylotto_run,
    unique,
)
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


# ---- item 12: dapr run flags ------------------------------------------------------------


def test_short_flags_and_resources_path(runs: list[Run], tmp_path: Path) -> None:
    """-a -p -H -G -d (and -c with a pylotto config)."""
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "state.yaml").write_text(yaml.safe_dump({
        "apiVersion": "dapr.io/v1alpha1", "kind": "Component", "metadata": {"name": "shelf"},
        "spec": {"type": "state.in-memory", "version": "v1", "metadata": []}}))
    config = tmp_path / "pylotto.yaml"
    config.write_text(yaml.safe_dump({"grace_period_seconds": 3, "listen": {
        "layotto_grpc": f"127.0.0.1:{free_port()}", "actuator": f"127.0.0.1:{free_port()}"}}))
    http_port, grpc_port, app_port = free_port(), free_port(), free_port()
    app_id = unique("short")
    run = pylotto_run(runs, tmp_path / "a", "-a", app_id, "-p", str(app_port),
                      "-H", str(http_port), "-G", str(grpc_port), "-d", str(resources),
                      "-c", str(config), "--dapr-listen-addresses", "127.0.0.1")
    env = run.app_env()
    assert (env["DAPR_HTTP_PORT"], env["DAPR_GRPC_PORT"], env["APP_PORT"]) == (
        str(http_port), str(grpc_port), str(app_port))
    base = f"http://127.0.0.1:{http_port}/v1.0"
    assert call("POST", f"{base}/state/shelf", b'[{"key": "k", "value": 1}]')[0] == 204
    metadata = json.loads(call("GET", f"{base}/metadata")[1])
    assert metadata["id"] == app_id
    assert metadata["extended"]["appCommand"] == f"{sys.executable} {APP}"
    assert int(metadata["extended"]["cliPID"]) == (run.process.pid if run.process else 0)
    assert metadata["appConnectionProperties"]["port"] == app_port
    assert "shelf" in {c["name"] for c in metadata["components"]}
    assert "You're up and running! Both pylotto and your app logs will appear here." in \
        run.output()


@pytest.mark.parametrize(("level", "seen", "unseen"), [
    ("warn", None, "pylotto ready"),
    ("fatal", None, "level="),
    ("debug", "no application command found", None),
])
def test_log_levels(runs: list[Run], tmp_path: Path, level: str, seen: str | None,
                    unseen: str | None) -> None:
    http_port = free_port()
    run = pylotto_run(runs, tmp_path / "a", "--log-level", level, "-H", str(http_port),
                      "-G", str(free_port()), "--grpc-address", f"127.0.0.1:{free_port()}",
                      "--actuator-address", f"127.0.0.1:{free_port()}", app=False)
    deadline = time.monotonic() + WAIT_SECONDS
    while not _listening(http_port):
        assert time.monotonic() < deadline and run.process and run.process.poll() is None
        time.sleep(0.05)
    assert call("GET", f"http://127.0.0.1:{http_port}/v1.0/healthz")[0] == 204
    assert run.signal(signal.SIGTERM) == 0
    if seen:
        assert seen in run.output()
    if unseen:
        assert unseen not in run.output()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(("flags", "message"), [
    (["--enable-profiling"], "--enable-profiling: pylotto has no pprof endpoint"),
    (["--scheduler-host-address", "localhost"], "--scheduler-host-address: pylotto's workflows"),
    (["-k"], "--kubernetes: pylotto runs apps on this machine only"),
    (["--runtime-path", "/opt/dapr"], "--runtime-path: pylotto is its own runtime"),
    (["--read-buffer-size", "16Ki"], "--read-buffer-size 16Ki"),
    (["--max-body-size", "lots"], "--max-body-size: 'lots' is not a size"),
    (["--dapr-listen-addresses", "127.0.0.1,::1"], "pylotto listens on one address"),
])
def test_flags_pylotto_refuses_say_so_by_name(tmp_path: Path, flags: list[str],
                                              message: str) -> None:
    result = cli("run", "--data-dir", str(tmp_path), *flags, "--", "true")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_empty_placement_and_scheduler_addresses_are_accepted(runs: list[Run],
                                                              tmp_path: Path) -> None:
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "d"),
                               "--placement-host-address", "", "--scheduler-host-address", "",
                               "--", sys.executable, "-c", "pass"])
    runs.append(run.start())
    assert run.wait() == 0, run.output()


def test_a_placement_address_is_accepted_and_ignored(runs: list[Run], tmp_path: Path) -> None:
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "d"),
                               "--placement-host-address", "localhost:50005",
                               "--", sys.executable, "-c", "pass"])
    runs.append(run.start())
    assert run.wait() == 0, run.output()
    assert run.output().count("--placement-host-address localhost:50005 ignored") == 1


def test_app_protocol_https(runs: list[Run], tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    assert cli("cert", "ca", "--out", str(certs)).returncode == 0
    assert cli("cert", "app", "--app-id", "tls-app", "--ca", str(certs),
               "--out", str(certs)).returncode == 0
    crt = next(p for p in certs.glob("*.crt") if p.name != "ca.crt")
    key = crt.with_suffix(".key")
    http_port = free_port()
    run = pylotto_run(runs, tmp_path / "a", "-a", unique("tls"), "-p", str(free_port()),
                      "--app-protocol", "https", "-H", str(http_port),
                      env={"APP_TLS_CERT": str(crt), "APP_TLS_KEY": str(key)})
    env = run.app_env()
    assert env["APP_PROTOCOL"] == "https"
    status, body = call("POST", f"http://127.0.0.1:{http_port}/v1.0/invoke/"
                        f"{env['APP_ID']}/method/orders", b"{}")
    assert status == 200 and json.loads(body)["path"] == "/orders"


def test_app_protocol_grpcs(runs: list[Run], tmp_path: Path) -> None:
    """``--app-protocol grpcs``: gRPC over TLS to the app, its certificate not checked (the
    app's is for another name, from a CA the sidecar does not know), as daprd: invocation,
    the health probe and gRPC proxying all reach it."""
    certs = tmp_path / "certs"
    assert cli("cert", "ca", "--out", str(certs)).returncode == 0
    assert cli("cert", "app", "--app-id", "some-other-name", "--ca", str(certs),
               "--out", str(certs)).returncode == 0
    crt = next(p for p in certs.glob("*.crt") if p.name != "ca.crt")
    http_port, grpc_port = free_port(), free_port()
    state = tmp_path / "a" / "state"
    app_id = unique("grpcs")
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "d"), "-a", app_id,
                               "-p", str(free_port()), "-P", "grpcs", "-H", str(http_port),
                               "-G", str(grpc_port), "--enable-app-health-check",
                               "--app-health-probe-interval", "1",
                               "--", sys.executable, str(GRPC_APP)],
              env={"APP_TLS_CERT": str(crt), "APP_TLS_KEY": str(crt.with_suffix(".key"))})
    runs.append(run.start())
    assert run.app_env()["APP_PROTOCOL"] == "grpcs"
    run.wait_for("app health: the app is healthy")  # probed over TLS
    status, body = call("POST", f"http://127.0.0.1:{http_port}/v1.0/invoke/{app_id}/method/"
                        "orders", b'{"a": 1}')
    assert status == 200 and json.loads(body) == {"app": app_id, "got": '{"a": 1}'}
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = appcallback_pb2_grpc.AppCallbackStub(channel)  # type: ignore[no-untyped-call]
        reply = stub.OnInvoke(common_pb2.InvokeRequest(method="orders", data=any_pb2.Any(
            value=b"p")), metadata=(("dapr-app-id", app_id),), timeout=20)
    assert json.loads(reply.data.value) == {"app": app_id, "got": "p"}
    assert state.is_dir()


def test_app_protocol_h2c(runs: list[Run], tmp_path: Path) -> None:
    """``--app-protocol h2c``: HTTP/2 without TLS, prior knowledge, as daprd's
    ``http2.Transport{AllowHTTP}``, to an app that speaks nothing else: the health probe, the
    subscription list, a delivery and an invocation all reach it over HTTP/2."""
    from tests.support.h2c_app import H2cApp

    delivered: list[bytes] = []

    def handler(method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        json_type = [("content-type", "application/json")]
        if path == "/dapr/subscribe":
            return 200, json_type, json.dumps([{"pubsubname": "in-memory", "topic": "orders",
                                                "route": "/orders-in"}]).encode()
        if path == "/orders-in":
            delivered.append(body)
            return 200, json_type, b'{"status": "SUCCESS"}'
        if path.startswith("/healthz"):
            return 200, [], b""
        return 200, json_type, json.dumps({"method": method, "path": path,
                                           "got": body.decode()}).encode()

    app = H2cApp(handler).start()
    try:
        http_port, app_id = free_port(), unique("h2c")
        run = pylotto_run(runs, tmp_path / "a", "-a", app_id, "-p", str(app.port), "-P", "h2c",
                          "-H", str(http_port), "--enable-app-health-check",
                          "--app-health-probe-interval", "1", app=False)
        run.wait_for("app health: the app is healthy")  # GET /healthz over HTTP/2
        status, body = call("POST", f"http://127.0.0.1:{http_port}/v1.0/invoke/{app_id}/"
                            "method/orders?x=1", b'{"a": 1}')
        assert status == 200 and json.loads(body) == {
            "method": "POST", "path": "/orders?x=1", "got": '{"a": 1}'}
        deadline = time.monotonic() + WAIT_SECONDS
        while not any(r.path == "/dapr/subscribe" for r in app.requests):
            assert time.monotonic() < deadline, "the subscriptions were never asked for"
            time.sleep(0.05)
        while not delivered:
            status, _ = call("POST", f"http://127.0.0.1:{http_port}/v1.0/publish/in-memory/"
                             "orders", b'{"n": 1}')
            assert status == 204 and time.monotonic() < deadline, "no delivery over h2c"
            time.sleep(0.2)
        assert json.loads(delivered[0])["data"] == {"n": 1}
        assert app.refused_connections == 0  # never an HTTP/1.1 request
        assert {r.headers[":scheme"] for r in app.requests} == {"http"}
    finally:
        app.stop()


def test_app_channel_address(runs: list[Run], tmp_path: Path) -> None:
    http_port = free_port()
    run = pylotto_run(runs, tmp_path / "a", "-a", unique("chan"), "-p", str(free_port()),
                      "--app-channel-address", "127.0.0.2", "-H", str(http_port),
                      env={"BIND_HOST": "127.0.0.2"})
    env = run.app_env()
    assert env["APP_CHANNEL_ADDRESS"] == "127.0.0.2"
    status, _ = call("GET", f"http://127.0.0.1:{http_port}/v1.0/invoke/{env['APP_ID']}"
                     "/method/hello")
    assert status == 200


def test_app_health_check_pauses_invocation_and_delivery(runs: list[Run],
                                                         tmp_path: Path) -> None:
    http_port = free_port()
    state = tmp_path / "a" / "state"
    state.mkdir(parents=True)
    sick = state / "sick"
    sick.touch()  # unhealthy from the start
    run = pylotto_run(runs, tmp_path / "a", "-a", unique("health"), "-p", str(free_port()),
                      "-H", str(http_port), "--enable-app-health-check",
                      "--app-health-check-path", "/healthz", "--app-health-probe-interval",
                      "1", "--app-health-probe-timeout", "500", "--app-health-threshold", "1")
    env = run.app_env()
    base = f"http://127.0.0.1:{http_port}/v1.0"
    invoke = f"{base}/invoke/{env['APP_ID']}/method/orders"
    status, body = call("POST", invoke, b"{}")
    assert status == 500 and b"app is not in a healthy state" in body
    sick.unlink()
    run.wait_for("app health: the app is healthy")
    assert call("POST", invoke, b"{}")[0] == 200
    events = state / "events.jsonl"
    deadline = time.monotonic() + WAIT_SECONDS
    while not events.exists():  # the subscription is made once the app answers
        assert time.monotonic() < deadline, run.output()
        assert call("POST", f"{base}/publish/in-memory/orders", b'{"n": 0}')[0] == 204
        time.sleep(0.2)
    sick.touch()
    run.wait_for("app health: the app failed 1 probes in a row: unhealthy")
    status, body = call("POST", invoke, b"{}")
    assert status == 500 and b"app is not in a healthy state" in body
    delivered = len(events.read_text().splitlines())
    assert call("POST", f"{base}/publish/in-memory/orders", b'{"n": 1}')[0] == 204
    time.sleep(2.5)  # the probes keep failing: the event waits
    assert len(events.read_text().splitlines()) == delivered
    sick.unlink()
    deadline = time.monotonic() + WAIT_SECONDS
    while len(events.read_text().splitlines()) == delivered:
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.1)
    assert json.loads(events.read_text().splitlines()[-1])["data"] == {"n": 1}
    assert call("POST", invoke, b"{}")[0] == 200


def test_grpc_app_health_check_and_max_concurrency(runs: list[Run], tmp_path: Path) -> None:
    """A gRPC app (``--app-protocol grpc``): probed with ``AppCallbackHealthCheck``, and no
    more calls at once than ``--app-max-concurrency``. gRPC proxying (``dapr-app-id``) is
    held by neither, as in daprd (pkg/messaging/grpc_proxy.go takes the app's connection
    itself, not the app channel that checks health and counts calls)."""
    http_port, grpc_port = free_port(), free_port()
    state = tmp_path / "a" / "state"
    state.mkdir(parents=True)
    (state / "sick").touch()
    app_id = unique("grpc-health")
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "d"), "-a", app_id,
                               "-p", str(free_port()), "-P", "grpc", "-H", str(http_port),
                               "-G", str(grpc_port),
                               "--enable-app-health-check", "--app-health-probe-interval", "1",
                               "--app-health-threshold", "1", "--app-max-concurrency", "2",
                               "--", sys.executable, str(GRPC_APP)])
    runs.append(run.start())
    assert run.app_env()["APP_PROTOCOL"] == "grpc"
    base = f"http://127.0.0.1:{http_port}/v1.0/invoke/{app_id}/method"
    status, body = call("POST", f"{base}/orders", b"{}")
    assert status == 500 and b"app is not in a healthy state" in body
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    proxied = appcallback_pb2_grpc.AppCallbackStub(channel)  # type: ignore[no-untyped-call]
    to_app = (("dapr-app-id", app_id),)

    def proxy(method: str) -> bytes:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                reply = proxied.OnInvoke(common_pb2.InvokeRequest(
                    method=method, data=any_pb2.Any(value=b"p")), metadata=to_app, timeout=20)
            except grpc.RpcError as exc:  # the app prints APP-READY before it listens
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            data: bytes = reply.data.value
            return data

    assert json.loads(proxy("orders")) == {"app": app_id, "got": "p"}  # unhealthy: not held
    (state / "sick").unlink()
    run.wait_for("app health: the app is healthy")
    status, body = call("POST", f"{base}/orders", b'{"a": 1}')
    assert status == 200 and json.loads(body) == {"app": app_id, "got": '{"a": 1}'}
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: call("POST", f"{base}/slow", b"{}",
                                                timeout=20)[0], range(6)))
    assert statuses == [200] * 6
    assert json.loads((state / "concurrency.json").read_text())["max"] == 2
    with ThreadPoolExecutor(2) as pool:  # both calls the app may take at once, held
        held = [pool.submit(call, "POST", f"{base}/hold", b"{}", timeout=60) for _ in "ab"]
        deadline = time.monotonic() + WAIT_SECONDS
        while not (state / "holding").exists() or (state / "holding").read_text() != "2":
            assert time.monotonic() < deadline, run.output()
            time.sleep(0.1)
        assert json.loads(proxy("orders"))["got"] == "p"  # past the full limit
        (state / "release").touch()
        assert [future.result()[0] for future in held] == [200, 200]
    channel.close()


def test_app_max_concurrency(runs: list[Run], tmp_path: Path) -> None:
    http_port = free_port()
    run = pylotto_run(runs, tmp_path / "a", "-a", unique("conc"), "-p", str(free_port()),
                      "-H", str(http_port), "--app-max-concurrency", "1")
    env = run.app_env()
    url = f"http://127.0.0.1:{http_port}/v1.0/invoke/{env['APP_ID']}/method/slow"
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: call("GET", url, timeout=20)[0], range(4)))
    assert statuses == [200] * 4
    assert json.loads((run.state / "concurrency.json").read_text())["max"] == 1


def test_unix_domain_socket(runs: list[Run], tmp_path: Path) -> None:
    sockets = Path(f"/tmp/pylotto-uds-{uuid.uuid4().hex[:8]}")  # short: AF_UNIX path limit
    sockets.mkdir()
    try:
        app_id = unique("uds")
        run = pylotto_run(runs, tmp_path / "a", "-a", app_id, "-p", str(free_port()),
                          "-u", str(sockets))
        run.wait_for("APP-READY")
        http_socket = sockets / f"dapr-{app_id}-http.socket"
        assert http_socket.exists() and (sockets / f"dapr-{app_id}-grpc.socket").exists()
        connection = _unix_http(str(http_socket))
        connection.request("GET", "/v1.0/healthz")
        assert connection.getresponse().status == 204
        invoked = cli("invoke", "-a", app_id, "-m", "orders", "-u", str(sockets))
        assert invoked.returncode == 0, invoked.stderr
    finally:
        for path in sockets.iterdir():
            path.unlink()
        sockets.rmdir()


def _unix_http(path: str) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("localhost", timeout=10)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    connection.sock = sock
    return connection


def test_metrics_port_api_logging_and_max_body_size(runs: list[Run], tmp_path: Path) -> None:
    http_port, metrics_port = free_port(), free_port()
    run = pylotto_run(runs, tmp_path / "a", "-a", unique("obs"), "-H", str(http_port),
                      "-M", str(metrics_port), "--enable-api-logging", "--max-body-size", "1Ki")
    env = run.app_env()
    assert env["DAPR_METRICS_PORT"] == str(metrics_port)
    status, body = call("GET", f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200 and b"# TYPE" in body
    base = f"http://127.0.0.1:{http_port}/v1.0/state/in-memory"
    assert call("POST", base, json.dumps([{"key": "k", "value": "x" * 100}]).encode())[0] == 204
    assert call("POST", base, json.dumps([{"key": "k", "value": "x" * 2048}]).encode())[0] == 413
    run.wait_for('msg="HTTP API Called" method="')
    with grpc.insecure_channel(f"127.0.0.1:{env['DAPR_GRPC_PORT']}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        for size, code in ((100, None), (2048, grpc.StatusCode.RESOURCE_EXHAUSTED)):
            request = state_pb2.SaveStateRequest(store_name="in-memory", states=[
                common_pb2.StateItem(key="g", value=b"x" * size)])
            try:
                stub.SaveState(request, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == code
            else:
                assert code is None
    run.wait_for('msg="gRPC API Called" method="')
