"""``pylotto run`` where ``dapr run`` stood (issue 16, items 1, 2, 12): Dapr apps written with the
plain SDK (tests/e2e/apps/dapr_cli_app.py), started with ``dapr run``'s flags, no name
resolution configured and no ports given; ``pylotto list / stop / publish / invoke``; the exit
codes of a stopped run; multi-app run from a run template."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import yaml
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2_grpc, dapr_pb2_grpc, state_pb2
from google.protobuf import any_pb2

from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

APP = Path(__file__).parent / "apps" / "dapr_cli_app.py"
GRPC_APP = Path(__file__).parent / "apps" / "dapr_grpc_app.py"
WAIT_SECONDS = 40.0


def unique(name: str) -> str:
    """An app id no other test run on this machine uses (mDNS sees every local sidecar)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


@dataclass
class Run:
    """One ``pylotto run`` subprocess, its output in a file."""

    workdir: Path
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "run.log"

    @property
    def state(self) -> Path:
        return self.workdir / "state"

    def start(self) -> Run:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pylotto", *self.args], stdout=out,
                stderr=subprocess.STDOUT, cwd=self.workdir,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "STATE_DIR": str(self.state),
                     **self.env})
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, text: str, timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process is not None
            if self.process.poll() is not None and text not in self.output():
                raise AssertionError(f"exited {self.process.returncode} before {text!r}:\n"
                                     f"{self.output()}")
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.05)

    def app_env(self) -> dict[str, str]:
        self.wait_for("APP-READY")
        loaded: dict[str, str] = json.loads((self.state / "env.json").read_text())
        return loaded

    def signal(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.wait()

    def wait(self, timeout: float = WAIT_SECONDS) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Run]]:
    """Started runs, killed at the end; ``pylotto list`` records in a private folder."""
    monkeypatch.setenv("PYLOTTO_RUN_DIR", str(tmp_path / "run-records"))
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


def pylotto_run(runs: list[Run], workdir: Path, *flags: str, app: bool = True,
                env: dict[str, str] | None = None) -> Run:
    """``pylotto run <flags> -- python dapr_cli_app.py`` (the data dir private)."""
    command = ["--", sys.executable, str(APP)] if app else []
    run = Run(workdir, ["run", "--data-dir", str(workdir / "data"), *flags, *command],
              env or {})
    runs.append(run.start())
    return run


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylotto", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ})


def call(method: str, url: str, body: bytes = b"", timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body or None, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# ---- item 1: exit codes -----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_exits_0_even_when_the_signal_ends_the_app(
        runs: list[Run], tmp_path: Path, sig: signal.Signals) -> None:
    """The app handles no signal, so SIGTERM kills it (-15): the run still exits 0, as the
    Dapr CLI does after a stop signal (it exited 241 before)."""
    run = pylotto_run(runs, tmp_path / "a", "-a", unique("stopped"))
    run.wait_for("APP-READY")
    assert run.signal(sig) == 0, run.output()
    assert "pylotto stopped" in run.output()


def test_a_run_stopped_by_pylotto_stop_exits_0(runs: list[Run], tmp_path: Path) -> None:
    app_id = unique("stopme")
    run = pylotto_run(runs, tmp_path / "a", "-a", app_id)
    run.wait_for("APP-READY")
    listed = json.loads(cli("list", "-o", "json").stdout)
    assert [row["appId"] for row in listed] == [app_id]
    stopped = cli("stop", "--app-id", app_id)
    assert f"app stopped successfully: {app_id}" in stopped.stdout, stopped.stderr
    assert run.wait() == 0, run.output()
    assert cli("list").stdout.strip() == "No Dapr instances found."


@pytest.mark.parametrize(("code", "line"), [
    ("sys.exit(3)", "The App process exited with error code: 3"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "The App process was terminated by signal: SIGKILL"),
])
def test_an_app_that_fails_by_itself_makes_the_run_exit_1(
        runs: list[Run], tmp_path: Path, code: str, line: str) -> None:
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "data"), "--", sys.executable,
                               "-c", f"import os, signal, sys; {code}"])
    runs.append(run.start())
    assert run.wait() == 1, run.output()
    assert line in run.output()


def test_an_app_that_exits_0_makes_the_run_exit_0(runs: list[Run], tmp_path: Path) -> None:
    run = Run(tmp_path / "a", ["run", "--data-dir", str(tmp_path / "data"), "--",
                               sys.executable, "-c", "print('done')"])
    runs.append(run.start())
    assert run.wait() == 0, run.output()
    assert "Exited App successfully" in run.output()


# ---- item 2: apps find each other; free ports ---------------------------------------------


def test_two_apps_invoke_each_other_by_app_id_with_no_configuration(
        runs: list[Run], tmp_path: Path) -> None:
    """Two ``pylotto run`` apps, no name-resolution config and no sidecar ports given: each
    gets free ports in its environment, and each invokes the other by app id (mDNS)."""
    first, second = unique("orders"), unique("checkout")
    one = pylotto_run(runs, tmp_path / "one", "--app-id", first, "--app-port", str(free_port()),
                      env={"PEER": second})
    two = pylotto_run(runs, tmp_path / "two", "-a", second, "-p", str(free_port()),
                      env={"PEER": first})
    for run, peer in ((one, second), (two, first)):
        run.wait_for("APP-READY")
        reply = next(line for line in run.output().splitlines() if line.startswith("reply "))
        assert json.loads(reply.removeprefix("reply ")) == {
            "app": peer, "path": "/orders", "got": '{"from": "me"}'}
    env_one, env_two = one.app_env(), two.app_env()
    assert env_one["APP_ID"] == first and env_two["APP_ID"] == second
    assert env_one["APP_CHANNEL_ADDRESS"] == "127.0.0.1" and env_one["APP_PROTOCOL"] == "http"
    ports_one = {env_one["DAPR_HTTP_PORT"], env_one["DAPR_GRPC_PORT"]}
    ports_two = {env_two["DAPR_HTTP_PORT"], env_two["DAPR_GRPC_PORT"]}
    assert not ports_one & ports_two and not ports_one & {"3500", "50001"}
    table = cli("list").stdout
    assert first in table and second in table and "APP ID" in table
    rows = {r["appId"]: r for r in json.loads(cli("list", "-o", "json").stdout)}
    assert str(rows[first]["httpPort"]) == env_one["DAPR_HTTP_PORT"]
    assert str(rows[second]["grpcPort"]) == env_two["DAPR_GRPC_PORT"]
    assert cli("stop", "-a", first, second).returncode == 0
    assert one.wait() == 0 and two.wait() == 0


def test_dapr_host_ip_is_the_address_announced_to_name_resolution(
        runs: list[Run], tmp_path: Path) -> None:
    """As daprd: a sidecar announces DAPR_HOST_IP (with its own port) to name resolution."""
    wide, narrow = unique("wide"), unique("narrow")
    pylotto_run(runs, tmp_path / "wide", "-a", wide, "-p", str(free_port()),
                "--dapr-listen-addresses", "0.0.0.0", env={"DAPR_HOST_IP": "127.0.0.2"})
    pylotto_run(runs, tmp_path / "narrow", "-a", narrow, "-p", str(free_port()),
                env={"DAPR_HOST_IP": "127.0.0.3"})  # it listens on 127.0.0.1 only
    port = free_port()
    caller = pylotto_run(runs, tmp_path / "caller", "-a", unique("caller"), "-H", str(port),
                         "-G", str(free_port()), app=False)
    caller.wait_for("You're up and running")
    base = f"http://127.0.0.1:{port}/v1.0/invoke"
    deadline = time.monotonic() + WAIT_SECONDS
    while (answer := call("POST", f"{base}/{wide}/method/orders", b"{}"))[0] != 200:
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    assert json.loads(answer[1])["app"] == wide  # reached at 127.0.0.2
    while (answer := call("POST", f"{base}/{narrow}/method/orders", b"{}"))[0] != 500 or \
            b"couldn't find service" in answer[1]:
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    # found, at the address it announced, where nothing listens
    assert b"127.0.0.3" in answer[1], answer


def test_an_app_id_is_made_up_when_none_is_given(runs: list[Run], tmp_path: Path) -> None:
    run = pylotto_run(runs, tmp_path / "a", env={"EXIT_AFTER_PEER": "1"})
    assert run.wait() == 0, run.output()
    made_up = json.loads((run.state / "env.json").read_text())["APP_ID"]
    assert made_up and made_up.count("-") == 2


# ---- item 12: commands ------------------------------------------------------------------


def test_publish_and_invoke_commands(runs: list[Run], tmp_path: Path) -> None:
    app_id = unique("subscriber")
    run = pylotto_run(runs, tmp_path / "a", "-a", app_id, "-p", str(free_port()))
    run.wait_for("APP-READY")
    run.wait_for("subscribed to topic orders")  # the in-memory broker keeps nothing before
    published = cli("publish", "--publish-app-id", app_id, "--pubsub", "in-memory",
                    "--topic", "orders", "--data", '{"orderId": 7}')
    assert published.returncode == 0 and "Event published successfully" in published.stdout
    events = run.state / "events.jsonl"
    deadline = time.monotonic() + 20
    while not events.exists():
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.05)
    assert json.loads(events.read_text().splitlines()[0])["data"] == {"orderId": 7}
    invoked = cli("invoke", "-a", app_id, "-m", "orders", "-d", '{"x": 1}')
    assert invoked.returncode == 0, invoked.stderr
    answer, done = invoked.stdout.strip().splitlines()
    assert json.loads(answer) == {"app": app_id, "path": "/orders", "got": '{"x": 1}'}
    assert done.endswith("App invoked successfully")
    missing = cli("invoke", "-a", unique("nobody"), "-m", "x")
    assert missing.returncode == 1 and "not found" in missing.stderr
    missing = cli("publish", "-i", unique("nobody"), "-p", "in-memory", "-t", "t", "-d", "{}")
    assert missing.returncode == 1 and "couldn't find a running Dapr instance" in missing.stderr


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
    (["-P", "h2c"], "--app-protocol h2c (HTTP/2 without TLS to the app) is not supported"),
    (["--enable-profiling"], "--enable-profiling: pylotto has no pprof endpoint"),
    (["--placement-host-address", "localhost:50005"], "--placement-host-address: pylotto has"),
    (["--scheduler-host-address", "localhost"], "--scheduler-host-address: pylotto has"),
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
    run.wait_for('HTTP API Called method="')
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
    run.wait_for('gRPC API Called method="')


# ---- item 12: multi-app run ---------------------------------------------------------------


def test_run_template_runs_every_app_and_stop_run_file_stops_them(
        runs: list[Run], tmp_path: Path) -> None:
    """Logs as the Dapr CLI writes them: ``<appDirPath>/.dapr/logs/<id>_daprd_<ts>.log`` and
    ``<id>_app_<ts>.log`` by ``daprdLogDestination`` (default file) and
    ``appLogDestination`` (default fileAndConsole), the app's lines ``== APP - <id> ==``."""
    first, second = unique("tpl-orders"), unique("tpl-checkout")
    for folder in ("orders", "checkout"):
        (tmp_path / "apps" / folder).mkdir(parents=True)
    template = tmp_path / "apps" / "dapr.yaml"
    template.write_text(yaml.safe_dump({
        "version": 1,
        "common": {"env": {"STATE_DIR": str(tmp_path / "state-common")}, "logLevel": "info"},
        "apps": [
            {"appID": first, "appDirPath": "./orders", "appPort": free_port(),
             "command": [sys.executable, str(APP)],
             "env": {"PEER": second, "STATE_DIR": str(tmp_path / "state-orders")}},
            {"appID": second, "appDirPath": "./checkout", "appPort": free_port(),
             "command": [sys.executable, str(APP)], "appLogDestination": "file",
             "daprdLogDestination": "console",
             "env": {"PEER": first, "STATE_DIR": str(tmp_path / "state-checkout")}},
        ]}))
    run = Run(tmp_path / "runner", ["run", "-f", str(template.parent)])
    runs.append(run.start())
    run.wait_for(f"== APP - {first} == reply ")
    run.wait_for(f"Starting pylotto with id {second}")  # its sidecar: on the console
    logs = {app: tmp_path / "apps" / folder / ".dapr" / "logs"
            for app, folder in ((first, "orders"), (second, "checkout"))}

    def log_text(app: str, kind: str, text: str) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = list(logs[app].glob(f"{app}_{kind}_*.log"))
            assert len(found) <= 1
            if found and text in found[0].read_text():
                return found[0].read_text()
            assert time.monotonic() < deadline, (app, kind, found, run.output())
            time.sleep(0.1)

    assert re.fullmatch(rf"{first}_daprd_\d{{14}}\.log",
                        next(logs[first].glob("*_daprd_*")).name)
    daprd_log = log_text(first, "daprd", f"Starting pylotto with id {first}")
    assert "== APP" not in daprd_log
    assert f"== APP - {first} == reply " in log_text(first, "app", "reply ")
    assert f"== APP - {second} == reply " in log_text(second, "app", "reply ")
    assert not list(logs[second].glob("*_daprd_*"))  # console only
    console = run.output()
    assert f"Starting pylotto with id {first}" not in console  # file only
    assert f"== APP - {second} ==" not in console  # file only
    assert f"Writing log files to directory : {logs[first]}" in console
    rows = json.loads(cli("list", "-o", "json").stdout)
    assert {r["appId"] for r in rows} == {first, second}
    assert {r["runTemplatePath"] for r in rows} == {str(template.resolve())}
    assert {r["cliPid"] for r in rows} == {run.process.pid if run.process else 0}
    stopped = cli("stop", "-f", str(template))
    assert "Dapr and app processes stopped successfully" in stopped.stdout, stopped.stderr
    assert run.wait() == 0, run.output()


def test_a_template_app_that_exits_leaves_its_sidecar_running(
        runs: list[Run], tmp_path: Path) -> None:
    """The Dapr CLI's ``run -f``: an app's exit is logged, its daprd keeps serving until the
    template is stopped, and the run then exits 1 because that app failed."""
    quitter, port = unique("tpl-quitter"), free_port()
    (tmp_path / "apps" / "quitter").mkdir(parents=True)
    template = tmp_path / "apps" / "dapr.yaml"
    template.write_text(yaml.safe_dump({"version": 1, "apps": [
        {"appID": quitter, "appDirPath": "./quitter", "daprHTTPPort": port,
         "command": [sys.executable, "-c", "import sys; print('bye', flush=True); sys.exit(3)"],
         "appLogDestination": "console", "daprdLogDestination": "console"}]}))
    run = Run(tmp_path / "runner", ["run", "-f", str(template)])
    runs.append(run.start())
    run.wait_for("The App process exited with error code: 3")
    time.sleep(1)
    assert run.process is not None and run.process.poll() is None, run.output()
    base = f"http://127.0.0.1:{port}/v1.0"
    assert call("GET", f"{base}/healthz")[0] == 204  # the sidecar still serves
    assert call("GET", f"{base}/metadata")[0] == 200
    stopped = cli("stop", "-f", str(template))
    assert "Dapr and app processes stopped successfully" in stopped.stdout, stopped.stderr
    assert run.wait() == 1, run.output()  # the app failed: the run's code, as dapr run -f


def test_run_template_errors_are_the_dapr_cli_s(tmp_path: Path) -> None:
    template = tmp_path / "dapr.yaml"
    template.write_text(yaml.safe_dump({"apps": [{"appDirPath": "."}]}))
    result = cli("run", "-f", str(template))
    assert result.returncode == 2
    assert "required field 'version' not found" in result.stderr
    template.write_text(yaml.safe_dump({"version": 1, "apps": [{"appID": "x"}]}))
    result = cli("run", "-f", str(template))
    assert "required field 'appDirPath' not found" in result.stderr
