"""The Jobs API end to end: a real ``pylotto run`` with an HTTP app receiving ``POST
/job/<name>``, driven by the Dapr Python SDK's job calls and by the HTTP API; two sidecars of
one app id sharing a Redis state store deliver each trigger exactly once."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Lock
from typing import Any

import grpc
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._jobs import Job
from dapr.proto.runtime.v1 import dapr_pb2_grpc, jobs_pb2
from google.protobuf import any_pb2, struct_pb2

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.http_app import JsonHandler
from tests.support.servers import require

pytestmark = pytest.mark.timeout(90)


def wait_for(check: Callable[[], bool], within: float = 10) -> None:
    deadline = time.time() + within
    while not check():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


class JobApp(JsonHandler):
    """Counts the triggers it gets (per server: ``self.server.got``)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        assert self.headers["Content-Type"] == "application/json"
        name = self.path.removeprefix("/job/")
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.got[name] += 1  # type: ignore[attr-defined]
            self.server.bodies.setdefault(name, []).append(body)  # type: ignore[attr-defined]
        self.reply({})


class BackloggedServer(ThreadingHTTPServer):
    request_queue_size = 128
    """A sidecar fires due triggers together: the default backlog (5) would drop the SYNs
    of the rest, retried by TCP a second or more later."""


@pytest.fixture
def apps() -> Iterator[Callable[[], Any]]:
    servers: list[Any] = []

    def start() -> Any:
        server = BackloggedServer(("127.0.0.1", 0), JobApp)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        server.got, server.bodies, server.lock = Counter(), {}, Lock()  # type: ignore[attr-defined]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()


def http(car: Sidecar, method: str, path: str, body: object = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(car.dapr_http_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def value_any(value: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    parsed = struct_pb2.Value()
    parsed.string_value = str(value)
    packed.Pack(parsed)
    return packed


def test_jobs_through_the_sdk_and_http_reach_an_http_app(
        apps: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = apps()
    car = Sidecar(tmp_path, app={"app_id": "jobs", "port": app.server_address[1]}).start()
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        with DaprClient() as client:
            client.schedule_job(Job(name="later", schedule="@every 1h", repeats=2,
                                    data=value_any("kept")))
            got = client.get_job("later")
            assert (got.name, got.schedule, got.repeats) == ("later", "@every 1h", 2)
            client.schedule_job(Job(name="soon", due_time="1s", data=value_any("hello")))
            wait_for(lambda: app.got["soon"] == 1)
            assert app.bodies["soon"] == [b'"hello"']
            with pytest.raises(DaprGrpcError) as caught:
                client.schedule_job(Job(name="bad", schedule="every day"))
            assert caught.value.code().name == "INVALID_ARGUMENT"
            assert "expected exactly 6 fields" in str(caught.value.details())
            with pytest.raises(DaprGrpcError) as caught:  # over the 4 MiB payload limit
                client.schedule_job(Job(name="big", due_time="1s",
                                        data=value_any("x" * (4 * 1024 * 1024))))
            assert caught.value.code().name == "INVALID_ARGUMENT"
            assert "job failed validation: data is 4194" in str(caught.value.details())
            client.delete_job("later")
            with pytest.raises(DaprGrpcError):
                client.get_job("later")
        status, _ = http(car, "POST", "/v1.0-alpha1/jobs/web", {"dueTime": "0s",
                                                                  "data": {"n": 1}})
        assert status == 204
        wait_for(lambda: app.got["web"] == 1)
        assert json.loads(app.bodies["web"][0]) == {"n": 1}
        status, _ = http(car, "POST", "/v1.0-alpha1/jobs/kept", {"schedule": "0 0 9 * * *"})
        assert status == 204
        status, body = http(car, "GET", "/v1.0-alpha1/jobs/kept")
        assert status == 200 and body["name"] == "kept" and body["schedule"] == "0 0 9 * * *"
        status, body = http(car, "POST", "/v1.0-alpha1/jobs/x", {"dueTime": "1s",
                                                                 "repeats": 3})
        assert status == 400
        assert body["message"] == ("failed to schedule job due to: job failed validation: "
                                   "job must have a schedule to repeat")
        status, body = http(car, "POST", "/v1.0-alpha1/jobs/x", {"name": "x", "dueTime": "1s"})
        assert (status, body["message"]) == (400, "Set the job name in the url only")
        status, body = http(car, "POST", "/v1.0-alpha1/jobs/x", {
            "dueTime": "1s", "failurePolicy": {"constant": {"maxRetries": "many"}}})
        assert (status, body["errorCode"]) == (400, "ERR_MALFORMED_REQUEST")
        assert "maxRetries" in body["message"]
        status, body = http(car, "POST", "/v1.0-alpha1/jobs/big", {
            "dueTime": "1s", "data": "x" * (4 * 1024 * 1024)})
        assert status == 400
        assert body["message"].startswith("failed to schedule job due to: job failed "
                                          "validation: data is 419")
        assert body["message"].endswith("bytes, over the limit of 4194304 bytes")
        status, body = http(car, "POST", "/v1.0/jobs/y", {"dueTime": "1s", "colour": "red"})
        assert (status, body["errorCode"]) == (400, "ERR_MALFORMED_REQUEST")
        assert http(car, "DELETE", "/v1.0-alpha1/jobs/kept")[0] == 204
        assert http(car, "GET", "/v1.0-alpha1/jobs/kept")[0] == 500  # daprd: INTERNAL
        time.sleep(0.5)
        assert app.got == Counter({"soon": 1, "web": 1})
    finally:
        car.stop()


def test_two_sidecars_of_one_app_deliver_each_trigger_once(
        apps: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("redis")
    app_id = f"jobs{uuid.uuid4().hex[:8]}"
    components = {"state": {"jobs": {"type": "redis", "metadata": {
        "redisHost": "127.0.0.1:6379"}}}}
    first, second = apps(), apps()
    cars = [Sidecar(tmp_path / f"car{i}", components=components,
                    app={"app_id": app_id, "port": a.server_address[1]},
                    extra_config={"scheduler": {"poll_seconds": 0.2}}).start()
            for i, a in enumerate((first, second))]
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(cars[0].dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(cars[0].dapr_http_port))
        names = [f"job-{i}" for i in range(60)]
        with DaprClient() as client:
            for name in names:
                client.schedule_job(Job(name=name, due_time="2s"))
            client.schedule_job(Job(name="ticker", schedule="@every 1s", repeats=3))
        with grpc.insecure_channel(cars[1].dapr_grpc_address) as channel:  # the other one
            listed = dapr_pb2_grpc.DaprStub(channel).ListJobsAlpha1(  # type: ignore[no-untyped-call]
                jobs_pb2.ListJobsRequestAlpha1(), timeout=10)
        assert sorted(j.name for j in listed.jobs) == sorted([*names, "ticker"])
        wait_for(lambda: sum((first.got + second.got).values()) >= 63, within=20)
        time.sleep(1.0)
        total = first.got + second.got
        assert {n: total[n] for n in names} == {n: 1 for n in names}
        assert total["ticker"] == 3
    finally:
        for car in cars:
            car.stop()


def test_a_grpc_app_gets_its_job_through_on_job_event(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dapr.ext.grpc import App, JobEvent

    port = free_port()
    app = App()
    got: list[tuple[str, bytes]] = []

    @app.job_event("nightly")
    def nightly(event: JobEvent) -> None:
        got.append((event.name, event.data))

    threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True).start()
    car = Sidecar(tmp_path, app={"app_id": "grpcjobs", "port": port,
                                 "protocol": "grpc"}).start()
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        with DaprClient() as client:
            client.schedule_job(Job(name="nightly", due_time="0s", data=value_any("run")))
        wait_for(lambda: len(got) == 1)
        assert got[0][0] == "nightly"
        parsed = struct_pb2.Value()
        parsed.ParseFromString(got[0][1])
        assert parsed.string_value == "run"
    finally:
        car.stop()
        app.stop()


class HangingApp(JobApp):
    """Takes the trigger and never answers (until the test ends)."""

    def do_POST(self) -> None:
        name = self.path.removeprefix("/job/")
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.got[name] += 1  # type: ignore[attr-defined]
        self.server.release.wait(30)  # type: ignore[attr-defined]


def test_a_killed_sidecars_triggers_fire_from_the_other(
        apps: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("redis")
    app_id = f"jobs{uuid.uuid4().hex[:8]}"
    components = {"state": {"jobs": {"type": "redis", "metadata": {
        "redisHost": "127.0.0.1:6379"}}}}
    scheduler = {"scheduler": {"poll_seconds": 0.2, "lease_seconds": 1.5}}
    hanging = BackloggedServer(("127.0.0.1", 0), HangingApp)
    hanging.got, hanging.lock, hanging.release = Counter(), Lock(), threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=hanging.serve_forever, daemon=True).start()
    alive = apps()
    doomed = Sidecar(tmp_path / "doomed", components=components, extra_config=scheduler,
                     app={"app_id": app_id, "port": hanging.server_address[1]}).start()
    survivor = Sidecar(tmp_path / "survivor", components=components, extra_config=scheduler,
                       app={"app_id": app_id, "port": alive.server_address[1]})
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(doomed.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(doomed.dapr_http_port))
        names = [f"job-{i}" for i in range(20)]
        with DaprClient() as client:
            for name in names:
                client.schedule_job(Job(name=name, due_time="0s"))
        stuck = hanging.got  # type: ignore[attr-defined]
        wait_for(lambda: sum(stuck.values()) == 20, within=10)  # all claimed, all hanging
        survivor.start()
        time.sleep(2.0)  # longer than the lease: the doomed sidecar renews its claims
        assert not alive.got, "a claim renewed by a live sidecar was taken over"
        assert doomed.process is not None
        doomed.process.kill()
        killed = time.time()
        wait_for(lambda: all(alive.got[n] == 1 for n in names), within=10)
        taken_over = time.time() - killed
        assert taken_over <= 1.5 + 0.2 + 1.0, taken_over  # lease + poll + a delivery
        time.sleep(0.5)
        assert alive.got == Counter({n: 1 for n in names})
    finally:
        hanging.release.set()  # type: ignore[attr-defined]
        survivor.stop()
        doomed.stop()
        hanging.shutdown()


class StampingApp(JobApp):
    def do_POST(self) -> None:
        self.server.times.append(time.time())  # type: ignore[attr-defined]
        super().do_POST()


def test_jobs_survive_a_restart_of_the_embedded_default_and_missed_ticks_fire_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = BackloggedServer(("127.0.0.1", 0), StampingApp)
    app.got, app.bodies, app.lock, app.times = Counter(), {}, Lock(), []  # type: ignore[attr-defined]
    threading.Thread(target=app.serve_forever, daemon=True).start()
    car = Sidecar(tmp_path, app={"app_id": "durable", "port": app.server_address[1]}).start()
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        with DaprClient() as client:
            client.schedule_job(Job(name="tick", schedule="@every 0.5s"))
        wait_for(lambda: app.got["tick"] >= 1)  # type: ignore[attr-defined]
        car.stop()
        seen = app.got["tick"]  # type: ignore[attr-defined]
        time.sleep(2.0)  # four ticks missed
        back = time.time()
        car.start()  # same data folder: the embedded sqlite store
        wait_for(lambda: app.got["tick"] > seen)  # type: ignore[attr-defined]
        time.sleep(0.4)
        burst = [t for t in app.times if t >= back]  # type: ignore[attr-defined]
        assert burst and burst[0] - back < 5.0  # the start-up of the sidecar
        assert len([t for t in burst if t - burst[0] < 0.4]) == 1, burst
        with DaprClient() as client:
            assert client.get_job("tick").schedule == "@every 0.5s"
            client.delete_job("tick")
    finally:
        car.stop()
        app.shutdown()
