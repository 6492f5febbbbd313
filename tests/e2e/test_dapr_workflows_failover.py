"""Dapr workflows when things break, and beyond one sidecar: the sidecar or the app killed
mid fan-out, no actor state store, the API token, the embedded default's sqlite store over a
restart, two sidecars of one app id (one killed), and the 1.18 SDK as the app. The patterns on
one healthy sidecar are in test_dapr_workflows.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus
from google.protobuf import empty_pb2

from pylotto.proto import durabletask as dt
from tests.e2e.dapr_run import unique
from tests.e2e.sidecar import Sidecar
from tests.e2e.workflows_env import APP, REDIS, ROOT, TIMEOUT, committed_items, running, wid
from tests.support.ports import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def test_sidecar_killed_in_a_fan_out_resumes_after_a_restart(tmp_path: Path) -> None:
    """SIGKILL the sidecar once 30 of 100 activity results are committed; after a restart
    the workflow completes with the right sum, every activity ran, and no activity whose
    result was committed before the kill ran again (the others ran at least once: the app
    finishes the ones it had, their results die with the sidecar, and they run again)."""
    with running(tmp_path) as crash:
        instance_id = crash.client.schedule_new_workflow("slow_batch", input=100,
                                                         instance_id=wid("crash"))
        deadline = time.monotonic() + TIMEOUT
        committed: set[int] = set()
        while len(committed) < 30:
            assert time.monotonic() < deadline, crash.logs()
            time.sleep(0.05)
            committed = committed_items(crash, instance_id)
        crash.car.stop(signal.SIGKILL)
        crash.car.start()
        state = crash.done(instance_id, timeout=120)
        assert state.runtime_status == WorkflowStatus.COMPLETED, crash.logs()
        assert json.loads(state.serialized_output) == sum(range(1, 101))
        runs: dict[int, int] = {}
        for row in crash.events("slow_item"):
            if row["id"] == instance_id:
                runs[row["item"]] = runs.get(row["item"], 0) + 1
        assert set(runs) == set(range(1, 101))
        assert {item: runs[item] for item in committed} == dict.fromkeys(committed, 1)
        again = sum(1 for count in runs.values() if count > 1)
        print(f"crash: {len(committed)} results committed before the kill (each ran once), "
              f"{again} activities ran twice")


def test_without_an_actor_state_store_the_workflow_rpcs_answer_daprd_s_error(
        tmp_path: Path) -> None:
    car = Sidecar(tmp_path, app={"app_id": unique("wfnostore"), "port": free_port()},
                  components={"state": {"plain": {"type": "in-memory", "metadata": {}}}})
    car.start()
    try:
        with grpc.insecure_channel(car.dapr_grpc_address) as channel:
            stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)
            stub.Hello(empty_pb2.Empty(), timeout=10)
            with pytest.raises(grpc.RpcError) as err:
                stub.StartInstance(dt.service.CreateInstanceRequest(name="w"), timeout=10)
            assert err.value.code() == grpc.StatusCode.INTERNAL
            assert (err.value.details() or "").startswith(
                "the state store is not configured to use the actor runtime")
            with pytest.raises(grpc.RpcError) as get:
                stub.GetInstance(dt.service.GetInstanceRequest(instanceId="x"), timeout=10)
            assert get.value.code() == grpc.StatusCode.INTERNAL
            # a worker may connect; its stream idles (nothing to do), as with daprd
            stream = stub.GetWorkItems(dt.service.GetWorkItemsRequest(), timeout=1)
            with pytest.raises(grpc.RpcError) as idle:
                next(iter(stream))
            assert idle.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        car.stop()


def test_the_api_token_covers_the_durable_task_service(tmp_path: Path) -> None:
    """With ``DAPR_API_TOKEN`` set, a call without it is UNAUTHENTICATED; the SDK (app and
    client) sends it and runs a workflow."""
    with running(tmp_path, token="wf-s3cret") as guarded:
        with grpc.insecure_channel(guarded.car.dapr_grpc_address) as channel:
            stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)
            for call in (lambda: stub.Hello(empty_pb2.Empty(), timeout=10),
                         lambda: stub.StartInstance(
                             dt.service.CreateInstanceRequest(name="task_chain"), timeout=10),
                         lambda: next(iter(stub.GetWorkItems(
                             dt.service.GetWorkItemsRequest(), timeout=10)))):
                with pytest.raises(grpc.RpcError) as refused:
                    call()
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        state = guarded.done(guarded.client.schedule_new_workflow("task_chain", input=1))
        assert json.loads(state.serialized_output) == [2, 4, 6]


def test_the_app_killed_in_a_fan_out_its_items_go_to_the_next_worker(tmp_path: Path) -> None:
    """SIGKILL the app (the only worker) once 20 of 100 results are committed; the items it
    held are sent again to the next app started, and the workflow completes."""
    with running(tmp_path) as crash:
        instance_id = crash.client.schedule_new_workflow("slow_batch", input=100,
                                                         instance_id=wid("appkill"))
        deadline = time.monotonic() + TIMEOUT
        while len(committed_items(crash, instance_id)) < 20:
            assert time.monotonic() < deadline, crash.logs()
            time.sleep(0.05)
        crash.app.kill()
        crash.app.wait()
        with crash.app_log.open("ab") as out:
            crash.app = subprocess.Popen(
                [sys.executable, str(APP), "--events", str(crash.events_file)], stdout=out,
                stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)})
        state = crash.done(instance_id, timeout=120)
        assert state.runtime_status == WorkflowStatus.COMPLETED, crash.logs()
        assert json.loads(state.serialized_output) == sum(range(1, 101))
        assert re.search(r"a worker disconnected \(0 left; [1-9]\d* items sent again\)",
                         crash.car.logs()), crash.logs()


def test_on_the_embedded_default_chain_fan_out_timer_and_a_restart(tmp_path: Path) -> None:
    """The embedded default components, no store configured (its sqlite store is the actor
    state store): a chain, a 20-activity fan-out, a timer-guarded event, and the state kept
    over a sidecar restart (a finished instance is still there)."""
    with running(tmp_path, store=None) as lite:
        chain = lite.client.schedule_new_workflow("task_chain", input=3)
        assert json.loads(lite.done(chain).serialized_output) == [4, 8, 10]
        fan = lite.client.schedule_new_workflow("batch_processing", input=20)
        assert json.loads(lite.done(fan).serialized_output) == 2 * sum(range(1, 21))
        late = lite.client.schedule_new_workflow(
            "purchase_order_wf", input={"cost": 5000, "product": "lite", "timeout": 1})
        assert json.loads(lite.done(late).serialized_output) == "Cancelled"
        lite.car.restart()
        state = lite.client.get_workflow_state(chain)
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
        again = lite.client.schedule_new_workflow("task_chain", input=4)
        assert json.loads(lite.done(again).serialized_output) == [5, 10, 8]


@contextlib.contextmanager
def _pair(tmp_path: Path) -> Iterator[tuple[list[Sidecar], list[subprocess.Popen[bytes]],
                                            list[DaprWorkflowClient], Path]]:
    """Two sidecars of one app id (Redis, placement by leases), each with its own app."""
    app_id = unique("wf2")
    events = tmp_path / "events.jsonl"
    cars: list[Sidecar] = []
    apps: list[subprocess.Popen[bytes]] = []
    clients: list[DaprWorkflowClient] = []
    try:
        for name in ("a", "b"):
            car = Sidecar(tmp_path / name, app={"app_id": app_id, "port": free_port()},
                          components={"state": {"actorstore": REDIS}},
                          extra_config={"actors": {"lease_seconds": 2.0,
                                                   "poll_seconds": 0.2}})
            car.start()
            cars.append(car)
            with (tmp_path / f"{name}.log").open("ab") as out:
                apps.append(subprocess.Popen(
                    [sys.executable, str(APP), "--events", str(events)], stdout=out,
                    stderr=subprocess.STDOUT, cwd=ROOT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
                         "DAPR_RUNTIME_HOST": "127.0.0.1",
                         "DAPR_GRPC_PORT": str(car.dapr_grpc_port)}))
            clients.append(DaprWorkflowClient(host="127.0.0.1", port=str(car.dapr_grpc_port)))
        yield cars, apps, clients, events
    finally:
        for client in clients:
            client.close()
        for app in apps:
            app.kill()
            app.wait(10)
        for car in cars:
            car.stop()


def test_two_sidecars_of_one_app_id_complete_each_workflow_once(tmp_path: Path) -> None:
    """50 workflows started through both sidecars complete once each (one
    ExecutionCompleted in each history), and the instances ran on both apps."""
    with _pair(tmp_path) as (cars, apps, clients, events):
        ids = [clients[i % 2].schedule_new_workflow("spread", instance_id=wid(f"two{i}"))
               for i in range(50)]
        for i, instance_id in enumerate(ids):
            state = clients[(i + 1) % 2].wait_for_workflow_completion(
                instance_id, timeout_in_seconds=120)
            assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, \
                "\n".join(c.logs()[-3000:] for c in cars)
            kinds = [e.event_type.name for e in clients[i % 2].get_workflow_history(instance_id)]
            assert kinds.count("EXECUTION_COMPLETED") == 1, kinds
        rows = [json.loads(line) for line in events.read_text().splitlines() if line]
        pids = {row["pid"] for row in rows if row["event"] == "where" and row["id"] in ids}
        assert pids == {app.pid for app in apps}, pids


def test_one_of_two_sidecars_killed_its_instances_finish_on_the_other(tmp_path: Path) -> None:
    """10 fan-outs of 10 slow activities over both sidecars; sidecar b and its app are
    SIGKILLed mid-way: every workflow completes with the right sum through a (its placement
    takes b's instances once b's leases lapse, and resumes them)."""
    with _pair(tmp_path) as (cars, apps, clients, events):
        ids = [clients[i % 2].schedule_new_workflow("slow_batch", input=10,
                                                    instance_id=wid(f"fail{i}"))
               for i in range(10)]
        deadline = time.monotonic() + TIMEOUT
        while sum(1 for line in (events.read_text().splitlines() if events.exists() else [])
                  if '"slow_item"' in line) < 20:
            assert time.monotonic() < deadline, "\n".join(c.logs()[-3000:] for c in cars)
            time.sleep(0.05)
        apps[1].kill()
        cars[1].stop(signal.SIGKILL)
        for instance_id in ids:
            state = clients[0].wait_for_workflow_completion(instance_id,
                                                            timeout_in_seconds=120)
            assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, \
                cars[0].logs()[-6000:]
            assert json.loads(state.serialized_output) == sum(range(1, 11))
        # b owned some: a's sweep resumed them (at start a had none to resume)
        assert re.search(r"workflows: [1-9]\d* instance\(s\) resumed", cars[0].logs())


SDK_18 = ["dapr==1.18.3", "dapr-ext-workflow==1.18.3"]
"""The other client of docs/design/workflows.md §0: the newest ``dapr-ext-workflow`` on PyPI,
over ``dapr`` 1.18 (older stubs, no worker capabilities sent)."""


@pytest.fixture(scope="module")
def python_18(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv with the 1.18 SDK, built with pip (a failure fails the tests, never skips)."""
    venv = tmp_path_factory.mktemp("sdk18") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", *SDK_18], check=True,
                   timeout=600)
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('dapr-ext-workflow'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    assert version == "1.18.3"
    return python


def test_the_1_18_sdk_as_the_app(tmp_path: Path, python_18: str) -> None:
    """The same app on ``dapr-ext-workflow`` 1.18.3: chaining, fan-out over 100, an event in
    time, continue-as-new, a child and a failing child, retries, suspend/resume/terminate."""
    with running(tmp_path, python=python_18) as old:
        c = old.client
        assert json.loads(old.done(c.schedule_new_workflow("task_chain", input=10))
                          .serialized_output) == [11, 22, 20]
        assert json.loads(old.done(c.schedule_new_workflow("batch_processing", input=100),
                                   timeout=120).serialized_output) == 10100
        order = c.schedule_new_workflow("purchase_order_wf",
                                        input={"cost": 2000, "product": "old", "timeout": 30})
        deadline = time.monotonic() + TIMEOUT
        while not [r for r in old.events("approval_requested") if r["product"] == "old"]:
            assert time.monotonic() < deadline, old.logs()
            time.sleep(0.1)
        c.raise_workflow_event(order, "approval_received", data={"approver": "Old"})
        assert json.loads(old.done(order).serialized_output) == "Approved by 'Old'"
        monitor = c.schedule_new_workflow("status_monitor",
                                          input={"checks": 0, "limit": 3, "last": ""})
        assert json.loads(old.done(monitor).serialized_output)["checks"] == 3
        parent = wid("old")
        assert json.loads(old.done(c.schedule_new_workflow(
            "main_workflow", input=False, instance_id=parent)).serialized_output) == \
            f"child said hello from {parent}-child"
        failing = c.schedule_new_workflow("main_workflow", input=True)
        assert json.loads(old.done(failing).serialized_output).startswith("child failed:")
        retry = c.schedule_new_workflow("retrying", input=2, instance_id=wid("oldretry"))
        assert json.loads(old.done(retry).serialized_output) == 3
        waiting = c.schedule_new_workflow("waiter")
        old.status_becomes(waiting, WorkflowStatus.RUNNING)
        c.pause_workflow(waiting)
        old.status_becomes(waiting, WorkflowStatus.SUSPENDED)
        c.resume_workflow(waiting)
        old.status_becomes(waiting, WorkflowStatus.RUNNING)
        c.terminate_workflow(waiting)
        old.status_becomes(waiting, WorkflowStatus.TERMINATED)
