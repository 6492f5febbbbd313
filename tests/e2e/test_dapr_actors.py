"""Dapr actors on one sidecar, driven by the official Python SDK (docs/design/actors.md §4.3):
the SDK's actor runtime hosts ``DemoActor`` (tests/e2e/apps/actor_app.py) over HTTP (the
FastAPI extension) and over gRPC (``ActorGrpcHost`` on the ``SubscribeActorEventsAlpha1``
stream); an ``ActorProxy`` calls it through ``pylotto run``. State is in Redis, the store marked
``actorStateStore: "true"``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from dapr.actor import ActorId, ActorProxy
from dapr.clients.exceptions import DaprInternalError
from dapr.proto.runtime.v1 import actors_pb2, dapr_pb2_grpc, metadata_pb2
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.apps.actor_app import DemoActorInterface
from tests.e2e.dapr_run import Run, unique
from tests.e2e.sidecar import Sidecar
from tests.support.ports import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

APP = Path(__file__).parent / "apps" / "actor_app.py"
ROOT = Path(__file__).parents[2]
IDLE_SECONDS = 2.0
WAIT_SECONDS = 30.0


@dataclass
class Env:
    transport: str
    car: Sidecar
    app: subprocess.Popen[bytes]
    events_file: Path
    app_log: Path

    @property
    def api(self) -> str:
        return f"{self.car.dapr_http_url}/v1.0"

    def count(self, event: str, actor_id: str) -> int:
        return sum(1 for e in self.events() if e["event"] == event and e["id"] == actor_id)

    def events(self) -> list[dict[str, str]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines() if line]

    def logs(self) -> str:
        app = self.app_log.read_text(errors="replace") if self.app_log.exists() else ""
        return f"--- sidecar\n{self.car.logs()}\n--- app\n{app}"


def _wait_for(condition: Any, what: str, env: Env, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout:g}s\n{env.logs()}")
        time.sleep(0.1)


REDIS_STORE = {"state": {"actorstore": {
    "type": "redis", "metadata": {"redisHost": "127.0.0.1:6379", "redisPassword": "",
                                  "actorStateStore": "true"}}}}


@contextlib.contextmanager
def _actor_app(workdir: Path, transport: str,
               components: dict[str, Any] | None) -> Iterator[Env]:
    """A sidecar (``components``; None: the embedded default) and the SDK's actor app
    hosting ``DemoActor`` over ``transport``, once the sidecar serves its types."""
    app_port = free_port()
    app: dict[str, Any] = {"app_id": unique("actors"), "port": app_port}
    if transport == "grpc":
        app["protocol"] = "grpc"
    car = Sidecar(workdir, app=app, components=components)
    car.start()
    events, app_log = workdir / "events.jsonl", workdir / "app.log"
    with app_log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(APP), "--port", str(app_port), "--events", str(events),
             "--transport", transport, "--idle", str(IDLE_SECONDS)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
                 "DAPR_RUNTIME_HOST": "127.0.0.1", "DAPR_HTTP_PORT": str(car.dapr_http_port),
                 "DAPR_GRPC_PORT": str(car.dapr_grpc_port), "DAPR_HEALTH_TIMEOUT": "20"})
    started = Env(transport, car, process, events, app_log)
    attached = "hosts actor types DemoActor" if transport == "http" else "attached: DemoActor"
    try:
        _wait_for(lambda: attached in car.logs(), "the app's actor types", started)
        yield started
    finally:
        car.stop()  # first: it deactivates its actors in the app on the way out
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module", params=["http", "grpc"])
def env(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    transport: str = request.param
    with _actor_app(tmp_path_factory.mktemp(f"actors-{transport}"), transport,
                    REDIS_STORE) as started:
        yield started


@pytest.fixture
def sdk(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The SDK's client settings pointed at the sidecar, as ``dapr run`` sets them."""
    monkeypatch.setenv("DAPR_RUNTIME_HOST", "127.0.0.1")
    monkeypatch.setenv("DAPR_HTTP_PORT", str(env.car.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(env.car.dapr_grpc_port))
    return env


def _proxy(actor_id: str, actor_type: str = "DemoActor") -> Any:
    return ActorProxy.create(actor_type, ActorId(actor_id), DemoActorInterface)


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


async def test_method_calls_and_state(sdk: Env) -> None:
    actor_id = _new_id()
    proxy = _proxy(actor_id)
    assert await proxy.GetMyData() is None
    await proxy.SetMyData({"n": 1, "who": sdk.transport})
    assert await proxy.GetMyData() == {"n": 1, "who": sdk.transport}
    raw = await proxy.invoke_method("GetMyData")
    assert json.loads(raw) == {"n": 1, "who": sdk.transport}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sdk.api}/actors/DemoActor/{actor_id}/state/mydata") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("application/json")
            assert json.loads(await resp.read()) == {"n": 1, "who": sdk.transport}
        async with http.get(f"{sdk.api}/actors/DemoActor/{actor_id}/state/nothing") as resp:
            assert resp.status == 204


async def test_a_reentrant_self_call(sdk: Env) -> None:
    proxy = _proxy(_new_id())
    await proxy.SetMyData("inside")
    assert await proxy.CallSelf() == {"inner": "inside"}


async def test_an_exception_in_the_actor(sdk: Env) -> None:
    actor_id = _new_id()
    async with aiohttp.ClientSession() as http, http.post(
            f"{sdk.api}/actors/DemoActor/{actor_id}/method/Boom") as resp:
        body = await resp.read()
        headers = resp.headers
        status = resp.status
    if sdk.transport == "http":  # the FastAPI extension answers 500 with its JSON
        assert status == 500, body
        answer = json.loads(body)
        assert answer["errorCode"] == "ERR_ACTOR_INVOKE_METHOD"
        assert answer["message"].startswith(
            "error invoke actor method: error from actor service: (500) ")
        assert "boom from the actor" in answer["message"]
        with pytest.raises(DaprInternalError, match="boom from the actor"):
            await _proxy(actor_id).Boom()
    else:  # ActorGrpcHost marks an actor error: passed back as the app sent it
        assert status == 200, body
        assert headers["X-Daprerrorresponseheader"] == "true"
        assert b"boom from the actor" in body


async def test_an_unknown_actor_type(sdk: Env) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"{sdk.api}/actors/NoSuchActor/1/method/GetMyData") as resp:
        assert resp.status == 500
        answer = json.loads(await resp.read())
    assert answer["errorCode"] == "ERR_ACTOR_INVOKE_METHOD"
    assert "did not find address for actor 'NoSuchActor||1'" in answer["message"], answer


async def test_an_idle_actor_is_deactivated(sdk: Env) -> None:
    actor_id = _new_id()
    await _proxy(actor_id).GetMyData()
    assert {"event": "activate", "id": actor_id} in sdk.events()
    _wait_for(lambda: {"event": "deactivate", "id": actor_id} in sdk.events(),
              f"deactivation of {actor_id}", sdk)


async def test_metadata_reports_the_actor_runtime(sdk: Env) -> None:
    await _proxy(_new_id()).GetMyData()
    async with aiohttp.ClientSession() as http, http.get(f"{sdk.api}/metadata") as resp:
        metadata = await resp.json()
    runtime = metadata["actorRuntime"]
    assert runtime["runtimeStatus"] == "RUNNING"
    assert runtime["hostReady"] is True
    assert runtime["placement"] == "placement: connected"
    (store,) = [c for c in metadata["components"] if c["name"] == "actorstore"]
    assert "ACTOR" in store["capabilities"]


async def test_metadata_counts_active_actors(sdk: Env) -> None:
    """Counted while active (each try calls first: an idle actor leaves after 2 s)."""
    deadline = time.monotonic() + WAIT_SECONDS
    async with aiohttp.ClientSession() as http:
        while True:
            await _proxy(_new_id()).GetMyData()
            async with http.get(f"{sdk.api}/metadata") as resp:
                metadata = await resp.json()
            active = {a["type"]: a["count"]
                      for a in metadata["actorRuntime"].get("activeActors", [])}
            if active.get("DemoActor", 0) >= 1:
                break
            assert time.monotonic() < deadline, (metadata, sdk.logs())
    assert metadata["actors"] == [{"type": t, "count": n} for t, n in sorted(active.items())]


async def test_a_reminder_fires_until_it_is_unregistered(sdk: Env) -> None:
    actor_id = _new_id()
    proxy = _proxy(actor_id)
    await proxy.StartReminder()
    _wait_for(lambda: sdk.count("reminder", actor_id) >= 2, "two reminder ticks", sdk)
    ticks = [e for e in sdk.events() if e["event"] == "reminder" and e["id"] == actor_id]
    assert {(e["name"], e["state"]) for e in ticks} == {("demo_reminder", "reminder state")}
    async with aiohttp.ClientSession() as http, http.get(
            f"{sdk.api}/actors/DemoActor/{actor_id}/reminders/demo_reminder") as resp:
        assert resp.status == 200, await resp.text()
        reminder = await resp.json()
    assert (reminder["actorType"], reminder["actorID"]) == ("DemoActor", actor_id)
    await proxy.StopReminder()
    stopped = sdk.count("reminder", actor_id)
    await asyncio.sleep(3.5)  # three periods: at most the tick in flight when it was removed
    assert sdk.count("reminder", actor_id) <= stopped + 1
    async with aiohttp.ClientSession() as http, http.get(
            f"{sdk.api}/actors/DemoActor/{actor_id}/reminders/demo_reminder") as resp:
        assert resp.status == 404
        assert (await resp.json())["errorCode"] == "ERR_ACTOR_REMINDER_NOT_FOUND"


async def test_a_timer_fires_until_it_is_unregistered(sdk: Env) -> None:
    actor_id = _new_id()
    proxy = _proxy(actor_id)
    await proxy.StartTimer()
    _wait_for(lambda: sdk.count("timer", actor_id) >= 2, "two timer ticks", sdk)
    ticks = [e for e in sdk.events() if e["event"] == "timer" and e["id"] == actor_id]
    assert {e["state"] for e in ticks} == {json.dumps({"from": "timer"})}
    await proxy.StopTimer()
    stopped = sdk.count("timer", actor_id)
    await asyncio.sleep(3.5)  # three periods: at most the tick in flight when it was removed
    assert sdk.count("timer", actor_id) <= stopped + 1


GRAFANA = json.loads((ROOT / "tests" / "fixtures" / "dapr_grafana_queries.json").read_text())


def _dapr_samples(car: Sidecar) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"{car.actuator_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _sum(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
         **labels: str) -> float:
    return sum(value for found, value in samples.get(name, [])
               if labels.items() <= found.items())


async def test_daprs_actor_metrics_after_actor_traffic(sdk: Env) -> None:
    """daprd's actor families (their names and labels as the fixture lists them) after a
    call, a timer's and a reminder's ticks and an idle deactivation."""
    actor_id = _new_id()
    proxy = _proxy(actor_id)
    await proxy.StartTimer()
    await proxy.StartReminder()
    _wait_for(lambda: sdk.count("timer", actor_id) >= 1 and sdk.count("reminder", actor_id) >= 1,
              "a timer tick and a reminder tick", sdk)
    await proxy.StopTimer()
    await proxy.StopReminder()
    _wait_for(lambda: {"event": "deactivate", "id": actor_id} in sdk.events(),
              f"deactivation of {actor_id}", sdk)
    app_id = sdk.car.app["app_id"]
    actor = {"app_id": app_id, "actor_type": "DemoActor"}

    def deactivation_counted() -> bool:
        return _sum(_dapr_samples(sdk.car), "dapr_runtime_actor_deactivated_total", **actor) >= 1

    _wait_for(deactivation_counted, "the deactivation counted", sdk, timeout=5)
    samples = _dapr_samples(sdk.car)
    missing = {name: labels for name, labels in GRAFANA["answered_for_an_actor_app"].items()
               if not any(set(labels) <= set(found) for found, _ in samples.get(name, []))}
    assert not missing, (sorted(missing), sdk.logs())
    assert _sum(samples, "dapr_runtime_actor_rebalanced_total", **actor) >= _sum(
        samples, "dapr_runtime_actor_deactivated_total", **actor)
    assert _sum(samples, "dapr_runtime_actor_pending_actor_calls", **actor) == 0
    assert _sum(samples, "dapr_runtime_actor_timers", **actor) == 0  # every timer stopped
    assert _sum(samples, "dapr_runtime_actor_timers_fired_total", success="true", **actor) >= 1
    assert _sum(samples, "dapr_runtime_actor_reminders_fired_total", success="true",
                **actor) >= 1
    assert _sum(samples, "dapr_runtime_actor_status_report_total", app_id=app_id,
                actor_type="", operation="send") >= 1
    assert _sum(samples, "dapr_runtime_actor_table_operation_recv_total", app_id=app_id,
                operation="update") >= 1
    assert _sum(samples, "dapr_runtime_actor_deactivated_failed_total", **actor) == 0


async def test_refusals_over_http(sdk: Env) -> None:
    cases = [
        ("PUT", "DemoActor/1/reminders/r", b"not json", 400, "ERR_MALFORMED_REQUEST"),
        ("PUT", "Elsewhere/1/reminders/r", b'{"dueTime": "1h"}', 403,
         "ERR_ACTOR_REMINDER_NON_HOSTED"),
        ("PUT", "Elsewhere/1/timers/t", b'{"dueTime": "1h", "callback": "cb"}', 500,
         "ERR_ACTOR_TIMER_CREATE"),
        ("PUT", "DemoActor/1/reminders/r", b'{"period": "P1M"}', 500,
         "ERR_ACTOR_REMINDER_CREATE"),
        ("PUT", "dapr.internal.x/1/method/m", b"", 403, "ERR_ACTOR_TYPE_RESERVED"),
        ("GET", "DemoActor/1/reminders/none", b"", 404, "ERR_ACTOR_REMINDER_NOT_FOUND"),
    ]
    async with aiohttp.ClientSession() as http:
        for verb, path, body, status, code in cases:
            async with http.request(verb, f"{sdk.api}/actors/{path}", data=body) as resp:
                answer = await resp.json(content_type=None)
                assert (resp.status, answer["errorCode"]) == (status, code), (path, answer)


def test_the_grpc_actor_rpcs(env: Env) -> None:
    actor_id = _new_id()
    with grpc.insecure_channel(env.car.dapr_grpc_address) as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        stub.InvokeActor(actors_pb2.InvokeActorRequest(
            actor_type="DemoActor", actor_id=actor_id, method="SetMyData", data=b'"via grpc"'),
            timeout=10)
        answer = stub.InvokeActor(actors_pb2.InvokeActorRequest(
            actor_type="DemoActor", actor_id=actor_id, method="GetMyData"), timeout=10)
        assert json.loads(answer.data) == "via grpc"
        state = stub.GetActorState(actors_pb2.GetActorStateRequest(
            actor_type="DemoActor", actor_id=actor_id, key="mydata"), timeout=10)
        assert json.loads(state.data) == "via grpc"

        reminder = actors_pb2.RegisterActorReminderRequest(
            actor_type="DemoActor", actor_id=actor_id, name="later", due_time="1h",
            period="1h", data=b"{}")
        stub.RegisterActorReminder(reminder, timeout=10)
        got = stub.GetActorReminder(actors_pb2.GetActorReminderRequest(
            actor_type="DemoActor", actor_id=actor_id, name="later"), timeout=10)
        assert (got.actor_type, got.actor_id) == ("DemoActor", actor_id)
        listed = stub.ListActorReminders(actors_pb2.ListActorRemindersRequest(
            actor_type="DemoActor", actor_id=actor_id), timeout=10)
        assert [r.name for r in listed.reminders] == ["later"]
        reminder.overwrite = False
        with pytest.raises(grpc.RpcError) as exists:
            stub.RegisterActorReminder(reminder, timeout=10)
        assert exists.value.code() is grpc.StatusCode.ALREADY_EXISTS
        assert exists.value.details() == "actor reminder already exists: later"
        stub.UnregisterActorRemindersByType(actors_pb2.UnregisterActorRemindersByTypeRequest(
            actor_type="DemoActor", actor_id=actor_id), timeout=10)
        assert not stub.ListActorReminders(actors_pb2.ListActorRemindersRequest(
            actor_type="DemoActor", actor_id=actor_id), timeout=10).reminders

        boom = actors_pb2.InvokeActorRequest(actor_type="DemoActor", actor_id=actor_id,
                                             method="Boom")
        if env.transport == "http":
            with pytest.raises(grpc.RpcError) as failed:
                stub.InvokeActor(boom, timeout=10)
            assert failed.value.code() is grpc.StatusCode.INTERNAL
            assert (failed.value.details() or "").startswith(
                "error invoke actor method: error from actor service: (500) ")
        else:  # an actor error: OK with the app's body (daprd's grpc.go)
            assert b"boom from the actor" in stub.InvokeActor(boom, timeout=10).data

        metadata = stub.GetMetadata(metadata_pb2.GetMetadataRequest(), timeout=10)
        assert metadata.actor_runtime.runtime_status == metadata_pb2.ActorRuntime.RUNNING
        assert metadata.actor_runtime.placement == "placement: connected"


NO_ACTOR_STORE = {"state": {"in-memory": {"type": "in-memory"}, "sqlite": {"type": "sqlite"}}}
"""The embedded default's state stores with none marked as the actor state store."""


def test_without_an_actor_state_store_actor_calls_say_so(start_sidecar: Any) -> None:
    car = start_sidecar(components=NO_ACTOR_STORE)
    request = urllib.request.Request(
        f"{car.dapr_http_url}/v1.0/actors/DemoActor/1/method/GetMyData", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 500
    answer = json.loads(caught.value.read())
    assert answer["errorCode"] == "ERR_ACTOR_RUNTIME_NOT_FOUND"
    assert 'actorStateStore value: "true"' in answer["message"]
    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=10) as resp:
        assert json.loads(resp.read())["actorRuntime"] == {"runtimeStatus": "DISABLED",
                                                           "hostReady": False,
                                                           "placement": "placement: "
                                                                        "disconnected"}
    with grpc.insecure_channel(car.dapr_grpc_address) as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as rpc:
            stub.InvokeActor(actors_pb2.InvokeActorRequest(actor_type="DemoActor", actor_id="1",
                                                           method="GetMyData"), timeout=10)
        assert rpc.value.code() is grpc.StatusCode.INTERNAL
        assert "actorStateStore" in (rpc.value.details() or "")
        stream = stub.SubscribeActorEventsAlpha1(iter([actors_pb2.SubscribeActorEventsRequestAlpha1(
            initial_request=actors_pb2.SubscribeActorEventsRequestInitialAlpha1(
                entities=["DemoActor"]))]), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            list(stream)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.details() == "actor callback streaming requires a gRPC app channel"


async def test_the_embedded_default_serves_an_actor_app(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No components configured: the embedded default's sqlite store is the actor state
    store, as ``dapr init``'s Redis one is, so an actor app works as it comes."""
    with _actor_app(tmp_path, "http", None) as started:
        monkeypatch.setenv("DAPR_HTTP_PORT", str(started.car.dapr_http_port))
        monkeypatch.setenv("DAPR_GRPC_PORT", str(started.car.dapr_grpc_port))
        actor_id = _new_id()
        proxy = _proxy(actor_id)
        await proxy.SetMyData({"on": "sqlite"})
        assert await proxy.GetMyData() == {"on": "sqlite"}
        await proxy.StartReminder()
        _wait_for(lambda: started.count("reminder", actor_id) >= 1, "a reminder tick", started)
        await proxy.StopReminder()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{started.api}/actors/DemoActor/{actor_id}/state/mydata") as (
                    resp):
                assert json.loads(await resp.read()) == {"on": "sqlite"}
            async with http.get(f"{started.api}/metadata") as resp:
                metadata = await resp.json()
        assert metadata["actorRuntime"]["runtimeStatus"] == "RUNNING"
        sqlite = next(c for c in metadata["components"] if c["name"] == "sqlite")
        assert "ACTOR" in sqlite["capabilities"]


def test_two_actor_state_stores_refuse_to_start(tmp_path: Path) -> None:
    marked = {"type": "in-memory", "metadata": {"actorStateStore": "true"}}
    car = Sidecar(tmp_path, components={"state": {"a": marked, "b": marked}})
    with pytest.raises(RuntimeError, match="detected duplicate actor state store: a and b"):
        car.start()
    car.stop()


async def test_as_dapr_run_starts_an_actor_app(runs: list[Run], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``dapr run``'s way: a component manifest marks the store, ``--placement-host-address``
    is given (and ignored), and pylotto starts the app with the Dapr environment."""
    components = tmp_path / "components"
    components.mkdir()
    (components / "statestore.yaml").write_text("""\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: localhost:6379
  - name: redisPassword
    value: ""
  - name: actorStateStore
    value: "true"
""")
    app_port, http_port, grpc_port = free_port(), free_port(), free_port()
    run = Run(tmp_path / "run", [
        "run", "--app-id", unique("demo"), "--app-port", str(app_port),
        "--dapr-http-port", str(http_port), "--dapr-grpc-port", str(grpc_port),
        "--resources-path", str(components), "--placement-host-address", "localhost:50005",
        "--data-dir", str(tmp_path / "data"), "--",
        sys.executable, str(APP), "--port", str(app_port), "--events",
        str(tmp_path / "events.jsonl")], {"PYTHONPATH": str(ROOT)})
    runs.append(run.start())
    try:
        run.wait_for("hosts actor types DemoActor")
        monkeypatch.setenv("DAPR_HTTP_PORT", str(http_port))
        proxy = _proxy(_new_id())
        await proxy.SetMyData(["dapr", "run"])
        assert await proxy.GetMyData() == ["dapr", "run"]
        assert run.output().count("--placement-host-address localhost:50005 ignored") == 1
    finally:  # the run stops its app too (the fixture's SIGKILL would leave it behind)
        if run.process is not None and run.process.poll() is None:
            run.signal(signal.SIGTERM)
